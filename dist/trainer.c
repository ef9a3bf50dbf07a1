/* The data-parallel training loop (trainer.h), in the order a run goes: load (the run
 * folder, data, model, a checkpoint), step (forward, backward, agreement, all-reduce,
 * update), evaluate (validation, rank 0's decisions), save (checkpoints), the loop. */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam.h"
#include "error.h"
#include "evaluate.h"
#include "resume_options.h"
#include "run_files.h"
#include "run_folder.h"
#include "session.h"
#include "stop_signal.h"
#include "watchdog.h"

typedef struct {
    const TrainConfig *cfg;
    Comm *comm;
    Session s;                   /* dataset, backend, model, host arenas */
    Dataset *data;               /* = s.data */
    Model *model;                /* = s.model */
    Adam adam;
    int adam_ready;
    TrainState state;            /* the live position, schedule and best (a checkpoint saves
                                    it) */
    CheckpointState from;        /* a resumed run's checkpoint (load and the banner) */
    int next_batch_staged;       /* the step before read the next step's batch and staged it
                                    in the model (model_stage_batch) */
    int stepped;                 /* this process has taken a training step (the first one
                                    gets the watchdog's longer limit) */
    RunFolder folder;            /* rank 0: the lock, the checkpoints' history */
    DataFingerprint data_fp;     /* the open dataset's */
    double t_start;
} Trainer;

static double now(void) { return MPI_Wtime(); }

/* Rank 0 owns the decisions, the files and the printing. */
static int is_root(const Trainer *t) { return t->comm->rank == 0; }

/* the rate of the last optimizer step, as Adam took it (float) */
static float last_lr(const Trainer *t) {
    return (float)lr_at(&t->state.lr, t->state.global_step > 0 ? t->state.global_step - 1 : 0);
}

/* the checkpoints, under "save" below: rank 0 writes path; the position's, with every
 * rank learning the outcome */
static int save(Trainer *t, const char *path);
static int save_position(Trainer *t);

/* ---- load: the run folder, a checkpoint or a fresh start, data, model, Adam ---- */

/* Which checkpoint to resume from: rank 0 locks the run folder and applies its rule
 * (dist/run/run_folder.h); every rank gets the checkpoint's record. Returns 1 with the
 * path in `path` when resuming, 0 for a fresh run, -1 on error. */
static int find_resume(Trainer *t, char *path, size_t size) {
    int resume = 0;
    path[0] = '\0';
    if (is_root(t)) {
        RunStartRequest req = {.resume = t->cfg->resume, .overwrite = t->cfg->overwrite};
        resume = run_folder_open(&t->folder, t->cfg->out) ? -1 : run_folder_start(&t->folder, &req, path, size, &t->from);
    }
    if (comm_fail_together(t->comm, resume < 0)) return -1;
    comm_bcast_int(t->comm, &resume);
    comm_bcast_string(t->comm, path, size);
    if (resume) comm_bcast_bytes(t->comm, &t->from, sizeof t->from);
    return resume;
}

static SessionOptions session_options(const Trainer *t, const char *resume_path, int resumed) {
    const TrainConfig *cfg = t->cfg;
    SessionOptions o = {.backend = {.device = cfg->device, .threads = cfg->threads,
                                    .precision = cfg->precision},
                        .blocks = resumed ? t->from.model.blocks : cfg->blocks, .from = resumed ? &t->from : NULL,
                        .from_path = resume_path};
    dataset_default_options(&o.data);
    o.data.path = cfg->data;
    o.data.comm = t->comm->world;
    o.data.seed = cfg->seed;
    o.data.batch = cfg->batch;
    o.data.zero_suppress = cfg->zero_suppress;
    o.data.prefetch = cfg->prefetch;
    o.data.cache = cfg->cache;
    o.data.cache_limit = cfg->cache_limit;
    if (cfg->unbias >= 0) o.data.unbias = cfg->unbias;
    return o;
}

/* The open dataset against the checkpoint's: a resumed run refuses other data. Every
 * rank holds both fingerprints, so every rank decides alike. */
static int check_data(Trainer *t, const char *resume_path, int resumed) {
    data_fingerprint(t->data, t->comm->world, &t->data_fp);
    const CheckpointState *st = &t->from;
    char why[2048], was[2200], now[2200];
    if (resumed && st->has_data && data_fingerprint_differs(&st->data, &t->data_fp, why, sizeof why)) {
        data_fingerprint_describe(&st->data, was, sizeof was);
        data_fingerprint_describe(&t->data_fp, now, sizeof now);
        return e2e_fail("%s was trained on %s, but --data %s holds %s: %s. Resuming would continue mid-run on "
                        "other jets with the old scales: give the run's data, or start a new run", resume_path,
                        was, t->cfg->data, now, why);
    }
    if (resumed && !st->has_data && is_root(t))
        fprintf(stderr, "e2e-train: warning: %s has no dataset fingerprint (written before checkpoints stored "
                "one): cannot check that --data %s is the data it was trained on\n", resume_path, t->cfg->data);
    return 0;
}

/* Adam over the model's arena with the configured weight decay (a resumed run then
 * takes the checkpoint's hyper-parameters). */
static int create_optimizer(Trainer *t) {
    AdamHyper h = adam_default_hyper();
    h.weight_decay = (float)t->cfg->weight_decay;
    int failed = adam_create(&t->adam, model_ops(t->model), model_arena_size(t->model), h) != 0;
    t->adam_ready = !failed;
    return comm_fail_together(t->comm, failed);
}

/* The checkpoint's parameters into the model, its moments and step into Adam, its
 * training state into the trainer: version 1 stored only the plateau's part of the
 * schedule, the run's options give the base and scaled rates and the warm-up. */
static int resume_from(Trainer *t, const char *path, double scaled) {
    if (session_load(&t->s, path, NULL) || adam_set_moments(&t->adam, t->s.host[1], t->s.host[2]))
        return -1;
    t->adam.step = t->from.adam_step;
    t->adam.hyper = t->from.adam;  /* weight decay included: resume_options.h */
    LrSchedule *lr = &t->from.train.lr;
    if (t->from.version < 2) {
        lr->base = t->cfg->lr;
        lr->scaled = scaled;
        lr->warmup_steps = t->cfg->warmup_steps;
    }
    t->state = t->from.train;
    return 0;
}

/* A fresh run: position 0, the configured schedule, rank 0's initial parameters. */
static void start_fresh(Trainer *t, double scaled) {
    const TrainConfig *cfg = t->cfg;
    LrSchedule lr;
    lr_schedule_init(&lr, cfg->lr, scaled, cfg->warmup_steps, &cfg->plateau);
    train_state_init(&t->state, cfg->seed, &lr);
    model_init(t->model, cfg->seed);
    comm_broadcast(t->comm, model_params(t->model), model_arena_size(t->model));
}

/* Where a run checkpointed with other ranks or batch continues: at the same fraction
 * of the epoch's samples (the data order differs anyway; docs say so). */
static void rescale_position(Trainer *t, long steps) {
    const CheckpointState *from = &t->from;
    TrainState *st = &t->state;
    long per_now = (long)t->cfg->batch * t->comm->size, per_then = (long)from->batch * from->world_size;
    if (per_then == per_now || st->step_in_epoch == 0) return;
    long at = (long)((double)st->step_in_epoch * per_then / per_now);
    if (is_root(t))
        printf("e2e-train: checkpoint written by %d ranks x batch %d, now %d x %d: the epoch "
               "continues at step %ld of %ld (same fraction of samples; the data order differs)\n",
               from->world_size, from->batch, t->comm->size, t->cfg->batch, at, steps);
    st->step_in_epoch = at < steps ? at : steps;
}

/* Rank 0: config.json, the metrics files cut back to the resumed epoch, the banner.
 * resume_path: NULL for a fresh run. */
static int start_run_files(Trainer *t, const char *resume_path, long steps) {
    const TrainConfig *cfg = t->cfg;
    char json[8192];
    TrainConfig now; /* on resume: what the checkpoint fixes, not what was asked */
    resume_options_in_force(cfg, resume_path ? &t->from : NULL, &now);
    train_config_json(&now, t->comm->size, json, sizeof json);
    strcat(json, "\n");
    int rc = run_write_text(cfg->out, "config.json", json) ||
             (resume_path && run_truncate_metrics(cfg->out, t->state.epoch + 1)) ? -1 : 0;
    const DatasetInfo *info = dataset_info(t->data);
    printf("e2e-train: %d rank%s on %s, model %zu parameters, %dx%dx%d images, train %lld / "
           "val %lld / test %lld jets, %ld steps per epoch of %d x %d\n",
           t->comm->size, t->comm->size > 1 ? "s" : "", model_ops(t->model)->name,
           model_count_params(model_config(t->model)), info->channels, info->height, info->width,
           dataset_split_total(t->data, SPLIT_TRAIN), dataset_split_total(t->data, SPLIT_VAL),
           dataset_split_total(t->data, SPLIT_TEST), steps, t->comm->size, cfg->batch);
    const char *kernels = net_backend_report(model_ops(t->model));
    if (kernels) printf("e2e-train: %s\n", kernels);
    if (resume_path) {
        printf("e2e-train: resumed from %s at epoch %ld, step %ld\n", resume_path,
               t->state.epoch + 1, t->state.step_in_epoch);
        resume_options_report(cfg, &t->from, t->comm->size);
    }
    fflush(stdout);
    return rc;
}

/* Everything before the first step: the run folder and a checkpoint to resume (or a
 * fresh start), the data, the model and Adam, the position, the run's files. 0 with the
 * steps of an epoch in *steps, or -1 on every rank. */
static int load(Trainer *t, long *steps) {
    const TrainConfig *cfg = t->cfg;
    char resume_path[4096];
    int resumed = find_resume(t, resume_path, sizeof resume_path);
    if (resumed < 0) return -1;
    SessionOptions so = session_options(t, resume_path, resumed);
    if (session_open(&t->s, &so)) return -1;
    t->data = t->s.data;
    t->model = t->s.model;
    if (check_data(t, resume_path, resumed) || create_optimizer(t)) return -1;
    double scaled = cfg->lr_scaling ? cfg->lr * t->comm->size : cfg->lr;
    if (!resumed) start_fresh(t, scaled);
    else if (resume_from(t, resume_path, scaled)) return -1;
    *steps = dataset_steps_per_epoch(t->data, SPLIT_TRAIN);
    if (*steps <= 0)
        return e2e_fail("%s: the training split gives each of the %d ranks %lld jets, fewer than --batch %d: give a "
                        "smaller --batch (it is per rank)", cfg->data, t->comm->size,
                        dataset_split_total(t->data, SPLIT_TRAIN) / t->comm->size, cfg->batch);
    if (resumed) rescale_position(t, *steps);
    watchdog_phase(WD_CHECKPOINT);
    int failed = is_root(t) && start_run_files(t, resumed ? resume_path : NULL, *steps) != 0;
    return comm_fail_together(t->comm, failed);
}

/* ---- step: forward, backward, the agreement point, all-reduce, update ---- */

typedef struct {
    double data, compute, comm;  /* seconds this epoch, this rank: reading, computing, the
                                    gradient all-reduce */
    double sync;                 /* the agreement point: latency, plus waiting for the
                                    slowest rank to get there */
    long steps, skipped;
} StepTimes;

/* What one step did on this rank before the agreement. */
typedef struct {
    int flags;                   /* AGREE_ERROR (reason in e2e_error()), AGREE_NONFINITE */
    float loss;                  /* the rank's batch mean */
    double read_s, ahead_s;      /* reading this batch; reading and staging the next */
    double pass_s;               /* the training pass and its checks */
} LocalStep;

/* The reader's next training batch: 0, or -1 (e2e_error()). */
static int read_batch(Trainer *t, Batch *b) {
    int rc = dataset_next(t->data, b);
    if (rc < 0) return -1;
    return rc == 0 ? e2e_fail("training split ended before the epoch's steps") : 0;
}

/* The next step's batch, read and staged while this step's pass runs: on a GPU its copy
 * overlaps the pass (the loss read-back waits for the pass). 0, or -1 (e2e_error()). */
static int stage_next(Trainer *t, long step) {
    if (step + 1 >= dataset_steps_per_epoch(t->data, SPLIT_TRAIN)) return 0;
    Batch next;
    watchdog_phase(WD_READ);
    if (read_batch(t, &next) || model_stage_batch(t->model, &next)) return -1;
    t->next_batch_staged = 1;
    return 0;
}

/* This rank's part: forward, loss and backward on its batch (the staged one, or one read
 * now), the next batch staged meanwhile, and the checks of loss and gradients. */
static void forward_backward(Trainer *t, long step, LocalStep *l) {
    double t0 = now();
    int staged = t->next_batch_staged, failed = 0, nonfinite = 0;
    t->next_batch_staged = 0;
    Batch b;
    watchdog_phase(WD_READ);
    if (!staged) failed = read_batch(t, &b);
    double t1 = now();
    watchdog_phase(t->stepped ? WD_STEP : WD_FIRST_STEP);
    if (!failed) failed = model_train_pass(t->model, staged ? NULL : &b);
    t->stepped = 1;
    if (!failed) {
        double a0 = now();
        failed = stage_next(t, step);
        l->ahead_s = now() - a0;
    }
    watchdog_phase(WD_STEP);
    if (!failed) failed = model_loss_value(t->model, &l->loss) || model_grads_nonfinite(t->model, &nonfinite);
    if (failed) l->flags |= AGREE_ERROR;
    else if (!isfinite(l->loss) || nonfinite) l->flags |= AGREE_NONFINITE;
    l->read_s = t1 - t0;
    l->pass_s = now() - t1 - l->ahead_s;
}

/* A non-finite step ends the run, or with --nan-policy skip is skipped. */
static int skip_step(Trainer *t, long epoch, long step, StepTimes *tm) {
    if (!t->cfg->nan_skip)
        return e2e_fail("non-finite loss or gradients at epoch %ld, step %ld: stopping "
                        "(--nan-policy skip skips such steps instead)", epoch + 1, step + 1);
    tm->skipped++;
    if (is_root(t))
        printf("e2e-train: skipped step %ld of epoch %ld: non-finite loss or gradients\n",
               step + 1, epoch + 1);
    return 0;
}

/* After the agreement: the gradients averaged over the ranks, then Adam at the
 * schedule's rate. */
static int allreduce_and_update(Trainer *t, const Agreement *a, StepTimes *tm) {
    double t0 = now();
    if (comm_allreduce_mean(t->comm, model_grads(t->model), model_arena_size(t->model))) return -1;
    double t1 = now();
    float lr = (float)lr_at(&t->state.lr, t->state.global_step);
    if (adam_step(&t->adam, lr, model_params(t->model), model_grads(t->model))) return -1;
    t->state.epoch_loss_sum += a->sum[0];
    t->state.epoch_samples += a->sum[1];
    /* one rank has no all-reduce (comm_allreduce_mean returns at once): its share is 0
       by definition, not the clock read around a no-op */
    if (t->comm->size > 1) tm->comm += t1 - t0;
    tm->compute += now() - (t->comm->size > 1 ? t1 : t0);
    return 0;
}

/* Every --check-replicas steps: every rank holds bitwise the same parameters. */
static int check_replicas(Trainer *t) {
    long every = t->cfg->check_replicas;
    if (!every || t->state.global_step % every != 0) return 0;
    int same = 0;
    if (comm_replicas_identical(t->comm, model_params(t->model), model_arena_size(t->model), &same))
        return -1;
    return same ? 0 : e2e_fail("replicas diverged: ranks hold different parameters after step %ld",
                               t->state.global_step);
}

/* One optimizer step: forward and backward on this rank's batch, the agreement point,
 * the gradient all-reduce and Adam's update. Returns 0 (go on), 1 (a stop was agreed:
 * the step was taken and the caller checkpoints), -1 (error on every rank). */
static int train_step(Trainer *t, long epoch, long step, StepTimes *tm, long *process_steps) {
    const TrainConfig *cfg = t->cfg;
    LocalStep l = {0};
    watchdog_position(epoch, step);
    forward_backward(t, step, &l);
    (*process_steps)++;
    if (stop_signal_received() || (cfg->stop_after_steps && *process_steps >= cfg->stop_after_steps))
        l.flags |= AGREE_STOP;
    double t0 = now();
    double sums[2] = {isfinite(l.loss) ? (double)l.loss * cfg->batch : 0.0, (double)cfg->batch};
    Agreement a;
    int agreed = comm_agree(t->comm, l.flags, sums, 2, &a);
    tm->sync += now() - t0;
    if (agreed) return -1;
    int rc = (a.flags & AGREE_NONFINITE) ? skip_step(t, epoch, step, tm) : allreduce_and_update(t, &a, tm);
    if (rc) return -1;
    tm->data += l.read_s + l.ahead_s;
    tm->compute += l.pass_s;
    tm->steps++;
    t->state.global_step++;
    t->state.step_in_epoch = step + 1;
    if (check_replicas(t)) return -1;
    return (a.flags & AGREE_STOP) != 0;
}

/* ---- evaluate: validation and rank 0's decisions at an epoch's end; the test ---- */

static EpochMetrics epoch_metrics(const Trainer *t, long epoch, double epoch_t0, const StepTimes *tm,
                                  const EvalResult *v) {
    EpochMetrics e = {.epoch = epoch + 1, .lr = last_lr(t), .val_loss = v->loss,
                      .val_mae = v->mae, .val_mre = v->mre, .epoch_s = now() - epoch_t0,
                      .skipped_steps = tm->skipped};
    e.train_loss = t->state.epoch_samples > 0 ? t->state.epoch_loss_sum / t->state.epoch_samples : NAN;
    double step_time = tm->data + tm->compute + tm->comm + tm->sync;
    e.samples_per_s = step_time > 0 ? tm->steps * (double)t->cfg->batch * t->comm->size / step_time : 0;
    e.data_wait_frac = step_time > 0 ? tm->data / step_time : 0;
    e.allreduce_frac = step_time > 0 ? tm->comm / step_time : 0;
    e.sync_wait_frac = step_time > 0 ? tm->sync / step_time : 0;
    return e;
}

/* Rank 0's part of an epoch's end: the schedule, the best metric, the report, the
 * metrics row and best.h5. */
static int end_epoch_on_root(Trainer *t, long epoch, const EvalResult *v, const EpochMetrics *e) {
    lr_schedule_epoch_end(&t->state.lr, v->mae);
    int best = v->mae < t->state.best_metric;
    if (best) {
        t->state.best_metric = v->mae;
        t->state.best_epoch = epoch + 1;
    }
    printf("epoch %ld/%d done: train loss %.5f  val loss %.5f  val MAE %.2f GeV  val MRE %.4f"
           "%s  (%.1f s, %.1f samples/s, data wait %.1f%%, all-reduce %.1f%%, sync %.1f%%)\n",
           epoch + 1, t->cfg->epochs, e->train_loss, v->loss, v->mae, v->mre, best ? "  (best)" : "",
           e->epoch_s, e->samples_per_s, 100 * e->data_wait_frac, 100 * e->allreduce_frac,
           100 * e->sync_wait_frac);
    fflush(stdout);
    char path[4400];
    snprintf(path, sizeof path, "%s/best.h5", t->folder.ckpt_dir);
    return run_append_metrics(t->cfg->out, e) || (best && save(t, path)) ? -1 : 0;
}

/* The end of an epoch: validation, the next position, rank 0's decisions (schedule,
 * best, report, metrics row, best.h5) shared with every rank, the epoch's checkpoint. */
static int end_epoch(Trainer *t, long epoch, double epoch_t0, const StepTimes *tm) {
    EvalResult v;
    watchdog_phase(WD_EVAL);
    if (evaluate_split(t->comm, t->model, t->data, SPLIT_VAL, t->cfg->mre_min_mass, &v, NULL)) return -1;
    EpochMetrics e = epoch_metrics(t, epoch, epoch_t0, tm, &v);
    /* the epoch is done: the next position is the next epoch's first step */
    t->state.epoch = epoch + 1;
    t->state.step_in_epoch = 0;
    t->state.epoch_loss_sum = t->state.epoch_samples = 0;
    watchdog_phase(WD_CHECKPOINT);
    int failed = is_root(t) && end_epoch_on_root(t, epoch, &v, &e) != 0;
    if (comm_fail_together(t->comm, failed)) return -1;
    comm_bcast_bytes(t->comm, &t->state, sizeof t->state);  /* rank 0's schedule and best */
    return save_position(t);
}

/* Rank 0: the test result r into results.json, and said. */
static int write_results(Trainer *t, const EvalResult *r) {
    RunResults res = {.best_epoch = t->state.best_epoch, .best_val_mae = t->state.best_metric,
                      .test_loss = r->loss, .test_mae = r->mae, .test_mre = r->mre,
                      .test_jets = r->count, .mre_jets = r->mre_count, .epochs = t->state.epoch,
                      .global_steps = t->state.global_step, .ranks = t->comm->size,
                      .train_time_s = t->state.elapsed_s + now() - t->t_start};
    int rc = run_write_results(t->cfg->out, &res);
    printf("test (best checkpoint, epoch %ld): loss %.5f  MAE %.2f GeV  MRE %.4f  on %lld jets\n",
           t->state.best_epoch, r->loss, r->mae, r->mre, r->count);
    return rc;
}

/* The best checkpoint on the test split, into results.json. */
static int final_test(Trainer *t) {
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoints/best.h5", t->cfg->out);
    watchdog_phase(WD_CHECKPOINT);
    int missing = is_root(t) && access(path, R_OK) != 0;
    if (missing) e2e_fail("%s: no best checkpoint to test", path);
    if (comm_fail_together(t->comm, missing) || session_load(&t->s, path, NULL)) return -1;
    EvalResult r;
    watchdog_phase(WD_EVAL);
    if (evaluate_split(t->comm, t->model, t->data, SPLIT_TEST, t->cfg->mre_min_mass, &r, NULL)) return -1;
    watchdog_phase(WD_CHECKPOINT);
    return comm_fail_together(t->comm, is_root(t) && write_results(t, &r) != 0);
}

/* ---- save: checkpoints ---- */

/* What a checkpoint records besides the training state: the model, the ranks and batch,
 * Adam, the preprocessing and the data, the configuration. */
static void checkpoint_record(const Trainer *t, CheckpointState *ck) {
    ck->train = t->state;
    ck->model = *model_config(t->model);
    ck->world_size = t->comm->size;
    ck->batch = t->cfg->batch;
    ck->adam_step = t->adam.step;
    ck->adam = t->adam.hyper;
    const DatasetInfo *info = dataset_info(t->data);
    ck->n_scales = info->channels;
    memcpy(ck->scales, dataset_scales(t->data), sizeof(float) * info->channels);
    ck->inputs = *dataset_inputs(t->data);
    ck->zero_suppress = t->s.data_zero_suppress;
    ck->unbias = t->s.data_unbias;
    ck->data = t->data_fp;
    ck->has_data = 1;
    TrainConfig now;
    resume_options_in_force(t->cfg, t->from.version ? &t->from : NULL, &now);
    train_config_json(&now, t->comm->size, ck->config_json, sizeof ck->config_json);
}

/* Rank 0: the parameters, Adam's moments and the record into the checkpoint at path. */
static int save(Trainer *t, const char *path) {
    t->state.elapsed_s += now() - t->t_start;
    t->t_start = now();
    CheckpointState *ck = calloc(1, sizeof *ck);
    if (!ck) return e2e_fail("%s: out of host memory for the checkpoint's record", path);
    checkpoint_record(t, ck);
    float **host = t->s.host;
    int rc = model_get_params(t->model, host[0]) || adam_get_moments(&t->adam, host[1], host[2]) ||
             checkpoint_write(path, ck, t->model, host[0], host[1], host[2]) ? -1 : 0;
    free(ck);
    return rc;
}

/* Rank 0 writes the position's checkpoint (and prunes); every rank learns the outcome. */
static int save_position(Trainer *t) {
    watchdog_phase(WD_CHECKPOINT);
    int failed = 0;
    if (is_root(t)) {
        char path[4200];
        run_folder_checkpoint_path(&t->folder, t->state.global_step, path, sizeof path);
        failed = save(t, path) || run_folder_checkpointed(&t->folder, t->state.global_step, t->cfg->keep);
    }
    return comm_fail_together(t->comm, failed);
}

/* ---- the loop: epochs of steps ---- */

/* Where the run stands against the clock, for the progress line. */
typedef struct {
    double t0;           /* when the loop started */
    long done_at_start;  /* global steps before it (a resumed run) */
    long total;          /* global steps of the whole run */
    int every;           /* progress line every this many steps */
} Pace;

/* Rank 0's progress line after `done` steps of the epoch's `steps`: every pace->every
 * steps, and at the epoch's end. */
static void progress(const Trainer *t, long epoch, long done, long steps, const Pace *pace) {
    if (!is_root(t) || (done % pace->every != 0 && done != steps)) return;
    double el = now() - pace->t0;
    long run_done = t->state.global_step - pace->done_at_start;
    double rate = el > 0 ? run_done * (double)t->cfg->batch * t->comm->size / el : 0;
    double eta = run_done > 0 ? el / run_done * (pace->total - t->state.global_step) : -1;
    char e[32];
    run_format_duration(eta, e, sizeof e);
    double loss = t->state.epoch_loss_sum / fmax(t->state.epoch_samples, 1);
    printf("epoch %ld/%d  step %ld/%ld  loss %.5f  lr %.3g  %.1f samples/s  ETA %s\n", epoch + 1,
           t->cfg->epochs, done, steps, loss, last_lr(t), rate, e);
    fflush(stdout);
}

/* One epoch's steps. 0 at its end, EXIT_REQUEUE after an agreed stop (checkpoint
 * written), -1 on error. */
static int run_epoch(Trainer *t, long epoch, long steps, const Pace *pace, long *process_steps) {
    StepTimes tm = {0};
    double epoch_t0 = now();
    long first = t->state.step_in_epoch;
    int failed = dataset_begin_epoch(t->data, SPLIT_TRAIN, epoch, first) ? -1 : 0;
    if (comm_fail_together(t->comm, failed)) return -1;
    for (long step = first; step < steps; step++) {
        int rc = train_step(t, epoch, step, &tm, process_steps);
        if (rc < 0) return -1;
        progress(t, epoch, step + 1, steps, pace);
        if (rc == 1) {
            if (save_position(t)) return -1;
            if (is_root(t))
                printf("e2e-train: stop requested: checkpoint written at epoch %ld, step %ld; "
                       "exiting with %d (requeue)\n", epoch + 1, step + 1, EXIT_REQUEUE);
            return EXIT_REQUEUE;
        }
    }
    return end_epoch(t, epoch, epoch_t0, &tm);
}

/* A stop requested during validation takes effect after the epoch's checkpoint. */
static int stop_after_epoch(Trainer *t, long epoch) {
    Agreement a;
    comm_agree(t->comm, stop_signal_received() ? AGREE_STOP : 0, NULL, 0, &a);
    if (!(a.flags & AGREE_STOP) || epoch + 1 >= t->cfg->epochs) return 0;
    if (is_root(t))
        printf("e2e-train: stop requested: checkpoint written after epoch %ld; exiting with %d "
               "(requeue)\n", epoch + 1, EXIT_REQUEUE);
    return 1;
}

/* Load, then every epoch's steps with validation and checkpoints at its end, then the
 * best checkpoint on the test split. */
static int run(Trainer *t) {
    const TrainConfig *cfg = t->cfg;
    long steps;
    if (load(t, &steps)) return -1;
    t->t_start = now();
    Pace pace = {.t0 = now(), .done_at_start = t->state.global_step, .total = steps * cfg->epochs,
                 .every = cfg->log_every > 0 ? cfg->log_every : (int)(steps >= 10 ? steps / 10 : 1)};
    long process_steps = 0;
    for (long epoch = t->state.epoch; epoch < cfg->epochs; epoch++) {
        int rc = run_epoch(t, epoch, steps, &pace, &process_steps);
        if (rc) return rc;
        if (stop_after_epoch(t, epoch)) return EXIT_REQUEUE;
    }
    return final_test(t);
}

int trainer_run(const TrainConfig *cfg, Comm *comm) {
    stop_signal_install();
    Trainer t;
    memset(&t, 0, sizeof t);
    t.cfg = cfg;
    t.comm = comm;
    t.s.comm = comm;
    t.folder.lock_fd = -1;
    int rc = train_config_check(cfg) || watchdog_start(comm, cfg->watchdog_s, cfg->peer_timeout_s) ? -1 : run(&t);
    watchdog_stop();
    if (rc < 0 && comm->rank == 0) fprintf(stderr, "e2e-train: error: %s\n", e2e_error());
    if (t.adam_ready) adam_free(&t.adam);
    session_close(&t.s);
    run_folder_close(&t.folder);
    fflush(stdout);
    return rc < 0 ? 1 : rc;
}

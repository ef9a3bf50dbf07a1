/* The data-parallel training loop (trainer.h), in the order a run goes: load (the run
 * folder, data, model, a checkpoint), step (forward and backward of its micro-batches,
 * agreement, all-reduce, update), evaluate (validation, rank 0's decisions on the task's
 * metric, early stopping), save (checkpoints), the loop. TensorBoard's events and the
 * timeline are recorded at the step's and the epoch's boundaries (tensorboard.h, timeline.h). */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam.h"
#include "early_stop.h"
#include "error.h"
#include "evaluate.h"
#include "metrics_report.h"
#include "progress_line.h"
#include "resume_options.h"
#include "run_files.h"
#include "run_folder.h"
#include "session.h"
#include "stop_signal.h"
#include "tensorboard.h"
#include "timeline.h"
#include "watchdog.h"

typedef struct {
    const TrainConfig *cfg;
    Comm *comm;
    Session s;                   /* dataset, backend, model, host arenas */
    Dataset *data;               /* = s.data */
    Model *model;                /* = s.model */
    float *params, *grads;       /* the model's arenas in backend memory, n_params floats */
    size_t n_params;
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
    TensorBoard tb;              /* rank 0's event files (off elsewhere) */
    Timeline tl;                 /* this rank's step phases (--trace; NVTX) */
    Task task;                   /* what the model is trained for (a resumed run: the checkpoint's) */
    EvalResult last_val;         /* the last epoch's validation (the progress line's note) */
} Trainer;

static double now(void) { return MPI_Wtime(); }

/* Rank 0 owns the decisions, the files and the printing. */
static int is_root(const Trainer *t) { return t->comm->rank == 0; }

/* Early stopping ended the run before --epochs (its count is rank 0's, shared with every
 * rank at each epoch's end). */
static int stopped_early(const Trainer *t) {
    return early_stop_reached(&t->state.early, &t->cfg->early_stop) && t->state.epoch < t->cfg->epochs;
}

/* the samples of one optimizer step, over every rank and micro-batch */
static long global_batch(const Trainer *t) { return (long)t->cfg->batch * t->comm->size * t->cfg->accum; }

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
                                    .precision = cfg->precision}, .task = t->task,
                        .blocks = resumed ? t->from.model.blocks : cfg->blocks, .from = resumed ? &t->from : NULL,
                        .from_path = resume_path, .train_batches = cfg->accum};
    dataset_default_options(&o.data);
    o.data.path = cfg->data;
    o.data.comm = t->comm->world;
    o.data.seed = cfg->seed;
    o.data.batch = cfg->batch;
    o.data.zero_suppress = cfg->zero_suppress;
    o.data.prefetch = cfg->prefetch;
    o.data.cache = cfg->cache;
    o.data.cache_limit = cfg->cache_limit;
    o.data.unbias = cfg->unbias >= 0 ? cfg->unbias : task_default_unbias(&t->task);
    return o;
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
static int start_fresh(Trainer *t, double scaled) {
    const TrainConfig *cfg = t->cfg;
    LrSchedule lr;
    lr_schedule_init(&lr, cfg->lr, scaled, cfg->warmup_steps, &cfg->plateau);
    train_state_init(&t->state, cfg->seed, &lr);
    model_init(t->model, cfg->seed);
    return comm_broadcast(t->comm, model_params(t->model), model_arena_size(t->model));
}

/* Where a run checkpointed with other ranks or batch continues: at the same fraction
 * of the epoch's samples (the data order differs anyway; docs say so). */
static void rescale_position(Trainer *t, long steps) {
    const CheckpointState *from = &t->from;
    TrainState *st = &t->state;
    long per_now = (long)t->cfg->batch * t->comm->size * t->cfg->accum;
    long per_then = (long)from->batch * from->world_size * from->accum;
    if (per_then == per_now || st->step_in_epoch == 0) return;
    long at = (long)((double)st->step_in_epoch * per_then / per_now);
    if (is_root(t))
        printf("e2e-train: checkpoint written by %d ranks x batch %d x %d micro-batches, now %d x %d x %d: the "
               "epoch continues at step %ld of %ld (same fraction of samples; the data order differs)\n",
               from->world_size, from->batch, from->accum, t->comm->size, t->cfg->batch, t->cfg->accum, at, steps);
    st->step_in_epoch = at < steps ? at : steps;
}

/* Rank 0: config.json, the metrics files cut back to the resumed epoch, the banner.
 * resume_path: NULL for a fresh run. */
static int start_run_files(Trainer *t, const char *resume_path, long steps) {
    const TrainConfig *cfg = t->cfg;
    char json[8192];
    resume_config_json(cfg, resume_path ? &t->from : NULL, t->comm->size, json, sizeof json); /* what is in force */
    strcat(json, "\n");
    int rc = run_write_text(cfg->out, "config.json", json) ||
             (resume_path && run_truncate_metrics(cfg->out, t->state.epoch + 1)) ? -1 : 0;
    session_describe(&t->s, steps, cfg->batch, cfg->accum);
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
    if (resumed < 0 || (resumed && resume_check_task(cfg, &t->from, resume_path))) return -1;
    t->task = resumed ? t->from.task : cfg->task;
    SessionOptions so = session_options(t, resume_path, resumed);
    if (session_open(&t->s, &so)) return -1;
    t->data = t->s.data;
    t->model = t->s.model;
    t->params = model_params(t->model);
    t->grads = model_grads(t->model);
    t->n_params = model_arena_size(t->model);
    if (session_check_data(&t->s, resumed ? &t->from : NULL, resume_path, cfg->data, &t->data_fp) ||
        create_optimizer(t))
        return -1;
    double scaled = cfg->lr_scaling ? cfg->lr * t->comm->size : cfg->lr;
    if (resumed ? resume_from(t, resume_path, scaled) : start_fresh(t, scaled)) return -1;
    *steps = dataset_steps_per_epoch(t->data, SPLIT_TRAIN) / cfg->accum;  /* optimizer steps */
    if (resumed) rescale_position(t, *steps);
    watchdog_phase(WD_CHECKPOINT);
    long tb_from = resumed ? t->state.global_step : -1;  /* events past a resumed step go */
    int failed = is_root(t) && (start_run_files(t, resumed ? resume_path : NULL, *steps) ||
                                tensorboard_open(&t->tb, cfg->out, cfg->tensorboard, tb_from));
    if (comm_fail_together(t->comm, failed)) return -1;
    model_set_phase_hook(t->model, timeline_model_hook, &t->tl);
    return timeline_open(&t->tl, t->comm, cfg, *steps);
}

/* ---- step: forward and backward of each micro-batch, the agreement point, all-reduce,
 * update. A step of --accum N micro-batches communicates once, after the last. ---- */

typedef struct {
    double data, compute, comm;  /* seconds this epoch, this rank: reading, computing, the
                                    gradient all-reduce */
    double sync;                 /* the agreement point: latency, plus waiting for the
                                    slowest rank to get there */
    long steps, skipped;
    long allreduces;             /* the communicator's count when the epoch began */
} StepTimes;

/* What one step's micro-batches did on this rank before the agreement. */
typedef struct {
    int flags;                   /* AGREE_ERROR (reason in e2e_error()), AGREE_NONFINITE */
    double loss_sum;             /* sum of the micro-batches' means x batch (finite ones) */
    double read_s, ahead_s;      /* reading the batches; reading and staging the next ones */
    double pass_s;               /* the training passes and their checks */
} LocalStep;

/* The reader's next training batch: 0, or -1 (e2e_error()). */
static int read_batch(Trainer *t, Batch *b) {
    int rc = dataset_next(t->data, b);
    if (rc < 0) return -1;
    return rc == 0 ? e2e_fail("training split ended before the epoch's steps") : 0;
}

/* The next micro-batch, read and staged while this one's pass runs: on a GPU its copy
 * overlaps the pass (the loss read-back waits for the pass). 0, or -1 (e2e_error()). */
static int stage_next(Trainer *t, long micro) {
    long used = dataset_steps_per_epoch(t->data, SPLIT_TRAIN) / t->cfg->accum * t->cfg->accum;
    if (micro + 1 >= used) return 0;
    Batch next;
    watchdog_phase(WD_READ);
    timeline_phase(&t->tl, TL_DATA);
    if (read_batch(t, &next)) return -1;
    timeline_phase(&t->tl, TL_H2D);
    if (model_stage_batch(t->model, &next)) return -1;
    t->next_batch_staged = 1;
    return 0;
}

/* This rank's part of micro-batch k (of the epoch's `micro`): forward, loss and backward
 * on its batch (the staged one, or one read now), the next batch staged meanwhile, the
 * gradients summed (--accum), the loss read and, after the last, the gradients checked. */
static void forward_backward(Trainer *t, long micro, int k, LocalStep *l) {
    double t0 = now(), ahead = 0;
    int staged = t->next_batch_staged, failed = 0, nonfinite = 0, accum = t->cfg->accum;
    float loss = NAN;
    t->next_batch_staged = 0;
    Batch b;
    timeline_micro(&t->tl, k);
    watchdog_phase(WD_READ);
    timeline_phase(&t->tl, TL_DATA);
    if (!staged) failed = read_batch(t, &b);
    double t1 = now();
    watchdog_phase(t->stepped ? WD_STEP : WD_FIRST_STEP);
    timeline_phase(&t->tl, TL_FORWARD);
    if (!failed) failed = model_train_pass(t->model, staged ? NULL : &b);
    t->stepped = 1;
    if (!failed) {
        double a0 = now();
        failed = stage_next(t, micro);
        ahead = now() - a0;
    }
    watchdog_phase(WD_STEP);
    if (accum > 1) {
        timeline_phase(&t->tl, TL_ACCUMULATE);
        if (!failed) failed = model_accumulate_grads(t->model, k, accum);
    }
    timeline_phase(&t->tl, TL_CHECK);
    if (!failed)  /* the loss of every micro-batch; the gradients once they are summed */
        failed = k == accum - 1 ? model_pass_result(t->model, &loss, &nonfinite) : model_loss_value(t->model, &loss);
    if (failed) l->flags |= AGREE_ERROR;
    else if (!isfinite(loss) || nonfinite) l->flags |= AGREE_NONFINITE;
    l->loss_sum += isfinite(loss) ? (double)loss * t->cfg->batch : 0.0;
    l->read_s += t1 - t0;
    l->ahead_s += ahead;
    l->pass_s += now() - t1 - ahead;
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
    timeline_phase(&t->tl, TL_ALLREDUCE);
    if (comm_allreduce_mean(t->comm, t->grads, t->n_params)) return -1;
    double t1 = now();
    float lr = (float)lr_at(&t->state.lr, t->state.global_step);
    timeline_phase(&t->tl, TL_OPTIMIZER);
    if (adam_step(&t->adam, lr, t->params, t->grads)) return -1;
    timeline_phase(&t->tl, TL_NONE);
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
    if (comm_replicas_identical(t->comm, t->params, t->n_params, &same))
        return -1;
    return same ? 0 : e2e_fail("replicas diverged: ranks hold different parameters after step %ld",
                               t->state.global_step);
}

/* One optimizer step: forward and backward on this rank's micro-batches, the agreement
 * point, the gradient all-reduce and Adam's update. Returns 0 (go on), 1 (a stop was
 * agreed: the step was taken and the caller checkpoints), -1 (error on every rank). */
static int train_step(Trainer *t, long epoch, long step, StepTimes *tm, long *process_steps) {
    const TrainConfig *cfg = t->cfg;
    LocalStep l = {0};
    watchdog_position(epoch, step);
    timeline_step(&t->tl, t->comm, t->state.global_step);
    for (int k = 0; k < cfg->accum && !(l.flags & AGREE_ERROR); k++) forward_backward(t, step * cfg->accum + k, k, &l);
    (*process_steps)++;
    if (stop_signal_received() || (cfg->stop_after_steps && *process_steps >= cfg->stop_after_steps))
        l.flags |= AGREE_STOP;
    double t0 = now();
    double sums[2] = {l.loss_sum, (double)cfg->batch * cfg->accum};
    Agreement a;
    timeline_phase(&t->tl, TL_AGREE);
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
    timeline_phase(&t->tl, TL_NONE);
    tensorboard_step(&t->tb, t->state.global_step, (a.flags & AGREE_NONFINITE) ? NAN : a.sum[0] / a.sum[1], last_lr(t));
    if (check_replicas(t)) return -1;
    return (a.flags & AGREE_STOP) != 0;
}

/* ---- evaluate: validation and rank 0's decisions at an epoch's end; the test ---- */

static EpochMetrics epoch_metrics(const Trainer *t, long epoch, double epoch_t0, const StepTimes *tm,
                                  const EvalResult *v) {
    EpochMetrics e = {.epoch = epoch + 1, .lr = last_lr(t), .epoch_s = now() - epoch_t0, .skipped_steps = tm->skipped,
                      .allreduces = t->comm->allreduces - tm->allreduces};
    report_epoch_fill(v, &e);
    e.train_loss = t->state.epoch_samples > 0 ? t->state.epoch_loss_sum / t->state.epoch_samples : NAN;
    double step_time = tm->data + tm->compute + tm->comm + tm->sync;
    e.samples_per_s = step_time > 0 ? tm->steps * (double)global_batch(t) / step_time : 0;
    e.data_wait_frac = step_time > 0 ? tm->data / step_time : 0;
    e.allreduce_frac = step_time > 0 ? tm->comm / step_time : 0;
    e.sync_wait_frac = step_time > 0 ? tm->sync / step_time : 0;
    return e;
}

/* Rank 0's part of an epoch's end: the schedule, the best metric, early stopping (on the
 * task's monitored metric: the validation MAE, lower is better; a classifier's AUC or
 * loss), the report, the metrics row, TensorBoard's events and best.h5. */
static int end_epoch_on_root(Trainer *t, long epoch, const EvalResult *v, const EpochMetrics *e) {
    Monitor mon = task_monitor(&t->task, v);
    lr_schedule_epoch_end(&t->state.lr, mon.value);
    int best = monitor_improves(&mon, t->state.best_metric, t->state.best_epoch);
    if (best) {
        t->state.best_metric = mon.value;
        t->state.best_epoch = epoch + 1;
    }
    int stop = early_stop_update(&t->state.early, &t->cfg->early_stop, mon.value, mon.mode_max) &&
               epoch + 1 < t->cfg->epochs;
    report_epoch_line(t->cfg->epochs, v, e, best);
    t->last_val = *v;
    if (stop) early_stop_report(&t->state.early, &t->cfg->early_stop, epoch + 1, t->cfg->epochs, mon.words);
    fflush(stdout);
    tensorboard_epoch(&t->tb, t->state.global_step, e);
    char path[4400];
    snprintf(path, sizeof path, "%s/best.h5", t->folder.ckpt_dir);
    return run_append_metrics(t->cfg->out, e) || (best && save(t, path)) ? -1 : 0;
}

/* The end of an epoch: validation, the next position, rank 0's decisions (schedule,
 * best, report, metrics row, best.h5) shared with every rank, the epoch's checkpoint. */
static int end_epoch(Trainer *t, long epoch, double epoch_t0, const StepTimes *tm) {
    EvalResult v;
    watchdog_phase(WD_EVAL);
    timeline_phase(&t->tl, TL_VALIDATION);
    if (evaluate_split(t->comm, t->model, t->data, SPLIT_VAL, t->cfg->mre_min_mass, &v, NULL)) return -1;
    EpochMetrics e = epoch_metrics(t, epoch, epoch_t0, tm, &v);
    /* the epoch is done: the next position is the next epoch's first step */
    t->state.epoch = epoch + 1;
    t->state.step_in_epoch = 0;
    t->state.epoch_loss_sum = t->state.epoch_samples = 0;
    watchdog_phase(WD_CHECKPOINT);
    timeline_phase(&t->tl, TL_CHECKPOINT);
    int failed = is_root(t) && end_epoch_on_root(t, epoch, &v, &e) != 0;
    if (comm_fail_together(t->comm, failed)) return -1;
    comm_bcast_bytes(t->comm, &t->state, sizeof t->state);  /* rank 0's schedule and best */
    return save_position(t);
}

/* Rank 0: the test result r into results.json, and said. */
static int write_results(Trainer *t, const EvalResult *r) {
    RunResults res = {.best_epoch = t->state.best_epoch, .best_val_mae = t->state.best_metric,
                      .epochs = t->state.epoch, .global_steps = t->state.global_step, .ranks = t->comm->size,
                      .train_time_s = t->state.elapsed_s + now() - t->t_start, .stopped_early = stopped_early(t)};
    report_results_fill(r, task_monitor(&t->task, r).name, t->state.best_metric, &res);
    int rc = run_write_results(t->cfg->out, &res);
    tensorboard_test(&t->tb, t->state.global_step, &res);
    report_test_line(&res, r);
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
    ck->task = t->task;
    ck->model = *model_config(t->model);
    ck->world_size = t->comm->size;
    ck->batch = t->cfg->batch;
    ck->accum = t->cfg->accum;
    ck->adam_step = t->adam.step;
    ck->adam = t->adam.hyper;
    const DatasetInfo *info = dataset_info(t->data);
    ck->n_scales = info->channels;
    memcpy(ck->scales, dataset_scales(t->data), sizeof(float) * info->channels);
    ck->inputs = *dataset_inputs(t->data);
    ck->zero_suppress = t->s.data_zero_suppress;
    ck->unbias = t->s.data_unbias;
    ck->mass_scale = info->mass_scale;
    ck->data = t->data_fp;
    ck->has_data = 1;
    resume_config_json(t->cfg, t->from.version ? &t->from : NULL, t->comm->size, ck->config_json,
                       sizeof ck->config_json);
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
    timeline_phase(&t->tl, TL_CHECKPOINT);
    int failed = 0;
    if (is_root(t)) {
        char path[4200];
        run_folder_checkpoint_path(&t->folder, t->state.global_step, path, sizeof path);
        failed = save(t, path) || run_folder_checkpointed(&t->folder, t->state.global_step, t->cfg->keep);
    }
    failed = comm_fail_together(t->comm, failed);
    timeline_phase(&t->tl, TL_NONE);
    return failed;
}

/* ---- the loop: epochs of steps ---- */

/* One epoch's steps. 0 at its end, EXIT_REQUEUE after an agreed stop (checkpoint
 * written), -1 on error. */
static int run_epoch(Trainer *t, long epoch, long steps, const Pace *pace, long *process_steps) {
    StepTimes tm = {.allreduces = t->comm->allreduces};
    double epoch_t0 = now();
    long first = t->state.step_in_epoch;
    int failed = dataset_begin_epoch(t->data, SPLIT_TRAIN, epoch, first * t->cfg->accum) ? -1 : 0;
    if (comm_fail_together(t->comm, failed)) return -1;
    for (long step = first; step < steps; step++) {
        int rc = train_step(t, epoch, step, &tm, process_steps);
        if (rc < 0) return -1;
        char note[64];  /* a classifier's last validation AUC */
        if (is_root(t))
            progress_line(pace, epoch, step + 1, steps, t->state.global_step,
                          t->state.epoch_loss_sum / fmax(t->state.epoch_samples, 1), last_lr(t),
                          report_progress_note(&t->last_val, note, sizeof note));
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
    if (!(a.flags & AGREE_STOP) || epoch + 1 >= t->cfg->epochs || stopped_early(t)) return 0;
    if (is_root(t))
        printf("e2e-train: stop requested: checkpoint written after epoch %ld; exiting with %d "
               "(requeue)\n", epoch + 1, EXIT_REQUEUE);
    return 1;
}

/* Load, then every epoch's steps with validation and checkpoints at its end (until
 * --epochs, or early stopping), then the best checkpoint on the test split. */
static int run(Trainer *t) {
    const TrainConfig *cfg = t->cfg;
    long steps;
    if (load(t, &steps)) return -1;
    t->t_start = now();
    Pace pace;
    pace_start(&pace, t->state.global_step, steps, cfg->epochs, cfg->log_every, global_batch(t));
    long process_steps = 0;
    int rc = 0;
    for (long epoch = t->state.epoch; !rc && epoch < cfg->epochs && !stopped_early(t); epoch++) {
        rc = run_epoch(t, epoch, steps, &pace, &process_steps);
        if (!rc && stop_after_epoch(t, epoch)) rc = EXIT_REQUEUE;
    }
    if (rc >= 0) timeline_finish(&t->tl, t->comm);
    return rc ? rc : final_test(t);
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
    tensorboard_close(&t.tb);
    timeline_free(&t.tl);
    session_close(&t.s);
    run_folder_close(&t.folder);
    fflush(stdout);
    return rc < 0 ? 1 : rc;
}

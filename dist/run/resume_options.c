/* What a resumed run takes from its checkpoint and what from the command line: the
 * configuration in force, and the report said once (resume_options.h). */
#include "resume_options.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "run_files.h"

static void add(char *out, size_t size, const char *item) {
    size_t used = strlen(out);
    if (used + 1 < size) snprintf(out + used, size - used, "%s%s", used ? ", " : "", item);
}

static int differs(double a, double b) { return fabs(a - b) > 1e-9 * fmax(fabs(a), fabs(b)); }

/* one fixed option: given with another value -> "ignored" */
static void fixed(char *ignored, size_t size, const TrainConfig *cfg, unsigned flag, const char *opt,
                  double given, double kept) {
    char item[128];
    if (!(cfg->given & flag) || !differs(given, kept)) return;
    snprintf(item, sizeof item, "%s %g (the checkpoint's: %g)", opt, given, kept);
    add(ignored, size, item);
}

static const char *unbias_name(int u) {
    return u == DATA_UNBIAS_NONE ? "none" : u == DATA_UNBIAS_CLASSES ? "class weights (--balance)" : "weights";
}

static void report_fixed(const TrainConfig *cfg, const CheckpointState *st) {
    const LrSchedule *lr = &st->train.lr;
    const PlateauConfig *p = &lr->plateau.cfg;
    char ignored[4096] = "";
    int v1 = st->version < 2;
    char task[128];
    printf("e2e-train: the checkpoint fixes: the task (%s), seed %llu, the learning-rate schedule (%sbase %g, scaled %g, warm-up "
           "%ld steps; plateau %s, factor %g, patience %d, threshold %g %s, cooldown %d, min %g; rate now %g), "
           "weight decay %g, zero-suppress %g, unbias %s, blocks %d, the preprocessing scales\n",
           task_describe(&st->task, task, sizeof task), (unsigned long long)st->train.seed,
           v1 ? "from the command line, as version 1 stored neither: " : "",
           lr->base, lr->scaled, lr->warmup_steps, p->mode_max ? "max" : "min", p->factor, p->patience,
           p->threshold, p->threshold_abs ? "abs" : "rel", p->cooldown, p->min_lr, lr->plateau.lr,
           st->adam.weight_decay, st->zero_suppress, unbias_name(st->unbias), st->model.blocks);
    fixed(ignored, sizeof ignored, cfg, GIVEN_SEED, "--seed", (double)cfg->seed, (double)st->train.seed);
    if (!v1) {
        fixed(ignored, sizeof ignored, cfg, GIVEN_LR, "--lr", cfg->lr, lr->base);
        fixed(ignored, sizeof ignored, cfg, GIVEN_LR_SCALING, "--lr-scaling (1: linear)", cfg->lr_scaling,
              differs(lr->scaled, lr->base));
        fixed(ignored, sizeof ignored, cfg, GIVEN_WARMUP, "--warmup-steps", (double)cfg->warmup_steps,
              (double)lr->warmup_steps);
    }
    const PlateauConfig *q = &cfg->plateau;
    if ((cfg->given & GIVEN_PLATEAU) &&
        (q->mode_max != p->mode_max || differs(q->factor, p->factor) || q->patience != p->patience ||
         differs(q->threshold, p->threshold) || q->threshold_abs != p->threshold_abs ||
         q->cooldown != p->cooldown || differs(q->min_lr, p->min_lr)))
        add(ignored, sizeof ignored, "the --plateau-* and --min-lr options (the checkpoint's plateau continues)");
    fixed(ignored, sizeof ignored, cfg, GIVEN_WEIGHT_DECAY, "--weight-decay", cfg->weight_decay, st->adam.weight_decay);
    fixed(ignored, sizeof ignored, cfg, GIVEN_ZERO_SUPPRESS, "--zero-suppress", cfg->zero_suppress, st->zero_suppress);
    fixed(ignored, sizeof ignored, cfg, GIVEN_UNBIAS, "--unbias (0: none, 1: weights)", cfg->unbias, st->unbias);
    fixed(ignored, sizeof ignored, cfg, GIVEN_BLOCKS, "--blocks", cfg->blocks, st->model.blocks);
    fixed(ignored, sizeof ignored, cfg, GIVEN_MONITOR, "--monitor (1: loss, 0: auc)", cfg->task.monitor_loss,
          st->task.monitor_loss);
    if (ignored[0]) printf("e2e-train: ignored on resume (the checkpoint's values are kept): %s\n", ignored);
}

/* the options a resumed run takes from the command line, where they differ from the run's */
static void report_changed(const TrainConfig *cfg, const CheckpointState *st, int ranks) {
    const char *json = st->config_json;
    char changed[8192] = "", item[4400], was[4096];
    double v;
    struct { const char *key, *opt; double now; } nums[] = {
        {"epochs", "--epochs", cfg->epochs}, {"batch_per_rank", "--batch", cfg->batch},
        {"ranks", "ranks", ranks}, {"threads", "--threads", cfg->threads},
        {"prefetch", "--prefetch", cfg->prefetch}, {"keep", "--keep", cfg->keep},
        {"check_replicas", "--check-replicas", cfg->check_replicas},
        {"mre_min_mass", "--mre-min-mass", cfg->mre_min_mass}, {"watchdog_s", "--watchdog", cfg->watchdog_s},
        {"peer_timeout_s", "--peer-timeout", cfg->peer_timeout_s}, {"accum", "--accum", cfg->accum},
        {"early_stop_patience", "--early-stop", cfg->early_stop.patience},
        {"early_stop_min_delta", "--early-stop-min-delta", cfg->early_stop.min_delta}};
    for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
        if (run_json_number(json, nums[i].key, &v) == 0 && differs(v, nums[i].now)) {
            snprintf(item, sizeof item, "%s %g (the run had %g)", nums[i].opt, nums[i].now, v);
            add(changed, sizeof changed, item);
        }
    struct { const char *key, *opt, *now; } texts[] = {
        {"device", "--device", cfg->device}, {"precision", "--precision", cfg->precision},
        {"nan_policy", "--nan-policy", cfg->nan_skip ? "skip" : "stop"}, {"data", "--data", cfg->data}};
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++)
        if (run_json_text(json, texts[i].key, was, sizeof was) == 0 && strcmp(was, texts[i].now)) {
            snprintf(item, sizeof item, "%s %s (the run had %s)", texts[i].opt, texts[i].now, was);
            add(changed, sizeof changed, item);
        }
    printf("e2e-train: from the command line: %s\n", changed[0] ? changed : "the same options as the run's");
}

int resume_check_task(const TrainConfig *cfg, const CheckpointState *st, const char *path) {
    if (!(cfg->given & GIVEN_TASK) || task_same(&cfg->task, &st->task)) return 0;
    char was[128], asked[128];
    return e2e_fail("%s holds a model trained for %s, but the command line asks for %s: a resumed run continues "
                    "its checkpoint's task; start a new run (another --out) for another", path,
                    task_describe(&st->task, was, sizeof was), task_describe(&cfg->task, asked, sizeof asked));
}

/* a float as the shortest decimal that reads back as it (0.1f: 0.1, not 0.100000001) */
static double as_float(float v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.7g", (double)v);
    return strtod(buf, NULL);
}

void resume_options_in_force(const TrainConfig *cfg, const CheckpointState *from, TrainConfig *out) {
    *out = *cfg;
    if (!from) return;
    const LrSchedule *lr = &from->train.lr;
    out->seed = from->train.seed;
    out->lr = lr->base;
    out->lr_scaling = differs(lr->scaled, lr->base);
    out->warmup_steps = lr->warmup_steps;
    out->plateau = lr->plateau.cfg;
    out->weight_decay = as_float(from->adam.weight_decay);
    if (from->zero_suppress >= 0) out->zero_suppress = from->zero_suppress; /* older checkpoints: the options' */
    if (from->unbias >= 0) out->unbias = from->unbias;
    out->blocks = from->model.blocks;
}

int resume_config_json(const TrainConfig *cfg, const CheckpointState *from, int ranks, char *out, size_t size) {
    TrainConfig now;
    resume_options_in_force(cfg, from, &now);
    return train_config_json(&now, ranks, out, size);
}

void resume_options_report(const TrainConfig *cfg, const CheckpointState *st, int ranks) {
    report_fixed(cfg, st);
    report_changed(cfg, st, ranks);
    fflush(stdout);
}

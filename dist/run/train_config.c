/* e2e-train's resolved options (train_config.h): defaults, checks, the JSON record. */
#include "train_config.h"

#include <stdio.h>
#include <string.h>

#include "dataset.h"
#include "error.h"
#include "run_files.h"
#include "watchdog.h"

void train_config_defaults(TrainConfig *c) {
    memset(c, 0, sizeof *c);
    c->task = task_regression();
    c->device = "cpu";
    c->precision = "fp32";
    c->epochs = 25;
    c->batch = 32;
    c->accum = 1;
    c->tensorboard = -1;
    c->trace_first = c->trace_end = -1;
    c->lr = 1e-3;
    c->seed = 1;
    c->plateau = plateau_default_config();
    c->mre_min_mass = 85.0;
    c->zero_suppress = 1e-5f;
    c->unbias = -1;  /* data/'s default */
    c->prefetch = 2;
    c->keep = 3;
    c->blocks = 3;
    c->watchdog_s = WATCHDOG_DEFAULT_S;
    c->peer_timeout_s = PEER_TIMEOUT_DEFAULT_S;
}

int train_config_check(const TrainConfig *c) {
    if (!c->data) return e2e_fail("no dataset given (--data FILE)");
    if (!c->out) return e2e_fail("no run folder given (--out DIR)");
    if (c->epochs <= 0) return e2e_fail("--epochs must be positive, got %d", c->epochs);
    if (c->batch <= 0) return e2e_fail("--batch must be positive, got %d", c->batch);
    if (c->accum <= 0) return e2e_fail("--accum must be positive, got %d", c->accum);
    if (c->early_stop.patience < 0 || !(c->early_stop.min_delta >= 0))
        return e2e_fail("--early-stop and --early-stop-min-delta must be >= 0");
    if (c->trace_first >= 0 && c->trace_end <= c->trace_first)
        return e2e_fail("--trace-steps A:B needs A < B (global steps, B excluded)");
    if (!(c->lr > 0)) return e2e_fail("--lr must be positive, got %g", c->lr);
    if (!(c->weight_decay >= 0)) return e2e_fail("--weight-decay must be >= 0, got %g", c->weight_decay);
    if (c->keep < 1) return e2e_fail("--keep must be at least 1, got %d", c->keep);
    if (c->warmup_steps < 0) return e2e_fail("--warmup-steps must be >= 0");
    if (c->overwrite && c->resume && strcmp(c->resume, "auto") == 0)
        return e2e_fail("--overwrite and --resume auto exclude each other (--overwrite starts the folder's run over)");
    if (!(c->watchdog_s >= 0)) return e2e_fail("--watchdog must be >= 0 seconds (0: off)");
    if (!(c->peer_timeout_s >= 0)) return e2e_fail("--peer-timeout must be >= 0 seconds (0: off)");
    if (c->check_replicas < 0 || c->log_every < 0 || c->prefetch < 0 || c->stop_after_steps < 0 ||
        c->cache_limit < 0)
        return e2e_fail("negative counts are not allowed");
    int classify = c->task.kind == TASK_CLASSIFICATION;
    if (c->unbias == DATA_UNBIAS_CLASSES && !classify)
        return e2e_fail("--balance weighs the classes of a classifier: it needs --task classification");
    if ((c->given & GIVEN_MONITOR) && !classify)
        return e2e_fail("--monitor is for --task classification (the regression follows the validation MAE)");
    if (classify && c->plateau.mode_max != task_monitor_mode_max(&c->task))
        return e2e_fail("--plateau-mode %s contradicts --monitor %s (%s is better)", c->plateau.mode_max ? "max" : "min",
                        c->task.monitor_loss ? "loss" : "auc", c->task.monitor_loss ? "a lower loss" : "a higher AUC");
    return plateau_check_config(&c->plateau);
}

int train_config_json(const TrainConfig *c, int ranks, char *out, size_t size) {
    char data[2048], dir[2048];
    run_json_string(c->data, data, sizeof data);
    run_json_string(c->out, dir, sizeof dir);
    int n = snprintf(out, size,
        "{\"data\": %s, \"out\": %s, \"device\": \"%s\", \"precision\": \"%s\", "
        "\"ranks\": %d, \"threads\": %d, \"epochs\": %d, \"batch_per_rank\": %d, "
        "\"global_batch\": %d, \"lr\": %.9g, \"weight_decay\": %.9g, \"seed\": %llu, "
        "\"lr_scaling\": \"%s\", \"warmup_steps\": %ld, "
        "\"plateau\": {\"mode\": \"%s\", \"factor\": %.9g, \"patience\": %d, "
        "\"threshold\": %.9g, \"threshold_mode\": \"%s\", \"cooldown\": %d, \"min_lr\": %.9g}, "
        "\"nan_policy\": \"%s\", \"mre_min_mass\": %.9g, \"zero_suppress\": %.9g, "
        "\"unbias\": %d, \"prefetch\": %d, \"cache\": \"%s\", \"cache_limit\": %lld, \"keep\": %d, "
        "\"check_replicas\": %d, \"blocks\": %d, \"watchdog_s\": %.9g, \"peer_timeout_s\": %.9g, "
        "\"accum\": %d, \"early_stop_patience\": %d, \"early_stop_min_delta\": %.9g}",
        data, dir, c->device, c->precision, ranks, c->threads, c->epochs, c->batch,
        c->batch * ranks * c->accum, c->lr, c->weight_decay, (unsigned long long)c->seed,
        c->lr_scaling ? "linear" : "none", c->warmup_steps, c->plateau.mode_max ? "max" : "min",
        c->plateau.factor, c->plateau.patience, c->plateau.threshold,
        c->plateau.threshold_abs ? "abs" : "rel", c->plateau.cooldown, c->plateau.min_lr,
        c->nan_skip ? "skip" : "stop", c->mre_min_mass, c->zero_suppress, c->unbias, c->prefetch,
        c->cache ? "memory" : "none", c->cache_limit, c->keep, c->check_replicas, c->blocks, c->watchdog_s,
        c->peer_timeout_s, c->accum, c->early_stop.patience, c->early_stop.min_delta);
    if (n > 0 && (size_t)n < size) { /* the task, before the closing brace */
        char label[2 * TASK_LABEL_MAX + 8];
        run_json_string(c->task.label, label, sizeof label);
        n += snprintf(out + n - 1, size - (size_t)n + 1, ", \"task\": \"%s\"%s%s%s%s}", task_name(&c->task),
                      c->task.kind ? ", \"label\": " : "", c->task.kind ? label : "",
                      c->task.kind ? ", \"monitor\": " : "", c->task.kind ? (c->task.monitor_loss ? "\"loss\"" : "\"auc\"") : "") - 1;
    }
    return n < 0 || (size_t)n >= size ? e2e_fail("configuration too long for JSON buffer") : 0;
}

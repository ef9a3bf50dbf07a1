/* The run folder's files, written by rank 0: config.json (the resolved options),
 * metrics.csv and metrics.jsonl (one row per epoch), results.json (the final test
 * metrics of the best checkpoint), checkpoints/. */
#ifndef E2E_DIST_RUN_FILES_H
#define E2E_DIST_RUN_FILES_H

#include <stddef.h>

/* One epoch's row. */
typedef struct {
    long epoch;              /* 1-based, as printed */
    double lr;
    double train_loss;       /* mean L1 loss of the epoch's training steps (scaled target) */
    double val_loss;         /* mean L1 loss on the validation split (scaled target) */
    double val_mae;          /* GeV */
    double val_mre;          /* over jets above the MRE mass cut */
    double epoch_s;          /* wall time of the epoch (training and validation) */
    double samples_per_s;    /* training samples over training time, all ranks */
    double data_wait_frac;   /* fractions of rank 0's training-step time: reading data, */
    double allreduce_frac;   /* the gradient all-reduce, */
    long skipped_steps;      /* steps skipped for a non-finite loss */
    double sync_wait_frac;   /* and the per-step agreement point (its latency plus waiting
                                for the slowest rank: load imbalance shows here) */
    long allreduces;         /* gradient all-reduces this epoch in this process (one per
                                optimizer step on 2 or more ranks; not in the files) */
    /* a classifier's (classify: train_loss and val_loss are then BCE; val_mae and val_mre
       are not written): its validation metrics over the whole split (class_metrics.h) */
    int classify;
    double val_accuracy, val_auc, val_rejection30, val_rejection50;
} EpochMetrics;

/* The run's outcome: the best epoch and the best checkpoint's test metrics. */
typedef struct {
    long best_epoch;
    double best_val_mae;     /* GeV */
    double test_loss, test_mae, test_mre;
    long long test_jets, mre_jets;
    long epochs, global_steps;
    int ranks;
    double train_time_s;
    int stopped_early;       /* early stopping ended the run after `epochs` epochs */
    /* a classifier's (classify): best_val is the best validation value of the metric named
       monitor (val_auc or val_loss; best_val_mae is not written), and its test metrics */
    int classify;
    const char *monitor;
    double best_val;
    double test_accuracy, test_auc, test_rejection30, test_rejection50;
    long long test_signal_jets;
} RunResults;

/* mkdir -p for dir and dir/checkpoints. */
int run_prepare(const char *dir);
int run_write_text(const char *dir, const char *name, const char *text);
/* results.json: r as one JSON object. */
int run_write_results(const char *dir, const RunResults *r);
/* Appends a row (writing the CSV header first when the file is new). */
int run_append_metrics(const char *dir, const EpochMetrics *e);
/* Drops rows of epochs >= first_epoch (a resumed run redoes them). */
int run_truncate_metrics(const char *dir, long first_epoch);
/* "hh:mm:ss" */
void run_format_duration(double seconds, char *out, size_t size);
/* A JSON number with printf format fmt, or null where v is not finite (a rejection of
 * infinity: no background jet passed); out holds at least 32 bytes. */
const char *run_json_number_text(double v, const char *fmt, char *out);
/* Quotes and escapes s as a JSON string into out. */
void run_json_string(const char *s, char *out, size_t size);
/* The number of the top-level "key": NUMBER of a flat JSON object written by
 * train_config_json: 0, or -1 when absent. */
int run_json_number(const char *json, const char *key, double *out);
/* Its string value ("key": "value", unescaped as far as run_json_string escapes). */
int run_json_text(const char *json, const char *key, char *out, size_t size);

#endif

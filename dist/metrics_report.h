/* What rank 0 says and records of an evaluation, by task: an epoch's line and its row of
 * metrics.csv/jsonl, the progress line's note (a classifier's last validation AUC), the
 * test line and the record of results.json. The trainer calls these; the numbers come
 * from evaluate.h. */
#ifndef E2E_DIST_METRICS_REPORT_H
#define E2E_DIST_METRICS_REPORT_H

#include <stddef.h>

#include "dataset.h"
#include "evaluate.h"
#include "run_files.h"

/* A classifier's data at the start of a run (stdout): "e2e-train: classes of the label 'y'
 * (signal 1 / background 0): train 1620 / 1980, ..."; nothing without a label. */
void report_classes(const DatasetInfo *info);
/* e's validation fields from v: MAE and MRE, or a classifier's metrics */
void report_epoch_fill(const EvalResult *v, EpochMetrics *e);
/* "epoch 3/25 done: train loss ...  val loss ...  val MAE ... (best) (timings, all-reduces)" */
void report_epoch_line(int epochs, const EvalResult *v, const EpochMetrics *e, int best);
/* "  val AUC 0.9123" after a classifier's first epoch; "" otherwise */
const char *report_progress_note(const EvalResult *last_val, char *buf, size_t size);
/* res's test fields from r; monitor names the metric best_val is of (a classifier's) */
void report_results_fill(const EvalResult *r, const char *monitor, double best_val, RunResults *res);
/* "test (best checkpoint checkpoints/best.h5, epoch 7[; stopped early after epoch 9]): ..." */
void report_test_line(const RunResults *res, const EvalResult *r);

#endif

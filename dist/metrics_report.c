/* An evaluation's report by task (metrics_report.h): the regression's MAE and MRE, or a
 * classifier's AUC, accuracy and background rejections. */
#include "metrics_report.h"

#include <stdio.h>

void report_classes(const DatasetInfo *info) {
    if (!info->label) return;
    const long long (*c)[2] = info->class_count;
    printf("e2e-train: classes of the label '%s' (signal 1 / background 0): train %lld / %lld, val %lld / %lld, test "
           "%lld / %lld", info->label, c[SPLIT_TRAIN][1], c[SPLIT_TRAIN][0], c[SPLIT_VAL][1], c[SPLIT_VAL][0],
           c[SPLIT_TEST][1], c[SPLIT_TEST][0]);
    if (info->weight_min != info->weight_max) printf("; loss weights %g .. %g", info->weight_min, info->weight_max);
    printf("\n");
}

void report_epoch_fill(const EvalResult *v, EpochMetrics *e) {
    e->classify = v->classify;
    e->val_loss = v->loss;
    e->val_mae = v->mae;
    e->val_mre = v->mre;
    e->val_accuracy = v->cls.accuracy;
    e->val_auc = v->cls.auc;
    e->val_rejection30 = v->cls.rejection30;
    e->val_rejection50 = v->cls.rejection50;
}

void report_epoch_line(int epochs, const EvalResult *v, const EpochMetrics *e, int best) {
    char metrics[256];
    if (v->classify)
        snprintf(metrics, sizeof metrics, "val AUC %.4f  accuracy %.4f  rejection %.1f at eps_s 0.3, %.1f at 0.5",
                 v->cls.auc, v->cls.accuracy, v->cls.rejection30, v->cls.rejection50);
    else
        snprintf(metrics, sizeof metrics, "val MAE %.2f GeV  val MRE %.4f", v->mae, v->mre);
    printf("epoch %ld/%d done: train loss %.5f  val loss %.5f  %s%s  (%.1f s, %.1f samples/s, data wait %.1f%%, "
           "all-reduce %.1f%%, sync %.1f%%, %ld all-reduces)\n",
           e->epoch, epochs, e->train_loss, v->loss, metrics, best ? "  (best)" : "", e->epoch_s, e->samples_per_s,
           100 * e->data_wait_frac, 100 * e->allreduce_frac, 100 * e->sync_wait_frac, e->allreduces);
    fflush(stdout);
}

const char *report_progress_note(const EvalResult *last_val, char *buf, size_t size) {
    if (last_val->classify && last_val->count > 0) snprintf(buf, size, "  val AUC %.4f", last_val->cls.auc);
    else if (size) buf[0] = '\0';
    return buf;
}

void report_results_fill(const EvalResult *r, const char *monitor, double best_val, RunResults *res) {
    res->test_loss = r->loss;
    res->test_mae = r->mae;
    res->test_mre = r->mre;
    res->test_jets = r->count;
    res->mre_jets = r->mre_count;
    res->classify = r->classify;
    res->monitor = monitor;
    res->best_val = best_val;
    res->test_accuracy = r->cls.accuracy;
    res->test_auc = r->cls.auc;
    res->test_rejection30 = r->cls.rejection30;
    res->test_rejection50 = r->cls.rejection50;
    res->test_signal_jets = r->cls.n_signal;
}

void report_test_line(const RunResults *res, const EvalResult *r) {
    char stopped[64] = "";
    if (res->stopped_early) snprintf(stopped, sizeof stopped, "; stopped early after epoch %ld", res->epochs);
    printf("test (best checkpoint checkpoints/best.h5, epoch %ld%s): loss %.5f  ", res->best_epoch, stopped, r->loss);
    if (r->classify)
        printf("AUC %.4f  accuracy %.4f  rejection %.1f at eps_s 0.3, %.1f at 0.5  on %lld jets (%lld signal)\n",
               r->cls.auc, r->cls.accuracy, r->cls.rejection30, r->cls.rejection50, r->count, r->cls.n_signal);
    else
        printf("MAE %.2f GeV  MRE %.4f  on %lld jets\n", r->mae, r->mre, r->count);
}

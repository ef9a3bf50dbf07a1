/* A classifier's metrics (class_metrics.h): the jets sorted by logit, the ROC curve taken
 * over groups of equal logits (a tie between the classes is a diagonal step, which is
 * what gives it half a count in the AUC), the working points interpolated on it. */
#include "class_metrics.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"

typedef struct {
    float logit;
    float label;
} Jet;

static int by_logit_down(const void *a, const void *b) {
    float x = ((const Jet *)a)->logit, y = ((const Jet *)b)->logit;
    return (x < y) - (x > y);
}

double class_bce(double x, double t) { return (x > 0 ? x : 0.0) - x * t + log1p(exp(-fabs(x))); }

/* The ROC curve's points: after each group of equal logits, from the highest, the
 * cumulated signal (tp) and background (fp) counts; returns the number of points (the
 * first is (0, 0)). jets is sorted here. */
static long long roc_points(Jet *jets, long long n, double *tp, double *fp) {
    qsort(jets, (size_t)n, sizeof *jets, by_logit_down);
    long long k = 0;
    double t = 0.0, f = 0.0;
    tp[0] = fp[0] = 0.0;
    for (long long i = 0; i < n; i++) {
        if (jets[i].label != 0.0f) t += 1.0;
        else f += 1.0;
        if (i + 1 == n || jets[i + 1].logit != jets[i].logit) k++, tp[k] = t, fp[k] = f;
    }
    return k + 1;
}

/* eps_b where the curve first reaches eps_s = e, linear inside the segment that crosses it */
static double eps_b_at(const double *tpr, const double *fpr, long long points, double e) {
    for (long long k = 1; k < points; k++)
        if (tpr[k] >= e) return fpr[k - 1] + (e - tpr[k - 1]) * (fpr[k] - fpr[k - 1]) / (tpr[k] - tpr[k - 1]);
    return fpr[points - 1];
}

/* the jets as (logit, label) pairs, or NULL */
static Jet *pairs(const float *logit, const float *label, long long n) {
    Jet *j = malloc(sizeof *j * (size_t)(n ? n : 1));
    for (long long i = 0; j && i < n; i++) j[i] = (Jet){logit[i], label[i]};
    return j;
}

double *class_roc(const float *logit, const float *label, long long n, double **eps_b, long long *points) {
    Jet *j = pairs(logit, label, n);
    double *tp = malloc(sizeof(double) * (size_t)(n + 1)), *fp = malloc(sizeof(double) * (size_t)(n + 1));
    *eps_b = NULL;
    if (!j || !tp || !fp) {
        free(j), free(tp), free(fp);
        return NULL;
    }
    *points = roc_points(j, n, tp, fp);
    double P = tp[*points - 1], N = fp[*points - 1];
    for (long long k = 0; k < *points; k++) tp[k] = P > 0 ? tp[k] / P : 0.0, fp[k] = N > 0 ? fp[k] / N : 0.0;
    free(j);
    *eps_b = fp;
    return tp;
}

int class_metrics(const float *logit, const float *label, long long n, ClassMetrics *out) {
    *out = (ClassMetrics){.n = n};
    double loss = 0.0, right = 0.0;
    for (long long i = 0; i < n; i++) {
        if (isnan(logit[i])) return e2e_fail("jet %lld of %lld has a NaN logit: no metrics", i, n);
        out->n_signal += label[i] != 0.0f;
        loss += class_bce(logit[i], label[i]);
        right += (logit[i] > 0.0f) == (label[i] != 0.0f);
    }
    out->loss = n ? loss / (double)n : NAN;
    out->accuracy = n ? right / (double)n : NAN;
    out->auc = out->rejection30 = out->rejection50 = NAN;
    if (out->n_signal == 0 || out->n_signal == n) return 0;  /* one class: no ROC curve */
    double *fpr, *tpr = NULL;
    long long points;
    if (!(tpr = class_roc(logit, label, n, &fpr, &points))) return e2e_fail("out of memory for %lld jets' ROC curve", n);
    double auc = 0.0;
    for (long long k = 1; k < points; k++) auc += (fpr[k] - fpr[k - 1]) * (tpr[k] + tpr[k - 1]) / 2.0;
    double b30 = eps_b_at(tpr, fpr, points, 0.3), b50 = eps_b_at(tpr, fpr, points, 0.5);
    out->auc = auc;
    out->rejection30 = b30 > 0 ? 1.0 / b30 : INFINITY;
    out->rejection50 = b50 > 0 ? 1.0 / b50 : INFINITY;
    free(tpr), free(fpr);
    return 0;
}

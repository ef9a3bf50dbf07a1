/* A binary classifier's metrics over a whole split, computed exactly from every jet's
 * logit and label (evaluate.c gathers them to rank 0): the mean binary cross-entropy, the
 * accuracy at a score of 0.5, the ROC AUC with ties counted as scikit-learn's
 * roc_auc_score counts them, and the background rejection 1/eps_b at signal efficiencies
 * 0.3 and 0.5 (the HEP convention). Pure functions: no MPI. */
#ifndef E2E_DIST_CLASS_METRICS_H
#define E2E_DIST_CLASS_METRICS_H

typedef struct {
    double loss;         /* mean BCE of sigmoid(logit) against the label (unweighted) */
    double accuracy;     /* the share of jets whose class is "score > 0.5" (logit > 0) */
    double auc;          /* ROC AUC: the chance that a signal jet scores above a background
                            one, ties counted one half (scikit-learn's trapezoids) */
    double rejection30;  /* 1 / eps_b at eps_s = 0.3 on the ROC curve (its points are every */
    double rejection50;  /* distinct score; linear between them), and at 0.5; INFINITY where
                            eps_b is 0 there */
    long long n, n_signal;
} ClassMetrics;

/* The metrics of n jets (logit[i] the model's output, label[i] 0 or 1). Jets are ranked by
 * their logit, which orders them as the score does (without the ties float rounding of
 * the score makes above logit 17). Jets of one class only (or none) have no ROC curve:
 * their auc and rejections are NaN (the loss and accuracy are computed). 0, or -1 with a
 * message on a NaN logit or when memory runs out. */
int class_metrics(const float *logit, const float *label, long long n, ClassMetrics *out);
/* The signal efficiency eps_s and the background efficiency eps_b of the ROC curve after
 * each distinct logit, from the highest (point 0 is (0, 0)); *points gets their count.
 * The arrays are malloc'd ((n + 1) each); NULL when memory runs out. For the plots. */
double *class_roc(const float *logit, const float *label, long long n, double **eps_b, long long *points);
/* The BCE of one logit x against label t, stable for any x (as the loss op computes it) */
double class_bce(double x, double t);

#endif

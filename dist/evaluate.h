/* Evaluation of a split, sharded over the ranks: each rank predicts its own share. The
 * regression's sums meet at an agreement point (so a rank that failed is known to all,
 * and no collective waits for it); a classifier's logits and labels are gathered to rank
 * 0, whose exact metrics over the whole split (class_metrics.h) every rank then gets.
 * Used for validation every epoch, the final test, and e2e-eval. */
#ifndef E2E_DIST_EVALUATE_H
#define E2E_DIST_EVALUATE_H

#include "class_metrics.h"
#include "comm.h"
#include "dataset.h"
#include "model.h"
#include "predictions.h"

typedef struct {
    double loss;        /* regression: mean |pred - target| on the scaled target; a
                           classifier: mean BCE (both unweighted) */
    double mae;         /* regression: mean |m_pred - m_true|, GeV */
    double mre;         /* regression: mean |m_pred - m_true| / m_true over jets with m_true > cut */
    long long count, mre_count;
    int classify;       /* 1: the model is a classifier (MODEL_LOSS_BCE): cls holds its metrics */
    ClassMetrics cls;
} EvalResult;

/* Runs split s of d on this rank's share; all ranks get the result. The model's loss says
 * what it predicts: a mass (predictions become masses with the dataset's own mass scale,
 * DatasetInfo.mass_scale) or a classifier's logit (the dataset's label is the truth).
 * preds may be NULL; else it gets this rank's predictions. Returns 0, or -1 on every rank
 * with the failing rank's message in e2e_error(). */
int evaluate_split(Comm *c, Model *m, Dataset *d, Split s, double mre_min_mass, EvalResult *out,
                   Predictions *preds);

#endif

/* Evaluation of a split, sharded over the ranks: each rank predicts its own share and
 * the sums meet at an agreement point (so a rank that failed is known to all, and no
 * collective waits for it). Used for validation every epoch, the final test, and
 * e2e-eval. */
#ifndef E2E_DIST_EVALUATE_H
#define E2E_DIST_EVALUATE_H

#include "comm.h"
#include "dataset.h"
#include "model.h"

typedef struct {
    double loss;        /* mean |pred - target| on the scaled target (unweighted) */
    double mae;         /* mean |m_pred - m_true|, GeV */
    double mre;         /* mean |m_pred - m_true| / m_true over jets with m_true > cut */
    long long count, mre_count;
} EvalResult;

/* Per-rank predictions kept for a prediction file (e2e-eval). */
typedef struct {
    long long n, cap;
    long long *index;
    float *m_true, *m_pred;
} Predictions;

/* Runs split s of d on this rank's share; all ranks get the result. Predictions become
 * masses with the dataset's own mass scale (DatasetInfo.mass_scale). preds may be NULL.
 * Returns 0, or -1 on every rank with the failing rank's message in e2e_error(). */
int evaluate_split(Comm *c, Model *m, Dataset *d, Split s, double mre_min_mass, EvalResult *out,
                   Predictions *preds);
/* The root attribute "format" of a prediction file. */
#define PREDICTIONS_FORMAT "e2e-ddp predictions"

/* Gathers every rank's predictions on rank 0 and writes them there as HDF5 datasets
 * index (int64), m_true, m_pred (float32, GeV), sorted by index, with the attribute
 * format = PREDICTIONS_FORMAT; written whole (net/base/outfile.h): a failed write leaves no
 * file and the previous one, if any, as it was. Collective. */
int predictions_write(Comm *c, const Predictions *p, const char *path);
void predictions_free(Predictions *p);
/* 1 when path may be replaced by a prediction file: it does not exist, or it is one
 * (its format attribute, or an older one's index, m_true, m_pred); else 0 with the
 * reason in e2e_error() (a checkpoint, a jet file, anything else). */
int predictions_replaceable(const char *path);

#endif

/* The unbiasing weights (data/README.md: weights, not resampling): one weight a mass
 * bin, from the training split's masses, that every batch of every split carries for
 * its jets. Internal to the reader; the arithmetic is preprocess.h's
 * unbias_bin_weights. */
#ifndef E2E_DATA_UNBIAS_H
#define E2E_DATA_UNBIAS_H

#include "dataset.h"

typedef struct {
    float *bin;      /* [bins]: the weight of each mass bin; NULL: no weights */
    int bins;
    float lo, hi;    /* the bins cover [lo, hi) GeV; masses outside go to the edge bins */
} Weights;

/* The weights of o's bins (unbias_bins, unbias_min, unbias_max, capped at
 * unbias_max_weight) from the masses m[train_rows[0..n)]; info gets weight_min,
 * weight_max (over the non-empty bins) and weight_capped_bins. Local result. */
int weights_make(Weights *w, const float *m, const long long *train_rows, long long n, const DatasetOptions *o,
                 DatasetInfo *info);
void weights_free(Weights *w);
/* the weight of a jet of this mass (w->bin not NULL) */
float weights_of(const Weights *w, float mass);

#endif

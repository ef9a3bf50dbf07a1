/* The unbiasing weights (data/README.md: weights, not resampling): one weight a mass
 * bin, from the training split's masses, that every batch of every split carries for
 * its jets; or, for a classifier (--balance), one weight a class, from the training
 * split's class counts. Internal to the reader; the arithmetic of the mass bins is
 * preprocess.h's unbias_bin_weights. */
#ifndef E2E_DATA_UNBIAS_H
#define E2E_DATA_UNBIAS_H

#include "dataset.h"

typedef struct {
    float *bin;      /* [bins]: the weight of each mass bin (or class); NULL: no weights */
    int bins;
    float lo, hi;    /* the bins cover [lo, hi) GeV; masses outside go to the edge bins */
    int by_class;    /* 1: bin[c] is the weight of class c (bins 2), not of a mass bin */
} Weights;

/* The weights of o's bins (unbias_bins, unbias_min, unbias_max, capped at
 * unbias_max_weight) from the masses m[train_rows[0..n)]; info gets weight_min,
 * weight_max (over the non-empty bins) and weight_capped_bins. Local result. */
int weights_make(Weights *w, const float *m, const long long *train_rows, long long n, const DatasetOptions *o,
                 DatasetInfo *info);
/* The class weights (by_class): class c weighs n / (2 n_c), with count[c] the training
 * split's jets of class c and n their sum: both classes carry the same total weight and
 * the mean over the training split is 1. info gets weight_min and weight_max. */
int weights_make_classes(Weights *w, const long long count[2], const char *path, DatasetInfo *info);
void weights_free(Weights *w);
/* the weight of a jet of this mass and label (w->bin not NULL) */
float weights_of(const Weights *w, float mass, float label);

#endif

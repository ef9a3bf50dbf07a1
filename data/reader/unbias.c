/* The unbiasing weights (unbias.h): the training masses binned, each non-empty bin
 * weighted so that it carries the same total weight, capped, the mean kept at 1; or the
 * two classes weighted so that each carries half the weight. */
#include "unbias.h"

#include <math.h>
#include <stdlib.h>

#include "error.h"
#include "preprocess.h"

int weights_make(Weights *w, const float *m, const long long *train_rows, long long n, const DatasetOptions *o,
                 DatasetInfo *info) {
    const int K = o->unbias_bins;
    float *mass = malloc((size_t)(n ? n : 1) * sizeof *mass);
    *w = (Weights){.bin = malloc((size_t)K * sizeof *w->bin), .bins = K, .lo = o->unbias_min, .hi = o->unbias_max};
    if (!mass || !w->bin) {
        free(mass);
        return e2e_fail("%s: out of memory for the unbiasing weights", o->path);
    }
    for (long long i = 0; i < n; i++) mass[i] = m[train_rows[i]];
    int capped = unbias_bin_weights(mass, n, K, o->unbias_min, o->unbias_max, o->unbias_max_weight, w->bin);
    free(mass);
    if (capped < 0) return -1;
    info->weight_capped_bins = capped;
    info->weight_min = INFINITY;
    info->weight_max = 0.0f;
    for (int k = 0; k < K; k++)
        if (w->bin[k] > 0) {
            info->weight_min = fminf(info->weight_min, w->bin[k]);
            info->weight_max = fmaxf(info->weight_max, w->bin[k]);
        }
    return 0;
}

int weights_make_classes(Weights *w, const long long count[2], const char *path, DatasetInfo *info) {
    *w = (Weights){.bin = malloc(2 * sizeof *w->bin), .bins = 2, .by_class = 1};
    if (!w->bin) return e2e_fail("%s: out of memory for the class weights", path);
    const double n = (double)(count[0] + count[1]);
    for (int c = 0; c < 2; c++) w->bin[c] = count[c] ? (float)(n / (2.0 * (double)count[c])) : 0.0f;
    info->weight_min = fminf(w->bin[0], w->bin[1]);
    info->weight_max = fmaxf(w->bin[0], w->bin[1]);
    return 0;
}

void weights_free(Weights *w) {
    free(w->bin);
    w->bin = NULL;
}

float weights_of(const Weights *w, float mass, float label) {
    return w->by_class ? w->bin[label != 0.0f] : w->bin[unbias_bin(mass, w->bins, w->lo, w->hi)];
}

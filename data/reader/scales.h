/* The per-channel scales of the preprocessing: given (a resumed run's, checked) or from
 * the statistics pass over the training split at open (the scale_quantile quantile of
 * each channel's positive pixels, |x| for a signed channel), which also checks the
 * training images (NaN, empty images). Internal to the reader (data/README.md:
 * preprocessing, plausibility). */
#ifndef E2E_DATA_SCALES_H
#define E2E_DATA_SCALES_H

#include <mpi.h>

#include "batch.h"
#include "dataset.h"
#include "rows.h"
#include "split.h"

typedef struct {
    float *scale;    /* [C]: the scales in use */
    float *factor;   /* [C]: 1 / scale, the very floats the preprocessing multiplies by */
    InputPrep prep;  /* factor, zero suppression, the channels' kinds: what a batch that
                        the reader did not preprocess still needs (Batch.prep) */
} Scaling;

/* The caller's scales (o->scales) were made for as many channels as the dataset has
 * (o->n_scales, or 0: not said); 0 also when there are none. Local result. */
int scales_check_count(const DatasetOptions *o, int channels, const char *path);
/* The caller's scales, each positive and finite, copied into sc->scale. Local result. */
int scales_take_given(Scaling *sc, const DatasetOptions *o, int channels, const char *path);

/* Collective over comm: the statistics pass over this rank's training rows (about
 * o->scale_rows of them when set) into sc->scale; every image read is checked for NaN
 * and Inf (rows_reject_nonfinite) and counted empty or not (info->images_checked,
 * info->empty_images; a file of nothing but empty images is refused). Agreed. */
int scales_compute(Scaling *sc, DatasetInfo *info, const RowFiles *rf, const SplitRows *sp,
                   const DatasetOptions *o, MPI_Comm comm);

/* sc->factor and sc->prep from sc->scale */
void scales_finish(Scaling *sc, int channels, float zero_suppress, const unsigned char *kinds);

#endif

/* Preprocessing of jet images and targets, as pure functions: no MPI, no HDF5, no
 * threads, so a GPU path can link this alone (or replace preprocess_images with a
 * kernel and keep the statistics). See data/README.md for the choices. */
#ifndef E2E_DATA_PREPROCESS_H
#define E2E_DATA_PREPROCESS_H

#include <stddef.h>
#include <stdint.h>

#include "prep_pixel.h"

/* In place over x[n][channels][hw], every pixel through prep_pixel (prep_pixel.h) with
 * factor 1 / scales[c] and channel c's kind (kinds[c], a ChannelKind; kinds NULL: every
 * channel energy-like): y = x / s_c, zero-suppressed, clipped to [0, 1] (energy-like) or
 * [-1, 1] (signed). Non-finite inputs become 0 (NaN) or +-1 (Inf); the return value
 * counts them, so the caller can reject the batch. */
long long preprocess_images(float *x, long long n, int channels, long long hw,
                            const float *scales, const unsigned char *kinds, float zero_suppress);

/* 1 when every one of the n values is zero (of either sign): an empty image. */
int all_zero(const float *x, long long n);

/* The count of non-finite values in x[0..n), and the index of the first (or -1). */
long long count_nonfinite(const float *x, long long n, long long *first);

/* The scale statistic: the q-quantile of a channel's positive pixel values, from a
 * histogram whose bins are the float32 bit patterns with the low 16 bits dropped
 * (128 bins per octave, each 2^-7 of its lower edge wide: 0.39% to 0.78% of the value),
 * so statistics from any number of ranks add up exactly and the quantile does not
 * depend on how the data was divided. */
#define PIXEL_HIST_BINS 32768
typedef struct {
    int channels;
    uint64_t *count;      /* [channels][PIXEL_HIST_BINS], positive finite values (|x| of a
                             signed channel) */
    uint64_t *nonpos;     /* [channels]: values <= 0 (signed channels: zeros) */
    uint64_t *negative;   /* [channels]: of those, values < 0 (energy-like channels) */
    uint64_t nonfinite;   /* NaN / Inf seen */
    const unsigned char *kinds; /* [channels] ChannelKind, set by the caller after
                             pixel_hist_init; NULL: every
                             channel energy-like. A signed channel's statistic is over |x| */
} PixelHist;

int pixel_hist_init(PixelHist *h, int channels); /* 0, or -1 when out of memory */
void pixel_hist_free(PixelHist *h);
/* adds x[n][channels][hw] */
void pixel_hist_add(PixelHist *h, const float *x, long long n, long long hw);
/* adds n values of channel c (each by pixel_hist_add's rule) and `zeros` zero pixels:
 * pixel_hist_add of a dense row equals this over each channel's stored values with the
 * rest as zeros (sparse rows, data/format/sparse.h) */
void pixel_hist_add_values(PixelHist *h, int c, const float *v, long long n, long long zeros);
/* the q-quantile (0 < q <= 1) of channel c's positive values (of |x| for a signed
 * channel), interpolated inside the bin; 0 when the channel has no such value */
float pixel_hist_quantile(const PixelHist *h, int c, double q);
/* channel c's values in the bins at or above v (> 0), and the lower edge of its
 * highest non-empty bin (0 when it has none) */
uint64_t pixel_hist_above(const PixelHist *h, int c, float v, float *highest);
/* the values in channel c's bins (positive, or non-zero for a signed channel) */
uint64_t pixel_hist_kept(const PixelHist *h, int c);

/* Unbiasing by per-sample weights (data/README.md says why weights, not resampling).
 * Masses are binned in [lo, hi) with `bins` equal bins (masses outside go to the edge
 * bins). Bin k with n_k > 0 samples gets w_k = N / (K' n_k), K' the non-empty bins,
 * so every non-empty bin carries the same total weight and the mean weight is 1.
 * With max_weight > 0, weights are first capped at max_weight and then all scaled so
 * the mean over the samples stays exactly 1. Writes bin_weight[bins] (0 for empty
 * bins); returns the number of capped bins, or -1 (with a message) on bad arguments
 * or no samples. */
int unbias_bin_weights(const float *mass, long long n, int bins, float lo, float hi,
                       float max_weight, float *bin_weight);
int unbias_bin(float mass, int bins, float lo, float hi);

#endif

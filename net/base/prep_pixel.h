/* The preprocessing of one pixel: the one definition that the reader's preprocessing
 * (preprocess_images), a densify loop and the CUDA backend's input kernel all call, so
 * every path gives the same value bit for bit. Plain C with no dependency; compiled by
 * nvcc too (host and device). data/README.md ("Preprocessing") explains the choices. */
#ifndef E2E_DATA_PREP_PIXEL_H
#define E2E_DATA_PREP_PIXEL_H

#ifdef __CUDACC__
#define PREP_PIXEL_FN __host__ __device__ static inline
#else
#include <math.h>
#define PREP_PIXEL_FN static inline
#endif

/* What a channel holds (data/format/FORMAT.md, attribute channel_kinds). */
typedef enum {
    CHANNEL_ENERGY = 0, /* non-negative, energy-like (energies, track pT, hit charge) */
    CHANNEL_SIGNED = 1, /* either sign (the impact parameters dz, d0) */
} ChannelKind;

/* v = x * factor (factor = 1 / the channel's scale); then an energy-like channel: v = 0
 * where v < zero_suppress (negatives and NaN too), clipped to [0, 1]; a signed channel
 * (kind CHANNEL_SIGNED): v = 0 where |v| < zero_suppress (NaN too), clipped to [-1, 1],
 * its sign kept. Selects only, so the loops that call it vectorise; a loop over one
 * channel has a fixed kind, which the compiler takes out of the loop (the energy-like
 * version is then the few operations it always was). */
PREP_PIXEL_FN float prep_pixel(float x, float factor, int kind, float zero_suppress) {
    float v = x * factor;
    if (kind == CHANNEL_SIGNED) {
        v = fabsf(v) >= zero_suppress ? v : 0.0f; /* NaN fails the comparison: 0 */
        v = v > -1.0f ? v : -1.0f;
    } else {
        v = v >= zero_suppress ? v : 0.0f;
    }
    return v < 1.0f ? v : 1.0f;
}

#endif

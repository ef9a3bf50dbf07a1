/* The batch: the one type a batch has on its way from the reader (data/reader) through
 * the trainer (dist/) to the model (net/model.h), which takes it as it is. */
#ifndef E2E_BASE_BATCH_H
#define E2E_BASE_BATCH_H

#include <stdint.h>

/* A batch's images as their non-zero pixels (the sparse layout, data/format/FORMAT.md):
 * plane p = i * C + c (jet i of the batch, channel c) holds the entries
 * [plane_start[p], plane_start[p + 1]), each a position y * W + x inside the plane and a
 * value as stored; every other pixel is 0. plane_start == NULL: no sparse images. */
typedef struct {
    long long nnz;
    const uint32_t *plane_start;  /* n * C + 1 */
    const void *pos;              /* nnz uint16 (pos_bytes 2) or uint32 (pos_bytes 4) */
    const void *value;            /* nnz float32 (value_bytes 4) or IEEE binary16 (2) */
    int pos_bytes, value_bytes;
} SparseImages;

/* The preprocessing still to be done on the device (the reader's, prep_pixel.h): per
 * pixel of channel c, v = scale[c] * raw, then v = 0 where |v| < threshold, then clipped
 * to [0, 1] for an energy-like channel or [-1, 1] for a signed one. */
typedef struct {
    const float *scale;           /* C per-channel factors, host memory */
    float threshold;              /* zero suppression, applied after scaling */
    const unsigned char *kind;    /* C channel kinds (ChannelKind); NULL: all energy-like */
} InputPrep;

/* One batch of n jets. The images come as exactly one of x, x_half and sparse. The
 * fields after weight are optional: their zero value keeps the plain meaning. */
typedef struct {
    int n;
    const float *x;          /* (n, C, H, W) float32 NCHW, preprocessed unless prep is set */
    const float *scalars;    /* (n, S) per-jet scalars (each / its scale), or NULL: S = 0 */
    const float *target;     /* (n) the scaled target (m / mass_scale) */
    const float *weight;     /* (n) per-sample loss weights (unbiasing), or NULL */
    const float *mass;       /* (n) the true mass in GeV (metrics), or NULL */
    const long long *index;  /* (n) each jet's row in the dataset, or NULL */
    /* the images as stored, for a GPU backend to copy and preprocess (the CPU backend
       refuses them): */
    const uint16_t *x_half;  /* (n, C, H, W) IEEE binary16, half the bytes to copy */
    SparseImages sparse;     /* the non-zero pixels: a few KB a jet, densified on the device */
    const InputPrep *prep;   /* the preprocessing x, x_half or sparse still needs (NULL:
                                done by the reader) */
    int on_device;           /* 1: every pointer above is already in backend memory */
} Batch;

#endif

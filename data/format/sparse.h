/* One jet in the sparse layout (data/format/FORMAT.md, format version 2), as pure functions:
 * no MPI, no HDF5. A jet's C channel planes of H x W pixels are stored as the planes'
 * entry counts (counts[c]) and, plane after plane (channel-major), each non-zero
 * pixel's position p = y * W + x inside its plane (increasing) and its value as stored
 * (float32 or IEEE binary16). "Non-zero" means a bit pattern other than all zeros:
 * -0.0 is stored, so a dense row -> sparse -> dense comes back bit for bit. */
#ifndef E2E_DATA_SPARSE_H
#define E2E_DATA_SPARSE_H

#include <stddef.h>
#include <stdint.h>

#include "preprocess.h"

typedef struct {
    int channels;
    long long hw;     /* pixels per channel plane (H * W) */
    int pos_bytes;    /* 2: uint16 positions, 4: uint32 (sparse_pos_bytes) */
    int value_bytes;  /* 4: float32, 2: binary16 */
} SparseGeom;

/* The position width of the format: uint16 when every position of a plane of hw
 * pixels fits (hw <= 65536), else uint32. */
int sparse_pos_bytes(long long hw);

/* A stored dense row (C planes of hw values of value_bytes each) into counts[C] and
 * the entries pos[], value[] (room for C * hw entries in the worst case). Returns the
 * number of entries. */
long long sparse_encode(const SparseGeom *g, const void *row, uint32_t *counts, void *pos, void *value);

/* The entries sparse_encode would give the row (its pixels whose bits are not all
 * zero), without writing them: for the writers' estimate of a file's size. */
long long sparse_count_entries(const SparseGeom *g, const void *row);

/* The inverse: the stored dense row (value_bytes per pixel) from the entries, bit for
 * bit, every other pixel +0.0. The entries must have passed sparse_check. */
void sparse_decode(const SparseGeom *g, const uint32_t *counts, const void *pos, const void *value,
                   void *row);

/* Whether a jet's entries can be placed: every position below hw and increasing
 * inside its plane. 0, or -1 with the plane (*channel), the entry inside the jet
 * (*entry) and what is wrong (*why, a static string). */
int sparse_check(const SparseGeom *g, const uint32_t *counts, const void *pos, int *channel,
                 long long *entry, const char **why);

/* The entries of one jet into a float32 row out[C][hw] whose other pixels are already
 * 0 (the caller zeroes them, or only the pixels a previous call wrote: see touched):
 * each value converted to float32 and, when factors is not NULL, put through
 * prep_pixel(v, factors[c], kinds[c], zero_suppress) (prep_pixel.h; kinds NULL: every
 * channel energy-like), the dense path's rule. prep_pixel maps 0 to 0, so this equals
 * preprocess_images over the dense row (factors = 1 / scales) bit for bit. touched (or
 * NULL) receives touched_base + c * hw + p for every entry written. Returns the count
 * of non-finite values (the reader rejects such rows). */
long long sparse_densify(const SparseGeom *g, const uint32_t *counts, const void *pos, const void *value,
                         const float *factors, const unsigned char *kinds, float zero_suppress, float *out,
                         uint32_t *touched, uint32_t touched_base);

/* A jet's values into the scale statistic's histogram (h->kinds honoured), equal to
 * pixel_hist_add of its dense row. scratch holds the largest count's floats. */
void sparse_hist_add(PixelHist *h, const SparseGeom *g, const uint32_t *counts, const void *value,
                     float *scratch);

#endif

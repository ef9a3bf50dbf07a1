/* Filling a slot with one batch: the rows' images read (dense rows preprocessed a run
 * at a time while in cache, float16 rows kept as stored with x_half, rows of sparse
 * files densified with the preprocessing fused or kept as entries with x_sparse), each
 * row checked for NaN and Inf (refused, naming the file and the row), and the jets'
 * scalars, targets (m / mass_scale, or the class label), weights, masses and indices.
 * Rank-local, no MPI; no HDF5 where the files are read raw (the prefetch thread runs it).
 * Internal to the reader. */
#ifndef E2E_DATA_BATCH_FILL_H
#define E2E_DATA_BATCH_FILL_H

#include "columns.h"
#include "dataset.h"
#include "rows.h"
#include "scales.h"
#include "slots.h"
#include "unbias.h"

/* Where a batch comes from and what it is made into, fixed at open. */
typedef struct {
    const RowFiles *rows;    /* the files */
    const Columns *cols;     /* the masses and the scalars of every row */
    const Weights *weights;  /* bin NULL: no weights */
    const Scaling *scaling;  /* the scales and factors, zero suppression, the kinds */
    const DatasetInfo *info; /* the images' shape and form (x_half, x_sparse, preprocessed) */
    int batch;               /* rows a batch (its buffers' size) */
    float mass_scale;        /* target = m / mass_scale */
} BatchFill;

/* Dataset rows rows[0..n) (n <= batch) into slot s. 0, or -1 with the message naming
 * the file (and the row) in e2e_error(). */
int batch_fill(const BatchFill *bf, Slot *s, const long long *rows, long long n);

#endif

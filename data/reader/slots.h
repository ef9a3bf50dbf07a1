/* A slot: the buffers one batch is read into and handed out from (the prefetch ring
 * holds prefetch + 1 of them): what they hold, their sizes, where the ones a device
 * copies from come from (the caller's allocator: pinned memory on a GPU), and the
 * Batch a filled slot gives the caller. Internal to the reader. */
#ifndef E2E_DATA_SLOTS_H
#define E2E_DATA_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "dataset.h"
#include "error.h"
#include "rows.h"
#include "split.h"

/* Rows of sparse files: their entries (x_sparse: the batch's own), the planes' starts
 * (x_sparse), the pixels of x they wrote (zeroed before the next fill, so x is never
 * cleared whole). */
typedef struct {
    char *pos, *value;
    uint32_t *plane_start;
    uint32_t *touched;      /* NULL where positions in a batch do not fit 32 bits */
    long long n_touched;
    int x_clean;            /* 1: x is 0 but at touched; 0: not known */
} SlotEntries;

typedef struct {
    int n;                  /* rows in the batch */
    float *x, *scalars, *target, *weight, *mass;
    long long *index;
    void *stage;            /* float16 rows before decoding; with x_half the batch's images */
    SparseImages sparse;    /* x_sparse: the batch's entries */
    SlotEntries ent;
    long long *lrows;       /* scratch: file rows */
    int state, rc;          /* the prefetch ring's (prefetch.h); the fill's result */
    char err[E2E_ERROR_LEN];
} Slot;

/* Where the buffers a device copies from come from (DatasetOptions.batch_alloc): NULL
 * alloc: malloc and free. */
typedef struct {
    void *(*alloc)(void *ctx, size_t bytes);
    void (*free)(void *ctx, void *p);
    void *ctx;
} BatchMemory;

/* What every slot is made for, fixed at open. */
typedef struct {
    const DatasetInfo *info; /* the images' shape and form: n_scalars, x_half, x_sparse, sparse_files */
    int batch;               /* rows a batch */
    int stage;               /* 1: dense float16 files among the files (a staging buffer) */
    long long entries;       /* sparse files: the most entries a batch of this rank's rows holds */
    BatchMemory mem;
} SlotSize;

/* The most entries a batch of `batch` of this rank's rows can hold (the sum of its
 * `batch` largest rows) into *entries; refused above 2^32. Local result. */
int slots_count_entries(long long *entries, const RowFiles *rf, const SplitRows *sp, int batch, const char *path);

/* A slot's buffers (out of memory: -1 with a message naming path); slot_free frees
 * what slot_alloc got, also after a failure. */
int slot_alloc(Slot *s, const SlotSize *z, const char *path);
void slot_free(Slot *s, const SlotSize *z);

/* The batch of a filled slot: its images as x, x_half or sparse (info), weight only
 * when `weighted`, prep NULL when the reader preprocessed. */
void slot_batch(const Slot *s, const DatasetInfo *info, int weighted, const InputPrep *prep, Batch *b);

#endif

/* The parallel per-rank reader of jet-image datasets (data/format/FORMAT.md): a deterministic
 * train/validation/test split, each rank's own slice of each split, a per-epoch
 * shuffle, preprocessed batches, and a prefetch thread. data/README.md explains the
 * choices (split by blocks, scale statistic, unbiasing weights, NaN policy, I/O, sparse
 * files, memory cache); data/reader/ holds one file a job (README.md lists them). */
#ifndef E2E_DATA_DATASET_H
#define E2E_DATA_DATASET_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"

typedef enum { SPLIT_TRAIN = 0, SPLIT_VAL = 1, SPLIT_TEST = 2 } Split;
#define DATA_SPLITS 3

typedef enum {
    DATA_UNBIAS_NONE = 0,
    DATA_UNBIAS_WEIGHTS = 1, /* per-sample weights that flatten the mass histogram */
    DATA_UNBIAS_CLASSES = 2, /* with a label: per-sample weights that give both classes the
                                same total weight (n / (2 n_class) over the training split) */
} DataUnbias;

typedef enum {
    DATA_IO_AUTO = 0,            /* raw reads where the file allows (unfiltered, whole-row
                                    chunks), else HDF5 independent reads */
    DATA_IO_HDF5 = 1,            /* H5Dread, independent, everywhere */
    DATA_IO_HDF5_COLLECTIVE = 2, /* H5Dread; collective in dataset_open's statistics pass
                                    (the only place every rank reads in step), independent
                                    in dataset_next */
} DataIo;

typedef enum {
    DATA_CACHE_NONE = 0,   /* batches are read from the files (the page cache) */
    DATA_CACHE_MEMORY = 1, /* the rank's rows of every split are read into memory once, at
                              open (sparse files only), and batches come from there */
} DataCache;

/* The options, by job; dataset_default_options fills the defaults. */
typedef struct {
    /* the data, the split, the batches (split.c) */
    const char *path;      /* HDF5 file, or a text file listing HDF5 files */
    MPI_Comm comm;         /* the reader dups it for its own use */
    uint64_t seed;         /* split + shuffling */
    double fractions[DATA_SPLITS]; /* train / validation / test: 0.90, 0.05, 0.05 */
    long long split_block; /* consecutive dataset rows assigned to a split together (0: 64);
                              the split depends on it, the seed and N only */
    int batch;             /* per-rank batch size */
    /* what a batch holds (batch_fill.c) */
    int preprocess;        /* 1: scale, zero-suppress, clip (default); 0: x as stored (a GPU
                              path preprocesses itself with dataset_prep_factors()) */
    float zero_suppress;   /* after scaling, values below it become 0 (default 1e-5) */
    float mass_scale;      /* target = m / mass_scale (MASS_SCALE_GEV of format.h: 500) */
    const char *label;     /* the column of class labels (0 or 1, any number type: a
                              classifier's target) or NULL: the target is m / mass_scale
                              (columns.c reads and checks it; dataset_open refuses a split
                              of one class unless one_class_ok). With a label the files
                              need no mass column m (info.has_mass); without one they do */
    int one_class_ok;      /* with a label: a split of one class is counted (info.class_count)
                              but not refused (evaluation of a file of one class) */
    int keep_half;         /* with preprocess = 0 and every file dense float16: batches carry
                              the stored binary16 values (x_half, half the bytes to move to a
                              GPU, no decoding on the CPU) instead of float32 x */
    int keep_sparse;       /* with preprocess = 0 and every file sparse (with one value
                              dtype): batches carry the stored entries (sparse: a few KB a
                              jet to move to a GPU, which densifies them) instead of x */
    /* the scales (scales.c) */
    const float *scales;   /* per-channel scales to use (a resumed run passes its stored
                              ones), or NULL: computed over the training split */
    int n_scales;          /* entries in scales (0: as many as the dataset's channels); a
                              dataset with another channel count is refused */
    const char *scales_from; /* where the scales come from, for that message ("checkpoint
                              runs/r1/best.h5"); NULL: "the given scales" */
    double scale_quantile; /* the scale statistic: this quantile of the channel's positive
                              pixels over the training split (0.999) */
    long long scale_rows;  /* 0: the whole training split; else about this many rows */
    /* the unbiasing weights (unbias.c) */
    int unbias;            /* DataUnbias (default DATA_UNBIAS_WEIGHTS) */
    int unbias_bins;       /* mass histogram for the weights: 50 bins over */
    float unbias_min, unbias_max; /* [0, 500) GeV */
    float unbias_max_weight; /* cap before renormalising (20); 0 = none */
    /* reading (rows.c, prefetch.c, memcache.c, slots.c) */
    int io;                /* DataIo (default DATA_IO_AUTO) */
    int prefetch;          /* batches read ahead by the prefetch thread (0 = read in the
                              caller); default 2 */
    int cache;             /* DataCache (default DATA_CACHE_NONE) */
    long long cache_limit; /* bytes the cache may take on a rank; 0: its share of the
                              node's available memory (90% of MemAvailable over the ranks
                              on the node) */
    /* Where the buffers a device copies a batch from live (x, x_half or sparse's arrays,
       scalars, target, weight): batch_alloc(batch_alloc_ctx, bytes) and batch_free(batch_alloc_ctx, p),
       or malloc/free when batch_alloc is NULL. A GPU path passes its pinned-memory
       allocator (NetOps.alloc_host): the host-to-device copy then goes straight from the
       batch, with no bounce through a staging buffer. Called from dataset_open and
       dataset_close only (the caller's thread); NULL from batch_alloc is reported as out
       of memory. */
    void *(*batch_alloc)(void *ctx, size_t bytes);
    void (*batch_free)(void *ctx, void *p);
    void *batch_alloc_ctx;
} DatasetOptions;

void dataset_default_options(DatasetOptions *o);

typedef struct {
    long long n_total;
    int channels, height, width;
    int n_scalars;            /* the model's per-jet scalars: what the files declare
                                 (data/format/FORMAT.md), 0 or more; by default 2: iphi/360, ieta/170 */
    const char *const *scalar_names; /* n_scalars: the datasets they come from, in order */
    const double *scalar_scales;     /* n_scalars: input k = dataset scalar_names[k] / scale */
    const unsigned char *channel_kinds; /* channels entries: ChannelKind (prep_pixel.h) */
    int dtype_bytes;          /* as stored: 4 float32, 2 float16 (the first file's) */
    int n_files;
    const char *const *channel_names; /* channels entries ("" where the file has none) */
    double pixel_size;        /* from the first file, 0 if absent */
    int raw_io;               /* 1: every file is read with raw reads (no HDF5 per batch) */
    int prefetch;             /* prefetch in effect (0 when reads go through HDF5, which
                                 is not thread-safe here: see data/README.md) */
    float weight_min, weight_max; /* unbiasing weights over non-empty bins (1, 1 if none) */
    int weight_capped_bins;   /* bins whose weight hit unbias_max_weight */
    int preprocessed;         /* batches are preprocessed (options.preprocess) */
    int x_half;               /* batches carry x_half, not x (options.keep_half took effect) */
    int sparse_files;         /* files in the sparse layout (format version 2) */
    int x_sparse;             /* batches carry sparse, not x (options.keep_sparse took effect) */
    long long sparse_batch_entries; /* x_sparse: the most entries a batch can hold */
    int cached;               /* the rank's rows are in memory (options.cache) */
    long long cache_bytes;    /* this rank's cache */
    float mass_scale;         /* target = m / mass_scale (options.mass_scale): a prediction
                                 times it is a mass in GeV */
    const char *label;        /* options.label: the target is this column's 0/1 class, or NULL */
    long long class_count[DATA_SPLITS][2]; /* with a label: the jets of class 0 and 1 in
                                 each split, all ranks */
    int has_mass;             /* 1: every file holds the mass m; 0: not all do (a classifier's
                                 files, options.label given): their rows' masses are NaN and
                                 batch.mass too; the mass unbiasing is refused */
    /* plausibility (data/README.md): each finding was a warning on rank 0 at open */
    long long negative_masses; /* jets with m < 0 */
    long long images_checked;  /* images the statistics pass read (0 when scales were given) */
    long long empty_images;    /* of those, images whose every pixel is zero */
} DatasetInfo;

/* dataset_next's batches are the Batch of net/base/batch.h (the model takes them as
 * they are): x preprocessed (scaled, zero-suppressed, clipped to [0,1], or [-1,1] for a
 * signed channel), or, with preprocess = 0, x as stored, x_half (info.x_half) or sparse
 * (info.x_sparse) with prep pointing at the reader's preprocessing; scalars each
 * declared scalar / its scale (by default iphi/360, ieta/170); target m / mass_scale, or
 * with a label the jet's class (0 or 1); weight the unbiasing weights (mean 1 over the
 * training split, NULL when unbias = none); mass m in GeV; index each jet's dataset row (files concatenated in list
 * order). Rows with NaN or Inf are rejected in every layout. */

typedef struct Dataset Dataset;

/* Collective: if any rank fails, ALL ranks return -1 with the lowest failing rank's
 * message (naming the file and the problem); never a hang. */
int dataset_open(Dataset **out, const DatasetOptions *o);
const DatasetInfo *dataset_info(const Dataset *d);
const char *dataset_split_name(Split s);                   /* "training", "validation", "test" */
long long dataset_split_total(const Dataset *d, Split s);  /* global size of the split */
long long dataset_split_local(const Dataset *d, Split s);  /* this rank's share */
/* this rank's rows of the split (dataset rows, in split order; the epoch order is a
 * permutation of them); *n gets dataset_split_local */
const long long *dataset_split_rows(const Dataset *d, Split s, long long *n);
/* TRAIN: identical on every rank (floor(min share / batch), the rest of each share is
 * left out of that epoch); VAL/TEST: this rank's ceil(local / batch), may differ */
long dataset_steps_per_epoch(const Dataset *d, Split s);
const float *dataset_scales(const Dataset *d);             /* the C scales in use */
const float *dataset_masses(const Dataset *d);             /* m of every row, dataset order */
const float *dataset_labels(const Dataset *d);             /* with options.label: every row's
                                                              class (0 or 1), dataset order;
                                                              NULL without */
const char *dataset_file_path(const Dataset *d, int i);    /* file i of info.n_files */
/* The preprocessing as numbers, for a path that does it itself (preprocess = 0): per
 * pixel of channel c, prep_pixel (prep_pixel.h) with factor[c] (= 1 / scale, the very
 * floats the reader multiplies by), *zero_suppress and the lowest value of the channel's
 * kind (info.channel_kinds). Equal bit for bit to the reader's own preprocessing. */
const float *dataset_prep_factors(const Dataset *d, float *zero_suppress);
/* What the files declare about the model's inputs (scalars, scales, channel kinds), for
 * a checkpoint to record (jet_inputs.h). */
const struct JetInputs *dataset_inputs(const Dataset *d);
/* Rank-local. TRAIN order is a pure function of (seed, epoch, rank count, rank);
 * VAL/TEST keep the split order (no shuffle). first_step > 0 starts where an
 * uninterrupted epoch would be at that step. Starts the prefetch thread. */
int dataset_begin_epoch(Dataset *d, Split s, long epoch, long first_step);
/* Rank-local, never collective: 1 = a batch (valid until the next call), 0 = end of
 * epoch, -1 = error (message in e2e_error(), naming the file and the problem) */
int dataset_next(Dataset *d, Batch *b);
void dataset_close(Dataset *d); /* collective */

#endif

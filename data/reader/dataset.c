/* The parallel per-rank reader (dataset.h; data/README.md explains the choices): open
 * and close, the public API, and the order of the pieces. dataset_open (collective):
 * the files (rows.c), the per-jet columns (columns.c), the split (split.c) and its
 * classes (labels.c), the sparse batch capacity and the memory cache (slots.c,
 * memcache.c), the scales (scales.c), the unbiasing weights (unbias.c), the batch
 * buffers (prefetch.c); every step that can fail
 * on one rank ends in agree_fail_together(), so all ranks fail together with one message.
 * dataset_begin_epoch and dataset_next (rank-local): the epoch's order (split.c), batches
 * filled (batch_fill.c) by the prefetch thread or in the caller (prefetch.c). */
#include "dataset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "batch_fill.h"
#include "columns.h"
#include "error.h"
#include "format.h"
#include "h5util.h"
#include "labels.h"
#include "memcache.h"
#include "prefetch.h"
#include "rows.h"
#include "scales.h"
#include "slots.h"
#include "split.h"
#include "unbias.h"

/* the strings DatasetInfo points at */
typedef struct {
    const char **channel;                     /* channels entries ("" where unnamed) */
    const char *scalar[JET_MAX_SCALARS];      /* the declared scalars' datasets */
} InfoNames;

struct Dataset {
    MPI_Comm comm;          /* the reader's own duplicate */
    int rank, nranks;
    DatasetOptions opt;     /* as given, but path and label are the reader's copies and scales NULL */
    char *path, *label;
    DatasetInfo info;
    InfoNames names;
    RowFiles rows;          /* the files as one sequence of rows */
    Columns cols;           /* the mass, the scalars (divided by their scales), the inputs */
    SplitRows split;        /* the split and this rank's rows of it */
    Scaling scaling;        /* the scales in use, their factors, the preprocessing */
    Weights weights;        /* the unbiasing weights (bin NULL: none) */
    Epoch epoch;            /* the epoch under way */
    SlotSize slot_size;     /* what the batch buffers are made for */
    BatchFill fill;         /* what fills a batch */
    Prefetch prefetch;      /* the slots and the thread */
};

void dataset_default_options(DatasetOptions *o) {
    memset(o, 0, sizeof *o);
    o->comm = MPI_COMM_WORLD;
    o->seed = 1;
    o->batch = 32;
    o->zero_suppress = 1e-5f;
    o->unbias = DATA_UNBIAS_WEIGHTS;
    o->prefetch = 2;
    o->fractions[SPLIT_TRAIN] = 0.90;
    o->fractions[SPLIT_VAL] = 0.05;
    o->fractions[SPLIT_TEST] = 0.05;
    o->mass_scale = MASS_SCALE_GEV;
    o->preprocess = 1;
    o->scale_quantile = 0.999;
    o->unbias_bins = 50;
    o->unbias_min = 0.0f;
    o->unbias_max = MASS_SCALE_GEV;
    o->unbias_max_weight = 20.0f;
    o->io = DATA_IO_AUTO;
}

static int check_options(const DatasetOptions *o) {
    if (!o->path || !o->path[0]) return e2e_fail("dataset: no path given");
    const char *p = o->path;
    if (o->batch < 1) return e2e_fail("%s: batch must be at least 1 (got %d)", p, o->batch);
    if (!(o->zero_suppress >= 0.0f && o->zero_suppress < 1.0f))
        return e2e_fail("%s: zero_suppress must be in [0, 1) (got %g)", p, o->zero_suppress);
    double sum = 0.0;
    for (int s = 0; s < DATA_SPLITS; s++) {
        if (!(o->fractions[s] >= 0.0 && o->fractions[s] <= 1.0))
            return e2e_fail("%s: the %s fraction must be in [0, 1] (got %g)", p, dataset_split_name(s), o->fractions[s]);
        sum += o->fractions[s];
    }
    if (sum > 1.0 + 1e-9) return e2e_fail("%s: the split fractions add up to %g > 1", p, sum);
    if (!(o->mass_scale > 0.0f)) return e2e_fail("%s: mass_scale must be positive", p);
    if (!(o->scale_quantile > 0.0 && o->scale_quantile <= 1.0))
        return e2e_fail("%s: scale_quantile must be in (0, 1] (got %g)", p, o->scale_quantile);
    if (o->unbias != DATA_UNBIAS_NONE && o->unbias != DATA_UNBIAS_WEIGHTS && o->unbias != DATA_UNBIAS_CLASSES)
        return e2e_fail("%s: unknown unbias method %d", p, o->unbias);
    if (o->unbias == DATA_UNBIAS_CLASSES && !o->label)
        return e2e_fail("%s: class weights need a label column (the classes to balance)", p);
    if (o->label && !o->label[0]) return e2e_fail("%s: the label column has an empty name", p);
    if (o->unbias == DATA_UNBIAS_WEIGHTS &&
        (o->unbias_bins < 1 || !(o->unbias_max > o->unbias_min) || o->unbias_max_weight < 0))
        return e2e_fail("%s: unbiasing needs bins >= 1, max > min and max_weight >= 0", p);
    if (o->prefetch < 0 || o->prefetch > 64) return e2e_fail("%s: prefetch must be 0 to 64 (got %d)", p, o->prefetch);
    if (o->io < DATA_IO_AUTO || o->io > DATA_IO_HDF5_COLLECTIVE) return e2e_fail("%s: unknown io mode %d", p, o->io);
    if (o->split_block < 0 || o->scale_rows < 0) return e2e_fail("%s: split_block and scale_rows must be >= 0", p);
    if (!o->batch_alloc != !o->batch_free) return e2e_fail("%s: batch_alloc and batch_free go together", p);
    if (o->cache != DATA_CACHE_NONE && o->cache != DATA_CACHE_MEMORY) return e2e_fail("%s: unknown cache mode %d", p, o->cache);
    if (o->cache_limit < 0) return e2e_fail("%s: cache_limit must be >= 0", p);
    return 0;
}

/* ---- opening ---- */

static int read_columns(Dataset *d) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, d->opt.io == DATA_IO_HDF5_COLLECTIVE ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    int rc = columns_read(&d->cols, d->rows.file, d->rows.n, d->rows.start, d->opt.label, dxpl, d->comm);
    H5Pclose(dxpl);
    return rc;
}

/* What the open files and the options make of the dataset (DatasetInfo). */
static void fill_info(Dataset *d) {
    const RowFiles *rf = &d->rows;
    const JetFile *f0 = &rf->file[0];
    const DatasetOptions *o = &d->opt;
    DatasetInfo *in = &d->info;
    in->n_total = rf->start[rf->n];
    in->channels = f0->c;
    in->height = f0->h;
    in->width = f0->w;
    const JetInputs *ji = &d->cols.inputs;
    in->n_scalars = ji->n_scalars;
    for (int k = 0; k < ji->n_scalars; k++) d->names.scalar[k] = ji->scalar[k];
    in->scalar_names = d->names.scalar;
    in->scalar_scales = ji->scale;
    in->channel_kinds = ji->kind;
    in->negative_masses = d->cols.negative_mass;
    in->has_mass = d->cols.has_mass;
    in->dtype_bytes = f0->dtype_bytes;
    in->n_files = rf->n;
    in->pixel_size = f0->pixel_size;
    in->raw_io = 1;
    for (int i = 0; i < rf->n; i++) in->raw_io &= rows_raw(rf, &rf->file[i]);
    in->prefetch = in->raw_io ? o->prefetch : 0;
    in->weight_min = in->weight_max = 1.0f;
    in->preprocessed = o->preprocess != 0;
    in->mass_scale = o->mass_scale;
    in->label = o->label;
    in->x_half = !o->preprocess && o->keep_half;
    in->x_sparse = !o->preprocess && o->keep_sparse;
    for (int i = 0; i < rf->n; i++) {
        const JetFile *f = &rf->file[i];
        in->x_half &= f->dtype_bytes == 2 && !f->sparse;
        in->sparse_files += f->sparse != NULL;
        in->x_sparse &= f->sparse && f->dtype_bytes == f0->dtype_bytes;
    }
}

/* The files, their columns, what they make of the dataset (info) and the split; the
 * whole training split's rows into *train_rows when there are weights to make. Agreed. */
static int open_data(Dataset *d, long long **train_rows) {
    int rc = rows_open(&d->rows, d->path, d->opt.io, d->comm);
    if (!rc) rc = read_columns(d);
    /* a copy is told by its masses; files without them are not checked */
    if (!rc && d->cols.has_mass)
        rc = agree_fail_together(d->comm, jet_list_check_copies(d->rows.file, d->rows.n, d->cols.m));
    if (rc) return rc;
    const JetFile *f0 = &d->rows.file[0];
    fill_info(d);
    d->names.channel = calloc((size_t)f0->c, sizeof *d->names.channel);
    d->scaling.scale = malloc((size_t)f0->c * sizeof *d->scaling.scale);
    d->scaling.factor = malloc((size_t)f0->c * sizeof *d->scaling.factor);
    rc = d->names.channel && d->scaling.scale && d->scaling.factor ? 0 : e2e_fail("out of memory");
    for (int c = 0; !rc && c < f0->c; c++) d->names.channel[c] = f0->n_names ? f0->names[c] : "";
    d->info.channel_names = d->names.channel;
    if (!rc) rc = split_make(&d->split, &d->opt, d->info.n_total, d->rank, d->nranks, train_rows);
    if (agree_fail_together(d->comm, rc)) return -1;
    if (!d->opt.label) return 0;
    labels_count(d->cols.label, &d->split, d->comm, d->info.class_count);
    if (d->opt.one_class_ok) return 0;
    return agree_fail_together(d->comm, labels_check(d->info.class_count, d->path, d->opt.label));
}

/* Sparse files: the batch capacity; with the memory cache: the rank's rows in memory
 * (then no read touches a file, so the prefetch thread serves every file). Agreed. */
static int prepare_rows(Dataset *d) {
    long long *entries = &d->slot_size.entries;
    int rc = agree_fail_together(d->comm, d->info.sparse_files ? slots_count_entries(entries, &d->rows, &d->split,
                                                                                     d->opt.batch, d->path) : 0);
    if (!rc && d->opt.cache == DATA_CACHE_MEMORY &&
        !(rc = agree_fail_together(d->comm, cache_load(&d->rows, &d->split, &d->opt, d->comm, &d->info.cache_bytes)))) {
        d->info.cached = 1;
        d->info.raw_io = 1;
        d->info.prefetch = d->opt.prefetch;
    }
    d->info.sparse_batch_entries = d->info.x_sparse ? *entries : 0;
    return rc;
}

/* The caller's scales (o->scales) or the statistics pass's. Agreed. */
static int set_scales(Dataset *d, const DatasetOptions *o) {
    int rc;
    if (o->scales)
        rc = agree_fail_together(d->comm, scales_take_given(&d->scaling, o, d->info.channels, d->path));
    else if (d->split.total[SPLIT_TRAIN])
        rc = scales_compute(&d->scaling, &d->info, &d->rows, &d->split, &d->opt, d->comm);
    else
        rc = agree_fail_together(d->comm, e2e_fail("%s: no training split to compute the scales from: give the "
                                                   "scales", d->path));
    if (!rc) scales_finish(&d->scaling, d->info.channels, o->zero_suppress, d->info.channel_kinds);
    return rc;
}

/* The weights (options.unbias): of the training split's masses or classes. Local result. */
static int make_weights(Dataset *d, const long long *train_rows) {
    if (d->opt.unbias == DATA_UNBIAS_CLASSES)
        return weights_make_classes(&d->weights, d->info.class_count[SPLIT_TRAIN], d->path, &d->info);
    if (!d->cols.has_mass)
        return e2e_fail("%s: no mass column 'm' to flatten the mass histogram with (the mass unbiasing "
                        "weights, --unbias weights): train without them (--unbias none) or weigh the classes (--balance)", d->path);
    return weights_make(&d->weights, d->cols.m, train_rows, d->split.total[SPLIT_TRAIN], &d->opt, &d->info);
}

/* The epoch's order and the batch buffers: prefetch + 1 slots (1 without prefetch).
 * Local result. */
static int make_batches(Dataset *d) {
    const DatasetOptions *o = &d->opt;
    int stage = 0;
    for (int i = 0; i < d->rows.n; i++) stage |= d->rows.file[i].dtype_bytes == 2 && !d->rows.file[i].sparse;
    d->slot_size = (SlotSize){.info = &d->info, .batch = o->batch, .stage = stage, .entries = d->slot_size.entries,
                              .mem = {o->batch_alloc, o->batch_free, o->batch_alloc_ctx}};
    d->fill = (BatchFill){.rows = &d->rows, .cols = &d->cols, .weights = &d->weights, .scaling = &d->scaling,
                          .info = &d->info, .batch = o->batch, .mass_scale = o->mass_scale};
    if (epoch_alloc(&d->epoch, &d->split)) return e2e_fail("%s: out of memory for batches", d->path);
    return prefetch_alloc(&d->prefetch, d->info.prefetch > 0 ? d->info.prefetch + 1 : 1, &d->slot_size, d->path);
}

static void destroy(Dataset *d) {
    prefetch_free(&d->prefetch, &d->slot_size); /* the thread stops first */
    rows_close(&d->rows);
    columns_free(&d->cols);
    split_free(&d->split);
    free(d->scaling.scale);
    free(d->scaling.factor);
    weights_free(&d->weights);
    epoch_free(&d->epoch);
    free(d->names.channel);
    MPI_Comm_free(&d->comm);
    free(d->path);
    free(d->label);
    free(d);
}

int dataset_open(Dataset **out, const DatasetOptions *o) {
    *out = NULL;
    Dataset *d = calloc(1, sizeof *d);
    if (!d) return e2e_fail("out of memory");
    MPI_Comm_dup(o->comm, &d->comm);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->nranks);
    prefetch_init(&d->prefetch, &d->fill, &d->epoch);
    d->opt = *o;
    d->epoch.split = -1;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    long long *train_rows = NULL;
    int rc = agree_fail_together(d->comm, check_options(o));
    if (!rc) {
        d->path = strdup(o->path);
        d->label = o->label ? strdup(o->label) : NULL;
        d->opt.path = d->path;
        d->opt.label = d->label;
        d->opt.scales = NULL;
        rc = agree_fail_together(d->comm, d->path && (d->label || !o->label) ? 0 : e2e_fail("out of memory"));
    }
    if (!rc) rc = open_data(d, &train_rows);
    if (!rc && scales_check_count(o, d->info.channels, d->path)) rc = agree_fail_together(d->comm, -1);
    if (!rc) rc = prepare_rows(d);
    if (!rc) rc = set_scales(d, o);
    /* weights come from the training split's masses or classes; without one there are none */
    if (!rc && o->unbias && d->split.total[SPLIT_TRAIN]) rc = agree_fail_together(d->comm, make_weights(d, train_rows));
    if (!rc) rc = agree_fail_together(d->comm, make_batches(d));
    free(train_rows);
    h5_quiet_end(&quiet);
    if (rc) {
        char msg[E2E_ERROR_LEN];
        snprintf(msg, sizeof msg, "%s", e2e_error());
        destroy(d);
        return e2e_fail("%s", msg);
    }
    *out = d;
    return 0;
}

void dataset_close(Dataset *d) {
    if (!d) return;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    destroy(d);
    h5_quiet_end(&quiet);
}

/* ---- what the dataset is ---- */

const DatasetInfo *dataset_info(const Dataset *d) { return &d->info; }
long long dataset_split_total(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->split.total[s] : 0; }
long long dataset_split_local(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->split.nlocal[s] : 0; }
long dataset_steps_per_epoch(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->split.steps[s] : 0; }
const float *dataset_scales(const Dataset *d) { return d->scaling.scale; }
const float *dataset_masses(const Dataset *d) { return d->cols.m; }
const float *dataset_labels(const Dataset *d) { return d->cols.label; }
const char *dataset_file_path(const Dataset *d, int i) { return i >= 0 && i < d->rows.n ? d->rows.file[i].path : ""; }
const struct JetInputs *dataset_inputs(const Dataset *d) { return &d->cols.inputs; }

const float *dataset_prep_factors(const Dataset *d, float *zero_suppress) {
    if (zero_suppress) *zero_suppress = d->opt.zero_suppress;
    return d->scaling.factor;
}

const long long *dataset_split_rows(const Dataset *d, Split s, long long *n) {
    *n = dataset_split_local(d, s);
    return s >= 0 && s < DATA_SPLITS ? d->split.local[s] : NULL;
}

/* ---- batches ---- */

int dataset_begin_epoch(Dataset *d, Split s, long epoch, long first_step) {
    if (s < 0 || s >= DATA_SPLITS) return e2e_fail("%s: unknown split %d", d->path, (int)s);
    if (d->split.total[s] == 0)
        return e2e_fail("%s: the %s split is empty (its fraction is 0)", d->path, dataset_split_name(s));
    if (epoch < 0) return e2e_fail("%s: epoch must be >= 0 (got %ld)", d->path, epoch);
    if (first_step < 0 || first_step > d->split.steps[s])
        return e2e_fail("%s: first_step %ld is outside the %ld steps of a %s epoch", d->path, first_step,
                        d->split.steps[s], dataset_split_name(s));
    prefetch_stop(&d->prefetch);
    epoch_begin(&d->epoch, &d->split, s, d->opt.seed, epoch, d->rank, d->nranks, first_step);
    if (d->info.prefetch > 0 && first_step < d->epoch.steps) prefetch_start(&d->prefetch, first_step);
    return 0;
}

int dataset_next(Dataset *d, Batch *b) {
    Epoch *e = &d->epoch;
    if (e->split < 0) return e2e_fail("%s: dataset_next before dataset_begin_epoch", d->path);
    if (e->failed) return e2e_fail("%s", e->fail_msg);
    prefetch_release(&d->prefetch);
    if (e->next >= e->steps) return 0;
    const Slot *s = prefetch_take(&d->prefetch, e->next);
    if (s->rc) {
        e->failed = 1;
        snprintf(e->fail_msg, sizeof e->fail_msg, "%s", s->err);
        return e2e_fail("%s", s->err);
    }
    e->next++;
    slot_batch(s, &d->info, d->weights.bin != NULL, &d->scaling.prep, b);
    return 1;
}

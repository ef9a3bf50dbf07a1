/* The parallel per-rank reader (dataset.h; data/README.md explains the choices).
 *
 * dataset_open (collective): the file list, every file opened with the MPI-IO driver
 * and checked, the per-jet columns read whole on every rank, the split computed from
 * the seed, the per-channel scales from a statistics pass over the training split,
 * the unbiasing weights. Every step that can fail on one rank ends in agree_fail_together(), so all
 * ranks fail together with one message.
 *
 * dataset_next (rank-local): batches come from a ring of prefetch + 1 slots that a
 * thread fills ahead of the caller. The thread reads with pread at chunk addresses
 * resolved at open (no HDF5: the library is not thread-safe in this build, and the
 * trainer's main thread calls HDF5 for checkpoints; no MPI either). Files that need
 * HDF5 to be read (compressed, big-endian, partial-row chunks) are read in the caller.
 * Rows of sparse files (sparsefile.h) come as their entries, densified into the batch
 * with the preprocessing fused, or handed over as entries (x_sparse); with the memory
 * cache every rank's rows are read at open and batches come from memory. */
#include "dataset.h"

#include <errno.h>
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agree.h"
#include "columns.h"
#include "error.h"
#include "format.h"
#include "h5util.h"
#include "jetfile.h"
#include "half.h"
#include "memcache.h"
#include "plausible.h"
#include "preprocess.h"
#include "keyed_rng.h"
#include "sparsefile.h"

#define TAG_SPLIT 0x53504c4954ULL   /* "SPLIT" */
#define TAG_SHUFFLE 0x5348554646ULL /* "SHUFF" */
#define STATS_WINDOW_BYTES (16LL << 20)
#define SPLIT_BLOCK 64

static const char *const SPLIT_NAME[DATA_SPLITS] = {"training", "validation", "test"};

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY };

typedef struct {
    float *x, *scalars, *target, *weight, *mass;
    long long *index, *lrows;
    void *stage;
    int n, state, rc;
    char err[E2E_ERROR_LEN];
    /* rows of sparse files: their entries (x_sparse: the batch's own), the pixels of x
     * they wrote (zeroed before the next fill, so x is never cleared whole), the
     * batch's planes (x_sparse) */
    char *epos, *eval;
    uint32_t *touched, *plane_start;
    long long n_touched;
    int x_clean;              /* 1: x is 0 but at touched; 0: not known */
    SparseImages sparse;
} Slot;

struct Dataset {
    MPI_Comm comm;
    int rank, nranks;
    DatasetOptions opt;
    char *path;
    DatasetInfo info;
    const char **names;
    int nfiles;
    JetFile *files;
    long long *start; /* [nfiles + 1]: first dataset row of each file */
    Columns cols;     /* the mass, the scalars (divided by their scales), the inputs */
    const char *scalar_names[JET_MAX_SCALARS];
    long long total[DATA_SPLITS], nlocal[DATA_SPLITS];
    long long *local[DATA_SPLITS];
    long steps[DATA_SPLITS];
    float *scales, *factors, *bin_weight;
    InputPrep prep;   /* what a batch still needs when the reader does not preprocess */
    long long row_floats;
    long long batch_entries;  /* sparse files: the most entries B of this rank's rows hold */
    hid_t dxpl_ind;
    /* the epoch */
    int split;
    long long *order;
    long cur_steps, next_step;
    int failed;
    char fail_msg[E2E_ERROR_LEN];
    /* the slots and the prefetch thread */
    Slot *slots;
    int nslots;
    Slot *held;
    pthread_t thread;
    int running, cancel;
    long produce_from;
    pthread_mutex_t mu;
    pthread_cond_t cv;
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
            return e2e_fail("%s: the %s fraction must be in [0, 1] (got %g)", p, SPLIT_NAME[s], o->fractions[s]);
        sum += o->fractions[s];
    }
    if (sum > 1.0 + 1e-9) return e2e_fail("%s: the split fractions add up to %g > 1", p, sum);
    if (!(o->mass_scale > 0.0f)) return e2e_fail("%s: mass_scale must be positive", p);
    if (!(o->scale_quantile > 0.0 && o->scale_quantile <= 1.0))
        return e2e_fail("%s: scale_quantile must be in (0, 1] (got %g)", p, o->scale_quantile);
    if (o->unbias != DATA_UNBIAS_NONE && o->unbias != DATA_UNBIAS_WEIGHTS)
        return e2e_fail("%s: unknown unbias method %d", p, o->unbias);
    if (o->unbias && (o->unbias_bins < 1 || !(o->unbias_max > o->unbias_min) || o->unbias_max_weight < 0))
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

static int open_files(Dataset *d) {
    char **list = NULL;
    int n = 0;
    int rc = agree_fail_together(d->comm, jet_list_resolve(d->path, &list, &n));
    if (rc) return -1;
    /* every rank sees every file before any collective open (a file missing on one
     * node must not leave the others inside MPI_File_open) */
    for (int i = 0; !rc && i < n; i++) {
        struct stat st;
        if (stat(list[i], &st) != 0)
            rc = e2e_fail("%s: %s", list[i], errno == ENOENT ? "no such file" : strerror(errno));
    }
    if (agree_fail_together(d->comm, rc)) {
        jet_list_free(list, n);
        return -1;
    }
    d->files = calloc((size_t)n, sizeof *d->files);
    d->start = calloc((size_t)n + 1, sizeof *d->start);
    rc = agree_fail_together(d->comm, d->files && d->start ? 0 : e2e_fail("out of memory"));
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, d->comm, MPI_INFO_NULL);
    for (int i = 0; !rc && i < n; i++) {
        JetFile *f = &d->files[i];
        rc = agree_fail_together(d->comm, jetfile_open(f, list[i], fapl));
        if (rc) break;
        if (f->sparse && d->opt.io != DATA_IO_AUTO) f->raw = 0; /* its entries through HDF5 too */
        d->nfiles = i + 1;
        const JetFile *f0 = &d->files[0];
        int bad = 0;
        if (f->c != f0->c || f->h != f0->h || f->w != f0->w)
            bad = e2e_fail("%s: X_jet images are %d x %d x %d but %s has %d x %d x %d", f->path, f->c, f->h,
                            f->w, f0->path, f0->c, f0->h, f0->w);
        for (int k = 0; !bad && f->n_names && f0->n_names && k < f->c; k++)
            if (strcmp(f->names[k], f0->names[k]))
                bad = e2e_fail("%s: channel %d is '%s' but in %s it is '%s'", f->path, k, f->names[k],
                                f0->path, f0->names[k]);
        d->start[i + 1] = d->start[i] + f->n;
        rc = agree_fail_together(d->comm, bad);
    }
    H5Pclose(fapl);
    jet_list_free(list, n);
    return rc;
}

static int read_columns(Dataset *d) {
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, d->opt.io == DATA_IO_HDF5_COLLECTIVE ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    int rc = columns_read(&d->cols, d->files, d->nfiles, d->start, dxpl, d->comm);
    H5Pclose(dxpl);
    return rc;
}

/* ---- the split ---- */

typedef struct { long long start, len; } Block;

/* rows at positions [lo, hi) of the virtual order (blocks in permuted order) */
static long long collect_rows(const Block *b, const long long *perm, long long nb, long long lo, long long hi,
                              long long *out) {
    long long v = 0, n = 0;
    for (long long k = 0; k < nb && v < hi; k++) {
        const Block *bl = &b[perm[k]];
        long long a = lo > v ? lo - v : 0, e = hi - v < bl->len ? hi - v : bl->len;
        for (long long i = a; i < e; i++) out[n++] = bl->start + i;
        v += bl->len;
    }
    return n;
}

static void shuffle(long long *a, long long n, const uint64_t *key, int nkey) {
    DRng r;
    drng_key(&r, key, nkey);
    for (long long i = n - 1; i > 0; i--) {
        long long j = (long long)drng_below(&r, (uint64_t)i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* The split is a function of N, the seed and the block length only: the blocks are
 * runs of consecutive dataset rows, whatever the files, their layout or chunking. */
static int make_split(Dataset *d, long long **train_rows) {
    const long long N = d->start[d->nfiles], bs = d->opt.split_block ? d->opt.split_block : SPLIT_BLOCK;
    const long long nb = (N + bs - 1) / bs;
    Block *b = malloc((size_t)nb * sizeof *b);
    long long *perm = malloc((size_t)nb * sizeof *perm);
    *train_rows = NULL;
    if (!b || !perm) {
        free(b);
        free(perm);
        return e2e_fail("%s: out of memory for %lld blocks", d->path, nb);
    }
    long long k;
    for (k = 0; k < nb; k++) b[k] = (Block){k * bs, (k + 1) * bs <= N ? bs : N - k * bs};
    for (k = 0; k < nb; k++) perm[k] = k;
    shuffle(perm, nb, (uint64_t[]){d->opt.seed, TAG_SPLIT}, 2);

    long long cut[DATA_SPLITS + 1] = {0};
    double acc = 0.0;
    for (int s = 0; s < DATA_SPLITS; s++) {
        acc += d->opt.fractions[s];
        cut[s + 1] = (long long)floor(acc * (double)N + 0.5);
        if (cut[s + 1] > N) cut[s + 1] = N;
        if (cut[s + 1] < cut[s]) cut[s + 1] = cut[s];
    }
    int rc = 0;
    for (int s = 0; !rc && s < DATA_SPLITS; s++) {
        long long tot = cut[s + 1] - cut[s];
        long long lo = cut[s] + tot * d->rank / d->nranks, hi = cut[s] + tot * (d->rank + 1) / d->nranks;
        d->total[s] = tot;
        d->nlocal[s] = hi - lo;
        d->local[s] = malloc((size_t)(hi > lo ? hi - lo : 1) * sizeof **d->local);
        if (!d->local[s]) rc = e2e_fail("%s: out of memory for the split", d->path);
        else collect_rows(b, perm, nb, lo, hi, d->local[s]);
    }
    if (!rc && d->opt.unbias) { /* every rank needs the whole training split's masses */
        *train_rows = malloc((size_t)(d->total[SPLIT_TRAIN] ? d->total[SPLIT_TRAIN] : 1) * sizeof **train_rows);
        if (!*train_rows) rc = e2e_fail("%s: out of memory for the split", d->path);
        else collect_rows(b, perm, nb, cut[0], cut[1], *train_rows);
    }
    free(b);
    free(perm);
    if (rc) return rc;

    for (int s = 0; s < DATA_SPLITS; s++) {
        if (d->opt.fractions[s] <= 0.0) continue;
        if (d->total[s] == 0)
            return e2e_fail("%s: the %s split is empty (%lld rows x %g rounds to 0 rows); use more rows or "
                             "change the split fractions", d->path, SPLIT_NAME[s], N, d->opt.fractions[s]);
        if (d->total[s] < d->nranks)
            return e2e_fail("%s: more ranks than samples: the %s split has %lld row%s for %d ranks", d->path,
                             SPLIT_NAME[s], d->total[s], d->total[s] == 1 ? "" : "s", d->nranks);
    }
    for (int s = 0; s < DATA_SPLITS; s++)
        d->steps[s] = s == SPLIT_TRAIN ? (long)(d->total[s] / d->nranks / d->opt.batch)
                                       : (long)((d->nlocal[s] + d->opt.batch - 1) / d->opt.batch);
    /* a training split of fewer rows a rank than the batch gives 0 training steps: the
     * trainer refuses that; evaluation does not care */
    return 0;
}

/* ---- reading rows ---- */

static int file_of(const Dataset *d, long long row) {
    int lo = 0, hi = d->nfiles - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (d->start[mid] <= row) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static int use_raw(const Dataset *d, const JetFile *f) { return f->raw && d->opt.io == DATA_IO_AUTO; }

/* dataset rows rows[0..n) into x, in order; lrows is scratch for n file rows */
static int read_rows(Dataset *d, const long long *rows, long long n, float *x, void *stage, long long *lrows,
                     hid_t dxpl) {
    /* x == NULL: float16 rows stay undecoded in stage, row i at stage + i rows */
    const size_t half_row = x ? 0 : (size_t)d->row_floats * 2;
    for (long long i = 0; i < n;) {
        int fi = file_of(d, rows[i]);
        const JetFile *f = &d->files[fi];
        long long j = i;
        for (; j < n && rows[j] >= d->start[fi] && rows[j] < d->start[fi + 1]; j++) lrows[j - i] = rows[j] - d->start[fi];
        float *dst = x ? x + i * d->row_floats : NULL;
        void *st = (char *)stage + (size_t)i * half_row;
        if (use_raw(d, f) ? jetfile_read_rows_raw(f, lrows, j - i, dst, st)
                          : jetfile_read_rows_hdf5(f, lrows, j - i, dst, st, dxpl))
            return -1;
        i = j;
    }
    return 0;
}

static int reject_nonfinite(const Dataset *d, long long row, long long bad) {
    int fi = file_of(d, row);
    return e2e_fail("%s: X_jet row %lld holds %lld non-finite value%s (NaN or Inf); rows with non-finite "
                     "pixels are rejected", d->files[fi].path, row - d->start[fi], bad, bad == 1 ? "" : "s");
}

/* the length of the run of consecutive rows at rows[0], at most max */
static long long run_length(const long long *rows, long long n, long long max) {
    long long k = 1;
    while (k < n && k < max && rows[k] == rows[k - 1] + 1) k++;
    return k;
}

/* ---- rows of sparse files (data/format/sparsefile.h) ---- */

/* the rows rows[0..n) of one sparse file (dataset rows) as file rows in lrows, their
 * entries read into pos and value */
static const JetFile *read_sparse_rows(Dataset *d, const long long *rows, long long n, long long *lrows, char *pos,
                                       char *value) {
    int fi = file_of(d, rows[0]);
    const JetFile *f = &d->files[fi];
    for (long long j = 0; j < n; j++) lrows[j] = rows[j] - d->start[fi];
    return sparsefile_read(f, lrows, n, pos, value, d->dxpl_ind) ? NULL : f;
}

/* non-finite values among a row's e stored values */
static long long values_nonfinite(const void *v, long long e, int value_bytes) {
    return value_bytes == 2 ? half_count_nonfinite(v, (size_t)e) : count_nonfinite(v, e, NULL);
}

/* 1 when a row's e stored values are all zero (of either sign): its image is empty */
static int values_all_zero(const void *v, long long e, int value_bytes) {
    if (value_bytes == 4) return all_zero(v, e);
    for (long long k = 0; k < e; k++)
        if (((const uint16_t *)v)[k] & 0x7fffu) return 0;
    return 1;
}

/* rows[0..n) of one sparse file densified into batch rows at..at+n of s->x, preprocessed
 * on the way (the dense path's rule, sparse_densify) unless preprocess = 0; the pixels
 * written are recorded in s->touched */
static int densify_rows(Dataset *d, Slot *s, const long long *rows, long long n, long long at) {
    const JetFile *f = read_sparse_rows(d, rows, n, s->lrows, s->epos, s->eval);
    if (!f) return -1;
    const struct SparseFile *sf = f->sparse;
    const char *p = s->epos, *v = s->eval;
    for (long long j = 0; j < n; j++) {
        long long r = s->lrows[j], e = sparsefile_row_entries(sf, r), base = (at + j) * d->row_floats;
        uint32_t *t = s->touched ? s->touched + s->n_touched : NULL;
        long long bad = sparse_densify(&sf->g, sf->counts + r * f->c, p, v, d->opt.preprocess ? d->factors : NULL,
                                       d->info.channel_kinds, d->opt.zero_suppress, s->x + base, t, (uint32_t)base);
        if (t) s->n_touched += e;
        if (bad) return reject_nonfinite(d, rows[j], bad);
        p += e * sf->g.pos_bytes;
        v += e * sf->g.value_bytes;
    }
    return 0;
}

/* x of a slot that sparse rows will fill: zero, at the cost of the pixels written last */
static void clear_x(Dataset *d, Slot *s) {
    if (!s->x_clean) memset(s->x, 0, (size_t)(d->opt.batch * d->row_floats) * sizeof *s->x);
    else
        for (long long i = 0; i < s->n_touched; i++) s->x[s->touched[i]] = 0.0f;
    s->n_touched = 0;
    s->x_clean = s->touched != NULL;
}

/* how many of rows[0..n), from the first on, lie in the first one's file */
static long long same_file(const Dataset *d, const long long *rows, long long n) {
    int fi = file_of(d, rows[0]);
    long long k = 1;
    while (k < n && rows[k] >= d->start[fi] && rows[k] < d->start[fi + 1]) k++;
    return k;
}

/* an x_sparse batch (every file sparse): the entries of rows[0..n) as stored, and the
 * planes' starts */
static int fill_sparse_batch(Dataset *d, Slot *s, const long long *rows, long long n) {
    const int C = d->info.channels, pb = d->files[0].sparse->g.pos_bytes, vb = d->files[0].sparse->g.value_bytes;
    long long e = 0;
    s->plane_start[0] = 0;
    for (long long i = 0; i < n;) {
        long long k = same_file(d, rows + i, n - i);
        const JetFile *f = read_sparse_rows(d, rows + i, k, s->lrows, s->epos + e * pb, s->eval + e * vb);
        if (!f) return -1;
        for (long long j = 0; j < k; j++) {
            const uint32_t *cnt = f->sparse->counts + s->lrows[j] * C;
            long long e0 = e;
            for (int c = 0; c < C; c++) {
                e += cnt[c];
                s->plane_start[(i + j) * C + c + 1] = (uint32_t)e;
            }
            long long bad = values_nonfinite(s->eval + e0 * vb, e - e0, vb);
            if (bad) return reject_nonfinite(d, rows[i + j], bad);
        }
        i += k;
    }
    s->sparse = (SparseImages){e, s->plane_start, s->epos, s->eval, pb, vb};
    return 0;
}

/* ---- the scales: a statistics pass over the training split ---- */

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* rows[0..n) of one sparse file into the histogram (equal to their dense rows'),
 * checked for non-finite values; pos and value hold n rows' entries, scratch a row's */
static int stats_sparse(Dataset *d, const long long *rows, long long n, PixelHist *h, char *pos, char *value,
                        float *scratch, long long *lrows, long long *empty) {
    const JetFile *f = read_sparse_rows(d, rows, n, lrows, pos, value);
    if (!f) return -1;
    const struct SparseFile *sf = f->sparse;
    const char *v = value;
    for (long long i = 0; i < n; i++) {
        long long e = sparsefile_row_entries(sf, lrows[i]), bad = values_nonfinite(v, e, sf->g.value_bytes);
        if (bad) return reject_nonfinite(d, rows[i], bad);
        *empty += values_all_zero(v, e, sf->g.value_bytes);
        sparse_hist_add(h, &sf->g, sf->counts + lrows[i] * f->c, v, scratch);
        v += e * sf->g.value_bytes;
    }
    return 0;
}

/* The empty images the statistics pass found, summed over the ranks: a file of nothing
 * but empty images is refused, the others warned about (data/plausible.h). Collective. */
static int check_images(Dataset *d, long long *empty, long long *checked) {
    MPI_Allreduce(MPI_IN_PLACE, empty, 2 * d->nfiles, MPI_LONG_LONG, MPI_SUM, d->comm);
    const char **paths = malloc((size_t)d->nfiles * sizeof *paths);
    int rc = paths ? 0 : e2e_fail("%s: out of memory", d->path);
    for (int i = 0; !rc && i < d->nfiles; i++) {
        paths[i] = d->files[i].path;
        d->info.empty_images += empty[i];
        d->info.images_checked += checked[i];
    }
    if (!rc) rc = plausible_images(paths, d->nfiles, empty, checked, d->rank == 0);
    free(paths);
    return agree_fail_together(d->comm, rc);
}

static int compute_scales(Dataset *d) {
    const int C = d->info.channels;
    const long long hw = (long long)d->info.height * d->info.width, W0 = STATS_WINDOW_BYTES / (d->row_floats * 4);
    const long long W = W0 > 0 ? W0 : 1;
    long long nl = d->nlocal[SPLIT_TRAIN];
    long long use = nl;
    if (d->opt.scale_rows > 0 && d->total[SPLIT_TRAIN] > d->opt.scale_rows)
        use = (d->opt.scale_rows * nl + d->total[SPLIT_TRAIN] - 1) / d->total[SPLIT_TRAIN];
    long long *rows = malloc((size_t)(nl ? nl : 1) * sizeof *rows), *lrows = malloc((size_t)W * sizeof *lrows);
    float *x = malloc((size_t)(W * d->row_floats) * sizeof *x); /* sparse files: their values */
    void *stage = malloc((size_t)(W * d->row_floats * 2));
    long long *empty = calloc((size_t)d->nfiles * 2, sizeof *empty), *checked = empty ? empty + d->nfiles : NULL;
    /* sparse files: positions, and one row's values as float32 */
    char *spos = d->info.sparse_files ? malloc((size_t)(W * d->row_floats) * sizeof(uint32_t)) : NULL;
    float *scratch = d->info.sparse_files ? malloc((size_t)d->row_floats * sizeof *scratch) : NULL;
    PixelHist h = {0};
    int rc = rows && lrows && x && stage && empty && (!d->info.sparse_files || (spos && scratch))
                 ? pixel_hist_init(&h, C) : e2e_fail("%s: out of memory for statistics", d->path);
    h.kinds = d->info.channel_kinds; /* a signed channel's scale is of |x| */
    if (!rc) {
        for (long long i = 0; i < use; i++) rows[i] = d->local[SPLIT_TRAIN][use == nl ? i : i * nl / use];
        qsort(rows, (size_t)use, sizeof *rows, cmp_ll); /* file order: sequential reads */
    }
    if (agree_fail_together(d->comm, rc)) goto out;
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, d->opt.io == DATA_IO_HDF5_COLLECTIVE ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
    /* File by file, one piece (a run of consecutive rows, at most W) per read, the same
     * number of reads on every rank: collective reads see every rank in every call. */
    long long at = 0;
    for (int fi = 0; !rc && fi < d->nfiles; fi++) {
        long long from = at, pieces = 0, iters;
        while (at < use && rows[at] < d->start[fi + 1]) at++;
        for (long long i = from; i < at; pieces++) i += run_length(rows + i, at - i, W);
        MPI_Allreduce(&pieces, &iters, 1, MPI_LONG_LONG, MPI_MAX, d->comm);
        for (long long it = 0, lo = from; !rc && it < iters; it++) {
            long long n = lo < at ? run_length(rows + lo, at - lo, W) : 0;
            if (d->files[fi].sparse) { /* independent reads: no collective to join */
                if (n > 0) rc = stats_sparse(d, rows + lo, n, &h, spos, (char *)x, scratch, lrows, &empty[fi]);
            } else {
                if (n > 0) rc = read_rows(d, rows + lo, n, x, stage, lrows, dxpl);
                else if (!use_raw(d, &d->files[fi])) rc = jetfile_read_rows_hdf5(&d->files[fi], NULL, 0, x, stage, dxpl);
                for (long long i = 0; !rc && i < n; i++) {
                    long long bad = count_nonfinite(x + i * d->row_floats, d->row_floats, NULL);
                    if (bad) rc = reject_nonfinite(d, rows[lo + i], bad);
                    empty[fi] += all_zero(x + i * d->row_floats, d->row_floats);
                }
                if (!rc) pixel_hist_add(&h, x, n, hw);
            }
            checked[fi] += n;
            rc = agree_fail_together(d->comm, rc);
            if (d->opt.progress) d->opt.progress();
            lo += n;
        }
    }
    H5Pclose(dxpl);
    if (!rc) rc = check_images(d, empty, checked);
    if (!rc) {
        MPI_Allreduce(MPI_IN_PLACE, h.count, C * PIXEL_HIST_BINS, MPI_UINT64_T, MPI_SUM, d->comm);
        for (int c = 0; c < C; c++) {
            float q = pixel_hist_quantile(&h, c, d->opt.scale_quantile);
            d->scales[c] = q > 0.0f ? q : 1.0f; /* a channel with no positive pixel keeps scale 1 */
        }
    }
out:
    pixel_hist_free(&h);
    free(empty);
    free(rows);
    free(lrows);
    free(x);
    free(stage);
    free(spos);
    free(scratch);
    return rc;
}

/* ---- this rank's rows of sparse files: the batch capacity, the memory cache ---- */

/* this rank's rows of every split, increasing; NULL when out of memory */
static long long *my_rows(const Dataset *d, long long *n) {
    *n = d->nlocal[SPLIT_TRAIN] + d->nlocal[SPLIT_VAL] + d->nlocal[SPLIT_TEST];
    long long *rows = malloc((size_t)(*n ? *n : 1) * sizeof *rows), at = 0;
    for (int s = 0; rows && s < DATA_SPLITS; at += d->nlocal[s], s++)
        memcpy(rows + at, d->local[s], (size_t)d->nlocal[s] * sizeof *rows);
    if (rows) qsort(rows, (size_t)*n, sizeof *rows, cmp_ll);
    return rows;
}

static int cmp_ll_desc(const void *a, const void *b) { return cmp_ll(b, a); }

/* the most entries a batch of this rank's rows can hold: the B largest rows' sum */
static int count_batch_entries(Dataset *d) {
    long long n;
    long long *rows = my_rows(d, &n), *e = malloc((size_t)(n ? n : 1) * sizeof *e);
    if (!rows || !e) {
        free(rows);
        free(e);
        return e2e_fail("%s: out of memory", d->path);
    }
    for (long long i = 0; i < n; i++) {
        const JetFile *f = &d->files[file_of(d, rows[i])];
        e[i] = f->sparse ? sparsefile_row_entries(f->sparse, rows[i] - d->start[file_of(d, rows[i])]) : 0;
    }
    qsort(e, (size_t)n, sizeof *e, cmp_ll_desc);
    d->batch_entries = 0;
    for (long long i = 0; i < n && i < d->opt.batch; i++) d->batch_entries += e[i];
    free(rows);
    free(e);
    if (d->batch_entries >= 4294967296LL)
        return e2e_fail("%s: a batch of %d rows may hold %lld entries, more than 2^32", d->path, d->opt.batch,
                         d->batch_entries);
    return 0;
}

/* rows[0..n) (increasing dataset rows) that lie in file i, as file rows in place;
 * returns how many */
static long long to_file_rows(const Dataset *d, int i, long long *rows, long long n) {
    long long k = 0;
    while (k < n && rows[k] < d->start[i + 1]) rows[k++] -= d->start[i];
    return k;
}

/* The rank's rows of every split read into memory (sparse files only), if they fit
 * in the cache's limit. Collective (the limit); local result. */
static int load_cache(Dataset *d) {
    long long limit, n, bytes = 0;
    char how[256];
    cache_limit(d->comm, d->opt.cache_limit, &limit, how, sizeof how);
    for (int i = 0; i < d->nfiles; i++)
        if (!d->files[i].sparse)
            return e2e_fail("%s: --cache memory holds sparse files only, and this one is dense (%lld jets of %.0f KB); "
                             "make a sparse copy with e2e-data convert --layout sparse", d->files[i].path, d->files[i].n,
                             d->files[i].row_bytes / 1e3);
    long long *rows = my_rows(d, &n), *frows = rows, left = n;
    if (!rows) return e2e_fail("%s: out of memory", d->path);
    long long *count = calloc((size_t)d->nfiles, sizeof *count);
    for (int i = 0; count && i < d->nfiles; i++) {
        count[i] = to_file_rows(d, i, frows, left);
        bytes += sparsefile_cache_bytes(&d->files[i], frows, count[i]);
        frows += count[i], left -= count[i];
    }
    int rc = count ? 0 : e2e_fail("%s: out of memory", d->path);
    d->info.cache_bytes = bytes;
    if (!rc && limit >= 0 && bytes > limit)
        rc = e2e_fail("%s: --cache memory: rank %d's %lld jets need %.3g GB, more than %s", d->path, d->rank, n,
                       bytes / 1e9, how);
    frows = rows;
    for (int i = 0; !rc && i < d->nfiles; frows += count[i], i++) {
        rc = sparsefile_cache_load(&d->files[i], frows, count[i], d->dxpl_ind);
        if (d->opt.progress) d->opt.progress();
    }
    free(count);
    free(rows);
    return rc;
}

/* Sparse files: the batch capacity; with the memory cache: the rank's rows in memory
 * (then no read touches a file, so the prefetch thread serves every file). Agreed. */
static int prepare_rows(Dataset *d) {
    int rc = agree_fail_together(d->comm, d->info.sparse_files ? count_batch_entries(d) : 0);
    if (!rc && d->opt.cache == DATA_CACHE_MEMORY && !(rc = agree_fail_together(d->comm, load_cache(d)))) {
        d->info.cached = 1;
        d->info.raw_io = 1;
        d->info.prefetch = d->opt.prefetch;
    }
    d->info.sparse_batch_entries = d->info.x_sparse ? d->batch_entries : 0;
    return rc;
}

static int set_weights(Dataset *d, const long long *train_rows) {
    long long n = d->total[SPLIT_TRAIN];
    const int K = d->opt.unbias_bins;
    float *mass = malloc((size_t)(n ? n : 1) * sizeof *mass);
    d->bin_weight = malloc((size_t)K * sizeof *d->bin_weight);
    if (!mass || !d->bin_weight) {
        free(mass);
        return e2e_fail("%s: out of memory for the unbiasing weights", d->path);
    }
    for (long long i = 0; i < n; i++) mass[i] = d->cols.m[train_rows[i]];
    int capped = unbias_bin_weights(mass, n, K, d->opt.unbias_min, d->opt.unbias_max, d->opt.unbias_max_weight,
                                    d->bin_weight);
    free(mass);
    if (capped < 0) return -1;
    d->info.weight_capped_bins = capped;
    d->info.weight_min = INFINITY;
    d->info.weight_max = 0.0f;
    for (int k = 0; k < K; k++)
        if (d->bin_weight[k] > 0) {
            d->info.weight_min = fminf(d->info.weight_min, d->bin_weight[k]);
            d->info.weight_max = fmaxf(d->info.weight_max, d->bin_weight[k]);
        }
    return 0;
}

/* The buffers a device copies from come from the caller's allocator when it gave one
 * (pinned memory for a GPU); the reader's own working buffers are always malloc'd. */
static void *batch_alloc(Dataset *d, size_t bytes) {
    return d->opt.batch_alloc ? d->opt.batch_alloc(d->opt.batch_alloc_ctx, bytes) : malloc(bytes);
}

static void batch_free(Dataset *d, void *p) {
    if (!p) return;
    if (d->opt.batch_alloc)
        d->opt.batch_free(d->opt.batch_alloc_ctx, p);
    else
        free(p);
}

/* A slot's buffers for rows of sparse files: their entries (x_sparse: the batch's,
 * from the caller's allocator), the planes' starts (x_sparse) or the pixels written
 * (touched: only where positions in a batch fit 32 bits). -1 when out of memory. */
static int make_sparse_slot(Dataset *d, Slot *s) {
    if (!d->info.sparse_files) return 0;
    const size_t e = (size_t)(d->batch_entries ? d->batch_entries : 1);
    if (d->info.x_sparse) {
        s->epos = batch_alloc(d, e * sizeof(uint32_t));
        s->eval = batch_alloc(d, e * sizeof(float));
        s->plane_start = batch_alloc(d, ((size_t)d->opt.batch * d->info.channels + 1) * sizeof *s->plane_start);
        return s->epos && s->eval && s->plane_start ? 0 : -1;
    }
    s->epos = malloc(e * sizeof(uint32_t));
    s->eval = malloc(e * sizeof(float));
    if ((double)d->opt.batch * (double)d->row_floats < 4294967296.0) s->touched = malloc(e * sizeof *s->touched);
    return s->epos && s->eval ? 0 : -1;
}

static int make_slots(Dataset *d) {
    const int B = d->opt.batch;
    int need_stage = 0;
    for (int i = 0; i < d->nfiles; i++) need_stage |= d->files[i].dtype_bytes == 2 && !d->files[i].sparse;
    d->nslots = d->info.prefetch > 0 ? d->info.prefetch + 1 : 1;
    d->slots = calloc((size_t)d->nslots, sizeof *d->slots);
    d->order = malloc((size_t)(d->nlocal[SPLIT_TRAIN] + d->nlocal[SPLIT_VAL] + d->nlocal[SPLIT_TEST] + 1) *
                      sizeof *d->order);
    if (!d->slots || !d->order) return e2e_fail("%s: out of memory for batches", d->path);
    const size_t stage_bytes = (size_t)B * d->row_floats * 2;
    for (int i = 0; i < d->nslots; i++) {
        Slot *s = &d->slots[i];
        /* with x_half the batch is the stage buffer itself */
        s->x = d->info.x_half || d->info.x_sparse ? NULL : batch_alloc(d, (size_t)(B * d->row_floats) * sizeof *s->x);
        const int S = d->info.n_scalars;
        s->scalars = S ? batch_alloc(d, (size_t)(B * S) * sizeof *s->scalars) : NULL;
        s->target = batch_alloc(d, (size_t)B * sizeof *s->target);
        s->weight = batch_alloc(d, (size_t)B * sizeof *s->weight);
        s->mass = malloc((size_t)B * sizeof *s->mass);
        s->index = malloc((size_t)B * sizeof *s->index);
        s->lrows = malloc((size_t)B * sizeof *s->lrows);
        s->stage = !need_stage ? NULL : d->info.x_half ? batch_alloc(d, stage_bytes) : malloc(stage_bytes);
        if ((!s->x && !d->info.x_half && !d->info.x_sparse) || (S && !s->scalars) || !s->target || !s->weight ||
            !s->mass || !s->index || !s->lrows || (need_stage && !s->stage) || make_sparse_slot(d, s))
            return e2e_fail("%s: out of %smemory for a batch of %d rows", d->path,
                             d->opt.batch_alloc ? "the device's host (pinned) memory or " : "", B);
    }
    return 0;
}

static void free_slots(Dataset *d) {
    for (int i = 0; d->slots && i < d->nslots; i++) {
        Slot *s = &d->slots[i];
        batch_free(d, s->x);
        batch_free(d, s->scalars);
        batch_free(d, s->target);
        batch_free(d, s->weight);
        free(s->mass);
        free(s->index);
        free(s->lrows);
        if (d->info.x_half)
            batch_free(d, s->stage);
        else
            free(s->stage);
        if (d->info.x_sparse) {
            batch_free(d, s->epos);
            batch_free(d, s->eval);
            batch_free(d, s->plane_start);
        } else {
            free(s->epos);
            free(s->eval);
        }
        free(s->touched);
    }
    free(d->slots);
    d->slots = NULL;
}

static void stop_thread(Dataset *d);

static void destroy(Dataset *d) {
    stop_thread(d);
    for (int i = 0; i < d->nfiles; i++) jetfile_close(&d->files[i]);
    free(d->files);
    free(d->start);
    columns_free(&d->cols);
    for (int s = 0; s < DATA_SPLITS; s++) free(d->local[s]);
    free(d->scales);
    free(d->factors);
    free(d->bin_weight);
    free(d->order);
    free(d->names);
    free_slots(d);
    if (d->dxpl_ind >= 0) H5Pclose(d->dxpl_ind);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    MPI_Comm_free(&d->comm);
    free(d->path);
    free(d);
}

/* What the open files and the options make of the dataset (DatasetInfo). */
static void fill_info(Dataset *d, const DatasetOptions *o) {
    const JetFile *f0 = &d->files[0];
    DatasetInfo *in = &d->info;
    in->n_total = d->start[d->nfiles];
    in->channels = f0->c;
    in->height = f0->h;
    in->width = f0->w;
    const JetInputs *ji = &d->cols.inputs;
    in->n_scalars = ji->n_scalars;
    for (int k = 0; k < ji->n_scalars; k++) d->scalar_names[k] = ji->scalar[k];
    in->scalar_names = d->scalar_names;
    in->scalar_scales = ji->scale;
    in->channel_kinds = ji->kind;
    in->negative_masses = d->cols.negative_mass;
    in->dtype_bytes = f0->dtype_bytes;
    in->n_files = d->nfiles;
    in->pixel_size = f0->pixel_size;
    in->raw_io = 1;
    for (int i = 0; i < d->nfiles; i++) in->raw_io &= use_raw(d, &d->files[i]);
    in->prefetch = in->raw_io ? o->prefetch : 0;
    in->weight_min = in->weight_max = 1.0f;
    in->preprocessed = o->preprocess != 0;
    in->mass_scale = o->mass_scale;
    in->x_half = !o->preprocess && o->keep_half;
    in->x_sparse = !o->preprocess && o->keep_sparse;
    for (int i = 0; i < d->nfiles; i++) {
        const JetFile *f = &d->files[i];
        in->x_half &= f->dtype_bytes == 2 && !f->sparse;
        in->sparse_files += f->sparse != NULL;
        in->x_sparse &= f->sparse && f->dtype_bytes == f0->dtype_bytes;
    }
}

int dataset_open(Dataset **out, const DatasetOptions *o) {
    *out = NULL;
    Dataset *d = calloc(1, sizeof *d);
    if (!d) return e2e_fail("out of memory");
    MPI_Comm_dup(o->comm, &d->comm);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->nranks);
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->opt = *o;
    d->split = -1;
    d->dxpl_ind = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(d->dxpl_ind, H5FD_MPIO_INDEPENDENT);
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    long long *train_rows = NULL;
    int rc = agree_fail_together(d->comm, check_options(o));
    if (!rc) {
        d->path = strdup(o->path);
        d->opt.path = d->path;
        d->opt.scales = NULL;
        rc = agree_fail_together(d->comm, d->path ? 0 : e2e_fail("out of memory"));
    }
    if (!rc) rc = open_files(d);
    if (!rc) rc = read_columns(d);
    if (!rc) rc = agree_fail_together(d->comm, jet_list_check_copies(d->files, d->nfiles, d->cols.m));
    if (!rc) {
        const JetFile *f0 = &d->files[0];
        fill_info(d, o);
        DatasetInfo *in = &d->info;
        d->row_floats = (long long)f0->c * f0->h * f0->w;
        d->names = calloc((size_t)f0->c, sizeof *d->names);
        d->scales = malloc((size_t)f0->c * sizeof *d->scales);
        d->factors = malloc((size_t)f0->c * sizeof *d->factors);
        rc = d->names && d->scales && d->factors ? 0 : e2e_fail("out of memory");
        for (int c = 0; !rc && c < f0->c; c++) d->names[c] = f0->n_names ? f0->names[c] : "";
        in->channel_names = d->names;
        if (!rc) rc = make_split(d, &train_rows);
        rc = agree_fail_together(d->comm, rc);
    }
    if (!rc && o->scales && o->n_scales && o->n_scales != d->info.channels)
        rc = agree_fail_together(d->comm, e2e_fail("%s has %d channels but %s %s made for %d; evaluate or resume it "
                                           "on data with the channels it was trained on", d->path,
                                           d->info.channels, o->scales_from ? o->scales_from : "the given scales",
                                           o->scales_from ? "was" : "were", o->n_scales));
    if (!rc) rc = prepare_rows(d);
    if (!rc && o->scales) {
        for (int c = 0; !rc && c < d->info.channels; c++)
            if (!(o->scales[c] > 0.0f) || !isfinite(o->scales[c]))
                rc = e2e_fail("%s: given scale %d is %g; scales must be positive and finite", d->path, c, o->scales[c]);
            else d->scales[c] = o->scales[c];
        rc = agree_fail_together(d->comm, rc);
    } else if (!rc) {
        rc = d->total[SPLIT_TRAIN] ? compute_scales(d)
                                   : agree_fail_together(d->comm, e2e_fail("%s: no training split to compute the scales "
                                                              "from: give the scales", d->path));
    }
    /* the multipliers preprocess_images uses (1/scale), for a path that preprocesses itself */
    for (int c = 0; !rc && c < d->info.channels; c++) d->factors[c] = 1.0f / d->scales[c];
    d->prep = (InputPrep){.scale = d->factors, .threshold = o->zero_suppress, .kind = d->info.channel_kinds};
    /* weights come from the training split's masses; without one there are none */
    if (!rc && o->unbias && d->total[SPLIT_TRAIN]) rc = agree_fail_together(d->comm, set_weights(d, train_rows));
    if (!rc) rc = agree_fail_together(d->comm, make_slots(d));
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

const DatasetInfo *dataset_info(const Dataset *d) { return &d->info; }
long long dataset_split_total(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->total[s] : 0; }
long long dataset_split_local(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->nlocal[s] : 0; }
long dataset_steps_per_epoch(const Dataset *d, Split s) { return s >= 0 && s < DATA_SPLITS ? d->steps[s] : 0; }
const float *dataset_scales(const Dataset *d) { return d->scales; }
const float *dataset_masses(const Dataset *d) { return d->cols.m; }
const char *dataset_file_path(const Dataset *d, int i) { return i >= 0 && i < d->nfiles ? d->files[i].path : ""; }

const float *dataset_prep_factors(const Dataset *d, float *zero_suppress) {
    if (zero_suppress) *zero_suppress = d->opt.zero_suppress;
    return d->factors;
}

const struct JetInputs *dataset_inputs(const Dataset *d) { return &d->cols.inputs; }

const long long *dataset_split_rows(const Dataset *d, Split s, long long *n) {
    *n = dataset_split_local(d, s);
    return s >= 0 && s < DATA_SPLITS ? d->local[s] : NULL;
}

/* ---- batches ---- */

/* rows[0..n) into the slot's images: dense rows read and preprocessed a run at a time,
 * rows of sparse files densified (x_sparse: kept as entries) */
static int fill_images(Dataset *d, Slot *s, const long long *rows, long long n) {
    const int C = d->info.channels;
    const long long hw = (long long)d->info.height * d->info.width;
    if (d->info.x_sparse) return fill_sparse_batch(d, s, rows, n);
    if (d->info.sparse_files) clear_x(d, s);
    /* read a run of adjacent rows (up to ~2 MB), then preprocess it while it is still
     * in cache: one pass over memory instead of two */
    const long long run_max = ((2LL << 20) / (d->row_floats * 4)) + 1;
    for (long long i = 0; i < n;) {
        if (d->files[file_of(d, rows[i])].sparse) { /* every row of the batch in this file at once */
            long long k = same_file(d, rows + i, n - i);
            if (densify_rows(d, s, rows + i, k, i)) return -1;
            i += k;
            continue;
        }
        long long k = run_length(rows + i, same_file(d, rows + i, n - i), run_max);
        s->x_clean = 0; /* a dense row fills every pixel */
        if (d->info.x_half) {
            /* the rows go to the batch as stored; only the NaN/Inf check reads them */
            uint16_t *h = (uint16_t *)s->stage + i * d->row_floats;
            if (read_rows(d, rows + i, k, NULL, h, s->lrows, d->dxpl_ind)) return -1;
            for (long long j = i; j < i + k; j++) {
                long long bad = half_count_nonfinite(h + (j - i) * d->row_floats, (size_t)d->row_floats);
                if (bad) return reject_nonfinite(d, rows[j], bad);
            }
            i += k;
            continue;
        }
        if (read_rows(d, rows + i, k, s->x + i * d->row_floats, s->stage, s->lrows, d->dxpl_ind)) return -1;
        for (long long j = i; j < i + k; j++) {
            float *xj = s->x + j * d->row_floats;
            long long bad = d->opt.preprocess ? preprocess_images(xj, 1, C, hw, d->scales, d->info.channel_kinds,
                                                                  d->opt.zero_suppress)
                                              : count_nonfinite(xj, d->row_floats, NULL);
            if (bad) return reject_nonfinite(d, rows[j], bad);
        }
        i += k;
    }
    return 0;
}

static int fill_step(Dataset *d, Slot *s, long step) {
    const long long B = d->opt.batch, first = step * B;
    long long n = d->split == SPLIT_TRAIN ? B : (d->nlocal[d->split] - first < B ? d->nlocal[d->split] - first : B);
    const long long *rows = d->order + first;
    s->n = (int)n;
    if (fill_images(d, s, rows, n)) {
        s->x_clean = 0; /* which pixels a failed fill wrote is not known */
        return -1;
    }
    const int S = d->info.n_scalars;
    const float *m = d->cols.m;
    for (long long i = 0; i < n; i++) {
        long long g = rows[i];
        for (int k = 0; k < S; k++) s->scalars[i * S + k] = d->cols.scalars[g * S + k];
        s->mass[i] = m[g];
        s->target[i] = m[g] / d->opt.mass_scale;
        s->index[i] = g;
        if (d->bin_weight)
            s->weight[i] = d->bin_weight[unbias_bin(m[g], d->opt.unbias_bins, d->opt.unbias_min, d->opt.unbias_max)];
    }
    return 0;
}

static void finish_slot(Dataset *d, Slot *s, int rc) {
    s->rc = rc;
    if (rc) snprintf(s->err, sizeof s->err, "%s", e2e_error());
    pthread_mutex_lock(&d->mu);
    s->state = SLOT_READY;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void *producer(void *arg) {
    Dataset *d = arg;
    for (long step = d->produce_from; step < d->cur_steps; step++) {
        Slot *s = &d->slots[step % d->nslots];
        pthread_mutex_lock(&d->mu);
        while (s->state != SLOT_FREE && !d->cancel) pthread_cond_wait(&d->cv, &d->mu);
        int stop = d->cancel;
        if (!stop) s->state = SLOT_FILLING;
        pthread_mutex_unlock(&d->mu);
        if (stop) break;
        int rc = fill_step(d, s, step);
        finish_slot(d, s, rc);
        if (rc) break;
    }
    return NULL;
}

static void stop_thread(Dataset *d) {
    if (d->running) {
        pthread_mutex_lock(&d->mu);
        d->cancel = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thread, NULL);
        d->running = d->cancel = 0;
    }
    for (int i = 0; d->slots && i < d->nslots; i++) d->slots[i].state = SLOT_FREE;
    d->held = NULL;
}

int dataset_begin_epoch(Dataset *d, Split s, long epoch, long first_step) {
    if (s < 0 || s >= DATA_SPLITS) return e2e_fail("%s: unknown split %d", d->path, (int)s);
    if (d->total[s] == 0) return e2e_fail("%s: the %s split is empty (its fraction is 0)", d->path, SPLIT_NAME[s]);
    if (epoch < 0) return e2e_fail("%s: epoch must be >= 0 (got %ld)", d->path, epoch);
    if (first_step < 0 || first_step > d->steps[s])
        return e2e_fail("%s: first_step %ld is outside the %ld steps of a %s epoch", d->path, first_step,
                         d->steps[s], SPLIT_NAME[s]);
    stop_thread(d);
    memcpy(d->order, d->local[s], (size_t)d->nlocal[s] * sizeof *d->order);
    if (s == SPLIT_TRAIN)
        shuffle(d->order, d->nlocal[s],
                (uint64_t[]){d->opt.seed, TAG_SHUFFLE, (uint64_t)epoch, (uint64_t)d->nranks, (uint64_t)d->rank}, 5);
    d->split = s;
    d->cur_steps = d->steps[s];
    d->next_step = first_step;
    d->failed = 0;
    if (d->info.prefetch > 0 && first_step < d->cur_steps) {
        d->produce_from = first_step;
        d->running = pthread_create(&d->thread, NULL, producer, d) == 0; /* else: read in the caller */
    }
    return 0;
}

int dataset_next(Dataset *d, Batch *b) {
    if (d->split < 0) return e2e_fail("%s: dataset_next before dataset_begin_epoch", d->path);
    if (d->failed) return e2e_fail("%s", d->fail_msg);
    if (d->held) {
        pthread_mutex_lock(&d->mu);
        d->held->state = SLOT_FREE;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
        d->held = NULL;
    }
    if (d->next_step >= d->cur_steps) return 0;
    Slot *s = &d->slots[d->next_step % d->nslots];
    if (d->running) {
        pthread_mutex_lock(&d->mu);
        while (s->state != SLOT_READY) pthread_cond_wait(&d->cv, &d->mu);
        pthread_mutex_unlock(&d->mu);
    } else {
        H5Quiet quiet; /* the HDF5 path runs here, in the caller */
        h5_quiet_begin(&quiet);
        finish_slot(d, s, fill_step(d, s, d->next_step));
        h5_quiet_end(&quiet);
    }
    if (s->rc) {
        d->failed = 1;
        snprintf(d->fail_msg, sizeof d->fail_msg, "%s", s->err);
        return e2e_fail("%s", s->err);
    }
    d->held = s;
    d->next_step++;
    *b = (Batch){.n = s->n, .x = d->info.x_half || d->info.x_sparse ? NULL : s->x,
                 .scalars = s->scalars, .target = s->target, .weight = d->bin_weight ? s->weight : NULL,
                 .mass = s->mass, .index = s->index, .x_half = d->info.x_half ? s->stage : NULL,
                 .prep = d->info.preprocessed ? NULL : &d->prep};
    if (d->info.x_sparse) b->sparse = s->sparse;
    return 1;
}

void dataset_close(Dataset *d) {
    if (!d) return;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    destroy(d);
    h5_quiet_end(&quiet);
}

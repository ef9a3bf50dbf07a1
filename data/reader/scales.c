/* The scales (scales.h): the given ones checked, or the statistics pass. The pass reads
 * this rank's training rows file by file, in file order, a window of consecutive rows
 * at a time, every rank the same number of reads (collective HDF5 reads see every rank
 * in every call), into a histogram of float32 bit patterns whose counts are summed over
 * the ranks: the scales are the same for any rank count. */
#include "scales.h"

#include <math.h>
#include <stdlib.h>

#include "agree.h"
#include "error.h"
#include "plausible.h"
#include "preprocess.h"
#include "progress.h"
#include "sparsefile.h"

#define STATS_WINDOW_BYTES (16LL << 20)

int scales_check_count(const DatasetOptions *o, int channels, const char *path) {
    if (!o->scales || !o->n_scales || o->n_scales == channels) return 0;
    return e2e_fail("%s has %d channels but %s %s made for %d; evaluate or resume it on data with the channels it "
                    "was trained on", path, channels, o->scales_from ? o->scales_from : "the given scales",
                    o->scales_from ? "was" : "were", o->n_scales);
}

int scales_take_given(Scaling *sc, const DatasetOptions *o, int channels, const char *path) {
    int rc = 0;
    for (int c = 0; !rc && c < channels; c++)
        if (!(o->scales[c] > 0.0f) || !isfinite(o->scales[c]))
            rc = e2e_fail("%s: given scale %d is %g; scales must be positive and finite", path, c, o->scales[c]);
        else sc->scale[c] = o->scales[c];
    return rc;
}

void scales_finish(Scaling *sc, int channels, float zero_suppress, const unsigned char *kinds) {
    for (int c = 0; c < channels; c++) sc->factor[c] = 1.0f / sc->scale[c];
    sc->prep = (InputPrep){.scale = sc->factor, .threshold = zero_suppress, .kind = kinds};
}

/* The pass: what it reads, its buffers (a window of W rows), what it found. */
typedef struct {
    const RowFiles *rf;
    long long *rows, n;        /* this rank's rows to read, in file order */
    long long W, *lrows;       /* the window, in rows; its file rows */
    float *x;                  /* the window's images (sparse files: their values) */
    void *stage;               /* float16 rows before decoding */
    char *pos;                 /* sparse files: the window's positions */
    float *scratch;            /* sparse files: one row's values as float32 */
    ImageCounts *counts;       /* per file: images read, empty ones, pixels kept, negative */
} StatsPass;

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* buffers, and the rows: the rank's training rows, or an even sample of about
 * scale_rows of the split's; local result */
static int stats_begin(StatsPass *p, PixelHist *h, const SplitRows *sp, const DatasetOptions *o,
                       const DatasetInfo *info) {
    const long long rf = p->rf->row_floats, W0 = STATS_WINDOW_BYTES / (rf * 4), nl = sp->nlocal[SPLIT_TRAIN];
    const int nf = p->rf->n, sparse = info->sparse_files;
    p->W = W0 > 0 ? W0 : 1;
    p->n = nl;
    if (o->scale_rows > 0 && sp->total[SPLIT_TRAIN] > o->scale_rows)
        p->n = (o->scale_rows * nl + sp->total[SPLIT_TRAIN] - 1) / sp->total[SPLIT_TRAIN];
    p->rows = malloc((size_t)(nl ? nl : 1) * sizeof *p->rows);
    p->lrows = malloc((size_t)p->W * sizeof *p->lrows);
    p->x = malloc((size_t)(p->W * rf) * sizeof *p->x);
    p->stage = malloc((size_t)(p->W * rf * 2));
    p->counts = calloc((size_t)nf, sizeof *p->counts);
    p->pos = sparse ? malloc((size_t)(p->W * rf) * sizeof(uint32_t)) : NULL;
    p->scratch = sparse ? malloc((size_t)rf * sizeof *p->scratch) : NULL;
    int rc = p->rows && p->lrows && p->x && p->stage && p->counts && (!sparse || (p->pos && p->scratch))
                 ? pixel_hist_init(h, info->channels) : e2e_fail("%s: out of memory for statistics", o->path);
    h->kinds = info->channel_kinds; /* a signed channel's scale is of |x| */
    if (!rc) {
        for (long long i = 0; i < p->n; i++) p->rows[i] = sp->local[SPLIT_TRAIN][p->n == nl ? i : i * nl / p->n];
        qsort(p->rows, (size_t)p->n, sizeof *p->rows, cmp_ll); /* file order: sequential reads */
    }
    return rc;
}

static void stats_end(StatsPass *p, PixelHist *h) {
    pixel_hist_free(h);
    free(p->counts);
    free(p->rows);
    free(p->lrows);
    free(p->x);
    free(p->stage);
    free(p->pos);
    free(p->scratch);
}

/* rows[0..n) of one sparse file into the histogram (equal to their dense rows'),
 * checked for non-finite values; empty: that file's count of empty images */
static int stats_sparse(StatsPass *p, const long long *rows, long long n, PixelHist *h, long long *empty) {
    const JetFile *f = rows_read_sparse(p->rf, rows, n, p->lrows, p->pos, (char *)p->x);
    if (!f) return -1;
    const struct SparseFile *sf = f->sparse;
    const char *v = (const char *)p->x;
    for (long long i = 0; i < n; i++) {
        long long e = sparsefile_row_entries(sf, p->lrows[i]), bad = values_nonfinite(v, e, sf->g.value_bytes);
        if (bad) return rows_reject_nonfinite(p->rf, rows[i], bad);
        *empty += values_all_zero(v, e, sf->g.value_bytes);
        sparse_hist_add(h, &sf->g, sf->counts + p->lrows[i] * f->c, v, p->scratch);
        v += e * sf->g.value_bytes;
    }
    return 0;
}

/* rows[0..n) of dense file fi into the histogram, checked; n == 0 joins a collective
 * HDF5 read with an empty one */
static int stats_dense(StatsPass *p, int fi, const long long *rows, long long n, PixelHist *h, long long hw,
                       hid_t dxpl) {
    const RowFiles *rf = p->rf;
    int rc = 0;
    if (n > 0) rc = rows_read(rf, rows, n, p->x, p->stage, p->lrows, dxpl);
    else if (!rows_raw(rf, &rf->file[fi])) rc = jetfile_read_rows_hdf5(&rf->file[fi], NULL, 0, p->x, p->stage, dxpl);
    for (long long i = 0; !rc && i < n; i++) {
        long long bad = count_nonfinite(p->x + i * rf->row_floats, rf->row_floats, NULL);
        if (bad) rc = rows_reject_nonfinite(rf, rows[i], bad);
        p->counts[fi].empty += all_zero(p->x + i * rf->row_floats, rf->row_floats);
    }
    if (!rc) pixel_hist_add(h, p->x, n, hw);
    return rc;
}

/* the histogram's pixels kept by the preprocessing and negative ones, all channels */
static void hist_totals(const PixelHist *h, long long *kept, long long *negative) {
    *kept = *negative = 0;
    for (int c = 0; c < h->channels; c++) {
        *kept += (long long)pixel_hist_kept(h, c);
        *negative += (long long)h->negative[c];
    }
}

/* File fi's rows p->rows[*at..) into the histogram, one run of at most W consecutive
 * rows a read, as many reads on every rank (the most any rank needs); its pixels
 * counted (plausible.h). Agreed. */
static int stats_file(StatsPass *p, int fi, long long *at, PixelHist *h, long long hw, hid_t dxpl,
                      const DatasetOptions *o, MPI_Comm comm) {
    long long from = *at, pieces = 0, iters, kept0, neg0, kept1, neg1;
    hist_totals(h, &kept0, &neg0);
    while (*at < p->n && p->rows[*at] < p->rf->start[fi + 1]) (*at)++;
    for (long long i = from; i < *at; pieces++) i += rows_run_length(p->rows + i, *at - i, p->W);
    MPI_Allreduce(&pieces, &iters, 1, MPI_LONG_LONG, MPI_MAX, comm);
    int rc = 0;
    for (long long it = 0, lo = from; !rc && it < iters; it++) {
        long long n = lo < *at ? rows_run_length(p->rows + lo, *at - lo, p->W) : 0;
        if (p->rf->file[fi].sparse) { /* independent reads: no collective to join */
            if (n > 0) rc = stats_sparse(p, p->rows + lo, n, h, &p->counts[fi].empty);
        } else {
            rc = stats_dense(p, fi, p->rows + lo, n, h, hw, dxpl);
        }
        p->counts[fi].checked += n;
        rc = agree_fail_together(comm, rc);
        progress_mark();  /* a long pass is not a stuck rank (net/base/progress.h) */
        lo += n;
    }
    hist_totals(h, &kept1, &neg1);
    p->counts[fi].kept += kept1 - kept0;
    p->counts[fi].negative += neg1 - neg0;
    return rc;
}

/* What the pass found, summed over the ranks: a file of nothing but empty images (or of
 * no pixel the preprocessing keeps) is refused, empty images warned about
 * (plausible.h). Agreed. */
static int check_images(StatsPass *p, DatasetInfo *info, const char *path, MPI_Comm comm) {
    const int nf = p->rf->n;
    int rank;
    MPI_Comm_rank(comm, &rank);
    _Static_assert(sizeof(ImageCounts) == 4 * sizeof(long long), "ImageCounts is 4 counts");
    MPI_Allreduce(MPI_IN_PLACE, p->counts, 4 * nf, MPI_LONG_LONG, MPI_SUM, comm);
    const char **paths = malloc((size_t)nf * sizeof *paths);
    int rc = paths ? 0 : e2e_fail("%s: out of memory", path);
    for (int i = 0; !rc && i < nf; i++) {
        paths[i] = p->rf->file[i].path;
        info->empty_images += p->counts[i].empty;
        info->images_checked += p->counts[i].checked;
    }
    if (!rc) rc = plausible_images(paths, nf, p->counts, rank == 0);
    free(paths);
    return agree_fail_together(comm, rc);
}

int scales_compute(Scaling *sc, DatasetInfo *info, const RowFiles *rf, const SplitRows *sp,
                   const DatasetOptions *o, MPI_Comm comm) {
    StatsPass p = {.rf = rf};
    PixelHist h = {0};
    const long long hw = (long long)info->height * info->width;
    int rc = agree_fail_together(comm, stats_begin(&p, &h, sp, o, info));
    if (!rc) {
        hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
        H5Pset_dxpl_mpio(dxpl, o->io == DATA_IO_HDF5_COLLECTIVE ? H5FD_MPIO_COLLECTIVE : H5FD_MPIO_INDEPENDENT);
        long long at = 0;
        for (int fi = 0; !rc && fi < rf->n; fi++) rc = stats_file(&p, fi, &at, &h, hw, dxpl, o, comm);
        H5Pclose(dxpl);
    }
    if (!rc) rc = check_images(&p, info, o->path, comm);
    if (!rc) {
        MPI_Allreduce(MPI_IN_PLACE, h.count, info->channels * PIXEL_HIST_BINS, MPI_UINT64_T, MPI_SUM, comm);
        MPI_Allreduce(MPI_IN_PLACE, h.negative, info->channels, MPI_UINT64_T, MPI_SUM, comm);
        int rank;
        MPI_Comm_rank(comm, &rank);
        plausible_channels(&h, info->channel_names, o->path, rank == 0);
        for (int c = 0; c < info->channels; c++) {
            float q = pixel_hist_quantile(&h, c, o->scale_quantile);
            sc->scale[c] = q > 0.0f ? q : 1.0f; /* a channel with no positive pixel keeps scale 1 */
        }
    }
    stats_end(&p, &h);
    return rc;
}

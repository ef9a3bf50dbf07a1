/* The reader under real mpirun -np 2 (data/reader/dataset.h): splits disjoint and covering,
 * the same for 1 and 2 ranks, by whole blocks of 64 rows (not chunks); shuffling reproducible per seed and
 * different between epochs; first_step resume; prefetch and HDF5 reads equal raw
 * reads; batch contents against direct HDF5 reads and preprocessing by hand; float16
 * files; the scale statistic; flat mass after unbiasing (a chi-square test that fails
 * on the raw masses); file lists; float16 batches kept as stored (keep_half). */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mpi.h"
#include "recorded_alloc.h"
#include "dataset.h"
#include "half.h"
#include "preprocess.h"
#include "synth_file.h"

static int rank, nranks;
static char dir[256];

static void make_file(const char *name, long long n, int size, int channels, int dtype_bytes, long long chunk,
                      uint64_t seed, char *path) {
    snprintf(path, 512, "%s/%s", dir, name);
    synth_file_or_abort(path, n, size, channels, dtype_bytes, chunk, seed);
}

static Dataset *open_ds(const char *path, MPI_Comm comm, uint64_t seed, int batch, int prefetch, int io) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.comm = comm;
    o.seed = seed;
    o.batch = batch;
    o.prefetch = prefetch;
    o.io = io;
    Dataset *d = NULL;
    if (dataset_open(&d, &o)) {
        fprintf(stderr, "rank %d: dataset_open %s: %s\n", rank, path, e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return d;
}

/* every rank's rows of a split, gathered on every rank */
static long long *gather_rows(const Dataset *d, Split s, long long *total) {
    long long n;
    const long long *rows = dataset_split_rows(d, s, &n);
    int cnt = (int)n, *counts = malloc(nranks * sizeof *counts), *displs = malloc(nranks * sizeof *displs);
    MPI_Allgather(&cnt, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD);
    *total = 0;
    for (int r = 0; r < nranks; r++) displs[r] = (int)*total, *total += counts[r];
    long long *all = malloc((size_t)(*total + 1) * sizeof *all);
    MPI_Allgatherv(rows, cnt, MPI_LONG_LONG, all, counts, displs, MPI_LONG_LONG, MPI_COMM_WORLD);
    free(counts);
    free(displs);
    return all;
}

/* one epoch's batches, concatenated */
typedef struct {
    long long n;
    long long *index;
    float *x, *target, *weight, *mass, *scalars;
    uint16_t *xh; /* the batches' x_half, when they carry it (x then holds it decoded) */
    int nb;
} Epoch;

static Epoch run_epoch(Dataset *d, Split s, long epoch, long first_step) {
    const DatasetInfo *in = dataset_info(d);
    const long long rowf = (long long)in->channels * in->height * in->width;
    long long cap = dataset_split_local(d, s) + 1;
    Epoch e = {0};
    e.index = malloc(cap * sizeof *e.index);
    e.x = malloc(cap * rowf * sizeof *e.x);
    e.target = malloc(cap * sizeof(float));
    e.weight = malloc(cap * sizeof(float));
    e.mass = malloc(cap * sizeof(float));
    e.scalars = malloc(cap * 2 * sizeof(float));
    CHECK(dataset_begin_epoch(d, s, epoch, first_step) == 0, "begin_epoch: %s", e2e_error());
    Batch b;
    int r;
    while ((r = dataset_next(d, &b)) == 1) {
        memcpy(e.index + e.n, b.index, b.n * sizeof *b.index);
        CHECK(!b.x != !b.x_half && !b.x_half == !in->x_half, "a batch carries x or x_half, as info.x_half says");
        if (b.x_half) {
            if (!e.xh) e.xh = malloc(cap * rowf * sizeof *e.xh);
            memcpy(e.xh + e.n * rowf, b.x_half, b.n * rowf * sizeof *b.x_half);
            half_to_float_n(b.x_half, e.x + e.n * rowf, (size_t)(b.n * rowf));
        } else memcpy(e.x + e.n * rowf, b.x, b.n * rowf * sizeof *b.x);
        memcpy(e.target + e.n, b.target, b.n * sizeof(float));
        memcpy(e.mass + e.n, b.mass, b.n * sizeof(float));
        memcpy(e.scalars + 2 * e.n, b.scalars, 2 * b.n * sizeof(float));
        if (b.weight) memcpy(e.weight + e.n, b.weight, b.n * sizeof(float));
        else e.weight[e.n] = NAN;
        e.n += b.n;
        e.nb++;
    }
    CHECK(r == 0, "epoch ended with %d: %s", r, e2e_error());
    return e;
}

static void free_epoch(Epoch *e) {
    free(e->xh);
    free(e->index);
    free(e->x);
    free(e->target);
    free(e->weight);
    free(e->mass);
    free(e->scalars);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* X_jet row r and the columns straight from the file (serial HDF5) */
static void read_ref(const char *path, long long r, float *x, float *col4) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), dx = H5Dopen2(f, "X_jet", H5P_DEFAULT);
    hid_t fs = H5Dget_space(dx);
    hsize_t dims[4], start[4] = {(hsize_t)r, 0, 0, 0};
    H5Sget_simple_extent_dims(fs, dims, NULL);
    dims[0] = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, dims, NULL);
    hid_t ms = H5Screate_simple(4, dims, NULL);
    H5Dread(dx, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(dx);
    const char *names[4] = {"m", "pt", "ieta", "iphi"};
    for (int k = 0; k < 4; k++) {
        hid_t dc = H5Dopen2(f, names[k], H5P_DEFAULT), cs = H5Dget_space(dc);
        hsize_t one = 1, st = (hsize_t)r;
        H5Sselect_hyperslab(cs, H5S_SELECT_SET, &st, NULL, &one, NULL);
        hid_t m1 = H5Screate_simple(1, &one, NULL);
        H5Dread(dc, H5T_NATIVE_FLOAT, m1, cs, H5P_DEFAULT, &col4[k]);
        H5Sclose(m1);
        H5Sclose(cs);
        H5Dclose(dc);
    }
    H5Fclose(f);
}

static void test_splits(const char *path, long long N, long long block) {
    Dataset *d = open_ds(path, MPI_COMM_WORLD, 5, 8, 2, DATA_IO_AUTO);
    char *seen = calloc(N, 1);
    const long long want[3] = {(long long)floor(0.9 * N + 0.5), 0, 0};
    long long sizes[3];
    for (int s = 0; s < 3; s++) {
        long long total, *all = gather_rows(d, s, &total);
        sizes[s] = total;
        CHECK(total == dataset_split_total(d, s), "split %d: gathered %lld, total %lld", s, total, dataset_split_total(d, s));
        long long local = dataset_split_local(d, s);
        CHECK(local == total / nranks || local == total / nranks + 1, "split %d: local share %lld of %lld", s, local, total);
        int dup = 0, out = 0;
        for (long long i = 0; i < total; i++) {
            if (all[i] < 0 || all[i] >= N) out++;
            else dup += seen[all[i]]++ > 0;
        }
        CHECK(dup == 0 && out == 0, "split %d: %d rows seen twice, %d out of range", s, dup, out);
        free(all);
    }
    long long missing = 0;
    for (long long i = 0; i < N; i++) missing += !seen[i];
    CHECK(missing == 0, "%lld rows in no split", missing);
    CHECK(sizes[0] == want[0] && sizes[1] + sizes[2] == N - want[0] && llabs(sizes[1] - sizes[2]) <= 1,
          "split sizes %lld %lld %lld", sizes[0], sizes[1], sizes[2]);

    /* whole blocks of rows (not chunks): at most the blocks at the two cuts hold rows of
     * two splits */
    int *splits_of = calloc(N / block + 1, sizeof(int)), mixed = 0; /* a bit a split */
    for (int s = 0; s < 3; s++) {
        long long total, *all = gather_rows(d, s, &total);
        for (long long i = 0; i < total; i++) splits_of[all[i] / block] |= 1 << s;
        free(all);
    }
    for (long long i = 0; i <= N / block; i++) mixed += splits_of[i] != 0 && (splits_of[i] & (splits_of[i] - 1)) != 0;
    CHECK(mixed <= 2, "%d blocks of %lld rows are shared between splits", mixed, block);
    free(splits_of);

    /* steps: TRAIN the same everywhere, VAL this rank's ceil(local / batch) */
    long st = dataset_steps_per_epoch(d, SPLIT_TRAIN), lo, hi;
    MPI_Allreduce(&st, &lo, 1, MPI_LONG, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(&st, &hi, 1, MPI_LONG, MPI_MAX, MPI_COMM_WORLD);
    CHECK(lo == hi && st == want[0] / nranks / 8, "train steps %ld (min %ld max %ld)", st, lo, hi);
    CHECK(dataset_steps_per_epoch(d, SPLIT_VAL) == (dataset_split_local(d, SPLIT_VAL) + 7) / 8, "val steps");

    /* one rank alone sees the same split (as a set), and another seed another split */
    long long total, *val2 = gather_rows(d, SPLIT_VAL, &total);
    qsort(val2, total, sizeof *val2, cmp_ll);
    if (rank == 0) {
        Dataset *d1 = open_ds(path, MPI_COMM_SELF, 5, 8, 0, DATA_IO_AUTO);
        long long n1;
        const long long *v1 = dataset_split_rows(d1, SPLIT_VAL, &n1);
        long long *sorted = malloc(n1 * sizeof *sorted);
        memcpy(sorted, v1, n1 * sizeof *sorted);
        qsort(sorted, n1, sizeof *sorted, cmp_ll);
        CHECK(n1 == total && !memcmp(sorted, val2, n1 * sizeof *sorted), "1-rank and 2-rank validation sets differ");
        for (int c = 0; c < dataset_info(d)->channels; c++)
            CHECK(dataset_scales(d1)[c] == dataset_scales(d)[c], "scale %d: 1 rank %g, 2 ranks %g", c,
                  dataset_scales(d1)[c], dataset_scales(d)[c]);
        free(sorted);
        dataset_close(d1);
    }
    Dataset *d6 = open_ds(path, MPI_COMM_WORLD, 6, 8, 2, DATA_IO_AUTO);
    long long total6, *val6 = gather_rows(d6, SPLIT_VAL, &total6);
    qsort(val6, total6, sizeof *val6, cmp_ll);
    CHECK(total6 != total || memcmp(val6, val2, total * sizeof *val6), "seeds 5 and 6 give the same validation set");
    free(val2);
    free(val6);
    dataset_close(d6);
    free(seen);
    dataset_close(d);
}

static void test_epochs(const char *path) {
    const int B = 8;
    Dataset *d = open_ds(path, MPI_COMM_WORLD, 5, B, 2, DATA_IO_AUTO);
    const long steps = dataset_steps_per_epoch(d, SPLIT_TRAIN);
    const long long rowf = (long long)dataset_info(d)->channels * dataset_info(d)->height * dataset_info(d)->width;
    Epoch e0 = run_epoch(d, SPLIT_TRAIN, 0, 0), e1 = run_epoch(d, SPLIT_TRAIN, 1, 0);
    CHECK(e0.nb == steps && e0.n == steps * B, "train epoch: %d batches, %lld samples", e0.nb, e0.n);
    /* the rows come from this rank's training share, each once */
    long long nl;
    const long long *mine = dataset_split_rows(d, SPLIT_TRAIN, &nl);
    long long *sorted = malloc(nl * sizeof *sorted), *got = malloc(e0.n * sizeof *got);
    memcpy(sorted, mine, nl * sizeof *sorted);
    qsort(sorted, nl, sizeof *sorted, cmp_ll);
    memcpy(got, e0.index, e0.n * sizeof *got);
    qsort(got, e0.n, sizeof *got, cmp_ll);
    int foreign = 0, dup = 0;
    for (long long i = 0; i < e0.n; i++) {
        foreign += !bsearch(&got[i], sorted, nl, sizeof *sorted, cmp_ll);
        dup += i && got[i] == got[i - 1];
    }
    CHECK(foreign == 0 && dup == 0, "train epoch: %d rows from elsewhere, %d repeats", foreign, dup);
    CHECK(memcmp(e0.index, e1.index, e0.n * sizeof *e0.index), "epochs 0 and 1 have the same order");
    long long same_pos = 0;
    for (long long i = 0; i < e0.n; i++) same_pos += e0.index[i] == e1.index[i];
    CHECK(same_pos < e0.n / 10, "epochs 0 and 1 agree at %lld of %lld positions", same_pos, e0.n);

    /* reproducible: a fresh open with the same seed gives the same epoch 1 */
    Dataset *again = open_ds(path, MPI_COMM_WORLD, 5, B, 0, DATA_IO_AUTO);
    Epoch a1 = run_epoch(again, SPLIT_TRAIN, 1, 0);
    CHECK(a1.n == e1.n && !memcmp(a1.index, e1.index, e1.n * sizeof *e1.index) &&
              !memcmp(a1.x, e1.x, e1.n * rowf * sizeof(float)),
          "epoch 1 differs between two opens with one seed (prefetch 2 vs 0)");
    /* exact resume: epoch 1 from step 13 is the tail of the uninterrupted epoch 1 */
    Epoch r1 = run_epoch(again, SPLIT_TRAIN, 1, 13);
    long long off = 13LL * B;
    CHECK(r1.n == e1.n - off && !memcmp(r1.index, e1.index + off, r1.n * sizeof *r1.index) &&
              !memcmp(r1.x, e1.x + off * rowf, r1.n * rowf * sizeof(float)) &&
              !memcmp(r1.weight, e1.weight + off, r1.n * sizeof(float)),
          "resume at step 13 differs from the uninterrupted epoch");
    /* the epoch's end and no more */
    Epoch end = run_epoch(again, SPLIT_TRAIN, 1, steps);
    CHECK(end.n == 0, "resume at the last step gives %lld samples", end.n);
    CHECK(dataset_begin_epoch(again, SPLIT_TRAIN, 1, steps + 1) < 0 && strstr(e2e_error(), "first_step"),
          "first_step beyond the epoch is refused: %s", e2e_error());
    free_epoch(&a1);
    free_epoch(&r1);
    free_epoch(&end);
    dataset_close(again);
    Dataset *other = open_ds(path, MPI_COMM_WORLD, 7, B, 2, DATA_IO_AUTO);
    Epoch o0 = run_epoch(other, SPLIT_TRAIN, 0, 0);
    CHECK(o0.n != e0.n || memcmp(o0.index, e0.index, e0.n * sizeof *e0.index), "seeds 5 and 7 give the same order");
    free_epoch(&o0);
    dataset_close(other);

    /* VAL: this rank's rows in split order, a partial last batch, no shuffle */
    Epoch v = run_epoch(d, SPLIT_VAL, 3, 0);
    const long long *vrows = dataset_split_rows(d, SPLIT_VAL, &nl);
    CHECK(v.n == nl && !memcmp(v.index, vrows, nl * sizeof *vrows), "validation epoch: %lld rows of %lld", v.n, nl);

    /* contents: against direct HDF5 reads, preprocessing by hand */
    const float *sc = dataset_scales(d);
    const DatasetInfo *in = dataset_info(d);
    const long long hw = (long long)in->height * in->width;
    float *ref = malloc(rowf * sizeof *ref), col[4];
    int wrong = 0, wrong_cols = 0, out_of_range = 0;
    for (long long i = 0; i < v.n; i++) {
        read_ref(path, v.index[i], ref, col);
        for (long long k = 0; k < rowf; k++) {
            float y = ref[k] / sc[k / hw];
            y = y < 1e-5f ? 0.0f : (y > 1.0f ? 1.0f : y);
            wrong += fabsf(v.x[i * rowf + k] - y) > 1e-6f * y;
            out_of_range += !(v.x[i * rowf + k] >= 0.0f && v.x[i * rowf + k] <= 1.0f);
        }
        wrong_cols += v.mass[i] != col[0] || v.target[i] != col[0] / 500.0f ||
                      v.scalars[2 * i] != col[3] / 360.0f || v.scalars[2 * i + 1] != col[2] / 170.0f;
    }
    CHECK(wrong == 0 && out_of_range == 0, "%d pixels differ from x/scale clipped, %d outside [0, 1]", wrong, out_of_range);
    CHECK(wrong_cols == 0, "%d rows with wrong mass, target or scalars", wrong_cols);
    CHECK(in->raw_io == 1 && in->prefetch == 2, "raw reads %d, prefetch %d", in->raw_io, in->prefetch);
    free(ref);
    free_epoch(&v);

    /* HDF5 reads, independent and collective, give the same batches as raw reads */
    for (int io = DATA_IO_HDF5; io <= DATA_IO_HDF5_COLLECTIVE; io++) {
        Dataset *h = open_ds(path, MPI_COMM_WORLD, 5, B, 2, io);
        CHECK(dataset_info(h)->prefetch == 0 && dataset_info(h)->raw_io == 0, "io %d: prefetch off", io);
        for (int c = 0; c < in->channels; c++) CHECK(dataset_scales(h)[c] == sc[c], "io %d: scale %d differs", io, c);
        Epoch h1 = run_epoch(h, SPLIT_TRAIN, 1, 0);
        CHECK(h1.n == e1.n && !memcmp(h1.x, e1.x, e1.n * rowf * sizeof(float)), "io %d: batches differ from raw", io);
        free_epoch(&h1);
        dataset_close(h);
    }
    free(sorted);
    free(got);
    free_epoch(&e0);
    free_epoch(&e1);
    dataset_close(d);
}

/* the scale is the 0.999 quantile of the positive training pixels, and passing the
 * scales back reproduces them; float16 files hold the float32 data rounded */
static void test_scales_and_half(const char *p32, const char *p16) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = p32;
    o.batch = 8;
    o.preprocess = 0;
    o.seed = 5;
    Dataset *d;
    CHECK(dataset_open(&d, &o) == 0, "open: %s", e2e_error());
    const DatasetInfo *in = dataset_info(d);
    const int C = in->channels;
    const long long hw = (long long)in->height * in->width, rowf = C * hw;
    float sc[8];
    memcpy(sc, dataset_scales(d), C * sizeof *sc);
    long long nl;
    const long long *rows = dataset_split_rows(d, SPLIT_TRAIN, &nl);
    float *x = malloc(rowf * sizeof *x), col[4];
    long long cnt[8][3] = {{0}}; /* positive, above scale * (1 + bin), above scale / (1 + bin) */
    for (long long i = 0; i < nl; i++) {
        read_ref(p32, rows[i], x, col);
        for (long long k = 0; k < rowf; k++) {
            float v = x[k];
            int c = (int)(k / hw);
            if (v <= 0) continue;
            cnt[c][0]++;
            cnt[c][1] += v > sc[c] * 1.0055f;
            cnt[c][2] += v > sc[c] / 1.0055f;
        }
    }
    MPI_Allreduce(MPI_IN_PLACE, cnt, 24, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    for (int c = 0; c < C; c++)
        CHECK((double)cnt[c][1] <= 0.001 * cnt[c][0] + 1 && (double)cnt[c][2] >= 0.001 * cnt[c][0] - 1,
              "channel %d: scale %g is not the 0.999 quantile (%lld positive, %lld / %lld above)", c, sc[c], cnt[c][0],
              cnt[c][1], cnt[c][2]);
    dataset_close(d);

    o.scales = sc;
    sc[0] *= 2.0f; /* a resumed run's stored scales win over the statistic */
    CHECK(dataset_open(&d, &o) == 0, "open with scales: %s", e2e_error());
    CHECK(!memcmp(dataset_scales(d), sc, C * sizeof *sc), "given scales are used as given");
    Epoch e32 = run_epoch(d, SPLIT_VAL, 0, 0);
    dataset_close(d);

    o.path = p16;
    CHECK(dataset_open(&d, &o) == 0, "open float16: %s", e2e_error());
    CHECK(dataset_info(d)->dtype_bytes == 2 && dataset_info(d)->raw_io, "float16 file, raw reads");
    Epoch e16 = run_epoch(d, SPLIT_VAL, 0, 0);
    int wrong = 0;
    for (long long i = 0; i < e16.n * rowf && e16.n == e32.n; i++)
        wrong += e16.x[i] != half_to_float(float_to_half(e32.x[i]));
    CHECK(e16.n == e32.n && !memcmp(e16.index, e32.index, e16.n * sizeof(long long)) && wrong == 0,
          "float16 batches: %d values differ from the float32 data rounded", wrong);
    dataset_close(d);
    o.io = DATA_IO_HDF5; /* float16 through HDF5: read unconverted, decoded by the reader */
    CHECK(dataset_open(&d, &o) == 0, "open float16 through HDF5: %s", e2e_error());
    Epoch h16 = run_epoch(d, SPLIT_VAL, 0, 0);
    CHECK(h16.n == e16.n && !memcmp(h16.x, e16.x, e16.n * rowf * sizeof(float)), "float16: HDF5 and raw reads differ");
    free_epoch(&h16);
    free_epoch(&e32);
    free_epoch(&e16);
    free(x);
    dataset_close(d);
}

/* keep_half: float16 batches handed over as stored, for a device that decodes and
 * preprocesses them itself with dataset_prep_factors; that preprocessing, done here by
 * hand, equals the reader's own bit for bit */
static void test_keep_half(const char *p32, const char *p16) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = p16;
    o.batch = 8;
    o.seed = 9;
    Dataset *d;
    CHECK(dataset_open(&d, &o) == 0, "open float16: %s", e2e_error());
    const DatasetInfo *in = dataset_info(d);
    const int C = in->channels;
    const long long hw = (long long)in->height * in->width, rowf = C * hw;
    CHECK(in->preprocessed && !in->x_half, "default: preprocessed float32 batches");
    Epoch pre = run_epoch(d, SPLIT_TRAIN, 1, 0);
    float sc[8];
    memcpy(sc, dataset_scales(d), C * sizeof *sc);
    dataset_close(d);

    o.preprocess = 0;
    o.keep_half = 1;
    o.scales = sc;
    for (int io = 0; io < 2; io++) { /* raw reads with prefetch, then HDF5 reads */
        o.io = io ? DATA_IO_HDF5 : DATA_IO_AUTO;
        CHECK(dataset_open(&d, &o) == 0, "open float16 with keep_half: %s", e2e_error());
        in = dataset_info(d);
        CHECK(!in->preprocessed && in->x_half, "keep_half on a float16 file: x_half batches");
        float zs = -1.0f;
        const float *f = dataset_prep_factors(d, &zs);
        CHECK(zs == o.zero_suppress, "prep factors: zero suppression %g", zs);
        Epoch h = run_epoch(d, SPLIT_TRAIN, 1, 0);
        CHECK(h.xh && h.n == pre.n && !memcmp(h.index, pre.index, h.n * sizeof *h.index),
              "x_half epoch has the rows of the preprocessed one");
        long long wrong_bits = 0, wrong_prep = 0;
        for (long long i = 0; h.xh && h.n == pre.n && i < h.n; i++) {
            float *ref = malloc(rowf * sizeof *ref), col[4];
            read_ref(p32, h.index[i], ref, col);
            for (long long k = 0; k < rowf; k++) {
                uint16_t bits = h.xh[i * rowf + k];
                wrong_bits += bits != float_to_half(ref[k]);
                float v = half_to_float(bits) * f[k / hw];
                v = v < zs ? 0.0f : v;
                v = v > 1.0f ? 1.0f : v;
                wrong_prep += memcmp(&v, &pre.x[i * rowf + k], sizeof v) != 0;
            }
            free(ref);
        }
        CHECK(wrong_bits == 0, "[io %d] x_half: %lld values differ from the file's float16 values", io, wrong_bits);
        CHECK(wrong_prep == 0, "[io %d] x_half preprocessed with dataset_prep_factors: %lld values differ from the "
              "reader's preprocessing", io, wrong_prep);
        free_epoch(&h);
        dataset_close(d);
    }
    o.path = p32; /* keep_half on a float32 file: float32 batches as usual */
    o.io = DATA_IO_AUTO;
    CHECK(dataset_open(&d, &o) == 0, "open float32 with keep_half: %s", e2e_error());
    CHECK(!dataset_info(d)->x_half, "keep_half on a float32 file: x batches");
    Epoch e = run_epoch(d, SPLIT_VAL, 0, 0);
    CHECK(e.n > 0 && !e.xh, "float32 file: float32 batches");
    free_epoch(&e);
    dataset_close(d);
    free_epoch(&pre);
}

/* batch_alloc's contract: the batch buffers come from it, all go back at close, a NULL
 * is a clear error on every rank */
static void blocks_free(void *ctx, void *p) {
    CHECK(recorded_free(ctx, p) == 0, "batch_free of a pointer batch_alloc never gave");
}

static void test_batch_alloc(const char *p32, const char *p16) {
    for (int half = 0; half < 2; half++) {
        DatasetOptions o;
        dataset_default_options(&o);
        o.path = half ? p16 : p32;
        o.batch = 8;
        o.seed = 9;
        o.preprocess = !half; /* float16: x_half as a GPU feed gets it; float32: preprocessed x */
        o.keep_half = half;
        Dataset *d;
        CHECK(dataset_open(&d, &o) == 0, "open: %s", e2e_error());
        Epoch ref = run_epoch(d, SPLIT_TRAIN, 1, 0);
        const int slots = dataset_info(d)->prefetch + 1;
        dataset_close(d);

        Recorded k = {.fail_after = -1};
        o.batch_alloc = recorded_alloc;
        o.batch_free = blocks_free;
        o.batch_alloc_ctx = &k;
        CHECK(dataset_open(&d, &o) == 0, "open with batch_alloc: %s", e2e_error());
        const DatasetInfo *in = dataset_info(d);
        const size_t rowf = (size_t)in->channels * in->height * in->width;
        CHECK(k.live == 4 * slots, "[%s] %d blocks from batch_alloc, expected 4 per slot x %d slots",
              half ? "float16" : "float32", k.live, slots);
        CHECK(dataset_begin_epoch(d, SPLIT_TRAIN, 1, 0) == 0, "begin_epoch: %s", e2e_error());
        Batch b;
        int outside = 0, nb = 0;
        while (dataset_next(d, &b) == 1) {
            nb++;
            outside += half ? !recorded_holds(&k, b.x_half, b.n * rowf * 2) : !recorded_holds(&k, b.x, b.n * rowf * 4);
            outside += !recorded_holds(&k, b.scalars, b.n * 8) + !recorded_holds(&k, b.target, b.n * 4) +
                       !recorded_holds(&k, b.weight, b.n * 4);
        }
        CHECK(nb > 0 && outside == 0, "[%s] %d batch buffers of %d batches outside batch_alloc's blocks",
              half ? "float16" : "float32", outside, nb);
        Epoch e = run_epoch(d, SPLIT_TRAIN, 1, 0);
        int same = e.n == ref.n && !memcmp(e.index, ref.index, e.n * sizeof *e.index) &&
                   !memcmp(e.x, ref.x, e.n * rowf * sizeof *e.x) && !memcmp(e.target, ref.target, e.n * 4) &&
                   !memcmp(e.weight, ref.weight, e.n * 4) && !memcmp(e.scalars, ref.scalars, e.n * 8);
        CHECK(same, "[%s] batches from batch_alloc's buffers differ from malloc'd ones", half ? "float16" : "float32");
        free_epoch(&e);
        dataset_close(d);
        CHECK(k.live == 0, "[%s] %d blocks not given back at close", half ? "float16" : "float32", k.live);
        free_epoch(&ref);

        /* one rank's allocator runs dry: every rank fails, with its message */
        Recorded dry = {.fail_after = rank == nranks - 1 ? 5 : -1};
        o.batch_alloc_ctx = &dry;
        CHECK(dataset_open(&d, &o) < 0 && strstr(e2e_error(), o.path) && strstr(e2e_error(), "pinned"),
              "an allocator that runs dry: '%s'", e2e_error());
        CHECK(dry.live == 0, "%d blocks left after a failed open", dry.live);
        o.batch_free = NULL;
        CHECK(dataset_open(&d, &o) < 0 && strstr(e2e_error(), "batch_free"), "batch_alloc without batch_free: '%s'",
              e2e_error());
    }
    if (rank == 0) printf("batch_alloc: batch buffers from the caller's allocator, all given back\n");
}

/* chi-square of a (weighted) histogram against flat: sum (W_k - W/K)^2 / sum w^2 */
static double chi2_flat(const double *w, const double *w2, int K) {
    double tot = 0, chi = 0;
    for (int k = 0; k < K; k++) tot += w[k];
    for (int k = 0; k < K; k++) chi += (w[k] - tot / K) * (w[k] - tot / K) / (w2[k] > 0 ? w2[k] : 1);
    return chi;
}

static void test_unbias(const char *path) {
    enum { K = 10 };
    const double CRIT = 27.88; /* chi-square, 9 degrees of freedom, p = 0.001 */
    Dataset *d = open_ds(path, MPI_COMM_WORLD, 11, 50, 2, DATA_IO_AUTO);
    const DatasetInfo *in = dataset_info(d);
    CHECK(in->weight_capped_bins == 0, "%d capped bins", in->weight_capped_bins);
    for (int s = SPLIT_TRAIN; s <= SPLIT_VAL; s++) {
        Epoch e = run_epoch(d, s, 0, 0);
        double h[4][K] = {{0}}; /* raw count, raw count (variance), weighted, weighted^2 */
        double wsum = 0;
        for (long long i = 0; i < e.n; i++) {
            int k = (int)(e.mass[i] / (500.0 / K));
            k = k < 0 ? 0 : (k >= K ? K - 1 : k);
            h[0][k] += 1;
            h[1][k] += 1;
            h[2][k] += e.weight[i];
            h[3][k] += (double)e.weight[i] * e.weight[i];
            wsum += e.weight[i];
        }
        MPI_Allreduce(MPI_IN_PLACE, h, 4 * K, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &wsum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        long long n = e.n;
        MPI_Allreduce(MPI_IN_PLACE, &n, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        /* raw counts: Poisson variance = the expected count */
        double raw_var[K];
        for (int k = 0; k < K; k++) raw_var[k] = (double)n / K;
        double chi_raw = chi2_flat(h[0], raw_var, K), chi_w = chi2_flat(h[2], h[3], K);
        CHECK(chi_raw > CRIT, "split %d: raw masses pass as flat (chi2 %.1f)", s, chi_raw);
        CHECK(chi_w < CRIT, "split %d: weighted masses are not flat (chi2 %.1f over %lld jets)", s, chi_w, n);
        if (s == SPLIT_TRAIN) CHECK(fabs(wsum / n - 1.0) < 0.02, "mean training weight %.4f", wsum / n);
        if (rank == 0)
            printf("unbiasing, %s split (%lld jets, %d bins): chi2 raw %.1f, weighted %.1f (p=0.001 limit %.2f)\n",
                   s == SPLIT_TRAIN ? "training" : "validation", n, K, chi_raw, chi_w, CRIT);
        free_epoch(&e);
    }
    dataset_close(d);
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.unbias = DATA_UNBIAS_NONE;
    o.batch = 50;
    CHECK(dataset_open(&d, &o) == 0, "open: %s", e2e_error());
    Batch b;
    dataset_begin_epoch(d, SPLIT_TRAIN, 0, 0);
    CHECK(dataset_next(d, &b) == 1 && b.weight == NULL, "unbias none gives no weights");
    dataset_close(d);
}

static void test_list(const char *a, const char *b, long long n) {
    char list[512];
    snprintf(list, sizeof list, "%s/files.txt", dir);
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "# two files\n%s\n\n  %s  # relative to the list\n", a, strrchr(b, '/') + 1);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    Dataset *d = open_ds(list, MPI_COMM_WORLD, 5, 8, 2, DATA_IO_AUTO);
    CHECK(dataset_info(d)->n_files == 2 && dataset_info(d)->n_total == 2 * n, "list: %d files, %lld rows",
          dataset_info(d)->n_files, dataset_info(d)->n_total);
    Epoch e = run_epoch(d, SPLIT_TRAIN, 0, 0);
    const DatasetInfo *in = dataset_info(d);
    const long long rowf = (long long)in->channels * in->height * in->width;
    float *ref = malloc(rowf * sizeof *ref), col[4];
    int second = 0, wrong = 0;
    for (long long i = 0; i < e.n; i++) {
        if (e.index[i] < n) continue;
        second++;
        read_ref(b, e.index[i] - n, ref, col);
        wrong += e.mass[i] != col[0];
    }
    MPI_Allreduce(MPI_IN_PLACE, &second, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    CHECK(second > e.n / 2 && wrong == 0, "list: %d rows from the second file, %d wrong masses", second, wrong);
    free(ref);
    free_epoch(&e);
    dataset_close(d);
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    check_mpi_tmpdir(dir, sizeof dir, "e2e_data_reader");
    CHECK(!strcmp(dataset_split_name(SPLIT_TRAIN), "training") && !strcmp(dataset_split_name(SPLIT_VAL), "validation") &&
              !strcmp(dataset_split_name(SPLIT_TEST), "test"),
          "the splits' names in messages: training, validation, test");
    char p32[512], p16[512], pother[512], pbig[512];
    const long long N = 1200, CHUNK = 10;
    make_file("f32.h5", N, 16, 3, 4, CHUNK, 5, p32);
    make_file("f16.h5", N, 16, 3, 2, CHUNK, 5, p16);
    make_file("other.h5", N, 16, 3, 4, CHUNK, 9, pother);
    make_file("big.h5", 20000, 8, 1, 4, 100, 3, pbig);

    test_splits(p32, N, 64); /* the default split_block */
    test_epochs(p32);
    test_scales_and_half(p32, p16);
    test_keep_half(p32, p16);
    test_batch_alloc(p32, p16);
    test_unbias(pbig);
    test_list(p32, pother, N);

    return check_mpi_finish("test_data_reader", dir);
}

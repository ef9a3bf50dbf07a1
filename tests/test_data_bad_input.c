/* Bad input under real mpirun -np 2: missing file, missing dataset, wrong rank, wrong
 * shape, wrong dtype, NaN/Inf in images or targets, an empty split, more ranks than
 * samples, truncated and incomplete files, foreign files, bad file lists; files that
 * claim what they are not (channel-last shapes, nothing but negative pixels, another
 * format, an unknown format version). Each must
 * make dataset_open return -1 on EVERY rank with the SAME message, naming the file and
 * the problem, without a hang (alarm() turns a hang into a failure; ctest has a time
 * limit too). Rows with NaN that only the batches reach fail in dataset_next on the
 * rank that reads them. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check_mpi.h"
#include "dataset.h"
#include "error.h"
#include "expect_open.h"
#include "h5util.h"
#include "synthfile.h"

static int rank, nranks;
static char dir[256];

enum { N = 100, HW = 8 };

typedef struct {
    int x_rank;          /* 4, or 3 for (N, H, W) */
    hid_t x_type;        /* file type of X_jet */
    hid_t m_type;
    long long m_rows;    /* rows of m */
    const char *skip;    /* a dataset left out */
    long long nan_row;   /* X_jet row with a NaN pixel, or -1 */
    long long inf_m_row; /* m row that is +Inf, or -1 */
    int size;            /* image size */
    long long rows;      /* N */
    int partial;         /* X_jet chunks past the first never written */
} Spec;

static Spec good(void) { return (Spec){4, H5T_IEEE_F32LE, H5T_IEEE_F32LE, N, NULL, -1, -1, HW, N, 0}; }

/* A small jet file with the layout of Spec, written serially by rank 0. */
static void write_file(const char *path, Spec s) {
    if (rank == 0) {
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        const long long n = s.rows, row = (long long)s.size * s.size;
        float *x = malloc((size_t)(n * row) * sizeof *x), *m = malloc((size_t)(s.m_rows + 1) * sizeof *m);
        float *other = malloc((size_t)n * sizeof *other);
        for (long long i = 0; i < n; i++) other[i] = (float)(i % 170);
        for (long long i = 0; i < n * row; i++) x[i] = (float)((i * 7919) % 1000) * 0.01f;
        if (s.nan_row >= 0) x[s.nan_row * row + 3] = NAN;
        for (long long i = 0; i < s.m_rows; i++) m[i] = (float)((i * 37) % 500);
        if (s.inf_m_row >= 0) m[s.inf_m_row] = INFINITY;
        hsize_t d4[4] = {(hsize_t)n, 1, (hsize_t)s.size, (hsize_t)s.size}, d3[3] = {(hsize_t)n, (hsize_t)s.size, (hsize_t)s.size};
        hsize_t cn = n < 10 ? (hsize_t)n : 10;
        hsize_t c4[4] = {cn, 1, (hsize_t)s.size, (hsize_t)s.size}, c3[3] = {cn, (hsize_t)s.size, (hsize_t)s.size};
        if (strcmp(s.skip ? s.skip : "", "X_jet")) {
            hid_t sp = s.x_rank == 4 ? H5Screate_simple(4, d4, NULL) : H5Screate_simple(3, d3, NULL);
            hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
            H5Pset_chunk(dcpl, s.x_rank, s.x_rank == 4 ? c4 : c3);
            if (s.partial) H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR);
            hid_t d = H5Dcreate2(f, "X_jet", s.x_type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            if (s.partial) { /* only the first chunk */
                hsize_t st[4] = {0, 0, 0, 0};
                hid_t fs = H5Dget_space(d), ms = H5Screate_simple(4, c4, NULL);
                H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, c4, NULL);
                H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x);
                H5Sclose(ms);
                H5Sclose(fs);
            } else H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
            H5Dclose(d);
            H5Pclose(dcpl);
            H5Sclose(sp);
        }
        const char *cols[4] = {"m", "pt", "ieta", "iphi"};
        for (int k = 0; k < 4; k++) {
            if (s.skip && !strcmp(s.skip, cols[k])) continue;
            hsize_t len = (hsize_t)(k == 0 ? s.m_rows : n);
            hid_t sp = H5Screate_simple(1, &len, NULL);
            hid_t d = H5Dcreate2(f, cols[k], k == 0 ? s.m_type : H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            float *v = k == 0 ? m : other;
            H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
            H5Dclose(d);
            H5Sclose(sp);
        }
        H5Fclose(f);
        free(x);
        free(m);
        free(other);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static DatasetOptions options(const char *path, int batch) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = batch;
    return o;
}

static void path_in(char *p, const char *name) { snprintf(p, 512, "%s/%s", dir, name); }

static void test_files(void) {
    char p[512], q[512], list[512];
    path_in(p, "missing.h5");
    expect_open_fails("missing file", options(p, 4), p, "no such file");

    Spec s = good();
    s.skip = "X_jet";
    path_in(p, "no_x.h5");
    write_file(p, s);
    expect_open_fails("missing dataset X_jet", options(p, 4), p, "no dataset 'X_jet'");
    s = good();
    s.skip = "m";
    path_in(p, "no_m.h5");
    write_file(p, s);
    expect_open_fails("missing dataset m", options(p, 4), p, "no mass column 'm': the regression's target");

    s = good();
    s.x_rank = 3;
    path_in(p, "rank3.h5");
    write_file(p, s);
    expect_open_fails("wrong rank", options(p, 4), p, "X_jet has 3 dimensions");
    s = good();
    s.m_rows = N - 1;
    path_in(p, "short_m.h5");
    write_file(p, s);
    expect_open_fails("wrong shape (m)", options(p, 4), p, "m has 99 rows but X_jet has 100");

    s = good();
    s.x_type = H5T_STD_I32LE;
    path_in(p, "int_x.h5");
    write_file(p, s);
    expect_open_fails("wrong dtype (X_jet int32)", options(p, 4), p, "X_jet has dtype int32");
    s.x_type = H5T_IEEE_F64LE;
    path_in(p, "f64_x.h5");
    write_file(p, s);
    expect_open_fails("wrong dtype (X_jet float64)", options(p, 4), p, "dtype float64; expected float32 or float16");
    s = good();
    s.m_type = H5T_STD_I32LE;
    path_in(p, "int_m.h5");
    write_file(p, s);
    expect_open_fails("wrong dtype (m int32)", options(p, 4), p, "m has dtype int32");

    s = good();
    s.inf_m_row = 42;
    path_in(p, "inf_m.h5");
    write_file(p, s);
    expect_open_fails("Inf target", options(p, 4), p, "m row 42 is infinite");

    s = good();
    s.partial = 1;
    path_in(p, "partial.h5");
    write_file(p, s);
    expect_open_fails("incomplete file", options(p, 4), p, "never written");

    /* a truncated file: a real generated one cut to 60% */
    path_in(q, "truncated.h5");
    SynthFileOptions so;
    synth_file_defaults(&so);
    so.out = q;
    so.samples = 200;
    so.size = 16;
    so.channels = 3;
    CHECK(synth_write_file(&so, MPI_COMM_WORLD) == 0, "synth: %s", e2e_error());
    if (rank == 0) CHECK(truncate(q, 200LL * 3 * 16 * 16 * 4 * 6 / 10) == 0, "truncate");
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("truncated file", options(q, 4), q, "truncated");
    if (rank == 0) CHECK(truncate(q, 3) == 0, "truncate");
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("truncated to 3 bytes", options(q, 4), q, "truncated or damaged");

    path_in(p, "garbage.bin");
    if (rank == 0) {
        FILE *f = fopen(p, "wb");
        for (int i = 0; i < 256; i++) fputc(i, f);
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("foreign file", options(p, 4), p, "not an HDF5 file");

    /* file lists: a missing entry, no entries, images of another size */
    path_in(list, "list.txt");
    path_in(p, "good.h5");
    write_file(p, good());
    path_in(q, "big_images.h5");
    s = good();
    s.size = 12;
    write_file(q, s);
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "good.h5\nnot_there.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    char missing[512];
    path_in(missing, "not_there.h5");
    expect_open_fails("list with a missing file", options(list, 4), missing, "no such file");
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "# nothing\n\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("empty list", options(list, 4), list, "names no files");
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "good.h5\nbig_images.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("list, other image size", options(list, 4), q, "X_jet images are 1 x 12 x 12");
}

/* a file that only some ranks see (as on a node without the filesystem): each rank
 * works in its own folder holding list.txt; only rank 0's holds the listed file */
static void test_visible_on_one_rank(void) {
    char a[512], here[512], p[600];
    snprintf(a, sizeof a, "%s/rank%d", dir, rank);
    CHECK(mkdir(a, 0700) == 0, "mkdir %s", a);
    snprintf(p, sizeof p, "%s/list.txt", a);
    FILE *f = fopen(p, "w");
    fprintf(f, "only_rank0.h5\n");
    fclose(f);
    MPI_Barrier(MPI_COMM_WORLD);
    path_in(p, "rank0/only_rank0.h5");
    write_file(p, good());
    CHECK(getcwd(here, sizeof here) && chdir(a) == 0, "chdir %s", a);
    expect_open_fails("file seen by rank 0 only", options("list.txt", 4), "./only_rank0.h5", "no such file");
    CHECK(chdir(here) == 0, "chdir back");
}

static void expect_open_works(const char *what, const char *path);

static void test_splits(void) {
    char p[512];
    Spec s = good();
    s.rows = s.m_rows = 5; /* 5 x 0.9 rounds to 5: the validation split is empty */
    path_in(p, "five.h5");
    write_file(p, s);
    expect_open_fails("empty split", options(p, 1), p, "validation split is empty");
    /* what to do instead: the fewest jets 0.9/0.05/0.05 needs on 2 ranks (36: 32/2/2), and
       they do; 35 do not */
    expect_open_fails("empty split: what to do", options(p, 1), "so 2 ranks need at least 36 jets",
                      "use a larger file or a list of files");
    s.rows = s.m_rows = 36;
    path_in(p, "thirty_six.h5");
    write_file(p, s);
    expect_open_works("the jets the message asks for", p);
    s.rows = s.m_rows = 35;
    path_in(p, "thirty_five.h5");
    write_file(p, s);
    expect_open_fails("one jet fewer", options(p, 1), p, "at least 36 jets");
    s.rows = s.m_rows = 1;
    path_in(p, "one.h5");
    write_file(p, s);
    expect_open_fails("more ranks than samples", options(p, 1), p, "more ranks than samples");
    expect_open_fails("more ranks than samples: what", options(p, 1), "at least 36 jets", "or run on fewer ranks");
    s.rows = s.m_rows = 40; /* validation: 2 rows for 2 ranks is fine, training 36: 18 a rank */
    path_in(p, "forty.h5");
    write_file(p, s);
    /* a batch above a rank's training share opens (evaluation reads other splits); the
     * training split then has no step, and the trainer refuses to train on it */
    Dataset *d = NULL;
    DatasetOptions big = options(p, 32);
    int rc = dataset_open(&d, &big);
    CHECK(rc == 0, "batch above the training share: open failed: %s", e2e_error());
    if (!rc) {
        CHECK(dataset_steps_per_epoch(d, SPLIT_TRAIN) == 0, "batch above the share gives %ld training steps",
              dataset_steps_per_epoch(d, SPLIT_TRAIN));
        CHECK(dataset_steps_per_epoch(d, SPLIT_VAL) == 1, "the validation split is read in one partial batch");
        dataset_close(d);
    }
    DatasetOptions o = options(p, 4);
    o.fractions[SPLIT_VAL] = 0.6; /* 0.9 + 0.6 > 1 */
    expect_open_fails("bad fractions", o, p, "add up to");
}

/* NaN pixels: in a training row dataset_open finds them (the statistics pass reads
 * the training split); in a validation row the rank that reads it fails in
 * dataset_next, and the other rank ends its epoch normally. */
static void test_nan(void) {
    char p[512];
    path_in(p, "clean.h5");
    write_file(p, good());
    Dataset *d;
    DatasetOptions o = options(p, 4);
    if (dataset_open(&d, &o)) {
        CHECK(0, "clean file: %s", e2e_error());
        return;
    }
    long long n0, n1;
    const long long *tr = dataset_split_rows(d, SPLIT_TRAIN, &n0), *va = dataset_split_rows(d, SPLIT_VAL, &n1);
    long long rows[2] = {tr[0], va[0]}; /* rank 0's first training and validation rows */
    MPI_Bcast(rows, 2, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    float scales[8];
    memcpy(scales, dataset_scales(d), sizeof(float));
    dataset_close(d);

    Spec s = good();
    char needle[64];
    s.nan_row = rows[0];
    path_in(p, "nan_train.h5");
    write_file(p, s);
    snprintf(needle, sizeof needle, "X_jet row %lld holds 1 non-finite value", rows[0]);
    expect_open_fails("NaN pixel (training row)", options(p, 4), p, needle);

    /* with stored scales (a resumed run) there is no statistics pass: the batch fails */
    o = options(p, 5); /* 45 training rows a rank, 9 steps: no row left out */
    o.scales = scales;
    o.prefetch = 2;
    if (dataset_open(&d, &o)) {
        CHECK(0, "open with scales: %s", e2e_error());
        return;
    }
    Batch b;
    int r = 0;
    dataset_begin_epoch(d, SPLIT_TRAIN, 0, 0);
    while ((r = dataset_next(d, &b)) == 1) {}
    if (rank == 0) CHECK(r == -1 && strstr(e2e_error(), needle) && strstr(e2e_error(), p),
                         "training batch with NaN: %d '%s'", r, e2e_error());
    if (rank == 0) CHECK(dataset_next(d, &b) == -1, "a failed epoch keeps failing");
    dataset_close(d);

    s.nan_row = rows[1];
    path_in(p, "nan_val.h5");
    write_file(p, s);
    o = options(p, 4);
    if (dataset_open(&d, &o)) {
        CHECK(0, "NaN in a validation row: open: %s", e2e_error());
        return;
    }
    dataset_begin_epoch(d, SPLIT_VAL, 0, 0);
    while ((r = dataset_next(d, &b)) == 1) {}
    snprintf(needle, sizeof needle, "X_jet row %lld holds 1 non-finite value", rows[1]);
    if (rank == 0) CHECK(r == -1 && strstr(e2e_error(), needle) && strstr(e2e_error(), p),
                         "validation batch with NaN: %d '%s'", r, e2e_error());
    else CHECK(r == 0, "rank %d reads no NaN row and ends its epoch: %d %s", rank, r, e2e_error());
    if (rank == 0) printf("%-26s -> %s\n", "NaN pixel (validation row)", e2e_error());
    dataset_close(d);

    /* float16 rows handed over as stored (keep_half, a GPU feed) are checked too */
    s.x_type = h5_half_type();
    path_in(p, "nan_val_half.h5");
    write_file(p, s);
    H5Tclose(s.x_type);
    o = options(p, 4);
    o.preprocess = 0;
    o.keep_half = 1;
    if (dataset_open(&d, &o)) {
        CHECK(0, "NaN in a float16 validation row: open: %s", e2e_error());
        return;
    }
    CHECK(dataset_info(d)->x_half, "float16 file with keep_half: batches carry x_half");
    dataset_begin_epoch(d, SPLIT_VAL, 0, 0);
    while ((r = dataset_next(d, &b)) == 1) {}
    if (rank == 0) CHECK(r == -1 && strstr(e2e_error(), needle) && strstr(e2e_error(), p),
                         "float16 batch (x_half) with NaN: %d '%s'", r, e2e_error());
    else CHECK(r == 0, "rank %d reads no NaN row and ends its float16 epoch: %d %s", rank, r, e2e_error());
    if (rank == 0) printf("%-26s -> %s\n", "NaN pixel (float16, x_half)", e2e_error());
    dataset_close(d);
}

static void test_api(void) {
    char p[512];
    path_in(p, "good.h5");
    Dataset *d;
    DatasetOptions o = options(p, 4);
    CHECK(dataset_open(&d, &o) == 0, "open: %s", e2e_error());
    Batch b;
    CHECK(dataset_next(d, &b) == -1 && strstr(e2e_error(), "before dataset_begin_epoch"), "next before begin");
    CHECK(dataset_begin_epoch(d, (Split)7, 0, 0) == -1 && strstr(e2e_error(), "unknown split"), "bad split");
    CHECK(dataset_begin_epoch(d, SPLIT_TRAIN, -1, 0) == -1, "negative epoch");
    dataset_close(d);
    o.fractions[SPLIT_TEST] = 0.0;
    o.fractions[SPLIT_VAL] = 0.1;
    CHECK(dataset_open(&d, &o) == 0, "open without a test split: %s", e2e_error());
    CHECK(dataset_split_total(d, SPLIT_TEST) == 0 && dataset_begin_epoch(d, SPLIT_TEST, 0, 0) == -1 &&
              strstr(e2e_error(), "test split is empty"), "an unused split cannot be iterated");
    dataset_close(d);
    float bad_scales[1] = {0.0f};
    o = options(p, 4);
    o.scales = bad_scales;
    expect_open_fails("zero scale", o, p, "scales must be positive");
}

/* What a file claims, for test_claims: X_jet's shape, its pixels, its attributes. */
typedef struct {
    hsize_t d[4];             /* X_jet's shape */
    float (*pixel)(long long i); /* pixel i (flat index) */
    const char *format;       /* the format attribute, or NULL */
    const char *version_str;  /* format_version as a string, or NULL */
    int version;              /* format_version as an int32 (0: absent) */
    int names;                /* channel names in the channels attribute (0: absent) */
} Claims;

static float pixel_plain(long long i) { return (float)((i * 7919) % 1000) * 0.01f; }
static float pixel_negative(long long i) { return -0.01f - (float)(i % 997) * 0.01f; }
static float pixel_negative_or_zero(long long i) { return i % 3 ? 0.0f : -2.5f; }

static void put_str(hid_t f, const char *name, const char *v) { h5_attr_write_str(f, name, v, 1); }

/* A jet file of c's shape, pixels and attributes, written by rank 0. */
static void write_claims(const char *path, Claims c) {
    if (rank == 0) {
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        const long long n = (long long)c.d[0], all = n * (long long)(c.d[1] * c.d[2] * c.d[3]);
        float *x = malloc((size_t)all * sizeof *x), *col = malloc((size_t)n * sizeof *col);
        for (long long i = 0; i < all; i++) x[i] = c.pixel ? c.pixel(i) : pixel_plain(i);
        h5_dataset_write(f, "X_jet", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 4, c.d, x);
        const char *cols[4] = {"m", "pt", "ieta", "iphi"};
        for (int k = 0; k < 4; k++) {
            for (long long i = 0; i < n; i++) col[i] = k == 0 ? (float)(10 + (i * 37) % 400) : (float)(i % 170);
            hsize_t len = (hsize_t)n;
            h5_dataset_write(f, cols[k], H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &len, col);
        }
        if (c.format) put_str(f, "format", c.format);
        if (c.version_str) put_str(f, "format_version", c.version_str);
        if (c.version) h5_attr_write(f, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &c.version);
        if (c.names) {
            const char *names[64];
            for (int k = 0; k < c.names && k < 64; k++) names[k] = "ch";
            h5_attr_write_strs(f, "channels", names, c.names);
        }
        H5Fclose(f);
        free(x);
        free(col);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* opens, 0 on every rank */
static void expect_open_works(const char *what, const char *path) {
    Dataset *d = NULL;
    DatasetOptions o = options(path, 4);
    int rc = dataset_open(&d, &o);
    CHECK(rc == 0, "%s: opens (%s)", what, e2e_error());
    if (!rc) dataset_close(d);
}

/* Inputs that claim what they are not (issue 28): shapes plausible only read the other
 * way round, values no detector gives, a format or version we do not know. */
static void test_claims(void) {
    char p[512];
    struct { const char *name; hsize_t d[4]; } last[] = {
        {"channel-last 32x32x8", {200, 32, 32, 8}}, {"channel-last 40x40x5", {200, 40, 40, 5}},
        {"channel-last 16x16x1", {200, 16, 16, 1}}, {"channel-last 12x12x3", {200, 12, 12, 3}}};
    for (size_t i = 0; i < sizeof last / sizeof *last; i++) {
        path_in(p, "last.h5");
        write_claims(p, (Claims){.d = {last[i].d[0], last[i].d[1], last[i].d[2], last[i].d[3]}});
        expect_open_fails(last[i].name, options(p, 4), p, "looks stored channel-last");
    }
    path_in(p, "last_names.h5");
    write_claims(p, (Claims){.d = {200, 32, 32, 8}, .names = 8});
    expect_open_fails("channel-last, 8 names", options(p, 4), p, "looks stored channel-last");
    path_in(p, "declared.h5");
    write_claims(p, (Claims){.d = {200, 12, 12, 3}, .names = 12});
    expect_open_works("12 channels of 12 x 3 images, named", p);
    path_in(p, "first.h5");
    write_claims(p, (Claims){.d = {200, 3, 12, 12}});
    expect_open_works("channel-major 3 x 12 x 12", p);
    path_in(p, "wide.h5");
    write_claims(p, (Claims){.d = {20, 125, 125, 3}});
    expect_open_fails("channel-last 125x125x3", options(p, 4), p, "stored channel-last");

    path_in(p, "negative.h5");
    write_claims(p, (Claims){.d = {200, 3, 8, 8}, .pixel = pixel_negative});
    expect_open_fails("every pixel negative", options(p, 4), p, "hold no positive pixel");
    path_in(p, "negative0.h5");
    write_claims(p, (Claims){.d = {200, 2, 8, 8}, .pixel = pixel_negative_or_zero});
    expect_open_fails("zeros and negatives only", options(p, 4), p, "no detector measures a negative");

    const char *formats[] = {"e2e-ddp checkpoint", "e2e-ddp predictions", "hdf5-images 2"};
    for (int i = 0; i < 3; i++) {
        path_in(p, "format.h5");
        write_claims(p, (Claims){.d = {200, 3, 8, 8}, .format = formats[i]});
        expect_open_fails(formats[i], options(p, 4), p, "not e2e-jet-images");
    }
    int versions[] = {99, 3, -1};
    for (int i = 0; i < 3; i++) {
        path_in(p, "version.h5");
        write_claims(p, (Claims){.d = {200, 3, 8, 8}, .format = "e2e-jet-images", .version = versions[i]});
        expect_open_fails("an unknown format version", options(p, 4), p, "this reader knows versions 1");
    }
    path_in(p, "version_str.h5");
    write_claims(p, (Claims){.d = {200, 3, 8, 8}, .format = "e2e-jet-images", .version_str = "1"});
    expect_open_fails("a version that is a string", options(p, 4), p, "is not an integer");
    path_in(p, "v1.h5");
    write_claims(p, (Claims){.d = {200, 3, 8, 8}, .format = "e2e-jet-images", .version = 1});
    expect_open_works("format version 1", p);
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    if (nranks < 2) {
        fprintf(stderr, "test_data_bad_input needs 2 ranks\n");
        MPI_Finalize();
        return CHECK_SKIP;
    }
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own serial writes */
    check_mpi_tmpdir(dir, sizeof dir, "e2e_data_bad");
    test_files();
    test_visible_on_one_rank();
    test_splits();
    test_nan();
    test_api();
    test_claims();
    return check_mpi_finish("test_data_bad_input", dir);
}

/* Bad sparse files under real mpirun -np 2: a position out of range, positions that do
 * not increase, offsets that decrease, counts that disagree with the offsets, arrays
 * shorter than the offsets say, entries never written, a truncated file, a NaN value,
 * a sparse X_jet without its layout. Each makes dataset_open return -1 on EVERY rank
 * with the SAME message, naming the file and (where there is one) the jet, without a
 * hang (alarm() turns a hang into a failure). A file cut short is refused by HDF5 at
 * open, before any jet can be located: its message names the file. A bad row that only batches reach fails
 * dataset_next on the rank that reads it, naming the file and the jet; with the memory
 * cache it fails dataset_open on every rank, since the cache reads every row of the
 * rank at open. */
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>

#include "check_mpi.h"
#include "expect_open.h"
#include "convert.h"
#include "error.h"
#include "dataset.h"
#include "synthfile.h"

static int rank, nranks;
static char dir[256], good[512];
enum { N = 120, SIZE = 16, C = 3, BATCH = 4 };
static long long offsets[N + 1];
static unsigned counts[N * C];
static long long train_row, val_row; /* rank 0's first training row, rank 1's first validation row */

static void path_in(char *p, const char *name) { snprintf(p, 512, "%s/%s", dir, name); }

static DatasetOptions options(const char *path) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = BATCH;
    return o;
}

/* rank 0 copies the good file to path and applies an edit to the copy; all wait */
static void bad_copy(const char *path, void (*edit)(hid_t f, long long arg), long long arg) {
    if (rank == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", good, path);
        CHECK(system(cmd) == 0, "cp");
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        edit(f, arg);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* one element of X_jet/<name> (1-D) written from memory of type t */
static void put(hid_t f, const char *name, hid_t t, long long at, const void *v) {
    char full[64];
    snprintf(full, sizeof full, "X_jet/%s", name);
    hid_t d = H5Dopen2(f, full, H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t one = 1, st = (hsize_t)at;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    CHECK(H5Dwrite(d, t, ms, fs, H5P_DEFAULT, v) >= 0, "edit %s[%lld]", name, at);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
}

/* the first entry of jet r that has a successor in its plane */
static long long pair_entry(long long r) {
    long long e = offsets[r];
    for (int c = 0; c < C; e += counts[r * C + c], c++)
        if (counts[r * C + c] >= 2) return e;
    return -1;
}

static void pos_out_of_range(hid_t f, long long r) {
    unsigned short p = SIZE * SIZE + 3;
    put(f, "pos", H5T_NATIVE_USHORT, pair_entry(r) + 1, &p);
}

static void pos_repeated(hid_t f, long long r) {
    unsigned short p;
    hid_t d = H5Dopen2(f, "X_jet/pos", H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t one = 1, st = (hsize_t)pair_entry(r);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    H5Dread(d, H5T_NATIVE_USHORT, ms, fs, H5P_DEFAULT, &p);
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
    put(f, "pos", H5T_NATIVE_USHORT, pair_entry(r) + 1, &p);
}

/* jet r's end before its start */
static void offsets_decrease(hid_t f, long long r) {
    long long v = offsets[r] - 1;
    put(f, "offsets", H5T_NATIVE_LLONG, r + 1, &v);
}

/* jet r's end at -2^63: the difference of two offsets overflowed (fuzz_sparse_reader) */
static void offsets_minimum(hid_t f, long long r) {
    long long v = INT64_MIN;
    put(f, "offsets", H5T_NATIVE_LLONG, r + 1, &v);
}

static void counts_disagree(hid_t f, long long r) {
    unsigned v = counts[r * C] + 1;
    hid_t d = H5Dopen2(f, "X_jet/counts", H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t st[2] = {(hsize_t)r, 0}, one[2] = {1, 1};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, st, NULL, one, NULL);
    hid_t ms = H5Screate_simple(2, one, NULL);
    CHECK(H5Dwrite(d, H5T_NATIVE_UINT, ms, fs, H5P_DEFAULT, &v) >= 0, "edit counts");
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d);
}

static void value_short(hid_t f, long long cut) {
    hid_t d = H5Dopen2(f, "X_jet/value", H5P_DEFAULT);
    hsize_t size = (hsize_t)cut;
    CHECK(H5Dset_extent(d, &size) >= 0, "shrink value");
    H5Dclose(d);
}

/* X_jet/value made anew in chunks of 1024 entries allocated when written, and only
 * the first chunk written: the others were never written */
static void value_unwritten(hid_t f, long long unused) {
    float *v = malloc((size_t)offsets[N] * sizeof *v);
    hid_t d = H5Dopen2(f, "X_jet/value", H5P_DEFAULT);
    H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Ldelete(f, "X_jet/value", H5P_DEFAULT);
    hsize_t size = (hsize_t)offsets[N], chunk = 1024;
    hid_t sp = H5Screate_simple(1, &size, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_INCR);
    d = H5Dcreate2(f, "X_jet/value", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    hsize_t st = 0;
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &chunk, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &st, NULL, &chunk, NULL);
    CHECK(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, v) >= 0, "write the first chunk");
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
    free(v);
    (void)unused;
}

static void value_nan(hid_t f, long long r) {
    float v = NAN;
    put(f, "value", H5T_NATIVE_FLOAT, offsets[r], &v);
}

static void no_layout(hid_t f, long long unused) {
    hid_t g = H5Gopen2(f, "X_jet", H5P_DEFAULT);
    H5Adelete(g, "layout");
    H5Gclose(g);
    (void)unused;
}

/* the group's shape claiming 2^63 - 1 jets: N + 1 overflowed (fuzz_sparse_reader) */
static void shape_huge(hid_t f, long long unused) {
    hid_t g = H5Gopen2(f, "X_jet", H5P_DEFAULT), a = H5Aopen(g, "shape", H5P_DEFAULT);
    long long shape[4];
    H5Aread(a, H5T_NATIVE_LLONG, shape);
    shape[0] = INT64_MAX;
    H5Awrite(a, H5T_NATIVE_LLONG, shape);
    H5Aclose(a), H5Gclose(g);
    (void)unused;
}

static void bad_at_open(const char *name, const char *what, void (*edit)(hid_t, long long), long long arg,
                        const char *needle, int name_jet) {
    char p[512], jet[64];
    path_in(p, name);
    bad_copy(p, edit, arg);
    snprintf(jet, sizeof jet, "jet %lld", arg);
    expect_open_fails(what, options(p), p, name_jet ? jet : needle);
    if (name_jet) expect_open_fails(what, options(p), p, needle);
}

/* a bad validation row: the reading rank's dataset_next fails (scales given, so no
 * statistics pass reads it at open); with the cache, dataset_open on every rank */
static void test_bad_validation_row(void) {
    char p[512], jet[64];
    path_in(p, "val_out_of_range.h5");
    bad_copy(p, pos_out_of_range, val_row);
    snprintf(jet, sizeof jet, "jet %lld", val_row);
    DatasetOptions o = options(p);
    const float scales[C] = {1.0f, 1.0f, 1.0f};
    o.scales = scales;
    Dataset *d = NULL;
    CHECK(dataset_open(&d, &o) == 0, "open with a bad validation row: %s", e2e_error());
    if (!d) return;
    alarm(60);
    int rc = dataset_begin_epoch(d, SPLIT_VAL, 0, 0), r = 0;
    Batch b;
    while (!rc && (r = dataset_next(d, &b)) == 1) {}
    alarm(0);
    if (rank == 1) {
        CHECK(r == -1 && strstr(e2e_error(), p) && strstr(e2e_error(), jet) && strstr(e2e_error(), "out of range"),
              "the reading rank's dataset_next: %d '%s'", r, e2e_error());
        printf("%-28s -> %s\n", "bad validation row (rank 1)", e2e_error());
    } else
        CHECK(r == 0, "rank %d reads no bad row, yet dataset_next gave %d: %s", rank, r, e2e_error());
    dataset_close(d);
    o.cache = DATA_CACHE_MEMORY;
    expect_open_fails("bad validation row, cached", o, p, jet);
}

/* converting a bad file fails on every rank after the output was begun, and leaves
 * neither the output nor its temporary file */
static void test_convert_leaves_nothing(void) {
    char in[512], out[512];
    path_in(in, "out_of_range.h5");
    path_in(out, "converted.h5");
    ConvertOptions o;
    convert_defaults(&o);
    o.in = in, o.out = out, o.sparse = 0;
    alarm(60);
    int rc = data_convert(&o, MPI_COMM_WORLD), all;
    alarm(0);
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    CHECK(all == -1 && strstr(e2e_error(), in) && strstr(e2e_error(), "out of range"),
          "convert of a bad file: rc %d on every rank? '%s'", all, e2e_error());
    int left = 0;
    DIR *dp = opendir(dir);
    for (struct dirent *e; dp && (e = readdir(dp));) left += strstr(e->d_name, "converted") != NULL;
    if (dp) closedir(dp);
    CHECK(left == 0, "a failed convert left %d files behind", left);
}

/* the good file's index, and rows of rank 0's training share and rank 1's validation
 * share (from a reader with the tests' options) */
static void learn_good_file(void) {
    path_in(good, "good.h5");
    SynthFileOptions so;
    synth_file_defaults(&so);
    so.out = good, so.samples = N, so.size = SIZE, so.channels = C, so.seed = 4, so.sparse = 1;
    if (synth_write_file(&so, MPI_COMM_WORLD)) MPI_Abort(MPI_COMM_WORLD, 1);
    hid_t f = H5Fopen(good, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t a = H5Dopen2(f, "X_jet/offsets", H5P_DEFAULT), b = H5Dopen2(f, "X_jet/counts", H5P_DEFAULT);
    H5Dread(a, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, offsets);
    H5Dread(b, H5T_NATIVE_UINT, H5S_ALL, H5S_ALL, H5P_DEFAULT, counts);
    H5Dclose(a), H5Dclose(b), H5Fclose(f);
    DatasetOptions o = options(good);
    Dataset *d;
    if (dataset_open(&d, &o)) MPI_Abort(MPI_COMM_WORLD, 1);
    long long n, pick[2] = {-1, -1};
    const long long *rows = dataset_split_rows(d, rank == 0 ? SPLIT_TRAIN : SPLIT_VAL, &n);
    for (long long i = 0; i < n && pick[rank != 0] < 0; i++) /* a row with two entries in a plane */
        if (pair_entry(rows[i]) >= 0 && rows[i] > 0) pick[rank != 0] = rows[i];
    MPI_Allreduce(MPI_IN_PLACE, pick, 2, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    train_row = pick[0], val_row = pick[1];
    CHECK(train_row > 0 && val_row > 0, "rows to spoil: %lld %lld", train_row, val_row);
    dataset_close(d);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    check_mpi_tmpdir(dir, sizeof dir, "e2e_test_sparse_bad");
    learn_good_file();
    bad_at_open("out_of_range.h5", "position out of range", pos_out_of_range, train_row, "position out of range", 1);
    bad_at_open("repeated.h5", "position repeated", pos_repeated, train_row, "positions not increasing", 1);
    bad_at_open("decreasing.h5", "offsets decrease", offsets_decrease, train_row, "offsets decrease", 1);
    bad_at_open("minimum.h5", "an offset of -2^63", offsets_minimum, train_row, "offsets decrease", 1);
    bad_at_open("counts.h5", "counts disagree with offsets", counts_disagree, train_row, "add up to", 1);
    bad_at_open("short.h5", "value shorter than offsets", value_short, offsets[N] - 5, "disagree with the arrays", 0);
    bad_at_open("unwritten.h5", "values never written", value_unwritten, 0, "never written", 0);
    bad_at_open("nan.h5", "NaN value", value_nan, train_row, "non-finite", 0);
    bad_at_open("no_layout.h5", "X_jet group without layout", no_layout, 0, "not a sparse X_jet", 0);
    bad_at_open("huge_n.h5", "a shape of 2^63 - 1 jets", shape_huge, 0, "1 to 2^40 jets", 0);
    char p[512];
    path_in(p, "truncated.h5");
    bad_copy(p, no_layout, 0); /* any copy; then cut it */
    if (rank == 0) CHECK(truncate(p, 40000) == 0 && system("true") == 0, "truncate");
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("truncated file", options(p), p, "truncated");
    test_bad_validation_row();
    test_convert_leaves_nothing();
    return check_mpi_finish("test_data_sparse_bad", dir);
}

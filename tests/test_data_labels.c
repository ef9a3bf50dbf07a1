/* A classifier's labels through the reader under real mpirun -np 2 (data/format/FORMAT.md,
 * "Class labels"): a label column of any integer or float type becomes the batches'
 * target, jet by jet; the class counts of each split (summed over the ranks) match the
 * rows; --balance's class weights give both classes the same total weight, mean 1 over
 * the training split; a list may mix files whose labels are stamped constants of other
 * dtypes. Refused on every rank with one message naming the file: a missing label column,
 * a label that is not 0 or 1 (2, -1, NaN), a label of another shape, a split of one
 * class, class weights without a label. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mpi.h"
#include "dataset.h"
#include "error.h"
#include "expect_open.h"
#include "h5util.h"

static int rank;
static char dir[256];

enum { N = 400, SIZE = 4 };

/* the label of jet i in the mixed files: a pattern with about 30% signal */
static double label_of(long long i) { return (i * 7) % 10 < 3 ? 1.0 : 0.0; }

/* A jet file of N jets, 2 channels; its label column `label` (NULL: none) of file type
 * ltype holds `value` (a constant, or label_of(i) when value < 0); bad_row gets bad. */
typedef struct {
    const char *label;
    hid_t ltype;
    double value;
    long long bad_row;
    double bad;
    int label_2d;
    double mass_shift;  /* added to every mass (two files of other jets) */
} Spec;

static void write_floats(hid_t f, const char *name, hid_t ftype, int nd, const hsize_t *dims, const double *v) {
    h5_dataset_write(f, name, ftype, H5T_NATIVE_DOUBLE, nd, dims, v);
}

static void write_file(const char *path, Spec s) {
    if (rank == 0) {
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        static double x[N * 2 * SIZE * SIZE], v[N * 2];
        for (long long k = 0; k < N * 2 * SIZE * SIZE; k++) x[k] = (double)((k * 13) % 17) * 0.25;
        hsize_t dx[4] = {N, 2, SIZE, SIZE}, n = N;
        write_floats(f, "X_jet", H5T_IEEE_F32LE, 4, dx, x);
        const char *cols[4] = {"m", "pt", "ieta", "iphi"};
        for (int c = 0; c < 4; c++) {
            for (long long i = 0; i < N; i++) v[i] = 20.0 + (double)((i * (c + 3)) % 150) + s.mass_shift;
            write_floats(f, cols[c], H5T_IEEE_F32LE, 1, &n, v);
        }
        if (s.label) {
            for (long long i = 0; i < N * 2; i++) v[i] = s.value < 0 ? label_of(i % N) : s.value;
            if (s.bad_row >= 0) v[s.bad_row] = s.bad;
            hsize_t d2[2] = {N, 2};
            write_floats(f, s.label, s.ltype, s.label_2d ? 2 : 1, s.label_2d ? d2 : &n, v);
        }
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static Spec labelled(hid_t type) { return (Spec){"y", type, -1.0, -1, 0.0, 0, 0.0}; }

static void path_in(char *p, const char *name) { snprintf(p, 512, "%s/%s", dir, name); }

static DatasetOptions options(const char *path, const char *label, int unbias) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = 8;
    o.label = label;
    o.unbias = unbias;
    o.fractions[SPLIT_TRAIN] = 0.6, o.fractions[SPLIT_VAL] = 0.2, o.fractions[SPLIT_TEST] = 0.2;
    return o;
}

/* every batch of split s: target = the label of its jet (want(index)); weights by class */
static void check_batches(Dataset *d, Split s, double (*want)(long long), const float *class_weight, const char *what) {
    Batch b;
    long long wrong = 0, wrong_w = 0, seen = 0, all;
    CHECK(dataset_begin_epoch(d, s, 0, 0) == 0, "%s: begin: %s", what, e2e_error());
    while (dataset_next(d, &b) == 1)
        for (int i = 0; i < b.n; i++, seen++) {
            wrong += b.target[i] != (float)want(b.index[i]);
            if (class_weight) wrong_w += !b.weight || b.weight[i] != class_weight[b.target[i] != 0.0f];
        }
    MPI_Allreduce(&seen, &all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    CHECK(wrong == 0 && seen > 0, "%s: %lld of %lld targets are not their jet's label", what, wrong, seen);
    CHECK(wrong_w == 0, "%s: %lld weights are not their class's", what, wrong_w);
}

/* the class counts of every split against the rows each rank holds */
static void check_counts(Dataset *d, double (*want)(long long), const char *what) {
    for (int s = 0; s < DATA_SPLITS; s++) {
        long long n, mine[2] = {0, 0}, all[2];
        const long long *rows = dataset_split_rows(d, (Split)s, &n);
        for (long long i = 0; i < n; i++) mine[want(rows[i]) != 0.0]++;
        MPI_Allreduce(mine, all, 2, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
        const long long *got = dataset_info(d)->class_count[s];
        CHECK(got[0] == all[0] && got[1] == all[1] && all[0] > 0 && all[1] > 0,
              "%s: split %d has %lld / %lld jets of class 0 / 1, counted %lld / %lld", what, s, all[0], all[1],
              got[0], got[1]);
    }
}

static void test_types(void) {
    const hid_t types[4] = {H5T_STD_U8LE, H5T_STD_I64LE, H5T_IEEE_F32LE, H5T_IEEE_F64BE};
    const char *names[4] = {"uint8", "int64", "float32", "float64 big-endian"};
    for (int k = 0; k < 4; k++) {
        char p[512];
        path_in(p, "types.h5");
        write_file(p, labelled(types[k]));
        Dataset *d = NULL;
        DatasetOptions o = options(p, "y", DATA_UNBIAS_NONE);
        CHECK(dataset_open(&d, &o) == 0, "%s labels: %s", names[k], e2e_error());
        if (!d) continue;
        CHECK(!strcmp(dataset_info(d)->label, "y"), "%s: the info names the label", names[k]);
        check_batches(d, SPLIT_TRAIN, label_of, NULL, names[k]);
        check_batches(d, SPLIT_VAL, label_of, NULL, names[k]);
        check_counts(d, label_of, names[k]);
        dataset_close(d);
    }
}

/* --balance: class c weighs n / (2 n_c) of the training split; the mean over it is 1 */
static void test_balance(void) {
    char p[512];
    path_in(p, "balance.h5");
    write_file(p, labelled(H5T_STD_U8LE));
    Dataset *d = NULL;
    DatasetOptions o = options(p, "y", DATA_UNBIAS_CLASSES);
    CHECK(dataset_open(&d, &o) == 0, "class weights: %s", e2e_error());
    if (!d) return;
    const long long *c = dataset_info(d)->class_count[SPLIT_TRAIN];
    float w[2] = {(float)((double)(c[0] + c[1]) / (2.0 * c[0])), (float)((double)(c[0] + c[1]) / (2.0 * c[1]))};
    check_batches(d, SPLIT_TRAIN, label_of, w, "class weights");
    check_batches(d, SPLIT_TEST, label_of, w, "class weights (test)");
    double mean = (c[0] * (double)w[0] + c[1] * (double)w[1]) / (double)(c[0] + c[1]);
    CHECK(fabs(mean - 1.0) < 1e-6 && fabs(c[0] * (double)w[0] - c[1] * (double)w[1]) < 1e-3 * c[0] * w[0],
          "both classes weigh the same (%g, %g) and the mean weight is %g", c[0] * (double)w[0], c[1] * (double)w[1],
          mean);
    CHECK(dataset_info(d)->weight_min == fminf(w[0], w[1]) && dataset_info(d)->weight_max == fmaxf(w[0], w[1]),
          "weight range %g .. %g", dataset_info(d)->weight_min, dataset_info(d)->weight_max);
    dataset_close(d);
    o = options(p, "y", DATA_UNBIAS_WEIGHTS); /* the mass weights with a label: the target stays the label */
    CHECK(dataset_open(&d, &o) == 0, "mass weights with a label: %s", e2e_error());
    if (d) check_batches(d, SPLIT_TRAIN, label_of, NULL, "mass weights with a label");
    if (d) dataset_close(d);
}

static double index_below_half(long long i) { return i < N ? 1.0 : 0.0; }

/* a list of a file stamped 1 (uint8) and one stamped 0 (float32), as e2e-convert
 * --label-value makes them from the top and the QCD files */
static void test_list(void) {
    char a[512], b[512], list[512];
    path_in(a, "top.h5"), path_in(b, "qcd.h5"), path_in(list, "both.txt");
    Spec s = labelled(H5T_STD_U8LE);
    s.value = 1.0;
    write_file(a, s);
    s.ltype = H5T_IEEE_F32LE, s.value = 0.0, s.mass_shift = 5.0;
    write_file(b, s);
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "top.h5\nqcd.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    Dataset *d = NULL;
    DatasetOptions o = options(list, "y", DATA_UNBIAS_NONE);
    o.split_block = 16;  /* both files in every split */
    CHECK(dataset_open(&d, &o) == 0, "a list of a signal file and a background file: %s", e2e_error());
    if (!d) return;
    check_batches(d, SPLIT_TRAIN, index_below_half, NULL, "mixed list");
    check_counts(d, index_below_half, "mixed list");
    dataset_close(d);
    expect_open_fails("one class in every split", options(a, "y", DATA_UNBIAS_NONE), "top.h5",
                      "the training split holds one class only (240 jets of label 'y' = 1, none of 0)");
}

static void bad(const char *what, const char *name, Spec s, const char *label, const char *needle) {
    char p[512];
    path_in(p, name);
    write_file(p, s);
    expect_open_fails(what, options(p, label, DATA_UNBIAS_NONE), name, needle);
}

static void test_bad(void) {
    bad("no label column", "nolabel.h5", (Spec){NULL, 0, 0, -1, 0, 0, 0}, "y", "no label column 'y'");
    bad("another label name", "other.h5", labelled(H5T_STD_U8LE), "is_top", "no label column 'is_top'");
    Spec s = labelled(H5T_STD_I32LE);
    s.bad_row = 7, s.bad = 2;
    bad("a label 2", "two.h5", s, "y", "label 'y' row 7 is 2: a class label must be 0 or 1");
    s.bad = -1;
    bad("a label -1", "minus.h5", s, "y", "row 7 is -1");
    s = labelled(H5T_IEEE_F32LE);
    s.bad_row = 311, s.bad = NAN;
    bad("a NaN label", "nan.h5", s, "y", "row 311 is nan");
    s.bad = 0.5;
    bad("a label 0.5", "half.h5", s, "y", "row 311 is 0.5");
    s = labelled(H5T_STD_U8LE);
    s.label_2d = 1;
    bad("a label of 2 columns", "twod.h5", s, "y", "y has 2 dimensions");
    char p[512];
    path_in(p, "plain.h5");
    write_file(p, labelled(H5T_STD_U8LE));
    expect_open_fails("class weights without a label", options(p, NULL, DATA_UNBIAS_CLASSES), "plain.h5",
                      "class weights need a label column");
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own serial writes */
    check_mpi_tmpdir(dir, sizeof dir, "e2e_data_labels");
    test_types();
    test_balance();
    test_list();
    test_bad();
    return check_mpi_finish("test_data_labels", dir);
}

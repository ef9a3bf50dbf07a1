/* A classifier's labels through the reader under real mpirun -np 2 (data/format/FORMAT.md,
 * "Class labels"): a label column of any integer or float type becomes the batches'
 * target, jet by jet; the class counts of each split (summed over the ranks) match the
 * rows; --balance's class weights give both classes the same total weight, mean 1 over
 * the training split; a list may mix files whose labels are stamped constants of other
 * dtypes. Refused on every rank with one message naming the file: a missing label column,
 * a label that is not 0 or 1 (2, -1, NaN), a label of another shape, a split of one
 * class, class weights without a label. A classifier's file needs no mass column (a
 * regression's does); e2e-eval's one_class_ok opens a file of one class; the dataset
 * fingerprint holds a classifier's label column and labels, and a regression's is unchanged. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mpi.h"
#include "dataset.h"
#include "error.h"
#include "expect_open.h"
#include "fingerprint.h"
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
    int no_mass;        /* no column m (a classifier's file, like the E2E electron/photon ones) */
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
        for (int c = s.no_mass; c < 4; c++) {
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

static Spec labelled(hid_t type) { return (Spec){"y", type, -1.0, -1, 0.0, 0, 0.0, 0}; }

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
    bad("no label column", "nolabel.h5", (Spec){NULL, 0, 0, -1, 0, 0, 0, 0}, "y", "no label column 'y'");
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
    s.bad = 1.0 + 0x1p-23;  /* the float after 1: named with its digits, not as "1" */
    bad("a label just above 1", "above1.h5", s, "y", "row 311 is 1.00000012");
    s = labelled(H5T_STD_U8LE);
    s.label_2d = 1;
    bad("a label of 2 columns", "twod.h5", s, "y", "y has 2 dimensions");
    char p[512];
    path_in(p, "plain.h5");
    write_file(p, labelled(H5T_STD_U8LE));
    expect_open_fails("class weights without a label", options(p, NULL, DATA_UNBIAS_CLASSES), "plain.h5",
                      "class weights need a label column");
}

/* A classifier's file without masses: opened with its label (masses NaN, info.has_mass 0,
 * targets its labels, dataset_labels its column); refused as a regression and with the
 * mass unbiasing; two such files of the same size are not taken for copies. */
static void test_no_mass(void) {
    char p[512], q[512], list[512];
    path_in(p, "nomass.h5"), path_in(q, "nomass2.h5"), path_in(list, "nomass.txt");
    Spec s = labelled(H5T_IEEE_F32LE);
    s.no_mass = 1;
    write_file(p, s);
    write_file(q, s);
    Dataset *d = NULL;
    DatasetOptions o = options(p, "y", DATA_UNBIAS_NONE);
    CHECK(dataset_open(&d, &o) == 0, "a labelled file without masses: %s", e2e_error());
    if (d) {
        const float *m = dataset_masses(d), *y = dataset_labels(d);
        long long nan_mass = 0, right = 0;
        for (long long i = 0; i < N; i++) nan_mass += isnan(m[i]) != 0, right += y && y[i] == (float)label_of(i);
        CHECK(!dataset_info(d)->has_mass && nan_mass == N, "no masses: has_mass 0, %lld of %d masses NaN", nan_mass, N);
        CHECK(right == N, "dataset_labels: %lld of %d rows are their label", right, N);
        check_batches(d, SPLIT_TRAIN, label_of, NULL, "no masses");
        dataset_close(d);
    }
    expect_open_fails("a regression without masses", options(p, NULL, DATA_UNBIAS_NONE), "nomass.h5",
                      "no mass column 'm': the regression's target is the jet mass");
    expect_open_fails("mass unbiasing without masses", options(p, "y", DATA_UNBIAS_WEIGHTS), "nomass.h5",
                      "no mass column 'm' to flatten the mass histogram with");
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "nomass.h5\nnomass2.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    o = options(list, "y", DATA_UNBIAS_NONE);
    CHECK(dataset_open(&d, &o) == 0, "two files without masses, same size: not copies: %s", e2e_error());
    if (d) CHECK(dataset_labels(d)[N + 3] == (float)label_of(3), "the second file's labels follow the first's");
    dataset_close(d);
    path_in(p, "plain.h5");
    write_file(p, labelled(H5T_STD_U8LE));
    o = options(p, "y", DATA_UNBIAS_NONE);
    CHECK(dataset_open(&d, &o) == 0 && dataset_info(d)->has_mass, "a file with masses: has_mass 1");
    dataset_close(d);
}

/* one_class_ok (e2e-eval): a file of one class opens, its classes counted */
static void test_one_class_ok(void) {
    char p[512];
    path_in(p, "top_only.h5");
    Spec s = labelled(H5T_STD_U8LE);
    s.value = 1.0;
    write_file(p, s);
    Dataset *d = NULL;
    DatasetOptions o = options(p, "y", DATA_UNBIAS_NONE);
    o.one_class_ok = 1;
    CHECK(dataset_open(&d, &o) == 0, "one_class_ok: a file of one class opens: %s", e2e_error());
    if (!d) return;
    long long n0 = 0, n1 = 0;
    for (int k = 0; k < DATA_SPLITS; k++) n0 += dataset_info(d)->class_count[k][0], n1 += dataset_info(d)->class_count[k][1];
    CHECK(n0 == 0 && n1 == N, "its classes counted: %lld of class 0, %lld of class 1", n0, n1);
    dataset_close(d);
}

/* the fingerprint of file p read with label (NULL: a regression) */
static void fingerprint_of(const char *p, const char *label, DataFingerprint *fp) {
    Dataset *d = NULL;
    DatasetOptions o = options(p, label, DATA_UNBIAS_NONE);
    memset(fp, 0, sizeof *fp);
    CHECK(dataset_open(&d, &o) == 0, "%s: %s", p, e2e_error());
    if (d) data_fingerprint(d, MPI_COMM_WORLD, fp);
    dataset_close(d);
}

/* A classifier's fingerprint holds its label column and a hash of the labels; a
 * regression's is what it was (no label: the same masses' and split's hashes). */
static void test_fingerprint(void) {
    char p[512], q[512], z[512], why[1024];
    path_in(p, "fp.h5"), path_in(q, "fp_relabelled.h5"), path_in(z, "fp_z.h5");
    write_file(p, labelled(H5T_STD_U8LE));
    Spec s = labelled(H5T_STD_U8LE);
    s.bad_row = 5, s.bad = 1.0 - label_of(5);
    write_file(q, s);
    s = labelled(H5T_STD_U8LE);
    s.label = "z";
    write_file(z, s);
    DataFingerprint reg, cls, rel, other;
    fingerprint_of(p, NULL, &reg);
    fingerprint_of(p, "y", &cls);
    fingerprint_of(q, "y", &rel);
    fingerprint_of(z, "z", &other);
    CHECK(!reg.label[0] && reg.label_hash == 0, "a regression's fingerprint has no label");
    CHECK(cls.mass_hash == reg.mass_hash && cls.split_hash == reg.split_hash && !strcmp(cls.label, "y") &&
          cls.label_hash != 0, "a classifier's: the same masses and split, the label 'y' and its hash");
    CHECK(!data_fingerprint_differs(&reg, &cls, why, sizeof why), "one side without labels: not compared (%s)", why);
    CHECK(data_fingerprint_differs(&cls, &rel, why, sizeof why) && strstr(why, "other labels"),
          "one label changed: %s", why);
    CHECK(data_fingerprint_differs(&cls, &other, why, sizeof why) && strstr(why, "labels from column 'z', not 'y'"),
          "another label column: %s", why);
    DataFingerprint again;
    fingerprint_of(p, "y", &again);
    CHECK(!data_fingerprint_differs(&cls, &again, why, sizeof why) && again.label_hash == cls.label_hash,
          "the same file twice: the same fingerprint (%s)", why);
}

/* An enum label column as h5py writes numpy bool (members FALSE 0 and TRUE 1 over int8),
 * with_two: a third member 2 on row 7 */
static void write_enum_labels(const char *path, int with_two) {
    write_file(path, (Spec){NULL, 0, 0, -1, 0, 0, 0, 0});
    if (rank == 0) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), t = H5Tenum_create(H5T_STD_I8LE);
        signed char v[N], m = 0;
        H5Tenum_insert(t, "FALSE", &m), m = 1, H5Tenum_insert(t, "TRUE", &m), m = 2;
        if (with_two) H5Tenum_insert(t, "MAYBE", &m);
        for (long long i = 0; i < N; i++) v[i] = (signed char)label_of(i);
        if (with_two) v[7] = 2;
        hsize_t n = N;
        hid_t sp = H5Screate_simple(1, &n, NULL), d = H5Dcreate2(f, "y", t, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t mem = H5Tget_native_type(t, H5T_DIR_ASCEND);
        H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        H5Tclose(mem), H5Dclose(d), H5Sclose(sp), H5Tclose(t), H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* labels of a boolean type (an HDF5 enum of integers) are numbers: read as 0 and 1; a
 * member worth 2 is refused like any label 2 */
static void test_boolean(void) {
    char p[512];
    path_in(p, "bool.h5");
    write_enum_labels(p, 0);
    Dataset *d = NULL;
    DatasetOptions o = options(p, "y", DATA_UNBIAS_NONE);
    CHECK(dataset_open(&d, &o) == 0, "boolean (enum) labels: %s", e2e_error());
    if (d) {
        check_batches(d, SPLIT_TRAIN, label_of, NULL, "boolean labels");
        check_counts(d, label_of, "boolean labels");
        dataset_close(d);
    }
    path_in(p, "enum2.h5");
    write_enum_labels(p, 1);
    expect_open_fails("an enum label worth 2", options(p, "y", DATA_UNBIAS_NONE), "enum2.h5",
                      "label 'y' row 7 is 2: a class label must be 0 or 1");
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
    test_boolean();
    test_no_mass();
    test_one_class_ok();
    test_fingerprint();
    return check_mpi_finish("test_data_labels", dir);
}

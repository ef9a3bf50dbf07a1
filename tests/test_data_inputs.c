/* The reader under real mpirun -np 2 on files that declare the model's inputs
 * (data/format/FORMAT.md: scalars, scalar_scale, channel_kinds): no scalars (and no ieta, iphi,
 * pt datasets), three scalars in a declared order with their scales, the default of a
 * file that declares nothing; a signed channel through the preprocessing, values checked
 * by hand, its scale taken over |x|, the device's numbers (dataset_prep_factors and the
 * kinds) equal to the reader's; files of a list that disagree; malformed declarations;
 * the plausibility checks (MeV masses, negative masses, empty images). Every refusal on
 * every rank with one message naming the file. */
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
#include "prep_pixel.h"

static int rank;
static char dir[256];

enum { N = 200, SIZE = 4, HW = SIZE * SIZE };

typedef struct {
    int channels;
    const char *columns;   /* the (N,) float32 datasets besides X_jet and m, "a,b,c" */
    const char *scalars;   /* attribute scalars: "a,b" ("" an empty array), NULL absent */
    const double *scales;  /* attribute scalar_scale: n_scales values (n_scales < 0: absent) */
    int n_scales;
    const char *kinds;     /* attribute channel_kinds "energy,signed", NULL absent */
    float mass_mul;        /* 1: GeV; 1000: the same masses in MeV */
    int negative;          /* the first `negative` jets have m = -1 - i */
    int empty_every;       /* every k-th image all zero (0: none, 1: all) */
} Spec;

static Spec plain(int channels) { return (Spec){channels, "pt,ieta,iphi", NULL, NULL, -1, NULL, 1.0f, 0, 0}; }

/* the known values: pixel k of every channel is PATTERN[k % 7], the same in every
 * channel (the kinds decide what becomes of them) */
static const float PATTERN[7] = {-0.6f, -0.4f, -0.2f, 0.0f, 0.1f, 0.2f, 0.3f};
static float mass_of(long long i) { return 50.0f + (float)(i % 400); }
/* column j (0-based in Spec.columns) of jet i */
static float column_of(int j, long long i) { return (float)(10 * (j + 1)) + (float)(i % 97) * 0.5f; }

static void put_strings(hid_t f, const char *name, const char *list) {
    char buf[256], *names[32];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", list);
    for (char *t = strtok(buf, ","); t && n < 32; t = strtok(NULL, ",")) names[n++] = t;
    h5_attr_write_strs(f, name, (const char *const *)names, n);
}

static void write_x(hid_t f, const Spec *s) {
    const long long row = (long long)s->channels * HW;
    float *x = malloc((size_t)(N * row) * sizeof *x);
    for (long long i = 0; i < N; i++)
        for (long long p = 0; p < row; p++)
            x[i * row + p] = s->empty_every && i % s->empty_every == 0 ? 0.0f : PATTERN[(p % HW) % 7];
    hsize_t d[4] = {N, (hsize_t)s->channels, SIZE, SIZE}, c[4] = {10, (hsize_t)s->channels, SIZE, SIZE};
    hid_t sp = H5Screate_simple(4, d, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, c);
    hid_t ds = H5Dcreate2(f, "X_jet", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
    H5Dclose(ds), H5Pclose(dcpl), H5Sclose(sp);
    free(x);
}

static void write_column(hid_t f, const char *name, const float *v) {
    hsize_t n = N;
    h5_dataset_write(f, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &n, v);
}

/* the file of spec s, written by rank 0 */
static void write_file(const char *path, Spec s) {
    if (rank == 0) {
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        write_x(f, &s);
        float v[N];
        for (long long i = 0; i < N; i++) v[i] = i < s.negative ? -1.0f - (float)i : mass_of(i) * s.mass_mul;
        write_column(f, "m", v);
        char buf[256];
        snprintf(buf, sizeof buf, "%s", s.columns);
        int j = 0;
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","), j++) {
            for (long long i = 0; i < N; i++) v[i] = column_of(j, i);
            write_column(f, t, v);
        }
        if (s.scalars) put_strings(f, "scalars", s.scalars);
        if (s.n_scales >= 0) {
            hsize_t n = (hsize_t)s.n_scales;
            hid_t sp = H5Screate_simple(1, &n, NULL), a = H5Acreate2(f, "scalar_scale", H5T_IEEE_F64LE, sp,
                                                                   H5P_DEFAULT, H5P_DEFAULT);
            H5Awrite(a, H5T_NATIVE_DOUBLE, s.n_scales ? s.scales : (const double[]){0});
            H5Aclose(a), H5Sclose(sp);
        }
        if (s.kinds) put_strings(f, "channel_kinds", s.kinds);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

static void path_in(char *p, const char *name) { snprintf(p, 512, "%s/%s", dir, name); }

static DatasetOptions options(const char *path) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.path = path;
    o.batch = 8;
    o.unbias = DATA_UNBIAS_NONE;
    return o;
}

/* every batch of the validation split: scalars k = column cols[k] / scales[k] (exact) */
static void check_scalars(Dataset *d, int S, const int *cols, const double *scales, const char *what) {
    Batch b;
    long long wrong = 0, seen = 0;
    CHECK(dataset_begin_epoch(d, SPLIT_VAL, 0, 0) == 0, "%s: begin: %s", what, e2e_error());
    while (dataset_next(d, &b) == 1) {
        CHECK(S ? b.scalars != NULL : b.scalars == NULL, "%s: scalars %s", what, S ? "missing" : "given for none");
        for (int i = 0; i < b.n; i++, seen++)
            for (int k = 0; k < S && b.scalars; k++)
                wrong += b.scalars[i * S + k] != column_of(cols[k], b.index[i]) / (float)scales[k];
    }
    CHECK(seen > 0 && wrong == 0, "%s: %lld of %lld jets with a wrong scalar", what, wrong, seen);
}

static void test_scalars(void) {
    char p[512];
    /* no scalars, and no pt, ieta, iphi datasets at all */
    Spec s = plain(2);
    s.columns = "y";
    s.scalars = "";
    s.n_scales = 0;
    path_in(p, "none.h5");
    write_file(p, s);
    Dataset *d = NULL;
    DatasetOptions o = options(p);
    CHECK(dataset_open(&d, &o) == 0, "a file without scalars: %s", e2e_error());
    if (d) {
        CHECK(dataset_info(d)->n_scalars == 0, "no scalars: n_scalars %d", dataset_info(d)->n_scalars);
        check_scalars(d, 0, NULL, NULL, "no scalars");
        dataset_close(d);
    }
    /* three, in the declared order, each with its scale; a fourth column left alone */
    s.columns = "pt,ieta,iphi,y";
    s.scalars = "iphi,pt,ieta";
    const double sc[3] = {360.0, 800.0, 0.3};
    s.scales = sc;
    s.n_scales = 3;
    path_in(p, "three.h5");
    write_file(p, s);
    o = options(p);
    CHECK(dataset_open(&d, &o) == 0, "three scalars: %s", e2e_error());
    if (d) {
        const DatasetInfo *in = dataset_info(d);
        CHECK(in->n_scalars == 3 && !strcmp(in->scalar_names[0], "iphi") && !strcmp(in->scalar_names[1], "pt") &&
                  !strcmp(in->scalar_names[2], "ieta") && in->scalar_scales[1] == 800.0 && in->scalar_scales[2] == 0.3,
              "three scalars: names and scales as declared");
        check_scalars(d, 3, (const int[]){2, 0, 1}, sc, "three scalars");
        dataset_close(d);
    }
    /* declaring nothing: iphi / 360, ieta / 170, as before */
    path_in(p, "default.h5");
    write_file(p, plain(2));
    o = options(p);
    CHECK(dataset_open(&d, &o) == 0, "the default: %s", e2e_error());
    if (d) {
        const DatasetInfo *in = dataset_info(d);
        CHECK(in->n_scalars == 2 && !strcmp(in->scalar_names[0], "iphi") && in->scalar_scales[1] == 170.0 &&
                  in->channel_kinds[0] == CHANNEL_ENERGY && in->channel_kinds[1] == CHANNEL_ENERGY,
              "the default: iphi/360, ieta/170, energy-like");
        check_scalars(d, 2, (const int[]){2, 1}, (const double[]){360.0, 170.0}, "the default scalars");
        dataset_close(d);
    }
}

/* channel 1 signed, channel 0 energy-like, the same pixels (PATTERN): by hand, at scale
 * 0.25 (x 4) and zero suppression 1e-5 */
static void test_signed(void) {
    static const float WANT_ENERGY[7] = {0.0f, 0.0f, 0.0f, 0.0f, 0.4f, 0.8f, 1.0f};
    static const float WANT_SIGNED[7] = {-1.0f, -1.0f, -0.8f, 0.0f, 0.4f, 0.8f, 1.0f};
    char p[512];
    Spec s = plain(2);
    s.kinds = "energy,signed";
    path_in(p, "signed.h5");
    write_file(p, s);
    /* the scales computed over the training split: the signed one of |x| (largest 0.6),
     * the energy-like one of the positive pixels (largest 0.3) */
    Dataset *d = NULL;
    DatasetOptions o = options(p);
    CHECK(dataset_open(&d, &o) == 0, "signed: %s", e2e_error());
    if (d) {
        const float *sc = dataset_scales(d);
        CHECK(sc[1] >= 0.6f && sc[1] <= 0.6f * (1 + 1.0f / 128) && sc[0] >= 0.3f && sc[0] <= 0.3f * (1 + 1.0f / 128),
              "the signed channel's scale %g is of |x| (0.6), the energy-like one's %g of x > 0 (0.3)", sc[1], sc[0]);
        CHECK(dataset_info(d)->channel_kinds[1] == CHANNEL_SIGNED, "channel 1 is signed");
        dataset_close(d);
    }
    const float given[2] = {0.25f, 0.25f};
    o.scales = given;
    CHECK(dataset_open(&d, &o) == 0, "signed, given scales: %s", e2e_error());
    Dataset *raw = NULL;
    o.preprocess = 0;
    CHECK(dataset_open(&raw, &o) == 0, "signed, not preprocessed: %s", e2e_error());
    if (!d || !raw) return;
    Batch b, r;
    long long wrong = 0, device = 0, seen = 0;
    float zs;
    const float *factor = dataset_prep_factors(raw, &zs);
    const unsigned char *kind = dataset_info(raw)->channel_kinds;
    dataset_begin_epoch(d, SPLIT_TRAIN, 1, 0);
    dataset_begin_epoch(raw, SPLIT_TRAIN, 1, 0);
    while (dataset_next(d, &b) == 1 && dataset_next(raw, &r) == 1) {
        for (long long i = 0; i < (long long)b.n * 2 * HW; i++, seen++) {
            int c = (int)(i / HW % 2), k = (int)(i % HW % 7);
            wrong += b.x[i] != (c ? WANT_SIGNED[k] : WANT_ENERGY[k]);
            /* the numbers a device is given reproduce the reader's preprocessing */
            float v = prep_pixel(r.x[i], factor[c], kind[c], zs);
            device += memcmp(&v, &b.x[i], 4) != 0;
        }
    }
    CHECK(seen > 0 && wrong == 0, "a signed channel by hand: %lld of %lld pixels wrong", wrong, seen);
    CHECK(device == 0, "prep_pixel with dataset_prep_factors and the kinds: %lld pixels differ", device);
    dataset_close(d);
    dataset_close(raw);
}

/* the files of a list must declare the same inputs */
static void test_list_disagrees(void) {
    char a[512], b[512], list[512];
    path_in(a, "list_a.h5");
    path_in(b, "list_b.h5");
    path_in(list, "list.txt");
    write_file(a, plain(2));
    Spec s = plain(2);
    s.scalars = "pt";
    s.scales = (const double[]){1000.0};
    s.n_scales = 1;
    write_file(b, s);
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "list_a.h5\nlist_b.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    expect_open_fails("list, other scalars", options(list), b, "scalars pt/1000; channel kinds energy x2, but");
    expect_open_fails("list, other scalars (a)", options(list), a, "scalars iphi/360, ieta/170");
    s = plain(2);
    s.kinds = "signed,energy";
    write_file(b, s);
    expect_open_fails("list, other kinds", options(list), b, "channel kinds signed, energy, but");
}

static void malformed(const char *what, const char *name, Spec s, const char *needle) {
    char p[512];
    path_in(p, name);
    write_file(p, s);
    expect_open_fails(what, options(p), p, needle);
}

static void test_malformed(void) {
    Spec s = plain(2);
    s.scalars = "iphi,ieta";
    s.scales = (const double[]){360.0};
    s.n_scales = 1;
    malformed("scales fewer than names", "short.h5", s, "'scalar_scale' holds 1 values but 'scalars' names 2");
    s.n_scales = -1;
    malformed("no scalar_scale", "noscale.h5", s, "names 2 scalars but there is no 'scalar_scale'");
    s.scales = (const double[]){360.0, 0.0};
    s.n_scales = 2;
    malformed("a zero scale", "zero.h5", s, "gives scalar 'ieta' the scale 0");
    s.scalars = "iphi,iphi";
    s.scales = (const double[]){360.0, 360.0};
    malformed("a name twice", "twice.h5", s, "names 'iphi' twice");
    s.scalars = "iphi,m";
    malformed("the mass as a scalar", "mass.h5", s, "m is the target");
    s.scalars = "iphi,eta";
    malformed("a scalar without its dataset", "noeta.h5", s, "no dataset 'eta', which its attribute 'scalars' names");
    s = plain(2);
    s.scales = (const double[]){1.0};
    s.n_scales = 1;
    malformed("scalar_scale alone", "alone.h5", s, "attribute 'scalar_scale' without 'scalars'");
    s = plain(2);
    s.kinds = "energy,charge";
    malformed("an unknown kind", "kind.h5", s, "gives channel 1 the kind 'charge'");
    s.kinds = "energy,energy,signed";
    malformed("kinds of 3 channels", "kinds3.h5", s, "gives 3 kinds but X_jet has 2 channels");
    s = plain(2);
    s.columns = "ieta,iphi";
    malformed("declaring nothing, without pt", "nopt.h5", s, "no dataset 'pt'");
}

/* all training rows of the split (every rank's), counted where pred holds */
static long long train_rows_where(Dataset *d, int every) {
    long long n, count = 0, all;
    const long long *rows = dataset_split_rows(d, SPLIT_TRAIN, &n);
    for (long long i = 0; i < n; i++) count += rows[i] % every == 0;
    MPI_Allreduce(&count, &all, 1, MPI_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
    return all;
}

static void test_plausible(void) {
    Spec s = plain(2);
    s.mass_mul = 1000.0f;
    malformed("masses in MeV", "mev.h5", s, "the median mass is 1.495e+05 GeV: the masses look like MeV");
    s = plain(2);
    s.empty_every = 1;
    malformed("every image empty", "empty.h5", s, "every one of the 180 images read from it for the preprocessing");
    char p[512];
    s = plain(2);
    s.negative = 3;
    s.empty_every = 4;
    path_in(p, "odd.h5");
    write_file(p, s);
    Dataset *d = NULL;
    DatasetOptions o = options(p);
    CHECK(dataset_open(&d, &o) == 0, "negative masses and some empty images are trained on: %s", e2e_error());
    if (d) {
        const DatasetInfo *in = dataset_info(d);
        long long want = train_rows_where(d, 4);
        CHECK(in->negative_masses == 3, "negative masses counted: %lld", in->negative_masses);
        CHECK(in->images_checked == 180 && in->empty_images == want && want > 0,
              "empty images among the 180 training images: %lld, want %lld", in->empty_images, want);
        dataset_close(d);
    }
    const float given[2] = {1.0f, 1.0f};
    o.scales = given; /* no statistics pass: no image is judged */
    CHECK(dataset_open(&d, &o) == 0, "given scales: %s", e2e_error());
    if (d) {
        CHECK(dataset_info(d)->images_checked == 0 && dataset_info(d)->empty_images == 0, "given scales: none checked");
        dataset_close(d);
    }
}

int main(int argc, char **argv) {
    int provided, nranks;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* the test's own serial writes */
    check_mpi_tmpdir(dir, sizeof dir, "e2e_data_inputs");
    test_scalars();
    test_signed();
    test_list_disagrees();
    test_malformed();
    test_plausible();
    return check_mpi_finish("test_data_inputs", dir);
}

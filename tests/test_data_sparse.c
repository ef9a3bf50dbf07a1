/* The sparse layout under real mpirun -np 2 (data/format/FORMAT.md, format version 2):
 *  - round trips dense -> sparse -> dense bit for bit (float32 and float16; written
 *    with 1 and 2 ranks; a hand-made file holding -0.0, subnormals, NaN and Inf too);
 *    e2e-synth's sparse layout equals the sparse copy of its dense file;
 *  - the reader gives the same batches (indices, pixels bit for bit, targets, weights)
 *    and the same scales from the dense file and its sparse copy, read raw, through
 *    HDF5 or from the memory cache (and with signed channels, channel_kinds); x_sparse batches densified and
 *    preprocessed by hand with dataset_prep_factors equal the preprocessed ones;
 *  - the split and the epoch order depend on the jets only: a re-chunked copy, the
 *    sparse copy and a list of two files that concatenate the file give them alike;
 *  - the memory cache: refused for dense files, and when it does not fit, on every rank
 *    with one message. */
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_mpi.h"
#include "convert.h"
#include "dataset.h"
#include "h5util.h"
#include "half.h"
#include "jet_inputs.h"
#include "sparse.h"
#include "synth_file.h"

static int rank, nranks;
static char dir[256];

static void path_in(char *p, const char *name) { snprintf(p, 512, "%s/%s", dir, name); }

/* e2e-data convert (collective over comm) or abort */
static void convert(const char *in, const char *out, int sparse, long long chunk, long long first, long long count,
                    MPI_Comm comm) {
    ConvertOptions o;
    convert_defaults(&o);
    o.in = in, o.out = out, o.sparse = sparse, o.chunk = chunk, o.first = first, o.count = count;
    if (data_convert(&o, comm)) {
        fprintf(stderr, "rank %d: convert %s -> %s: %s\n", rank, in, out, e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

/* a dataset's bytes as stored (serial), and their count */
static unsigned char *stored_bytes(const char *path, const char *name, size_t *bytes) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = H5Dget_type(d), sp = H5Dget_space(d);
    *bytes = H5Tget_size(t) * (size_t)H5Sget_simple_extent_npoints(sp);
    unsigned char *buf = malloc(*bytes ? *bytes : 1);
    H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    H5Sclose(sp);
    H5Tclose(t);
    H5Dclose(d);
    H5Fclose(f);
    return buf;
}

/* rank 0: whether two dense files hold the same X_jet bytes (broadcast) */
static int same_images(const char *a, const char *b) {
    int same = 0;
    if (rank == 0) {
        size_t na, nb;
        unsigned char *x = stored_bytes(a, "X_jet", &na), *y = stored_bytes(b, "X_jet", &nb);
        same = na == nb && !memcmp(x, y, na);
        free(x);
        free(y);
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return same;
}

static int same_sparse(const char *a, const char *b) {
    int same = 1;
    if (rank == 0) {
        const char *names[4] = {"X_jet/offsets", "X_jet/counts", "X_jet/pos", "X_jet/value"};
        for (int k = 0; k < 4; k++) {
            size_t na, nb;
            unsigned char *x = stored_bytes(a, names[k], &na), *y = stored_bytes(b, names[k], &nb);
            same &= na == nb && !memcmp(x, y, na);
            free(x);
            free(y);
        }
    }
    MPI_Bcast(&same, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return same;
}

static void test_roundtrip(void) {
    for (int bytes = 4; bytes >= 2; bytes -= 2) {
        char dense[512], sp2[512], sp1[512], back2[512], back1[512], synth[512], name[64];
        snprintf(name, sizeof name, "rt%d.h5", bytes);
        path_in(dense, name);
        synth_file_or_abort(dense, 150, 20, 8, bytes, 9, 3);
        snprintf(name, sizeof name, "rt%d_sparse2.h5", bytes);
        path_in(sp2, name);
        convert(dense, sp2, 1, 0, 0, 0, MPI_COMM_WORLD); /* 2 ranks */
        snprintf(name, sizeof name, "rt%d_back2.h5", bytes);
        path_in(back2, name);
        convert(sp2, back2, 0, 9, 0, 0, MPI_COMM_WORLD);
        snprintf(name, sizeof name, "rt%d_sparse1.h5", bytes);
        path_in(sp1, name);
        snprintf(name, sizeof name, "rt%d_back1.h5", bytes);
        path_in(back1, name);
        if (rank == 0) { /* 1 rank */
            convert(dense, sp1, 1, 0, 0, 0, MPI_COMM_SELF);
            convert(sp1, back1, 0, 0, 0, 0, MPI_COMM_SELF);
        }
        MPI_Barrier(MPI_COMM_WORLD);
        CHECK(same_images(dense, back2), "float%d: dense -> sparse -> dense with 2 ranks changed X_jet", 8 * bytes);
        CHECK(same_images(dense, back1), "float%d: dense -> sparse -> dense with 1 rank changed X_jet", 8 * bytes);
        CHECK(same_sparse(sp1, sp2), "float%d: the sparse copies of 1 and 2 ranks differ", 8 * bytes);
        snprintf(name, sizeof name, "rt%d_synth.h5", bytes);
        path_in(synth, name);
        SynthFileOptions so;
        synth_file_defaults(&so);
        so.out = synth, so.samples = 150, so.size = 20, so.channels = 8, so.dtype_bytes = bytes, so.seed = 3;
        so.sparse = 1;
        CHECK(synth_write_file(&so, MPI_COMM_WORLD) == 0, "e2e-synth sparse: %s", e2e_error());
        CHECK(same_sparse(synth, sp2), "float%d: e2e-synth's sparse file differs from the sparse copy of its dense one",
              8 * bytes);
    }
}

/* A dense float32 file whose pixels include -0.0, subnormals, NaN, Inf and the largest
 * float, written by rank 0; its sparse copy and back must keep every bit. */
static void test_special_values(void) {
    char p[512], s[512], b[512];
    path_in(p, "special.h5");
    path_in(s, "special_sparse.h5");
    path_in(b, "special_back.h5");
    if (rank == 0) {
        const int n = 3, C = 2, H = 4, W = 5;
        float x[3 * 2 * 4 * 5] = {0}, col[3] = {10.0f, 20.0f, 30.0f};
        const float special[] = {-0.0f, 1e-45f, -1e-45f, NAN, INFINITY, -INFINITY, 3.4028235e38f, 1.0f, -2.5f};
        for (int i = 0; i < 9; i++) x[i * 4 + 1] = special[i];
        x[n * C * H * W - 1] = -0.0f; /* the last pixel of the last plane */
        hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t d4[4] = {n, C, H, W}, d1 = n;
        hid_t sp = H5Screate_simple(4, d4, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 4, d4);
        hid_t d = H5Dcreate2(f, "X_jet", H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        H5Dclose(d), H5Pclose(dcpl), H5Sclose(sp);
        const char *cols[4] = {"m", "pt", "ieta", "iphi"};
        sp = H5Screate_simple(1, &d1, NULL);
        for (int k = 0; k < 4; k++) {
            d = H5Dcreate2(f, cols[k], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, col);
            H5Dclose(d);
        }
        H5Sclose(sp);
        H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    convert(p, s, 1, 0, 0, 0, MPI_COMM_WORLD);
    convert(s, b, 0, 0, 0, 0, MPI_COMM_WORLD);
    CHECK(same_images(p, b), "-0.0, subnormals, NaN, Inf: dense -> sparse -> dense changed a bit");
    if (rank == 0) {
        size_t nb;
        unsigned char *off = stored_bytes(s, "X_jet/offsets", &nb);
        long long total;
        memcpy(&total, off + nb - 8, 8);
        CHECK(total == 10, "the sparse copy holds %lld entries; want 10 (9 specials and the last -0.0)", total);
        free(off);
    }
}

/* one epoch's batches, concatenated */
typedef struct {
    long long n;
    long long *index;
    float *x, *target, *weight;
} Epoch;

static Dataset *open_opts(const DatasetOptions *o) {
    Dataset *d = NULL;
    if (dataset_open(&d, o)) {
        fprintf(stderr, "rank %d: dataset_open %s: %s\n", rank, o->path, e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return d;
}

/* x_sparse batches are densified and preprocessed here, by hand, with the reader's
 * numbers (dataset_prep_factors, the channel kinds) and the one per-pixel rule
 * (prep_pixel): what a GPU does with them */
static void densify_by_hand(const Dataset *d, const Batch *b, float *x) {
    const DatasetInfo *in = dataset_info(d);
    const long long hw = (long long)in->height * in->width;
    float zs;
    const float *f = dataset_prep_factors(d, &zs);
    memset(x, 0, (size_t)(b->n * in->channels * hw) * sizeof *x);
    for (long long p = 0; p < (long long)b->n * in->channels; p++)
        for (uint32_t e = b->sparse.plane_start[p]; e < b->sparse.plane_start[p + 1]; e++) {
            uint32_t pos = b->sparse.pos_bytes == 2 ? ((const uint16_t *)b->sparse.pos)[e]
                                                     : ((const uint32_t *)b->sparse.pos)[e];
            float v = b->sparse.value_bytes == 2 ? half_to_float(((const uint16_t *)b->sparse.value)[e])
                                                  : ((const float *)b->sparse.value)[e];
            int c = (int)(p % in->channels);
            x[p * hw + pos] = prep_pixel(v, f[c], in->channel_kinds ? in->channel_kinds[c] : CHANNEL_ENERGY, zs);
        }
}

static Epoch run_epoch(Dataset *d, Split s, long epoch) {
    const DatasetInfo *in = dataset_info(d);
    const long long rowf = (long long)in->channels * in->height * in->width, cap = dataset_split_local(d, s) + 1;
    Epoch e = {0, malloc(cap * sizeof(long long)), malloc(cap * rowf * sizeof(float)), malloc(cap * sizeof(float)),
               malloc(cap * sizeof(float))};
    CHECK(dataset_begin_epoch(d, s, epoch, 0) == 0, "begin_epoch: %s", e2e_error());
    Batch b;
    int r;
    while ((r = dataset_next(d, &b)) == 1) {
        CHECK(!b.sparse.plane_start == !in->x_sparse && !b.x == !!in->x_sparse, "a batch carries x or sparse, as info says");
        memcpy(e.index + e.n, b.index, b.n * sizeof *b.index);
        if (b.sparse.plane_start) densify_by_hand(d, &b, e.x + e.n * rowf);
        else memcpy(e.x + e.n * rowf, b.x, b.n * rowf * sizeof *b.x);
        memcpy(e.target + e.n, b.target, b.n * sizeof(float));
        memcpy(e.weight + e.n, b.weight, b.n * sizeof(float));
        e.n += b.n;
    }
    CHECK(r == 0, "epoch ended with %d: %s", r, e2e_error());
    return e;
}

static void free_epoch(Epoch *e) {
    free(e->index);
    free(e->x);
    free(e->target);
    free(e->weight);
}

static int same_epoch(const Epoch *a, const Epoch *b, long long rowf) {
    return a->n == b->n && !memcmp(a->index, b->index, a->n * sizeof *a->index) &&
           !memcmp(a->x, b->x, a->n * rowf * sizeof *a->x) && !memcmp(a->target, b->target, a->n * sizeof(float)) &&
           !memcmp(a->weight, b->weight, a->n * sizeof(float));
}

/* the dense file's batches (preprocessed by the reader) against the sparse copy's:
 * preprocessed by the reader, from the files and from the cache, and kept sparse */
static void test_batches(const char *dense, const char *sparse, const char *label) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.batch = 6;
    o.seed = 21;
    o.path = dense;
    Dataset *d = open_opts(&o);
    const DatasetInfo *in = dataset_info(d);
    const long long rowf = (long long)in->channels * in->height * in->width;
    float scales[8];
    memcpy(scales, dataset_scales(d), in->channels * sizeof *scales);
    Epoch ref[2] = {run_epoch(d, SPLIT_TRAIN, 3), run_epoch(d, SPLIT_VAL, 0)};
    dataset_close(d);
    /* files, files without prefetch, cache, x_sparse from the cache, HDF5 reads */
    for (int mode = 0; mode < 5; mode++) {
        o.path = sparse;
        o.prefetch = mode == 1 ? 0 : 2;
        o.io = mode == 4 ? DATA_IO_HDF5 : DATA_IO_AUTO;
        o.cache = mode == 2 || mode == 3 ? DATA_CACHE_MEMORY : DATA_CACHE_NONE;
        o.preprocess = mode != 3;
        o.keep_sparse = mode == 3;
        d = open_opts(&o);
        in = dataset_info(d);
        CHECK(in->sparse_files == 1 && !!in->cached == (mode == 2 || mode == 3) && !!in->x_sparse == (mode == 3) &&
              !!in->raw_io == (mode != 4),
              "%s mode %d: info says sparse %d cached %d x_sparse %d", label, mode, in->sparse_files, in->cached,
              in->x_sparse);
        CHECK(!memcmp(scales, dataset_scales(d), in->channels * sizeof *scales),
              "%s mode %d: the scales differ from the dense file's", label, mode);
        for (int s = 0; s < 2; s++) {
            Epoch e = run_epoch(d, s ? SPLIT_VAL : SPLIT_TRAIN, s ? 0 : 3);
            CHECK(same_epoch(&e, &ref[s], rowf), "%s mode %d: %s batches differ from the dense file's", label, mode,
                  s ? "validation" : "training");
            free_epoch(&e);
        }
        dataset_close(d);
    }
    free_epoch(&ref[0]);
    free_epoch(&ref[1]);
}

/* rank 0: a copy of the float32 file whose channels 1 and 2 (dz, d0) are declared
 * signed (attribute channel_kinds) and hold values of either sign, so the signed
 * preprocessing (|x| statistic, [-1, 1]) runs through both layouts */
static void make_signed_copy(const char *from, const char *to) {
    if (rank == 0) {
        char cmd[1200];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
        CHECK(system(cmd) == 0, "cp");
        hid_t f = H5Fopen(to, H5F_ACC_RDWR, H5P_DEFAULT), d = H5Dopen2(f, "X_jet", H5P_DEFAULT), sp = H5Dget_space(d);
        hsize_t dims[4];
        H5Sget_simple_extent_dims(sp, dims, NULL);
        const size_t hw = dims[2] * dims[3], n = dims[0] * dims[1] * hw;
        float *x = malloc(n * sizeof *x);
        H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        long long negative = 0;
        for (size_t i = 0; i < n; i++) {
            size_t c = (i / hw) % dims[1];
            if ((c == 1 || c == 2) && x[i] != 0.0f && (i * 2654435761u) % 3 == 0) x[i] = -x[i], negative++;
        }
        CHECK(negative > 100, "%lld negative impact parameters", negative);
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x);
        const char *kinds[8] = {"energy", "signed", "signed", "energy", "energy", "energy", "energy", "energy"};
        CHECK(h5_attr_write_strs(f, ATTR_CHANNEL_KINDS, kinds, 8) == 0, "channel_kinds");
        free(x);
        H5Sclose(sp), H5Dclose(d), H5Fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
}

/* the split and the order of a file, a re-chunked copy, the sparse copy and a list of
 * two files that concatenate it */
static void test_split_invariance(const char *dense, const char *sparse) {
    char rechunk[512], half1[512], half2[512], list[512];
    path_in(rechunk, "rechunked.h5");
    path_in(half1, "half1.h5");
    path_in(half2, "half2.h5");
    path_in(list, "halves.txt");
    convert(dense, rechunk, 0, 13, 0, 0, MPI_COMM_WORLD);
    convert(dense, half1, 0, 5, 0, 97, MPI_COMM_WORLD);
    convert(dense, half2, 1, 0, 97, 0, MPI_COMM_WORLD); /* the second half sparse */
    if (rank == 0) {
        FILE *f = fopen(list, "w");
        fprintf(f, "half1.h5\nhalf2.h5\n");
        fclose(f);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    const char *paths[4] = {dense, rechunk, sparse, list};
    const char *names[4] = {"the file", "a re-chunked copy", "the sparse copy", "a list of two halves"};
    DatasetOptions o;
    dataset_default_options(&o);
    o.batch = 5;
    o.seed = 77;
    Epoch ref = {0};
    long long ref_rows[3] = {0};
    for (int k = 0; k < 4; k++) {
        o.path = paths[k];
        Dataset *d = open_opts(&o);
        const DatasetInfo *in = dataset_info(d);
        const long long rowf = (long long)in->channels * in->height * in->width;
        long long sum[3] = {0};
        for (int s = 0; s < 3; s++) {
            long long n;
            const long long *rows = dataset_split_rows(d, s, &n);
            for (long long i = 0; i < n; i++) sum[s] += rows[i] * (i + 1); /* order-sensitive */
        }
        Epoch e = run_epoch(d, SPLIT_TRAIN, 2);
        if (k == 0) {
            ref = e;
            memcpy(ref_rows, sum, sizeof sum);
        } else {
            CHECK(!memcmp(sum, ref_rows, sizeof sum), "%s: the split's rows differ from the file's", names[k]);
            CHECK(same_epoch(&e, &ref, rowf), "%s: the training epoch differs from the file's", names[k]);
            free_epoch(&e);
        }
        dataset_close(d);
    }
    free_epoch(&ref);
}

/* the cache refuses dense files and a limit it does not fit in, on every rank */
static void test_cache_errors(const char *dense, const char *sparse) {
    DatasetOptions o;
    dataset_default_options(&o);
    o.batch = 4;
    o.cache = DATA_CACHE_MEMORY;
    for (int k = 0; k < 2; k++) {
        o.path = k ? sparse : dense;
        o.cache_limit = k ? 1000 : 0;
        Dataset *d = NULL;
        int rc = dataset_open(&d, &o), all;
        MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
        char mine[E2E_ERROR_LEN], first[E2E_ERROR_LEN];
        snprintf(mine, sizeof mine, "%s", e2e_error());
        memcpy(first, mine, sizeof first);
        MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
        CHECK(rc == -1 && all == -1 && !strcmp(mine, first), "cache %s: not one failure on every rank: %s",
              k ? "too small" : "of a dense file", mine);
        CHECK(strstr(mine, o.path) && strstr(mine, k ? "more than the limit given" : "sparse files only"),
              "cache %s: message '%s'", k ? "too small" : "of a dense file", mine);
        if (rank == 0) printf("cache %-12s -> %s\n", k ? "too small" : "dense file", mine);
        if (d) dataset_close(d);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    check_mpi_tmpdir(dir, sizeof dir, "e2e_test_sparse");
    test_roundtrip();
    test_special_values();
    char dense[512], sparse[512], d16[512], s16[512];
    path_in(dense, "jets.h5");
    path_in(sparse, "jets_sparse.h5");
    path_in(d16, "jets16.h5");
    path_in(s16, "jets16_sparse.h5");
    synth_file_or_abort(dense, 211, 20, 8, 4, 7, 5);
    synth_file_or_abort(d16, 211, 20, 8, 2, 7, 5);
    convert(dense, sparse, 1, 0, 0, 0, MPI_COMM_WORLD);
    convert(d16, s16, 1, 0, 0, 0, MPI_COMM_WORLD);
    test_batches(dense, sparse, "float32");
    test_batches(d16, s16, "float16");
    char dsig[512], ssig[512];
    path_in(dsig, "signed.h5");
    path_in(ssig, "signed_sparse.h5");
    make_signed_copy(dense, dsig);
    convert(dsig, ssig, 1, 0, 0, 0, MPI_COMM_WORLD);
    test_batches(dsig, ssig, "signed channels");
    test_split_invariance(dense, sparse);
    test_cache_errors(dense, sparse);
    return check_mpi_finish("test_data_sparse", dir);
}

#include "synthfile.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "data_error.h"
#include "format.h"
#include "h5util.h"
#include "half.h"
#include "synth.h"

#define GENERATOR "e2e-synth 1"

void synth_file_defaults(SynthFileOptions *o) {
    memset(o, 0, sizeof *o);
    o->samples = 1000;
    o->seed = 1;
    o->size = 125;
    o->channels = 8;
    o->dtype_bytes = 4;
    o->pixel_size = SYNTH_PIXEL_SIZE;
}

long long synth_default_chunk(long long samples, long long row_bytes) {
    long long c = (4LL << 20) / (row_bytes > 0 ? row_bytes : 1);
    long long sixty_fourth = (samples + 63) / 64;
    if (c > sixty_fourth) c = sixty_fourth;
    return c < 1 ? 1 : c;
}

static int check_options(const SynthFileOptions *o) {
    if (!o->out || !o->out[0]) return data_fail("no output file given (--out FILE)");
    if (o->samples < 1) return data_fail("%s: --samples must be at least 1 (got %lld)", o->out, o->samples);
    if (o->dtype_bytes != 4 && o->dtype_bytes != 2)
        return data_fail("%s: dtype must be float32 or float16", o->out);
    if (o->chunk < 0) return data_fail("%s: --chunk must be positive (got %lld)", o->out, o->chunk);
    SynthConfig c = {o->size, o->channels, o->pixel_size, o->seed};
    if (synth_check(&c)) return data_fail("%s: %s", o->out, data_error());
    return 0;
}

static int write_string_attr(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(loc, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a >= 0 && H5Awrite(a, t, &value) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    return rc;
}

static int write_attrs(hid_t f, hid_t m, hid_t pt, const SynthFileOptions *o) {
    const char *names[SYNTH_MAX_CHANNELS];
    synth_channel_names(o->channels, names);
    int rc = 0;
    rc |= write_string_attr(f, ATTR_FORMAT, FORMAT_NAME);
    rc |= write_string_attr(f, ATTR_SOURCE, "synthetic");
    rc |= write_string_attr(f, ATTR_GENERATOR, GENERATOR);
    rc |= write_string_attr(f, ATTR_COMMAND, o->command ? o->command : "");
    rc |= write_string_attr(m, "unit", "GeV");
    rc |= write_string_attr(pt, "unit", "GeV");
    hsize_t nc = (hsize_t)o->channels;
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate_simple(1, &nc, NULL);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t a = H5Acreate2(f, ATTR_CHANNELS, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    rc |= a >= 0 && H5Awrite(a, t, names) >= 0 ? 0 : -1;
    if (a >= 0) H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    sp = H5Screate(H5S_SCALAR);
    struct { const char *name; hid_t type; const void *v; } num[] = {
        {ATTR_FORMAT_VERSION, H5T_NATIVE_INT, &(int){FORMAT_VERSION}},
        {ATTR_PIXEL_SIZE, H5T_NATIVE_DOUBLE, &o->pixel_size},
        {ATTR_SEED, H5T_NATIVE_UINT64, &o->seed},
    };
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++) {
        hid_t ft = num[i].type == H5T_NATIVE_INT ? H5T_STD_I32LE
                   : num[i].type == H5T_NATIVE_DOUBLE ? H5T_IEEE_F64LE : H5T_STD_U64LE;
        a = H5Acreate2(f, num[i].name, ft, sp, H5P_DEFAULT, H5P_DEFAULT);
        rc |= a >= 0 && H5Awrite(a, num[i].type, num[i].v) >= 0 ? 0 : -1;
        if (a >= 0) H5Aclose(a);
    }
    H5Sclose(sp);
    return rc ? -1 : 0;
}

int synth_write_file(const SynthFileOptions *o, MPI_Comm comm) {
    if (check_options(o)) return -1; /* the same on every rank: no agreement needed */
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    const long long N = o->samples, S = o->size, C = o->channels;
    const long long row = C * S * S;
    const long long cn = o->chunk ? (o->chunk < N ? o->chunk : N)
                                  : synth_default_chunk(N, row * o->dtype_bytes);
    const long long nchunks = (N + cn - 1) / cn;
    /* rank r writes whole chunks [c0, c1): no two ranks touch a chunk */
    const long long c0 = nchunks * rank / nranks, c1 = nchunks * (rank + 1) / nranks;
    const long long lo = c0 * cn, hi = c1 * cn < N ? c1 * cn : N, mine = hi > lo ? hi - lo : 0;
    const long long iters = (nchunks + nranks - 1) / nranks;

    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    int rc = 0;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t f = H5Fcreate(o->out, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) rc = h5_fail(o->out, "cannot create the file");
    if (data_agree(comm, rc)) {
        if (f >= 0) H5Fclose(f);
        h5_quiet_end(&quiet);
        return -1;
    }

    hid_t ftype = o->dtype_bytes == 2 ? h5_half_type() : H5Tcopy(H5T_IEEE_F32LE);
    hsize_t dims[4] = {(hsize_t)N, (hsize_t)C, (hsize_t)S, (hsize_t)S};
    hsize_t cdims[4] = {(hsize_t)cn, (hsize_t)C, (hsize_t)S, (hsize_t)S};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, cdims);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t dx = H5Dcreate2(f, DSET_X, ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    hsize_t n1 = (hsize_t)N;
    sp = H5Screate_simple(1, &n1, NULL);
    const char *colname[4] = {DSET_M, DSET_PT, DSET_IETA, DSET_IPHI};
    hid_t col[4];
    for (int k = 0; k < 4; k++)
        col[k] = H5Dcreate2(f, colname[k], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    rc = dx < 0 || col[0] < 0 || col[1] < 0 || col[2] < 0 || col[3] < 0 || ftype < 0
             ? h5_fail(o->out, "cannot create the datasets")
             : 0;

    float *img = NULL, *cols = NULL;
    uint16_t *half = NULL;
    if (!rc) {
        img = malloc((size_t)(cn * row) * sizeof *img);
        cols = malloc((size_t)(4 * (mine ? mine : 1)) * sizeof *cols);
        if (o->dtype_bytes == 2) half = malloc((size_t)(cn * row) * sizeof *half);
        if (!img || !cols || (o->dtype_bytes == 2 && !half))
            rc = data_fail("%s: out of memory for a chunk of %lld rows", o->out, cn);
    }
    rc = data_agree(comm, rc);

    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    SynthConfig sc = {(int)S, (int)C, o->pixel_size, o->seed};
    for (long long it = 0; !rc && it < iters; it++) {
        long long r0 = (c0 + it) * cn, n = c0 + it < c1 ? (r0 + cn <= N ? cn : N - r0) : 0;
#pragma omp parallel for schedule(dynamic, 2)
        for (long long i = 0; i < n; i++) {
            SynthJet jet;
            synth_jet(&sc, (uint64_t)(r0 + i), img + i * row, &jet);
            long long j = r0 + i - lo;
            cols[j] = jet.m;
            cols[mine + j] = jet.pt;
            cols[2 * mine + j] = jet.ieta;
            cols[3 * mine + j] = jet.iphi;
        }
        if (half) float_to_half_n(img, half, (size_t)(n * row));
        if (h5_rows_io(dx, half ? ftype : H5T_NATIVE_FLOAT, dxpl, r0, n, half ? (void *)half : img, 1) < 0)
            rc = h5_fail(o->out, "cannot write X_jet");
        rc = data_agree(comm, rc);
    }
    for (int k = 0; !rc && k < 4; k++) {
        if (h5_rows_io(col[k], H5T_NATIVE_FLOAT, dxpl, lo, mine, cols + k * mine, 1) < 0)
            rc = h5_fail(o->out, "cannot write a column");
        rc = data_agree(comm, rc);
    }
    if (!rc && write_attrs(f, col[0], col[1], o)) rc = h5_fail(o->out, "cannot write the attributes");
    rc = data_agree(comm, rc);
    H5Pclose(dxpl);
    free(img);
    free(cols);
    free(half);
    for (int k = 0; k < 4; k++)
        if (col[k] >= 0) H5Dclose(col[k]);
    if (dx >= 0) H5Dclose(dx);
    if (ftype >= 0) H5Tclose(ftype);
    if (H5Fclose(f) < 0 && !rc) rc = h5_fail(o->out, "cannot close the file");
    rc = data_agree(comm, rc);
    h5_quiet_end(&quiet);
    return rc;
}

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

static int write_attrs(hid_t f, hid_t m, hid_t pt, const SynthFileOptions *o) {
    const char *names[SYNTH_MAX_CHANNELS];
    synth_channel_names(o->channels, names);
    int version = FORMAT_VERSION, rc = 0;
    rc |= h5_attr_write_str(f, ATTR_FORMAT, FORMAT_NAME, 1);
    rc |= h5_attr_write_str(f, ATTR_SOURCE, "synthetic", 1);
    rc |= h5_attr_write_str(f, ATTR_GENERATOR, GENERATOR, 1);
    rc |= h5_attr_write_str(f, ATTR_COMMAND, o->command ? o->command : "", 1);
    rc |= h5_attr_write_str(m, "unit", "GeV", 1);
    rc |= h5_attr_write_str(pt, "unit", "GeV", 1);
    rc |= h5_attr_write_strs(f, ATTR_CHANNELS, names, o->channels);
    rc |= h5_attr_write(f, ATTR_FORMAT_VERSION, H5T_STD_I32LE, H5T_NATIVE_INT, &version);
    rc |= h5_attr_write(f, ATTR_PIXEL_SIZE, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &o->pixel_size);
    rc |= h5_attr_write(f, ATTR_SEED, H5T_STD_U64LE, H5T_NATIVE_UINT64, &o->seed);
    return rc ? -1 : 0;
}

/* One rank's share of the file, and the handles and buffers it writes through. */
typedef struct {
    const SynthFileOptions *o;
    MPI_Comm comm;
    long long row, cn;            /* floats per jet, jets per chunk */
    long long c0, c1;             /* this rank writes whole chunks [c0, c1): no two ranks
                                     touch a chunk */
    long long lo, mine;           /* its rows [lo, lo + mine) */
    long long iters;              /* collective rounds (the most chunks any rank has) */
    hid_t f, ftype, dx, col[4], dxpl;
    float *img, *cols;
    uint16_t *half;
} Writer;

static Writer plan(const SynthFileOptions *o, MPI_Comm comm) {
    int rank, nranks;
    MPI_Comm_rank(comm, &rank);
    MPI_Comm_size(comm, &nranks);
    const long long N = o->samples;
    Writer w = {.o = o, .comm = comm, .row = (long long)o->channels * o->size * o->size,
                .f = -1, .ftype = -1, .dx = -1, .col = {-1, -1, -1, -1}, .dxpl = -1};
    w.cn = o->chunk ? (o->chunk < N ? o->chunk : N) : synth_default_chunk(N, w.row * o->dtype_bytes);
    const long long nchunks = (N + w.cn - 1) / w.cn;
    w.c0 = nchunks * rank / nranks;
    w.c1 = nchunks * (rank + 1) / nranks;
    long long hi = w.c1 * w.cn < N ? w.c1 * w.cn : N;
    w.lo = w.c0 * w.cn;
    w.mine = hi > w.lo ? hi - w.lo : 0;
    w.iters = (nchunks + nranks - 1) / nranks;
    return w;
}

/* X_jet (chunked along N, allocated at creation: the ranks write whole chunks
 * collectively) and the four columns. */
static int create_datasets(Writer *w) {
    const SynthFileOptions *o = w->o;
    hsize_t N = (hsize_t)o->samples, C = (hsize_t)o->channels, S = (hsize_t)o->size;
    w->ftype = o->dtype_bytes == 2 ? h5_half_type() : H5Tcopy(H5T_IEEE_F32LE);
    hsize_t dims[4] = {N, C, S, S}, cdims[4] = {(hsize_t)w->cn, C, S, S};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, cdims);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    w->dx = H5Dcreate2(w->f, DSET_X, w->ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    sp = H5Screate_simple(1, &N, NULL);
    const char *colname[4] = {DSET_M, DSET_PT, DSET_IETA, DSET_IPHI};
    int bad = w->dx < 0 || w->ftype < 0;
    for (int k = 0; k < 4; k++) {
        w->col[k] = H5Dcreate2(w->f, colname[k], H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        bad |= w->col[k] < 0;
    }
    H5Sclose(sp);
    return bad ? h5_fail(o->out, "cannot create the datasets") : 0;
}

static int alloc_buffers(Writer *w) {
    w->img = malloc((size_t)(w->cn * w->row) * sizeof *w->img);
    w->cols = malloc((size_t)(4 * (w->mine ? w->mine : 1)) * sizeof *w->cols);
    if (w->o->dtype_bytes == 2) w->half = malloc((size_t)(w->cn * w->row) * sizeof *w->half);
    if (!w->img || !w->cols || (w->o->dtype_bytes == 2 && !w->half))
        return data_fail("%s: out of memory for a chunk of %lld rows", w->o->out, w->cn);
    return 0;
}

/* Round by round: each rank generates its next chunk (OpenMP over the jets) and all
 * write collectively; the columns are kept for the end. */
static int write_images(Writer *w) {
    const SynthFileOptions *o = w->o;
    const long long N = o->samples, row = w->row, mine = w->mine;
    SynthConfig sc = {o->size, o->channels, o->pixel_size, o->seed};
    int rc = 0;
    for (long long it = 0; !rc && it < w->iters; it++) {
        long long r0 = (w->c0 + it) * w->cn, n = w->c0 + it < w->c1 ? (r0 + w->cn <= N ? w->cn : N - r0) : 0;
#pragma omp parallel for schedule(dynamic, 2)
        for (long long i = 0; i < n; i++) {
            SynthJet jet;
            synth_jet(&sc, (uint64_t)(r0 + i), w->img + i * row, &jet);
            long long j = r0 + i - w->lo;
            w->cols[j] = jet.m;
            w->cols[mine + j] = jet.pt;
            w->cols[2 * mine + j] = jet.ieta;
            w->cols[3 * mine + j] = jet.iphi;
        }
        if (w->half) float_to_half_n(w->img, w->half, (size_t)(n * row));
        void *buf = w->half ? (void *)w->half : w->img;
        if (h5_rows_io(w->dx, w->half ? w->ftype : H5T_NATIVE_FLOAT, w->dxpl, r0, n, buf, 1) < 0)
            rc = h5_fail(o->out, "cannot write X_jet");
        rc = data_agree(w->comm, rc);
    }
    return rc;
}

static int write_columns(Writer *w) {
    int rc = 0;
    for (int k = 0; !rc && k < 4; k++) {
        if (h5_rows_io(w->col[k], H5T_NATIVE_FLOAT, w->dxpl, w->lo, w->mine, w->cols + k * w->mine, 1) < 0)
            rc = h5_fail(w->o->out, "cannot write a column");
        rc = data_agree(w->comm, rc);
    }
    if (!rc && write_attrs(w->f, w->col[0], w->col[1], w->o))
        rc = h5_fail(w->o->out, "cannot write the attributes");
    return data_agree(w->comm, rc);
}

/* Closes everything; the file's close is collective and can fail (flushing). */
static int close_all(Writer *w, int rc) {
    if (w->dxpl >= 0) H5Pclose(w->dxpl);
    free(w->img);
    free(w->cols);
    free(w->half);
    for (int k = 0; k < 4; k++)
        if (w->col[k] >= 0) H5Dclose(w->col[k]);
    if (w->dx >= 0) H5Dclose(w->dx);
    if (w->ftype >= 0) H5Tclose(w->ftype);
    if (H5Fclose(w->f) < 0 && !rc) rc = h5_fail(w->o->out, "cannot close the file");
    return data_agree(w->comm, rc);
}

int synth_write_file(const SynthFileOptions *o, MPI_Comm comm) {
    if (check_options(o)) return -1; /* the same on every rank: no agreement needed */
    Writer w = plan(o, comm);
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    w.f = H5Fcreate(o->out, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (data_agree(comm, w.f < 0 ? h5_fail(o->out, "cannot create the file") : 0)) {
        if (w.f >= 0) H5Fclose(w.f);
        h5_quiet_end(&quiet);
        return -1;
    }
    int rc = create_datasets(&w);
    if (!rc) rc = alloc_buffers(&w);
    rc = data_agree(comm, rc);
    w.dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(w.dxpl, H5FD_MPIO_COLLECTIVE);
    if (!rc) rc = write_images(&w);
    if (!rc) rc = write_columns(&w);
    rc = close_all(&w, rc);
    h5_quiet_end(&quiet);
    return rc;
}

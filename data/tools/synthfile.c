/* e2e-synth's engine (synthfile.h): synthetic jets (synth.h), labelled or not, generated
 * and written by every rank into one file through jetwriter.h. */
#include "synthfile.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "agree.h"
#include "error.h"
#include "format.h"
#include "h5util.h"
#include "half.h"
#include "jetwriter.h"
#include "outfile.h"
#include "sparse.h"
#include "synth.h"

#define GENERATOR "e2e-synth 1"
#define ESTIMATE_JETS 64 /* jets generated to estimate a sparse file's size */

void synth_file_defaults(SynthFileOptions *o) {
    memset(o, 0, sizeof *o);
    o->samples = 1000;
    o->seed = 1;
    o->size = 125;
    o->channels = 8;
    o->dtype_bytes = 4;
    o->pixel_size = SYNTH_PIXEL_SIZE;
    o->signal_fraction = 0.5;
    o->overlap = 0.2;
}

/* the generator's configuration of o */
static SynthConfig synth_config(const SynthFileOptions *o) {
    return (SynthConfig){.size = o->size, .channels = o->channels, .pixel_size = o->pixel_size, .seed = o->seed,
                         .classify = o->classify, .signal_fraction = o->signal_fraction, .overlap = o->overlap};
}

static int check_options(const SynthFileOptions *o) {
    if (!o->out || !o->out[0]) return e2e_fail("no output file given (--out FILE)");
    if (o->samples < 1) return e2e_fail("%s: --samples must be at least 1 (got %lld)", o->out, o->samples);
    if (o->dtype_bytes != 4 && o->dtype_bytes != 2)
        return e2e_fail("%s: dtype must be float32 or float16", o->out);
    if (o->chunk < 0) return e2e_fail("%s: --chunk must be positive (got %lld)", o->out, o->chunk);
    SynthConfig c = synth_config(o);
    if (synth_check(&c)) return e2e_fail("%s: %s", o->out, e2e_error());
    return 0;
}

static int write_attrs(JetWriter *w, const SynthFileOptions *o) {
    const char *names[SYNTH_MAX_CHANNELS];
    synth_channel_names(o->channels, names);
    hid_t f = jetwriter_file(w);
    int rc = 0;
    rc |= h5_attr_write_str(f, ATTR_SOURCE, "synthetic", 1);
    rc |= h5_attr_write_str(f, ATTR_GENERATOR, GENERATOR, 1);
    rc |= h5_attr_write_str(f, ATTR_COMMAND, o->command ? o->command : "", 1);
    rc |= h5_attr_write_str(jetwriter_column(w, 0), "unit", "GeV", 1);
    rc |= h5_attr_write_str(jetwriter_column(w, 1), "unit", "GeV", 1);
    rc |= h5_attr_write_strs(f, ATTR_CHANNELS, names, o->channels);
    rc |= h5_attr_write(f, ATTR_PIXEL_SIZE, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &o->pixel_size);
    rc |= h5_attr_write(f, ATTR_SEED, H5T_STD_U64LE, H5T_NATIVE_UINT64, &o->seed);
    if (o->classify) rc |= h5_attr_write_str(jetwriter_column(w, 4), "classes", "0: QCD jet (background), 1: top jet (signal)", 1);
    return rc ? h5_fail(o->out, "cannot write the attributes") : 0;
}

/* The buffers of one round: the images (float32, and their binary16 bits for float16
 * files), the four float columns and the labels. */
typedef struct {
    float *img;
    uint16_t *half;
    float *cols;
    uint8_t *label;
} Round;

/* Round by round: each rank generates its rows (OpenMP over the jets) and all write
 * collectively. */
static int write_rounds(JetWriter *w, const SynthFileOptions *o, MPI_Comm comm) {
    const long long row = (long long)o->channels * o->size * o->size;
    long long k = 0, first, n;
    for (long long r = 0; r < jetwriter_rounds(w); r++) { /* the most rows a round gives this rank */
        jetwriter_round(w, r, &first, &n);
        if (n > k) k = n;
    }
    Round b = {malloc((size_t)((k ? k : 1) * row) * sizeof(float)), NULL, malloc((size_t)(4 * (k ? k : 1)) * sizeof(float)),
               malloc((size_t)(k ? k : 1))};
    if (o->dtype_bytes == 2) b.half = malloc((size_t)((k ? k : 1) * row) * sizeof *b.half);
    int rc = agree_fail_together(comm, b.img && b.cols && b.label && (o->dtype_bytes == 4 || b.half)
                                  ? 0 : e2e_fail("%s: out of memory for %lld rows", o->out, k));
    SynthConfig sc = synth_config(o);
    for (long long r = 0; !rc && r < jetwriter_rounds(w); r++) {
        jetwriter_round(w, r, &first, &n);
#pragma omp parallel for schedule(dynamic, 2)
        for (long long i = 0; i < n; i++) {
            SynthJet jet;
            synth_jet(&sc, (uint64_t)(first + i), b.img + i * row, &jet);
            b.cols[i] = jet.m;
            b.cols[k + i] = jet.pt;
            b.cols[2 * k + i] = jet.ieta;
            b.cols[3 * k + i] = jet.iphi;
            b.label[i] = (uint8_t)jet.label;
        }
        if (b.half) float_to_half_n(b.img, b.half, (size_t)(n * row));
        const void *cols[5] = {b.cols, b.cols + k, b.cols + 2 * k, b.cols + 3 * k, b.label};
        rc = jetwriter_write(w, first, n, b.half ? (const void *)b.half : b.img, cols);
    }
    free(b.img);
    free(b.half);
    free(b.cols);
    free(b.label);
    return rc;
}

/* The entries of a sparse file, estimated from ESTIMATE_JETS jets spread over it (the
 * float16 rounding of tiny values to 0 is left out: the estimate errs high). Rank 0. */
static long long estimate_entries(const SynthFileOptions *o) {
    const long long row = (long long)o->channels * o->size * o->size, k = o->samples < ESTIMATE_JETS ? o->samples : ESTIMATE_JETS;
    float *img = malloc((size_t)(k * row) * sizeof *img);
    if (!img) return 0;
    SynthConfig sc = synth_config(o);
    SparseGeom g = {o->channels, (long long)o->size * o->size, 4, 4};
    long long nnz = 0;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : nnz)
    for (long long i = 0; i < k; i++) {
        SynthJet jet;
        synth_jet(&sc, (uint64_t)(i * (o->samples / k)), img + i * row, &jet);
        nnz += sparse_count_entries(&g, img + i * row);
    }
    free(img);
    return (long long)((double)nnz / (double)k * (double)o->samples);
}

/* Rank 0's check of --out before anything is written: a file name in an existing
 * folder, not a file of another kind (only an earlier synthetic jet file is replaced). */
static int check_out(const SynthFileOptions *o) {
    if (out_check_path(o->out, "--out", NULL, 0)) return -1;
    char format[128];
    int kind = h5_file_format(o->out, format, sizeof format), synthetic = 0;
    if (kind == 1 && strcmp(format, FORMAT_NAME) == 0) {
        hid_t f = H5Fopen(o->out, H5F_ACC_RDONLY, H5P_DEFAULT);
        char *source = f >= 0 ? h5_attr_str(f, ATTR_SOURCE) : NULL;
        synthetic = source && strcmp(source, "synthetic") == 0;
        free(source);
        if (f >= 0) H5Fclose(f);
    }
    if (kind >= 0 && !synthetic)
        return e2e_fail("%s: exists and is %s; e2e-synth replaces only a synthetic jet file it wrote: remove it "
                         "first or give another --out", o->out,
                         kind == 0 ? "not an HDF5 file" : strcmp(format, FORMAT_NAME) == 0 ? "a jet file of real data"
                                                                                           : "another kind of HDF5 file");
    return 0;
}

int synth_write_file(const SynthFileOptions *o, MPI_Comm comm) {
    if (check_options(o)) return -1; /* the same on every rank: no agreement needed */
    JetColumn c[5] = {{DSET_M, H5T_IEEE_F32LE}, {DSET_PT, H5T_IEEE_F32LE}, {DSET_IETA, H5T_IEEE_F32LE},
                      {DSET_IPHI, H5T_IEEE_F32LE}, {DSET_LABEL, H5T_STD_U8LE}};
    int rank;
    MPI_Comm_rank(comm, &rank);
    JetWriterSpec spec = {.path = o->out, .n = o->samples, .c = o->channels, .h = o->size, .w = o->size,
                          .dtype_bytes = o->dtype_bytes, .sparse = o->sparse, .chunk = o->chunk,
                          .sparse_entries = o->sparse && rank == 0 ? estimate_entries(o) : 0,
                          .n_columns = o->classify ? 5 : 4, .columns = c};
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    JetWriter *w = NULL;
    int rc = agree_fail_together(comm, rank == 0 ? check_out(o) : 0);
    if (rc) {
        h5_quiet_end(&quiet);
        return rc;
    }
    rc = jetwriter_open(&w, &spec, comm);
    if (!rc) rc = write_rounds(w, o, comm);
    if (!rc) rc = jetwriter_finish(w);
    if (!rc) rc = agree_fail_together(comm, rank == 0 ? write_attrs(w, o) : 0); /* rank 0 owns the structure */
    rc = jetwriter_close(w, rc);
    h5_quiet_end(&quiet);
    return rc;
}

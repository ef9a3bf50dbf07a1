/* e2e-data info (inspect.h): a dataset's files, shapes, storage, inputs, columns, class
 * counts and pixel statistics, printed. */
#include "inspect.h"

#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "format.h"
#include "h5util.h"
#include "jet_inputs.h"
#include "jetfile.h"
#include "preprocess.h"
#include "sparsefile.h"

#define MASS_BINS 25
#define MASS_BIN_GEV 20.0

static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *p) {
    FILE *out = p;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    fprintf(out, "    %-16s ", name);
    if (H5Tget_class(t) == H5T_STRING) {
        char **v = NULL;
        int got = h5_attr_strs(a, &v);
        for (int i = 0; i < got; i++) fprintf(out, "%s%s", i ? ", " : "", v[i]);
        h5_strs_free(v, got > 0 ? got : 0);
    } else if (H5Tget_class(t) == H5T_INTEGER && n == 1) {
        unsigned long long u = 0;
        long long v = 0;
        if (H5Tget_sign(t) == H5T_SGN_NONE && H5Aread(a, H5T_NATIVE_ULLONG, &u) >= 0) fprintf(out, "%llu", u);
        else if (H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0) fprintf(out, "%lld", v);
    } else if (H5Tget_class(t) == H5T_FLOAT && n == 1) {
        double v;
        if (H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0) fprintf(out, "%g", v);
    } else {
        char tn[64];
        fprintf(out, "(%lld x %s)", (long long)n, h5_type_name(t, tn, sizeof tn));
    }
    fputc('\n', out);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    (void)info;
    return 0;
}

static void print_column(FILE *out, const char *name, const float *v, long long n) {
    double lo = INFINITY, hi = -INFINITY, sum = 0.0;
    long long bad = 0;
    for (long long i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            bad++;
            continue;
        }
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
        sum += v[i];
    }
    fprintf(out, "  %-5s min %10.3f  mean %10.3f  max %10.3f", name, lo, sum / (double)(n - bad > 0 ? n - bad : 1), hi);
    if (bad) fprintf(out, "  NON-FINITE: %lld", bad);
    fputc('\n', out);
}

static void print_mass_histogram(FILE *out, const float *m, long long n) {
    long long h[MASS_BINS + 1] = {0}, peak = 1;
    for (long long i = 0; i < n; i++) {
        if (!isfinite(m[i])) continue;
        double bin = m[i] / MASS_BIN_GEV; /* compared before the cast: a mass of 1e15 fits no int */
        h[bin < 0 ? 0 : bin >= MASS_BINS ? MASS_BINS : (int)bin]++;
    }
    for (int k = 0; k <= MASS_BINS; k++) peak = h[k] > peak ? h[k] : peak;
    fprintf(out, "mass histogram (GeV, %g GeV bins; # = %.3g jets):\n", MASS_BIN_GEV, (double)peak / 50.0);
    for (int k = 0; k <= MASS_BINS; k++) {
        int bar = (int)(50.0 * (double)h[k] / (double)peak + 0.5);
        char label[32];
        if (k < MASS_BINS) snprintf(label, sizeof label, "%.0f-%.0f", k * MASS_BIN_GEV, (k + 1) * MASS_BIN_GEV);
        else snprintf(label, sizeof label, ">=%.0f", MASS_BINS * MASS_BIN_GEV);
        fprintf(out, "  %-8s %8lld |", label, h[k]);
        for (int b = 0; b < bar; b++) fputc('#', out);
        fputc('\n', out);
    }
}

typedef struct {
    double sum, lo, hi;
    long long nonzero;
} ChanStat;

#define MAX_COLUMNS (4 + JET_MAX_SCALARS)

/* A dataset's files, opened, what they declare, and their per-jet columns concatenated. */
typedef struct {
    char **list;
    int nf, opened;
    JetFile *files;
    long long N;
    JetInputs inputs;    /* the first file's */
    int other_inputs;    /* a file that declares other inputs (the reader refuses it), or -1 */
    JetInputs other;     /* its inputs */
    int ncol;
    const char *name[MAX_COLUMNS]; /* m, those of pt, ieta, iphi every file has, the scalars */
    float *col[MAX_COLUMNS];
} Opened;

/* the columns shown: m, pt, ieta, iphi where every file has them (a classifier's files may
 * have no mass: the E2E electron/photon ones hold X and y), then the declared scalars not
 * among them */
static void choose_columns(Opened *d) {
    static const char *const usual[4] = {DSET_M, DSET_PT, DSET_IETA, DSET_IPHI};
    d->ncol = 0;
    for (int k = 0; k < 4; k++) {
        int everywhere = 1;
        for (int i = 0; i < d->nf; i++) everywhere &= H5Lexists(d->files[i].file, usual[k], H5P_DEFAULT) > 0;
        if (everywhere) d->name[d->ncol++] = usual[k];
    }
    for (int s = 0; s < d->inputs.n_scalars; s++) {
        int known = 0;
        for (int k = 0; k < d->ncol; k++) known |= !strcmp(d->name[k], d->inputs.scalar[s]);
        if (!known) d->name[d->ncol++] = d->inputs.scalar[s];
    }
}

/* the files' declarations (the first file's kept; a file that differs noted) */
static int read_inputs(Opened *d) {
    d->other_inputs = -1;
    for (int i = 0; i < d->nf; i++) {
        JetInputs in;
        if (jet_inputs_read(&in, d->files[i].file, d->files[i].path, d->files[i].c)) return -1;
        if (i == 0) d->inputs = in;
        else if (d->other_inputs < 0 && !jet_inputs_equal(&in, &d->inputs)) {
            d->other_inputs = i;
            d->other = in;
        }
    }
    return 0;
}

static int open_all(Opened *d) {
    d->files = calloc((size_t)d->nf, sizeof *d->files);
    int rc = d->files ? 0 : e2e_fail("out of memory");
    for (int i = 0; !rc && i < d->nf; i++) {
        JetFile *f = &d->files[i], *f0 = &d->files[0];
        rc = jetfile_open(f, d->list[i], H5P_DEFAULT);
        if (!rc) d->opened++;
        if (!rc && (f->c != f0->c || f->h != f0->h || f->w != f0->w))
            rc = e2e_fail("%s: X_jet images are %d x %d x %d but %s has %d x %d x %d", f->path, f->c,
                           f->h, f->w, f0->path, f0->c, f0->h, f0->w);
        if (!rc) d->N += f->n;
    }
    if (!rc) rc = read_inputs(d);
    if (!rc) choose_columns(d);
    for (int k = 0; !rc && k < d->ncol; k++) {
        d->col[k] = malloc((size_t)d->N * sizeof *d->col[k]);
        if (!d->col[k]) rc = e2e_fail("out of memory for %lld rows", d->N);
        for (long long i = 0, at = 0; !rc && i < d->nf; at += d->files[i].n, i++)
            rc = jetfile_read_column(&d->files[i], d->name[k], d->col[k] + at, H5P_DEFAULT);
    }
    return rc;
}

static void close_all(Opened *d) {
    for (int k = 0; k < MAX_COLUMNS; k++) free(d->col[k]);
    for (int i = 0; i < d->opened; i++) jetfile_close(&d->files[i]);
    free(d->files);
    jet_list_free(d->list, d->nf);
}

/* a sparse file's entries per channel over all its jets (its counts) */
static void print_entries(FILE *out, const JetFile *f) {
    fprintf(out, "  non-zero pixels per channel (all jets):");
    for (int c = 0; c < f->c; c++) {
        long long e = 0;
        for (long long i = 0; i < f->n; i++) e += f->sparse->counts[i * f->c + c];
        fprintf(out, " %s %.2f%%", f->n_names ? f->names[c] : "-", 100.0 * (double)e / ((double)f->n * f->sparse->g.hw));
    }
    fputc('\n', out);
}

/* What the model takes from the dataset, as the reader resolves it (data/format/FORMAT.md). */
static void print_inputs(FILE *out, const Opened *d) {
    const JetInputs *in = &d->inputs;
    const JetFile *f0 = &d->files[0];
    fprintf(out, "model inputs%s:\n  scalars  ", in->declared ? "" : " (the file declares none: the format's default)");
    if (!in->n_scalars) fprintf(out, "none");
    for (int k = 0; k < in->n_scalars; k++) fprintf(out, "%s%s / %g", k ? ", " : "", in->scalar[k], in->scale[k]);
    fprintf(out, "\n  channels ");
    for (int c = 0; c < in->channels; c++)
        fprintf(out, "%s%s %s", c ? ", " : "", f0->n_names ? f0->names[c] : "-", channel_kind_name(in->kind[c]));
    fputc('\n', out);
    if (d->other_inputs >= 0) {
        char buf[600];
        fprintf(out, "  OTHER INPUTS in %s: %s (the reader refuses files that differ)\n",
                d->files[d->other_inputs].path, jet_inputs_describe(&d->other, buf, sizeof buf));
    }
}

/* The files, their layout and attributes, the columns and the mass histogram. */
static void print_files(FILE *out, const char *path, const Opened *d) {
    const JetFile *f0 = &d->files[0];
    fprintf(out, "dataset %s: %lld jets in %d file%s, X_jet %d x %d x %d\n", path, d->N, d->nf,
            d->nf == 1 ? "" : "s", f0->c, f0->h, f0->w);
    for (int i = 0; i < d->nf; i++) {
        const JetFile *f = &d->files[i];
        struct stat st;
        stat(f->path, &st);
        fprintf(out, "file %s (%.1f MB, %.0f bytes a jet)\n  N %lld, dtype %s, ", f->path, st.st_size / 1e6,
                (double)st.st_size / (double)f->n, f->n, f->dtype_bytes == 2 ? "float16" : "float32");
        if (f->sparse)
            fprintf(out, "layout sparse (format version 2): %lld entries, %.1f a jet (%.2f%% of the pixels), "
                    "positions uint%d", f->sparse->nnz, (double)f->sparse->nnz / (double)f->n,
                    100.0 * (double)f->sparse->nnz / ((double)f->n * f->c * f->h * f->w), 8 * f->sparse->g.pos_bytes);
        else if (f->chunk_rows)
            fprintf(out, "layout dense, chunks of %lld x %d x %d x %d (%.2f MB)", f->chunk_rows, f->c, f->h, f->w,
                    f->chunk_rows * f->row_bytes / 1e6);
        else fprintf(out, "layout dense, contiguous");
        fprintf(out, ", %d filter%s, %s%s\n", f->filters, f->filters == 1 ? "" : "s",
                f->raw ? "raw reads" : "read through HDF5: ", f->raw ? "" : f->storage);
        if (f->sparse) print_entries(out, f);
        fprintf(out, "  attributes:\n");
        H5Aiterate2(f->file, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, out);
    }
    print_inputs(out, d);
    fprintf(out, "per-jet columns:\n");
    for (int k = 0; k < d->ncol; k++) print_column(out, d->name[k], d->col[k], d->N);
    if (d->ncol && !strcmp(d->name[0], DSET_M)) print_mass_histogram(out, d->col[0], d->N);
    else fprintf(out, "no mass column '%s' (a classifier's files need none; a regression does)\n", DSET_M);
}

/* The class counts of the label column (every file's; NULL: y where every file has it):
 * jets of class 1 and 0, and of any other value (the reader refuses them). */
static int print_labels(FILE *out, const Opened *d, const char *label) {
    const char *name = label ? label : DSET_LABEL;
    for (int i = 0; i < d->nf; i++)
        if (H5Lexists(d->files[i].file, name, H5P_DEFAULT) <= 0) {
            if (!label) return 0;
            return e2e_fail("%s: no label column '%s'", d->files[i].path, name);
        }
    long long n[3] = {0, 0, 0}; /* class 0, class 1, other */
    for (int i = 0; i < d->nf; i++) {
        const JetFile *f = &d->files[i];
        double *v = malloc((size_t)(f->n ? f->n : 1) * sizeof *v);
        int rc = v ? jetfile_read_numbers((JetFile *)f, name, v, H5P_DEFAULT) : e2e_fail("out of memory");
        for (long long r = 0; !rc && r < f->n; r++) n[v[r] == 0.0 ? 0 : v[r] == 1.0 ? 1 : 2]++;
        free(v);
        if (rc) return -1;
    }
    fprintf(out, "classes (label %s): %lld signal (1), %lld background (0), signal fraction %.4f", name, n[1], n[0],
            (double)n[1] / (double)(n[0] + n[1] > 0 ? n[0] + n[1] : 1));
    if (n[2]) fprintf(out, "; NOT 0 OR 1: %lld jets (the reader refuses them)", n[2]);
    fputc('\n', out);
    return 0;
}

/* One jet's pixels into the channel statistics; returns its non-finite pixels. */
static long long add_pixels(ChanStat *cs, const float *x, int channels, long long hw) {
    long long bad = 0;
    for (int c = 0; c < channels; c++)
        for (long long k = 0; k < hw; k++) {
            float v = x[c * hw + k];
            if (!(fabsf(v) <= FLT_MAX)) {
                bad++;
                continue;
            }
            cs[c].sum += v;
            cs[c].lo = fmin(cs[c].lo, v);
            cs[c].hi = fmax(cs[c].hi, v);
            cs[c].nonzero += v != 0.0f;
        }
    return bad;
}

/* file row r as float32 pixels (scratch: a dense row as stored, or a sparse row's
 * entries) */
static int read_row(const JetFile *f, long long r, float *x, char *scratch) {
    if (!f->sparse)
        return f->raw ? jetfile_read_rows_raw(f, &r, 1, x, scratch) : jetfile_read_rows_hdf5(f, &r, 1, x, scratch, H5P_DEFAULT);
    const struct SparseFile *s = f->sparse;
    /* the values after the positions, at a 4-byte boundary (a float32 load needs one) */
    char *value = scratch + ((sparsefile_row_entries(s, r) * s->g.pos_bytes + 3) & ~3LL);
    if (sparsefile_read(f, &r, 1, scratch, value, H5P_DEFAULT)) return -1;
    memset(x, 0, (size_t)(f->c * s->g.hw) * sizeof *x);
    sparse_densify(&s->g, s->counts + r * f->c, scratch, value, NULL, NULL, 0.0f, x, NULL, 0);
    return 0;
}

/* Per-channel pixel statistics over `used` evenly spaced jets. */
static int pixel_stats(FILE *out, const Opened *d, long long used) {
    const JetFile *f0 = &d->files[0];
    const long long rowf = (long long)f0->c * f0->h * f0->w, hw = (long long)f0->h * f0->w, N = d->N;
    PixelHist hist = {0};
    ChanStat *cs = calloc((size_t)f0->c, sizeof *cs);
    float *x = malloc((size_t)rowf * sizeof *x);
    void *stage = malloc((size_t)rowf * 8 + 8); /* a dense row as stored, or a sparse row's entries */
    int rc = cs && x && stage ? pixel_hist_init(&hist, f0->c) : e2e_fail("out of memory");
    hist.kinds = d->inputs.kind; /* the reader's statistic: of |x| for a signed channel */
    for (int c = 0; !rc && c < f0->c; c++) cs[c] = (ChanStat){0, INFINITY, -INFINITY, 0};
    long long bad = 0;
    for (long long u = 0; !rc && u < used; u++) {
        long long r = used == N ? u : u * N / used;
        int fi = 0;
        while (r >= d->files[fi].n) r -= d->files[fi++].n;
        const JetFile *f = &d->files[fi];
        rc = read_row(f, r, x, stage);
        if (!rc) bad += add_pixels(cs, x, f0->c, hw);
        if (!rc) pixel_hist_add(&hist, x, 1, hw);
    }
    if (!rc) {
        fprintf(out, "pixels over %lld of %lld jets%s:\n", used, N, used < N ? " (evenly spaced)" : "");
        fprintf(out, "  %-10s %-6s %10s %10s %10s %9s %12s\n", "channel", "kind", "min", "mean", "max", "nonzero",
                "q99.9(>0)");
        for (int c = 0; c < f0->c; c++)
            fprintf(out, "  %-10s %-6s %10.4g %10.4g %10.4g %8.2f%% %12.4g\n", f0->n_names ? f0->names[c] : "-",
                    channel_kind_name(d->inputs.kind[c]), cs[c].lo, cs[c].sum / (double)(used * hw), cs[c].hi,
                    100.0 * (double)cs[c].nonzero / (double)(used * hw), pixel_hist_quantile(&hist, c, 0.999));
        fprintf(out, "  (q99.9(>0): the reader's scale statistic, of the positive pixels, of |x| for a signed "
                     "channel)\n");
        if (bad) fprintf(out, "  NON-FINITE pixels: %lld (the reader rejects such rows)\n", bad);
    }
    pixel_hist_free(&hist);
    free(cs);
    free(x);
    free(stage);
    return rc;
}

int data_inspect(const char *path, FILE *out, long long max_rows, const char *label) {
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    Opened d = {0};
    int rc = jet_list_resolve(path, &d.list, &d.nf);
    if (!rc) {
        rc = open_all(&d);
        if (!rc) print_files(out, path, &d);
        if (!rc) rc = print_labels(out, &d, label);
        if (!rc) rc = pixel_stats(out, &d, max_rows > 0 && max_rows < d.N ? max_rows : d.N);
        close_all(&d);
    }
    h5_quiet_end(&quiet);
    return rc;
}

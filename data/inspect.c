#include "inspect.h"

#include <float.h>
#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data_error.h"
#include "format.h"
#include "h5util.h"
#include "jetfile.h"
#include "preprocess.h"

#define MASS_BINS 25
#define MASS_BIN_GEV 20.0

static herr_t print_attr(hid_t loc, const char *name, const H5A_info_t *info, void *p) {
    FILE *out = p;
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    fprintf(out, "    %-16s ", name);
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        char **v = calloc((size_t)n, sizeof *v);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (v && H5Aread(a, mt, v) >= 0) {
            for (hssize_t i = 0; i < n; i++) fprintf(out, "%s%s", i ? ", " : "", v[i] ? v[i] : "");
            H5Dvlen_reclaim(mt, s, H5P_DEFAULT, v);
        }
        H5Tclose(mt);
        free(v);
    } else if (H5Tget_class(t) == H5T_STRING) {
        size_t len = H5Tget_size(t);
        char *v = calloc((size_t)n, len + 1);
        if (v && H5Aread(a, t, v) >= 0)
            for (hssize_t i = 0; i < n; i++) fprintf(out, "%s%.*s", i ? ", " : "", (int)len, v + i * len);
        free(v);
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
        int k = m[i] < 0 ? 0 : (int)(m[i] / MASS_BIN_GEV);
        h[k < MASS_BINS ? k : MASS_BINS]++;
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

int data_inspect(const char *path, FILE *out, long long max_rows) {
    char **list;
    int nf;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    if (jet_list_resolve(path, &list, &nf)) {
        h5_quiet_end(&quiet);
        return -1;
    }
    JetFile *files = calloc((size_t)nf, sizeof *files);
    float *col[4] = {NULL};
    long long N = 0;
    int rc = files ? 0 : data_fail("out of memory"), opened = 0;
    for (int i = 0; !rc && i < nf; i++) {
        rc = jetfile_open(&files[i], list[i], H5P_DEFAULT);
        if (!rc) opened++;
        if (!rc && (files[i].c != files[0].c || files[i].h != files[0].h || files[i].w != files[0].w))
            rc = data_fail("%s: X_jet images are %d x %d x %d but %s has %d x %d x %d", files[i].path, files[i].c,
                           files[i].h, files[i].w, files[0].path, files[0].c, files[0].h, files[0].w);
        if (!rc) N += files[i].n;
    }
    const char *cname[4] = {DSET_M, DSET_PT, DSET_IETA, DSET_IPHI};
    for (int k = 0; !rc && k < 4; k++) {
        col[k] = malloc((size_t)N * sizeof *col[k]);
        if (!col[k]) rc = data_fail("out of memory for %lld rows", N);
        for (long long i = 0, at = 0; !rc && i < nf; at += files[i].n, i++)
            rc = jetfile_read_column(&files[i], cname[k], col[k] + at, H5P_DEFAULT);
    }
    PixelHist hist = {0};
    ChanStat *cs = NULL;
    float *x = NULL;
    long long used = 0, bad = 0;
    if (!rc) {
        const JetFile *f0 = &files[0];
        const long long rowf = (long long)f0->c * f0->h * f0->w, hw = (long long)f0->h * f0->w;
        fprintf(out, "dataset %s: %lld jets in %d file%s, X_jet %d x %d x %d\n", path, N, nf, nf == 1 ? "" : "s",
                f0->c, f0->h, f0->w);
        for (int i = 0; i < nf; i++) {
            const JetFile *f = &files[i];
            struct stat st;
            stat(f->path, &st);
            fprintf(out, "file %s (%.1f MB)\n  N %lld, dtype %s, ", f->path, st.st_size / 1e6, f->n,
                    f->dtype_bytes == 2 ? "float16" : "float32");
            if (f->chunk_rows)
                fprintf(out, "chunks of %lld x %d x %d x %d (%.2f MB)", f->chunk_rows, f->c, f->h, f->w,
                        f->chunk_rows * f->row_bytes / 1e6);
            else fprintf(out, "contiguous");
            fprintf(out, ", %d filter%s, %s\n  attributes:\n", f->filters, f->filters == 1 ? "" : "s",
                    f->raw ? "raw reads" : "read through HDF5");
            H5Aiterate2(f->file, H5_INDEX_NAME, H5_ITER_INC, NULL, print_attr, out);
        }
        fprintf(out, "per-jet columns:\n");
        for (int k = 0; k < 4; k++) print_column(out, cname[k], col[k], N);
        print_mass_histogram(out, col[0], N);

        used = max_rows > 0 && max_rows < N ? max_rows : N;
        cs = calloc((size_t)f0->c, sizeof *cs);
        x = malloc((size_t)rowf * sizeof *x);
        void *stage = malloc((size_t)rowf * 2);
        rc = cs && x && stage ? pixel_hist_init(&hist, f0->c) : data_fail("out of memory");
        for (int c = 0; !rc && c < f0->c; c++) cs[c] = (ChanStat){0, INFINITY, -INFINITY, 0};
        for (long long u = 0; !rc && u < used; u++) {
            long long g = used == N ? u : u * N / used, r = g;
            int fi = 0;
            while (r >= files[fi].n) r -= files[fi++].n;
            rc = files[fi].raw ? jetfile_read_rows_raw(&files[fi], &r, 1, x, stage)
                               : jetfile_read_rows_hdf5(&files[fi], &r, 1, x, stage, H5P_DEFAULT);
            for (int c = 0; !rc && c < f0->c; c++)
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
            if (!rc) pixel_hist_add(&hist, x, 1, hw);
        }
        free(stage);
        if (!rc) {
            fprintf(out, "pixels over %lld of %lld jets%s:\n", used, N, used < N ? " (evenly spaced)" : "");
            fprintf(out, "  %-10s %10s %10s %10s %9s %12s\n", "channel", "min", "mean", "max", "nonzero",
                    "q99.9(>0)");
            for (int c = 0; c < f0->c; c++)
                fprintf(out, "  %-10s %10.4g %10.4g %10.4g %8.2f%% %12.4g\n", f0->n_names ? f0->names[c] : "-",
                        cs[c].lo, cs[c].sum / (double)(used * hw), cs[c].hi,
                        100.0 * (double)cs[c].nonzero / (double)(used * hw), pixel_hist_quantile(&hist, c, 0.999));
            if (bad) fprintf(out, "  NON-FINITE pixels: %lld (the reader rejects such rows)\n", bad);
        }
    }
    pixel_hist_free(&hist);
    free(cs);
    free(x);
    for (int k = 0; k < 4; k++) free(col[k]);
    for (int i = 0; i < opened; i++) jetfile_close(&files[i]);
    free(files);
    jet_list_free(list, nf);
    h5_quiet_end(&quiet);
    return rc;
}

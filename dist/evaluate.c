/* A split's metrics, sharded over the ranks and summed at an agreement point, and the
 * predictions file gathered to rank 0 (evaluate.h). */
#include "evaluate.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "h5util.h"
#include "session.h"
#include "watchdog.h"

/* The batch's predictions (masses: pred x mass_scale) appended to p, with each jet's
 * index and true mass. */
static int store_predictions(Predictions *p, const Batch *b, const float *pred, double mass_scale) {
    if (p->n + b->n > p->cap) {
        long long cap = p->cap ? 2 * p->cap : 4096;
        while (cap < p->n + b->n) cap *= 2;
        long long *ix = realloc(p->index, sizeof(long long) * cap);
        if (ix) p->index = ix;
        float *mt = realloc(p->m_true, sizeof(float) * cap);
        if (mt) p->m_true = mt;
        float *mp = realloc(p->m_pred, sizeof(float) * cap);
        if (mp) p->m_pred = mp;
        if (!ix || !mt || !mp) return e2e_fail("out of host memory for %lld predictions", cap);
        p->cap = cap;
    }
    for (int i = 0; i < b->n; i++) {
        p->index[p->n] = b->index[i];
        p->m_true[p->n] = b->mass[i];
        p->m_pred[p->n] = (float)(pred[i] * mass_scale);
        p->n++;
    }
    return 0;
}

/* This rank's share of split s: the sums {L1 loss, |error| GeV, relative error, count,
 * relative count}; 0, or -1 with e2e_error(). */
static int local_sums(Model *m, Dataset *d, Split s, double mre_min_mass, double sums[5],
                      Predictions *preds) {
    int batch = model_config(m)->max_batch;
    double mass_scale = dataset_info(d)->mass_scale;
    float *pred = malloc(sizeof(float) * batch);
    if (!pred) return e2e_fail("out of host memory for %d predictions", batch);
    int rc = dataset_begin_epoch(d, s, 0, 0) ? -1 : 0;
    Batch b;
    while (!rc) {
        int got = dataset_next(d, &b);
        if (got <= 0) {
            rc = got < 0 ? -1 : 0;
            break;
        }
        if (model_predict(m, &b, pred) || (preds && store_predictions(preds, &b, pred, mass_scale))) rc = -1;
        watchdog_progress();
        for (int i = 0; !rc && i < b.n; i++) {
            double mp = pred[i] * mass_scale, mt = b.mass[i], err = fabs(mp - mt);
            sums[0] += fabs((double)pred[i] - b.target[i]);
            sums[1] += err;
            sums[3] += 1;
            if (mt > mre_min_mass) {
                sums[2] += err / mt;
                sums[4] += 1;
            }
        }
    }
    free(pred);
    return rc;
}

static const char *split_name(Split s) {
    return s == SPLIT_VAL ? "validation" : s == SPLIT_TEST ? "test" : "training";
}

int evaluate_split(Comm *c, Model *m, Dataset *d, Split s, double mre_min_mass, EvalResult *out,
                   Predictions *preds) {
    memset(out, 0, sizeof *out);
    double sums[5] = {0};
    int failed = local_sums(m, d, s, mre_min_mass, sums, preds) != 0;
    Agreement a;
    if (comm_agree(c, failed ? AGREE_ERROR : 0, sums, 5, &a)) return -1;
    out->count = (long long)a.sum[3];
    out->mre_count = (long long)a.sum[4];
    if (out->count == 0) return e2e_fail("the %s split is empty", split_name(s));
    out->loss = a.sum[0] / a.sum[3];
    out->mae = a.sum[1] / a.sum[3];
    out->mre = a.sum[4] > 0 ? a.sum[2] / a.sum[4] : NAN;
    if (!isfinite(out->loss)) return e2e_fail("non-finite predictions on the %s split", split_name(s));
    return 0;
}

static int by_index(const void *a, const void *b) {
    const long long *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

/* Every rank's predictions on rank 0 (the other ranks' pointers stay NULL). */
typedef struct {
    const char *path;
    long long total;
    long long *index;
    float *m_true, *m_pred;
} Gathered;

static void gather(Comm *c, const Predictions *p, Gathered *g) {
    int n = (int)p->n, *counts = NULL, *displs = NULL;
    if (c->rank == 0) {
        counts = calloc(c->size, sizeof(int));
        displs = calloc(c->size, sizeof(int));
    }
    MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, c->world);
    if (c->rank == 0) {
        for (int r = 0; r < c->size; r++) {
            displs[r] = (int)g->total;
            g->total += counts[r];
        }
        size_t rows = (size_t)(g->total ? g->total : 1);
        g->index = malloc(sizeof(long long) * rows);
        g->m_true = malloc(sizeof(float) * rows);
        g->m_pred = malloc(sizeof(float) * rows);
    }
    MPI_Gatherv(p->index, n, MPI_LONG_LONG, g->index, counts, displs, MPI_LONG_LONG, 0, c->world);
    MPI_Gatherv(p->m_true, n, MPI_FLOAT, g->m_true, counts, displs, MPI_FLOAT, 0, c->world);
    MPI_Gatherv(p->m_pred, n, MPI_FLOAT, g->m_pred, counts, displs, MPI_FLOAT, 0, c->world);
    free(counts);
    free(displs);
}

/* the rows in dataset order: (index, position) pairs sorted by index */
static int sort_by_index(Gathered *g) {
    size_t rows = (size_t)(g->total ? g->total : 1);
    long long *order = malloc(sizeof(long long) * 2 * rows), *ix = malloc(sizeof(long long) * rows);
    float *mt = malloc(sizeof(float) * rows), *mp = malloc(sizeof(float) * rows);
    int ok = order && ix && mt && mp && g->index && g->m_true && g->m_pred;
    for (long long i = 0; ok && i < g->total; i++) order[2 * i] = g->index[i], order[2 * i + 1] = i;
    if (ok) qsort(order, (size_t)g->total, 2 * sizeof(long long), by_index);
    for (long long i = 0; ok && i < g->total; i++) {
        long long k = order[2 * i + 1];
        ix[i] = g->index[k], mt[i] = g->m_true[k], mp[i] = g->m_pred[k];
    }
    free(order);
    free(g->index), free(g->m_true), free(g->m_pred);
    g->index = ix, g->m_true = mt, g->m_pred = mp;
    return ok ? 0 : e2e_fail("out of host memory for %lld predictions", g->total);
}

/* Rank 0: the gathered rows, sorted, into the prediction file g->path. */
static int write_gathered(Gathered *g) {
    if (sort_by_index(g)) return -1;
    const char *path = g->path;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t f = h5_memfile_create();  /* written whole through net/base/outfile.h */
    int rc = f < 0 ? e2e_fail("%s: cannot create the prediction file", path) : 0;
    if (!rc && h5_attr_write_str(f, "format", PREDICTIONS_FORMAT, 0))
        rc = e2e_fail("%s: cannot write the format attribute", path);
    hsize_t dims[1] = {(hsize_t)g->total};
    struct { const char *name; hid_t ft, mt; const void *data; } cols[3] = {
        {"index", H5T_STD_I64LE, H5T_NATIVE_LLONG, g->index},
        {"m_true", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->m_true},
        {"m_pred", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->m_pred}};
    for (int k = 0; k < 3 && !rc; k++)
        if (h5_dataset_write(f, cols[k].name, cols[k].ft, cols[k].mt, 1, dims, cols[k].data))
            rc = e2e_fail("%s: cannot write %s", path, cols[k].name);
    if (rc && f >= 0) H5Fclose(f);
    else if (!rc && h5_memfile_save(f, path)) rc = e2e_fail("predictions not written: %s", e2e_error());
    h5_quiet_end(&quiet);
    return rc;
}

int predictions_write(Comm *c, const Predictions *p, const char *path) {
    Gathered g = {.path = path};
    gather(c, p, &g);
    int failed = c->rank == 0 && write_gathered(&g) != 0;
    free(g.index), free(g.m_true), free(g.m_pred);
    return comm_fail_together(c, failed);
}

void predictions_free(Predictions *p) {
    free(p->index), free(p->m_true), free(p->m_pred);
    memset(p, 0, sizeof *p);
}

int predictions_replaceable(const char *path) {
    char format[128];
    int kind = h5_file_format(path, format, sizeof format);
    if (kind < 0) return 1;  /* no such file */
    if (kind == 1 && strcmp(format, PREDICTIONS_FORMAT) == 0) return 1;
    int old = 0;  /* a prediction file from before the format attribute: index, m_true, m_pred */
    if (kind == 1 && !format[0]) {
        H5Quiet q;
        h5_quiet_begin(&q);
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        old = f >= 0 && H5Lexists(f, "m_pred", H5P_DEFAULT) > 0 && H5Lexists(f, "X_jet", H5P_DEFAULT) <= 0;
        if (f >= 0) H5Fclose(f);
        h5_quiet_end(&q);
    }
    if (old) return 1;
    e2e_fail("%s: exists and is %s%s%s; --predictions replaces only an earlier prediction file: give another name",
             path, kind == 0 ? "not an HDF5 file" : "an HDF5 file of format '",
             kind == 0 ? "" : format[0] ? format : "(none)", kind == 0 ? "" : "'");
    return 0;
}

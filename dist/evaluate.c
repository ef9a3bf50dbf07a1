#include "evaluate.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "session.h"

static int keep(Predictions *p, const DataBatch *b, const float *pred) {
    if (p->n + b->n > p->cap) {
        long long cap = p->cap ? 2 * p->cap : 4096;
        while (cap < p->n + b->n) cap *= 2;
        long long *ix = realloc(p->index, sizeof(long long) * cap);
        if (ix) p->index = ix;
        float *mt = realloc(p->m_true, sizeof(float) * cap);
        if (mt) p->m_true = mt;
        float *mp = realloc(p->m_pred, sizeof(float) * cap);
        if (mp) p->m_pred = mp;
        if (!ix || !mt || !mp) return net_fail("out of host memory for %lld predictions", cap);
        p->cap = cap;
    }
    for (int i = 0; i < b->n; i++) {
        p->index[p->n] = b->index[i];
        p->m_true[p->n] = b->mass[i];
        p->m_pred[p->n] = (float)(pred[i] * MASS_SCALE_GEV);
        p->n++;
    }
    return 0;
}

int evaluate_split(Comm *c, Model *m, Dataset *d, Split s, double mre_min_mass, EvalResult *out,
                   Predictions *preds) {
    memset(out, 0, sizeof *out);
    int batch = model_config(m)->max_batch;
    float *pred = malloc(sizeof(float) * batch);
    char msg[512] = "";
    int failed = !pred;
    if (failed) snprintf(msg, sizeof msg, "rank %d: out of host memory", c->rank);
    /* loss, |err| GeV, relative error sum, count, relative count */
    double sums[5] = {0};
    if (!failed && dataset_begin_epoch(d, s, 0, 0)) {
        failed = 1;
        snprintf(msg, sizeof msg, "%s", data_error());
    }
    DataBatch b;
    int rc;
    while (!failed && (rc = dataset_next(d, &b)) != 0) {
        if (rc < 0) {
            failed = 1;
            snprintf(msg, sizeof msg, "%s", data_error());
            break;
        }
        InputPrep prep;
        HostBatch hb = session_host_batch(d, &b, &prep);
        if (model_predict(m, &hb, pred) || (preds && keep(preds, &b, pred))) {
            failed = 1;
            snprintf(msg, sizeof msg, "%s", net_error());
            break;
        }
        for (int i = 0; i < b.n; i++) {
            double mp = pred[i] * MASS_SCALE_GEV, mt = b.mass[i], err = fabs(mp - mt);
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
    Agreement a;
    comm_agree(c, failed ? AGREE_ERROR : 0, msg, sums, 5, &a);
    if (a.flags & AGREE_ERROR) return net_fail("%s", a.message);
    out->count = (long long)a.sum[3];
    out->mre_count = (long long)a.sum[4];
    if (out->count == 0) return net_fail("the %s split is empty", s == SPLIT_VAL ? "validation" : s == SPLIT_TEST ? "test" : "training");
    out->loss = a.sum[0] / a.sum[3];
    out->mae = a.sum[1] / a.sum[3];
    out->mre = a.sum[4] > 0 ? a.sum[2] / a.sum[4] : NAN;
    if (!isfinite(out->loss))
        return net_fail("non-finite predictions on the %s split", s == SPLIT_VAL ? "validation" : "test");
    return 0;
}

static int by_index(const void *a, const void *b) {
    const long long *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

int predictions_write(Comm *c, const Predictions *p, const char *path) {
    int n = (int)p->n, *counts = NULL, *displs = NULL;
    long long total = 0;
    if (c->rank == 0) {
        counts = calloc(c->size, sizeof(int));
        displs = calloc(c->size, sizeof(int));
    }
    MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, c->world);
    if (c->rank == 0)
        for (int r = 0; r < c->size; r++) {
            displs[r] = (int)total;
            total += counts[r];
        }
    long long *ix = NULL;
    float *mt = NULL, *mp = NULL;
    if (c->rank == 0) {
        ix = malloc(sizeof(long long) * (total ? total : 1));
        mt = malloc(sizeof(float) * (total ? total : 1));
        mp = malloc(sizeof(float) * (total ? total : 1));
    }
    MPI_Gatherv(p->index, n, MPI_LONG_LONG, ix, counts, displs, MPI_LONG_LONG, 0, c->world);
    MPI_Gatherv(p->m_true, n, MPI_FLOAT, mt, counts, displs, MPI_FLOAT, 0, c->world);
    MPI_Gatherv(p->m_pred, n, MPI_FLOAT, mp, counts, displs, MPI_FLOAT, 0, c->world);
    int failed = 0;
    char msg[512] = "";
    if (c->rank == 0) {
        /* sort rows by dataset index: pack (index, position) pairs */
        long long *order = malloc(sizeof(long long) * 2 * (total ? total : 1));
        for (long long i = 0; i < total; i++) order[2 * i] = ix[i], order[2 * i + 1] = i;
        qsort(order, (size_t)total, 2 * sizeof(long long), by_index);
        long long *six = malloc(sizeof(long long) * (total ? total : 1));
        float *smt = malloc(sizeof(float) * (total ? total : 1)), *smp = malloc(sizeof(float) * (total ? total : 1));
        for (long long i = 0; i < total; i++) {
            long long k = order[2 * i + 1];
            six[i] = ix[k], smt[i] = mt[k], smp[i] = mp[k];
        }
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) {
            failed = 1;
            snprintf(msg, sizeof msg, "%s: cannot create the prediction file", path);
        } else {
            hsize_t dims[1] = {(hsize_t)total};
            hid_t sp = H5Screate_simple(1, dims, NULL);
            struct { const char *name; hid_t ft, mt; const void *data; } cols[3] = {
                {"index", H5T_STD_I64LE, H5T_NATIVE_LLONG, six},
                {"m_true", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, smt},
                {"m_pred", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, smp}};
            for (int k = 0; k < 3; k++) {
                hid_t ds = H5Dcreate2(f, cols[k].name, cols[k].ft, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                if (ds < 0 || H5Dwrite(ds, cols[k].mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, cols[k].data) < 0) {
                    failed = 1;
                    snprintf(msg, sizeof msg, "%s: cannot write %s", path, cols[k].name);
                }
                if (ds >= 0) H5Dclose(ds);
            }
            H5Sclose(sp);
            if (H5Fclose(f) < 0 && !failed) {
                failed = 1;
                snprintf(msg, sizeof msg, "%s: cannot close the prediction file", path);
            }
        }
        free(order), free(six), free(smt), free(smp);
    }
    free(counts), free(displs), free(ix), free(mt), free(mp);
    Agreement a;
    comm_agree(c, failed ? AGREE_ERROR : 0, msg, NULL, 0, &a);
    return (a.flags & AGREE_ERROR) ? net_fail("%s", a.message) : 0;
}

void predictions_free(Predictions *p) {
    free(p->index), free(p->m_true), free(p->m_pred);
    memset(p, 0, sizeof *p);
}

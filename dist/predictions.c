/* Per-jet predictions (predictions.h): grown as batches come, gathered to rank 0 column
 * by column, sorted by dataset index and written as one HDF5 file. */
#include "predictions.h"

#include <hdf5.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "h5util.h"

#define MAX_COLUMNS 3

/* the float columns this kind of predictions holds; returns their count */
static int columns(Predictions *p, float ***col) {
    col[0] = &p->m_true;
    if (!p->classify) {
        col[1] = &p->m_pred;
        return 2;
    }
    col[1] = &p->label;
    col[2] = &p->logit;
    return 3;
}

/* room for cap rows in every column (contents kept); 0 or -1 */
static int reserve(Predictions *p, long long cap) {
    float **col[MAX_COLUMNS];
    int nc = columns(p, col), ok = 1;
    long long *ix = realloc(p->index, sizeof(long long) * (size_t)(cap ? cap : 1));
    if (ix) p->index = ix;
    ok = ix != NULL;
    for (int k = 0; k < nc; k++) {
        float *v = realloc(*col[k], sizeof(float) * (size_t)(cap ? cap : 1));
        if (v) *col[k] = v;
        ok = ok && v;
    }
    if (!ok) return e2e_fail("out of host memory for %lld predictions", cap);
    p->cap = cap;
    return 0;
}

int predictions_add(Predictions *p, const Batch *b, const float *pred, double mass_scale) {
    if (p->n + b->n > p->cap) {
        long long cap = p->cap ? 2 * p->cap : 4096;
        while (cap < p->n + b->n) cap *= 2;
        if (reserve(p, cap)) return -1;
    }
    for (int i = 0; i < b->n; i++, p->n++) {
        p->index[p->n] = b->index[i];
        p->m_true[p->n] = b->mass[i];
        if (p->classify) {
            p->label[p->n] = b->target[i];
            p->logit[p->n] = pred[i];
        } else
            p->m_pred[p->n] = (float)(pred[i] * mass_scale);
    }
    return 0;
}

int predictions_gather(Comm *c, const Predictions *p, Predictions *all) {
    memset(all, 0, sizeof *all);
    all->classify = p->classify;
    all->no_mass = p->no_mass;
    int n = (int)p->n, *counts = c->rank == 0 ? calloc((size_t)c->size, sizeof(int)) : NULL;
    int *displs = c->rank == 0 ? calloc((size_t)c->size, sizeof(int)) : NULL;
    MPI_Gather(&n, 1, MPI_INT, counts, 1, MPI_INT, 0, c->world);
    long long total = 0;
    for (int r = 0; counts && displs && r < c->size; r++) displs[r] = (int)total, total += counts[r];
    int failed = c->rank == 0 && (!counts || !displs || reserve(all, total));
    if (comm_fail_together(c, failed)) {
        free(counts), free(displs);
        predictions_free(all);
        return -1;
    }
    all->n = total;
    MPI_Gatherv(p->index, n, MPI_LONG_LONG, all->index, counts, displs, MPI_LONG_LONG, 0, c->world);
    float **mine[MAX_COLUMNS], **theirs[MAX_COLUMNS];
    int nc = columns((Predictions *)p, mine);
    columns(all, theirs);
    for (int k = 0; k < nc; k++)
        MPI_Gatherv(*mine[k], n, MPI_FLOAT, *theirs[k], counts, displs, MPI_FLOAT, 0, c->world);
    free(counts), free(displs);
    return 0;
}

static int by_index(const void *a, const void *b) {
    const long long *x = a, *y = b;
    return (*x > *y) - (*x < *y);
}

/* the rows in dataset order: (index, position) pairs sorted by index, then every column
 * taken in that order */
static int sort_by_index(Predictions *g) {
    size_t rows = (size_t)(g->n ? g->n : 1);
    long long *order = malloc(sizeof(long long) * 2 * rows);
    Predictions s = {.classify = g->classify, .no_mass = g->no_mass};
    if (!order || reserve(&s, g->n)) {
        free(order);
        predictions_free(&s);
        return e2e_fail("out of host memory for %lld predictions", g->n);
    }
    for (long long i = 0; i < g->n; i++) order[2 * i] = g->index[i], order[2 * i + 1] = i;
    qsort(order, (size_t)g->n, 2 * sizeof(long long), by_index);
    float **from[MAX_COLUMNS], **to[MAX_COLUMNS];
    int nc = columns(g, from);
    columns(&s, to);
    for (long long i = 0; i < g->n; i++) {
        long long k = order[2 * i + 1];
        s.index[i] = g->index[k];
        for (int c = 0; c < nc; c++) (*to[c])[i] = (*from[c])[k];
    }
    s.n = g->n;
    free(order);
    predictions_free(g);
    *g = s;
    return 0;
}

/* the columns of the file: name, file type, memory type, data */
typedef struct {
    const char *name;
    hid_t ft, mt;
    const void *data;
} FileColumn;

/* a classifier's columns: the label as uint8, the score (the logit's sigmoid) */
static int classifier_columns(const Predictions *g, FileColumn *col, unsigned char **label, float **score) {
    size_t rows = (size_t)(g->n ? g->n : 1);
    *label = malloc(rows);
    *score = malloc(sizeof(float) * rows);
    if (!*label || !*score) return e2e_fail("out of host memory for %lld predictions", g->n);
    for (long long i = 0; i < g->n; i++) {
        (*label)[i] = g->label[i] != 0.0f;
        (*score)[i] = (float)(1.0 / (1.0 + exp(-(double)g->logit[i])));
    }
    col[1] = (FileColumn){"label", H5T_STD_U8LE, H5T_NATIVE_UCHAR, *label};
    col[2] = (FileColumn){"score", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, *score};
    col[3] = (FileColumn){"logit", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->logit};
    col[4] = (FileColumn){"m", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->m_true};
    return 0;
}

/* the sorted rows into the in-memory file f */
static int write_columns(hid_t f, const Predictions *g, const char *path) {
    FileColumn col[5] = {{"index", H5T_STD_I64LE, H5T_NATIVE_LLONG, g->index},
                         {"m_true", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->m_true},
                         {"m_pred", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, g->m_pred}};
    unsigned char *label = NULL;
    float *score = NULL;
    int n = 3, rc = 0;
    if (g->classify) {
        n = g->no_mass ? 4 : 5;  /* m last */
        rc = classifier_columns(g, col, &label, &score);
        if (!rc && h5_attr_write_str(f, "task", "classification", 0)) rc = e2e_fail("%s: cannot write the task", path);
    }
    hsize_t dims[1] = {(hsize_t)g->n};
    for (int k = 0; k < n && !rc; k++)
        if (h5_dataset_write(f, col[k].name, col[k].ft, col[k].mt, 1, dims, col[k].data))
            rc = e2e_fail("%s: cannot write %s", path, col[k].name);
    free(label), free(score);
    return rc;
}

/* Rank 0: the gathered rows, sorted, into the prediction file path. */
static int write_gathered(Predictions *g, const char *path) {
    if (sort_by_index(g)) return -1;
    H5Quiet quiet;
    h5_quiet_begin(&quiet);
    hid_t f = h5_memfile_create();  /* written whole through net/base/outfile.h */
    int rc = f < 0 ? e2e_fail("%s: cannot create the prediction file", path) : 0;
    if (!rc && h5_attr_write_str(f, "format", PREDICTIONS_FORMAT, 0))
        rc = e2e_fail("%s: cannot write the format attribute", path);
    if (!rc) rc = write_columns(f, g, path);
    if (rc && f >= 0) H5Fclose(f);
    else if (!rc && h5_memfile_save(f, path)) rc = e2e_fail("predictions not written: %s", e2e_error());
    h5_quiet_end(&quiet);
    return rc;
}

int predictions_write(Comm *c, const Predictions *p, const char *path) {
    Predictions g;
    if (predictions_gather(c, p, &g)) return -1;
    int failed = c->rank == 0 && write_gathered(&g, path) != 0;
    predictions_free(&g);
    return comm_fail_together(c, failed);
}

void predictions_free(Predictions *p) {
    free(p->index), free(p->m_true), free(p->m_pred), free(p->label), free(p->logit);
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

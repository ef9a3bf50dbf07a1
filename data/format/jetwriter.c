/* Writing one jet file under MPI (jetwriter.h): collective rounds of every rank's rows,
 * dense or sparse, under a temporary name renamed by rank 0 when whole. */
#include "jetwriter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "error.h"
#include "format.h"
#include "h5util.h"
#include "outfile.h"
#include "sparse.h"

#define SPARSE_ROUND_ROWS 64      /* rows a rank encodes and writes in a round */
#define SPARSE_ENTRY_CHUNK (1 << 16) /* entries a chunk of pos and value: 128-256 KiB */

struct JetWriter {
    JetWriterSpec spec;
    MPI_Comm comm;
    int rank, nranks;
    char tmp[OUT_PATH_MAX];        /* the file is written here, renamed to path when whole */
    int opened;                    /* the file was created on every rank */
    long long k, rounds;           /* rows a rank writes in a round; rounds */
    hid_t f, x, ftype, dxpl, *col;
    /* sparse */
    SparseGeom g;
    hid_t offsets, counts, pos, value;
    long long entries;             /* written so far, by all ranks */
    uint32_t *cnt;                 /* a round's counts [k][C] */
    long long *off;                /* a round's offsets [k] */
    char *epos, *eval;             /* a round's entries */
    long long cap;                 /* entries they hold */
    void *rpos, *rval;             /* one row's entries (its pixels, the worst case) */
};

long long jet_default_chunk(long long samples, long long row_bytes) {
    long long c = (4LL << 20) / (row_bytes > 0 ? row_bytes : 1);
    long long sixty_fourth = (samples + 63) / 64;
    if (c > sixty_fourth) c = sixty_fourth;
    return c < 1 ? 1 : c;
}

long long jetwriter_rounds(const JetWriter *w) { return w->rounds; }
hid_t jetwriter_file(const JetWriter *w) { return w->f; }
hid_t jetwriter_column(const JetWriter *w, int k) { return w->col[k]; }

void jetwriter_round(const JetWriter *w, long long r, long long *first, long long *n) {
    long long block = r * w->nranks + w->rank; /* blocks of k rows, round-robin */
    *first = block * w->k;
    *n = *first < w->spec.n ? (w->spec.n - *first < w->k ? w->spec.n - *first : w->k) : 0;
    if (*n == 0) *first = 0;
}

/* a 1-D or 2-D dataset of dims[0] rows, chunked (chunk > 0, extendible) or contiguous */
static hid_t create(hid_t loc, const char *name, hid_t type, int nd, const hsize_t *dims, hsize_t chunk) {
    hsize_t maxd[2] = {chunk ? H5S_UNLIMITED : dims[0], nd > 1 ? dims[1] : 0};
    hid_t sp = H5Screate_simple(nd, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

/* X_jet (N, C, H, W), chunked along N, allocated at creation: ranks write whole chunks */
static int create_dense(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    hsize_t dims[4] = {(hsize_t)s->n, (hsize_t)s->c, (hsize_t)s->h, (hsize_t)s->w};
    hsize_t cdims[4] = {(hsize_t)w->k, (hsize_t)s->c, (hsize_t)s->h, (hsize_t)s->w};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, cdims);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    w->x = H5Dcreate2(w->f, DSET_X, w->ftype, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return w->x < 0 ? -1 : 0;
}

/* the X_jet group: offsets and counts of N rows, pos and value growing round by round */
static int create_sparse(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    w->g = (SparseGeom){s->c, (long long)s->h * s->w, sparse_pos_bytes((long long)s->h * s->w), s->dtype_bytes};
    hid_t grp = H5Gcreate2(w->f, DSET_X, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (grp < 0) return -1;
    hsize_t on[1] = {(hsize_t)s->n + 1}, cn[2] = {(hsize_t)s->n, (hsize_t)s->c}, zero[1] = {0};
    w->offsets = create(grp, SPARSE_OFFSETS, H5T_STD_I64LE, 1, on, 0);
    w->counts = create(grp, SPARSE_COUNTS, H5T_STD_U32LE, 2, cn, 0);
    w->pos = create(grp, SPARSE_POS, w->g.pos_bytes == 2 ? H5T_STD_U16LE : H5T_STD_U32LE, 1, zero, SPARSE_ENTRY_CHUNK);
    w->value = create(grp, SPARSE_VALUE, w->ftype, 1, zero, SPARSE_ENTRY_CHUNK);
    long long shape[4] = {s->n, s->c, s->h, s->w};
    hsize_t four = 4;
    hid_t asp = H5Screate_simple(1, &four, NULL), a = H5Acreate2(grp, ATTR_SHAPE, H5T_STD_I64LE, asp, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, H5T_NATIVE_LLONG, shape) < 0 || h5_attr_write_str(grp, ATTR_LAYOUT, LAYOUT_SPARSE, 1);
    if (a >= 0) H5Aclose(a);
    H5Sclose(asp);
    H5Gclose(grp);
    return rc || w->offsets < 0 || w->counts < 0 || w->pos < 0 || w->value < 0 ? -1 : 0;
}

static int create_all(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    w->ftype = s->dtype_bytes == 2 ? h5_half_type() : H5Tcopy(H5T_IEEE_F32LE);
    if (w->ftype < 0 || (s->sparse ? create_sparse(w) : create_dense(w)))
        return h5_fail(s->path, "cannot create the datasets");
    hsize_t n = (hsize_t)s->n;
    for (int k = 0; k < s->n_columns; k++)
        if ((w->col[k] = create(w->f, s->columns[k].name, s->columns[k].type, 1, &n, 0)) < 0)
            return h5_fail(s->path, "cannot create the per-jet columns");
    return 0;
}

/* Room for a dense file (its images and columns) on the output's file system; a sparse
 * file's size is not known before it is written (its writes are checked). */
static int check_space(const JetWriter *w, long long row_bytes) {
    const JetWriterSpec *s = &w->spec;
    if (s->sparse) return 0;
    unsigned long long bytes = (unsigned long long)s->n * (unsigned long long)(row_bytes + 8 * s->n_columns);
    return out_check_space(s->path, bytes + (64ull << 10), "the jet file");
}

/* a failed write, with the file system's state when it is full */
static int write_failed(const JetWriter *w, const char *what) {
    char hint[OUT_PATH_MAX + 64], msg[OUT_PATH_MAX + 128];
    out_space_hint(w->spec.path, hint, sizeof hint);
    snprintf(msg, sizeof msg, "cannot write %s%s; nothing was written", what, hint);
    return h5_fail(w->spec.path, msg);
}

int jetwriter_open(JetWriter **out, const JetWriterSpec *spec, MPI_Comm comm) {
    JetWriter *w = calloc(1, sizeof *w);
    *out = w;
    if (agree_fail_together(comm, w ? 0 : e2e_fail("%s: out of memory", spec->path))) return -1;
    w->spec = *spec;
    w->comm = comm;
    w->f = w->x = w->ftype = w->dxpl = w->offsets = w->counts = w->pos = w->value = -1;
    MPI_Comm_rank(comm, &w->rank);
    MPI_Comm_size(comm, &w->nranks);
    long long row_bytes = (long long)spec->c * spec->h * spec->w * spec->dtype_bytes;
    w->k = spec->sparse ? SPARSE_ROUND_ROWS : spec->chunk ? spec->chunk : jet_default_chunk(spec->n, row_bytes);
    if (w->k > spec->n) w->k = spec->n;
    long long blocks = (spec->n + w->k - 1) / w->k;
    w->rounds = (blocks + w->nranks - 1) / w->nranks;
    long pid = (long)getpid(); /* rank 0's: one temporary name for all */
    MPI_Bcast(&pid, 1, MPI_LONG, 0, comm);
    w->col = malloc((size_t)(spec->n_columns ? spec->n_columns : 1) * sizeof *w->col);
    for (int k = 0; w->col && k < spec->n_columns; k++) w->col[k] = -1;
    int rc = w->col ? out_partial_name(spec->path, pid, w->tmp, sizeof w->tmp) : e2e_fail("%s: out of memory", spec->path);
    if (!rc && w->rank == 0) rc = check_space(w, row_bytes);
    if (agree_fail_together(comm, rc)) return -1;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    w->f = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (agree_fail_together(comm, w->f < 0 ? h5_fail(spec->path, "cannot create the file") : 0)) return -1;
    w->opened = 1;
    w->dxpl = H5Pcreate(H5P_DATASET_XFER);
    H5Pset_dxpl_mpio(w->dxpl, H5FD_MPIO_COLLECTIVE);
    rc = create_all(w);
    if (!rc && spec->sparse) {
        const long long row_vals = (long long)spec->c * spec->h * spec->w;
        w->cnt = malloc((size_t)(w->k * spec->c) * sizeof *w->cnt);
        w->off = malloc((size_t)w->k * sizeof *w->off);
        w->rpos = malloc((size_t)(row_vals * w->g.pos_bytes));
        w->rval = malloc((size_t)(row_vals * w->g.value_bytes));
        if (!w->cnt || !w->off || !w->rpos || !w->rval) rc = e2e_fail("%s: out of memory for a round of %lld rows", spec->path, w->k);
    }
    return agree_fail_together(comm, rc);
}

/* room for `need` entries in the round's buffers (grown by doubling) */
static int reserve(JetWriter *w, long long need) {
    if (need <= w->cap) return 0;
    long long cap = w->cap ? w->cap : 1 << 16;
    while (cap < need) cap *= 2;
    char *p = realloc(w->epos, (size_t)(cap * w->g.pos_bytes)), *v = p ? realloc(w->eval, (size_t)(cap * w->g.value_bytes)) : NULL;
    if (p) w->epos = p;
    if (v) w->eval = v;
    if (!p || !v) return e2e_fail("%s: out of memory for %lld entries", w->spec.path, cap);
    w->cap = cap;
    return 0;
}

/* this rank's rows of a round as entries in w->cnt, w->off (from 0), w->epos, w->eval */
static int encode_rows(JetWriter *w, long long n, const void *images, long long *nnz) {
    const SparseGeom *g = &w->g;
    const long long row_vals = g->channels * g->hw;
    long long e = 0;
    for (long long i = 0; i < n; i++) {
        const void *row = (const char *)images + i * row_vals * g->value_bytes;
        long long k = sparse_encode(g, row, w->cnt + i * g->channels, w->rpos, w->rval);
        if (reserve(w, e + k)) return -1;
        memcpy(w->epos + e * g->pos_bytes, w->rpos, (size_t)(k * g->pos_bytes));
        memcpy(w->eval + e * g->value_bytes, w->rval, (size_t)(k * g->value_bytes));
        w->off[i] = e;
        e += k;
    }
    *nnz = e;
    return 0;
}

static int write_sparse(JetWriter *w, long long first, long long n, const void *images) {
    long long nnz = 0;
    int rc = agree_fail_together(w->comm, encode_rows(w, n, images, &nnz));
    if (rc) return rc;
    long long *all = malloc((size_t)w->nranks * sizeof *all), before = 0, total = 0;
    if (agree_fail_together(w->comm, all ? 0 : e2e_fail("out of memory"))) {
        free(all);
        return -1;
    }
    MPI_Allgather(&nnz, 1, MPI_LONG_LONG, all, 1, MPI_LONG_LONG, w->comm);
    for (int r = 0; r < w->nranks; r++) {
        if (r < w->rank) before += all[r];
        total += all[r];
    }
    free(all);
    const long long base = w->entries + before;
    for (long long i = 0; i < n; i++) w->off[i] += base;
    hsize_t size[1] = {(hsize_t)(w->entries + total)};
    hid_t pt = w->g.pos_bytes == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32;
    if (H5Dset_extent(w->pos, size) < 0 || H5Dset_extent(w->value, size) < 0 ||
        h5_rows_io(w->offsets, H5T_NATIVE_LLONG, w->dxpl, first, n, w->off, 1) < 0 ||
        h5_rows_io(w->counts, H5T_NATIVE_UINT32, w->dxpl, first, n, w->cnt, 1) < 0 ||
        h5_rows_io(w->pos, pt, w->dxpl, base, nnz, w->epos, 1) < 0 ||
        h5_rows_io(w->value, w->ftype, w->dxpl, base, nnz, w->eval, 1) < 0)
        rc = write_failed(w, "the sparse X_jet");
    w->entries += total;
    return rc;
}

int jetwriter_write(JetWriter *w, long long first, long long n, const void *images, const void *const *cols) {
    int rc = 0;
    if (w->spec.sparse) rc = write_sparse(w, first, n, images);
    else if (h5_rows_io(w->x, w->spec.dtype_bytes == 2 ? w->ftype : H5T_NATIVE_FLOAT, w->dxpl, first, n,
                        (void *)images, 1) < 0)
        rc = write_failed(w, "X_jet");
    /* agreed before the columns: their writes are collective too */
    if (agree_fail_together(w->comm, rc)) return -1;
    for (int k = 0; !rc && k < w->spec.n_columns; k++)
        if (h5_rows_io(w->col[k], w->spec.columns[k].type, w->dxpl, first, n, (void *)cols[k], 1) < 0)
            rc = write_failed(w, "a per-jet column");
    return agree_fail_together(w->comm, rc);
}

int jetwriter_finish(JetWriter *w) {
    int rc = 0, version = w->spec.sparse ? FORMAT_VERSION_SPARSE : FORMAT_VERSION;
    if (w->spec.sparse) { /* the end of the last jet's entries, written by rank 0 */
        long long end = w->entries;
        if (h5_rows_io(w->offsets, H5T_NATIVE_LLONG, w->dxpl, w->spec.n, w->rank == 0, &end, 1) < 0)
            rc = h5_fail(w->spec.path, "cannot write the sparse X_jet's offsets");
    }
    if (!rc && (h5_attr_write_str(w->f, ATTR_FORMAT, FORMAT_NAME, 1) ||
                h5_attr_write(w->f, ATTR_FORMAT_VERSION, H5T_STD_I32LE, H5T_NATIVE_INT, &version)))
        rc = h5_fail(w->spec.path, "cannot write the attributes");
    return agree_fail_together(w->comm, rc);
}

static void free_writer(JetWriter *w) {
    free(w->col);
    free(w->cnt);
    free(w->off);
    free(w->epos);
    free(w->eval);
    free(w->rpos);
    free(w->rval);
    free(w);
}

/* Closes everything; the file's close is collective and can fail (flushing). After a
 * failure on a full disk the temporary file's blocks are freed first, so that the close
 * can flush (a failed close would leave HDF5's state half torn down, and the process
 * would crash in HDF5's exit handler). */
int jetwriter_close(JetWriter *w, int rc) {
    if (!w) return -1; /* jetwriter_open failed on every rank */
    if (!w->opened) {
        if (w->f >= 0) H5Fclose(w->f);
        free_writer(w);
        return -1;
    }
    char full[OUT_PATH_MAX + 64] = "";
    if (rc && w->rank == 0 && out_space_hint(w->tmp, full, sizeof full)[0]) out_release(w->tmp);
    if (rc) MPI_Barrier(w->comm);
    hid_t ids[] = {w->dxpl, w->x, w->offsets, w->counts, w->pos, w->value};
    if (ids[0] >= 0) H5Pclose(ids[0]);
    for (size_t i = 1; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) H5Dclose(ids[i]);
    for (int k = 0; w->col && k < w->spec.n_columns; k++)
        if (w->col[k] >= 0) H5Dclose(w->col[k]);
    if (w->ftype >= 0) H5Tclose(w->ftype);
    if (w->f >= 0 && H5Fclose(w->f) < 0 && !rc) rc = h5_fail(w->spec.path, "cannot close the file");
    rc = agree_fail_together(w->comm, rc);
    /* rank 0 puts the complete file in place (fsync, rename, fsync the folder), or removes it */
    if (w->rank == 0 && rc) unlink(w->tmp);
    if (!rc) rc = agree_fail_together(w->comm, w->rank == 0 ? out_commit_path(w->tmp, w->spec.path) : 0);
    free_writer(w);
    return rc;
}

/* Writing one jet file under MPI (jetwriter.h): rank 0 alone builds the file's HDF5
 * structure (the POSIX driver, every dataset's storage allocated when it is made), every
 * rank writes its rows' bytes with pwrite at the addresses rank 0 allocated, and the
 * ranks meet only at agreements: no HDF5 call is collective, so a failing write is
 * one rank's result, never a rank left inside a collective. */
#include "jetwriter.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agree.h"
#include "error.h"
#include "format.h"
#include "h5latch.h"
#include "h5util.h"
#include "outfile.h"
#include "sparse.h"

#define SPARSE_ROUND_ROWS 64         /* rows a rank encodes and writes in a round */
#define SPARSE_ENTRY_CHUNK (1 << 16) /* entries a chunk of pos and value: 128-256 KiB */

struct JetWriter {
    JetWriterSpec spec;
    MPI_Comm comm;
    int rank, nranks;
    char tmp[OUT_PATH_MAX];        /* the file is written here, renamed to path when whole */
    int opened;                    /* jetwriter_open succeeded on every rank */
    int fd;                        /* this rank's descriptor of tmp, for its writes */
    long long k, rounds;           /* rows a rank writes in a round; rounds */
    long long row_bytes;           /* a stored dense row */
    /* rank 0 only: the HDF5 file and its datasets; its failed writes (h5latch.h) */
    hid_t f, x, ftype, *col, offsets, counts, pos, value;
    H5Latch latch;
    /* every rank: where the bytes go (file offsets, from rank 0) */
    long long *chunk_addr;         /* dense: X_jet's chunk i (k rows) */
    long long *col_addr;           /* column j's first value (contiguous) */
    long long offsets_addr, counts_addr;
    /* sparse */
    SparseGeom g;
    long long entries;             /* written so far, by all ranks */
    long long *entry_addr;         /* a round's chunks of pos and value: [2 x n] */
    long long entry_slots;         /* chunks entry_addr holds */
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
hid_t jetwriter_file(const JetWriter *w) { return w->rank == 0 ? w->f : -1; }
hid_t jetwriter_column(const JetWriter *w, int k) { return w->rank == 0 ? w->col[k] : -1; }

void jetwriter_round(const JetWriter *w, long long r, long long *first, long long *n) {
    long long block = r * w->nranks + w->rank; /* blocks of k rows, round-robin */
    *first = block * w->k;
    *n = *first < w->spec.n ? (w->spec.n - *first < w->k ? w->spec.n - *first : w->k) : 0;
    if (*n == 0) *first = 0;
}

/* a failed write of `what`: the file, the cause, and the file system's state when it is
 * full */
static int write_error(const JetWriter *w, const char *what, int err) {
    char hint[OUT_PATH_MAX + 64];
    out_space_hint(w->spec.path, hint, sizeof hint);
    return e2e_fail("%s: cannot write %s: %s%s; nothing was written%s", w->spec.path, what, strerror(err), hint,
                    err == ENOSPC || err == EDQUOT ? " (free some space, or write elsewhere)" : "");
}

/* rank 0: a write of the HDF5 structure that failed since the last check (h5latch.h) */
static int latched(const JetWriter *w) {
    char what[64];
    snprintf(what, sizeof what, "the file's HDF5 structure (%s)", w->latch.what ? w->latch.what : "writing");
    return w->latch.error ? write_error(w, what, w->latch.error) : 0;
}

/* ---- rank 0: the file's structure ---- */

/* a dataset of dims[0] rows (nd 1 or 2), its storage allocated now: chunked along the
 * rows and extendible (chunk > 0) or contiguous */
static hid_t create(hid_t loc, const char *name, hid_t type, int nd, const hsize_t *dims, hsize_t chunk) {
    hsize_t maxd[2] = {chunk ? H5S_UNLIMITED : dims[0], nd > 1 ? dims[1] : 0};
    hid_t sp = H5Screate_simple(nd, dims, maxd), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunk) H5Pset_chunk(dcpl, 1, &chunk);
    H5Pset_obj_track_times(dcpl, 0); /* no times: the same jets give the same bytes */
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER);
    hid_t d = H5Dcreate2(loc, name, type, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(sp);
    return d;
}

/* X_jet (N, C, H, W), chunked along N (a round's block of k rows is one chunk) */
static int create_dense(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    hsize_t dims[4] = {(hsize_t)s->n, (hsize_t)s->c, (hsize_t)s->h, (hsize_t)s->w};
    hsize_t cdims[4] = {(hsize_t)w->k, (hsize_t)s->c, (hsize_t)s->h, (hsize_t)s->w};
    hid_t sp = H5Screate_simple(4, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 4, cdims);
    H5Pset_obj_track_times(dcpl, 0);
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
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t grp = H5Gcreate2(w->f, DSET_X, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
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

/* a contiguous dataset's first byte */
static int contiguous_addr(hid_t d, long long *at) {
    haddr_t a = H5Dget_offset(d);
    *at = (long long)a;
    return a == HADDR_UNDEF ? -1 : 0;
}

/* chunk i (its first row i x rows) of an allocated chunked dataset */
static int chunk_addr(hid_t d, long long i, long long rows, long long *at) {
    hsize_t off[4] = {(hsize_t)(i * rows), 0, 0, 0}, size = 0;
    haddr_t a = HADDR_UNDEF;
    unsigned mask = 0;
    if (H5Dget_chunk_info_by_coord(d, off, &mask, &a, &size) < 0 || a == HADDR_UNDEF) return -1;
    *at = (long long)a;
    return 0;
}

/* the addresses every rank writes at: X_jet's chunks (dense), offsets and counts
 * (sparse), the columns */
static int locate(JetWriter *w) {
    if (!w->spec.sparse)
        for (long long i = 0; i * w->k < w->spec.n; i++)
            if (chunk_addr(w->x, i, w->k, &w->chunk_addr[i])) return -1;
    if (w->spec.sparse && (contiguous_addr(w->offsets, &w->offsets_addr) || contiguous_addr(w->counts, &w->counts_addr)))
        return -1;
    for (int j = 0; j < w->spec.n_columns; j++)
        if (contiguous_addr(w->col[j], &w->col_addr[j])) return -1;
    return 0;
}

/* rank 0: the file under its temporary name (the POSIX driver), its datasets, their
 * addresses */
static int create_file(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    hid_t fapl = h5_latch_fapl(&w->latch);
    w->f = fapl < 0 ? -1 : H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    int rc = w->f < 0 ? h5_fail(s->path, "cannot create the file") : 0; /* before any other HDF5 call clears the cause */
    if (fapl >= 0) H5Pclose(fapl);
    if (rc) return rc;
    w->ftype = s->dtype_bytes == 2 ? h5_half_type() : H5Tcopy(H5T_IEEE_F32LE);
    if (w->ftype < 0 || (s->sparse ? create_sparse(w) : create_dense(w)))
        return h5_fail(s->path, "cannot create the datasets");
    hsize_t n = (hsize_t)s->n;
    for (int k = 0; k < s->n_columns; k++)
        if ((w->col[k] = create(w->f, s->columns[k].name, s->columns[k].type, 1, &n, 0)) < 0)
            return h5_fail(s->path, "cannot create the per-jet columns");
    return locate(w) ? h5_fail(s->path, "cannot locate the datasets' storage") : latched(w);
}

/* ---- every rank: checked writes ---- */

/* bytes of buf at offset `at` of the temporary file: 0, or -1 naming the file, what
 * and why (a full file system or quota said so) */
static int write_at(JetWriter *w, const void *buf, long long bytes, long long at, const char *what) {
    const char *p = buf;
    while (bytes > 0) {
        ssize_t got = pwrite(w->fd, p, (size_t)bytes, (off_t)at);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return write_error(w, what, got < 0 ? errno : ENOSPC);
        p += got;
        bytes -= got;
        at += got;
    }
    return 0;
}

/* Room for the file (its images, or the sparse entries the caller estimated, and its
 * columns) on the output's file system */
static int check_space(const JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    unsigned long long n = (unsigned long long)s->n, cols = 0;
    for (int j = 0; j < s->n_columns; j++) cols += H5Tget_size(s->columns[j].type);
    unsigned long long bytes = n * cols + (64ull << 10);
    if (!s->sparse) bytes += n * (unsigned long long)w->row_bytes;
    else bytes += (unsigned long long)(s->sparse_entries + SPARSE_ENTRY_CHUNK) * (w->g.pos_bytes + w->g.value_bytes) +
                  n * (8ull + 4ull * (unsigned long long)s->c);
    return out_check_space(s->path, bytes, s->sparse ? "the sparse jet file (estimated from a sample of its jets)"
                                                     : "the jet file");
}

static int alloc_buffers(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    long long nch = (s->n + w->k - 1) / w->k;
    w->col = malloc((size_t)(s->n_columns ? s->n_columns : 1) * sizeof *w->col);
    w->col_addr = calloc((size_t)(s->n_columns ? s->n_columns : 1), sizeof *w->col_addr);
    w->chunk_addr = calloc((size_t)(s->sparse ? 1 : nch), sizeof *w->chunk_addr);
    if (!w->col || !w->col_addr || !w->chunk_addr) return e2e_fail("%s: out of memory", s->path);
    for (int k = 0; k < s->n_columns; k++) w->col[k] = -1;
    if (!s->sparse) return 0;
    const long long row_vals = (long long)s->c * s->h * s->w;
    w->cnt = malloc((size_t)(w->k * s->c) * sizeof *w->cnt);
    w->off = malloc((size_t)w->k * sizeof *w->off);
    w->rpos = malloc((size_t)(row_vals * w->g.pos_bytes));
    w->rval = malloc((size_t)(row_vals * w->g.value_bytes));
    if (!w->cnt || !w->off || !w->rpos || !w->rval) return e2e_fail("%s: out of memory for a round of %lld rows", s->path, w->k);
    return 0;
}

/* every rank: the addresses rank 0 found, and its own descriptor of the file */
static int share_addresses(JetWriter *w) {
    const JetWriterSpec *s = &w->spec;
    if (!s->sparse) MPI_Bcast(w->chunk_addr, (int)((s->n + w->k - 1) / w->k), MPI_LONG_LONG, 0, w->comm);
    if (s->n_columns) MPI_Bcast(w->col_addr, s->n_columns, MPI_LONG_LONG, 0, w->comm);
    long long two[2] = {w->offsets_addr, w->counts_addr};
    MPI_Bcast(two, 2, MPI_LONG_LONG, 0, w->comm);
    w->offsets_addr = two[0];
    w->counts_addr = two[1];
    w->fd = open(w->tmp, O_WRONLY | O_CLOEXEC);
    return w->fd < 0 ? e2e_fail("%s: cannot open %s for writing: %s", s->path, w->tmp, strerror(errno)) : 0;
}

static void init(JetWriter *w, const JetWriterSpec *spec, MPI_Comm comm) {
    w->spec = *spec;
    w->comm = comm;
    w->fd = -1;
    w->f = w->x = w->ftype = w->offsets = w->counts = w->pos = w->value = -1;
    MPI_Comm_rank(comm, &w->rank);
    MPI_Comm_size(comm, &w->nranks);
    w->row_bytes = (long long)spec->c * spec->h * spec->w * spec->dtype_bytes;
    w->g = (SparseGeom){spec->c, (long long)spec->h * spec->w, sparse_pos_bytes((long long)spec->h * spec->w),
                        spec->dtype_bytes};
    w->k = spec->sparse ? SPARSE_ROUND_ROWS : spec->chunk ? spec->chunk : jet_default_chunk(spec->n, w->row_bytes);
    if (w->k > spec->n) w->k = spec->n;
    long long blocks = (spec->n + w->k - 1) / w->k;
    w->rounds = (blocks + w->nranks - 1) / w->nranks;
}

int jetwriter_open(JetWriter **out, const JetWriterSpec *spec, MPI_Comm comm) {
    JetWriter *w = calloc(1, sizeof *w);
    *out = w;
    if (agree_fail_together(comm, w ? 0 : e2e_fail("%s: out of memory", spec->path))) return -1;
    init(w, spec, comm);
    long pid = (long)getpid(); /* rank 0's: one temporary name for all */
    MPI_Bcast(&pid, 1, MPI_LONG, 0, comm);
    int rc = alloc_buffers(w);
    if (!rc) rc = out_partial_name(spec->path, pid, w->tmp, sizeof w->tmp);
    if (!rc && w->rank == 0) rc = check_space(w);
    if (agree_fail_together(comm, rc)) return -1;
    if (agree_fail_together(comm, w->rank == 0 ? create_file(w) : 0)) return -1;
    if (agree_fail_together(comm, share_addresses(w))) return -1;
    w->opened = 1;
    return 0;
}

/* ---- the rounds ---- */

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

/* rank 0: pos and value grown to `size` entries, and the addresses of their chunks
 * holding entries [from, size) into w->entry_addr (pos's, then value's) */
static int grow_entries(JetWriter *w, long long from, long long size) {
    long long c0 = from / SPARSE_ENTRY_CHUNK, c1 = (size - 1) / SPARSE_ENTRY_CHUNK;
    hsize_t dims[1] = {(hsize_t)size};
    if (H5Dset_extent(w->pos, dims) < 0 || H5Dset_extent(w->value, dims) < 0)
        return h5_fail(w->spec.path, "cannot extend the sparse X_jet");
    for (long long c = c0; c <= c1; c++)
        if (chunk_addr(w->pos, c, SPARSE_ENTRY_CHUNK, &w->entry_addr[c - c0]) ||
            chunk_addr(w->value, c, SPARSE_ENTRY_CHUNK, &w->entry_addr[c1 - c0 + 1 + c - c0]))
            return h5_fail(w->spec.path, "cannot locate the sparse X_jet's storage");
    return latched(w);
}

/* entries [base, base + n) of one array (bytes b an entry) through its chunks' addresses
 * (chunk c0 first): a piece a chunk */
static int write_entries(JetWriter *w, const char *src, long long base, long long n, int b, long long c0,
                         const long long *addr, const char *what) {
    while (n > 0) {
        long long c = base / SPARSE_ENTRY_CHUNK, in = base % SPARSE_ENTRY_CHUNK;
        long long piece = SPARSE_ENTRY_CHUNK - in < n ? SPARSE_ENTRY_CHUNK - in : n;
        if (write_at(w, src, piece * b, addr[c - c0] + in * b, what)) return -1;
        src += piece * b;
        base += piece;
        n -= piece;
    }
    return 0;
}

/* Every rank's place among the round's entries (an MPI_Allgather of the counts), rank 0
 * grows pos and value and shares their chunks' addresses; then this rank's offsets,
 * counts and entries. */
static int write_sparse(JetWriter *w, long long first, long long n, const void *images) {
    long long nnz = 0;
    if (agree_fail_together(w->comm, encode_rows(w, n, images, &nnz))) return -1;
    long long *all = malloc((size_t)w->nranks * sizeof *all), before = 0, total = 0;
    if (agree_fail_together(w->comm, all ? 0 : e2e_fail("%s: out of memory", w->spec.path))) return free(all), -1;
    MPI_Allgather(&nnz, 1, MPI_LONG_LONG, all, 1, MPI_LONG_LONG, w->comm);
    for (int r = 0; r < w->nranks; r++) {
        if (r < w->rank) before += all[r];
        total += all[r];
    }
    free(all);
    const long long base = w->entries + before, end = w->entries + total;
    const long long c0 = w->entries / SPARSE_ENTRY_CHUNK, chunks = total ? (end - 1) / SPARSE_ENTRY_CHUNK - c0 + 1 : 0;
    int rc = 0;
    if (2 * chunks > w->entry_slots) {
        long long *a = realloc(w->entry_addr, (size_t)(2 * chunks) * sizeof *a);
        if (a) w->entry_addr = a, w->entry_slots = 2 * chunks;
        else rc = e2e_fail("%s: out of memory", w->spec.path);
    }
    if (!rc && w->rank == 0 && total) rc = grow_entries(w, w->entries, end);
    if (agree_fail_together(w->comm, rc)) return -1;
    if (chunks) MPI_Bcast(w->entry_addr, (int)(2 * chunks), MPI_LONG_LONG, 0, w->comm);
    w->entries = end;
    for (long long i = 0; i < n; i++) w->off[i] += base;
    const long long C = w->spec.c;
    if (write_at(w, w->off, n * 8, w->offsets_addr + first * 8, "the sparse X_jet's offsets") ||
        write_at(w, w->cnt, n * C * 4, w->counts_addr + first * C * 4, "the sparse X_jet's counts") ||
        write_entries(w, w->epos, base, nnz, w->g.pos_bytes, c0, w->entry_addr, "the sparse X_jet's positions") ||
        write_entries(w, w->eval, base, nnz, w->g.value_bytes, c0, w->entry_addr + chunks, "the sparse X_jet's values"))
        return -1;
    return 0;
}

int jetwriter_write(JetWriter *w, long long first, long long n, const void *images, const void *const *cols) {
    int rc = 0;
    if (w->spec.sparse) rc = write_sparse(w, first, n, images);
    else if (n) rc = write_at(w, images, n * w->row_bytes, w->chunk_addr[first / w->k] + (first % w->k) * w->row_bytes,
                              "X_jet");
    for (int j = 0; !rc && n && j < w->spec.n_columns; j++) {
        long long size = (long long)H5Tget_size(w->spec.columns[j].type);
        char what[128];
        snprintf(what, sizeof what, "the column %s", w->spec.columns[j].name);
        rc = write_at(w, cols[j], n * size, w->col_addr[j] + first * size, what);
    }
    return agree_fail_together(w->comm, rc);
}

int jetwriter_finish(JetWriter *w) {
    int rc = 0, version = w->spec.sparse ? FORMAT_VERSION_SPARSE : FORMAT_VERSION;
    if (w->rank == 0) {
        long long end = w->entries; /* the end of the last jet's entries */
        if (w->spec.sparse)
            rc = write_at(w, &end, 8, w->offsets_addr + w->spec.n * 8, "the sparse X_jet's offsets");
        if (!rc && (h5_attr_write_str(w->f, ATTR_FORMAT, FORMAT_NAME, 1) ||
                    h5_attr_write(w->f, ATTR_FORMAT_VERSION, H5T_STD_I32LE, H5T_NATIVE_INT, &version)))
            rc = h5_fail(w->spec.path, "cannot write the attributes");
        if (!rc) rc = latched(w);
    }
    return agree_fail_together(w->comm, rc);
}

/* ---- the end ---- */

static void free_writer(JetWriter *w) {
    free(w->col);
    free(w->col_addr);
    free(w->chunk_addr);
    free(w->entry_addr);
    free(w->cnt);
    free(w->off);
    free(w->epos);
    free(w->eval);
    free(w->rpos);
    free(w->rval);
    free(w);
}

/* this rank's descriptor: synced and closed (both checked) when the file is whole */
static int close_fd(JetWriter *w, int rc) {
    if (w->fd < 0) return rc;
    if (!rc && fsync(w->fd)) rc = e2e_fail("%s: syncing the written file to disk failed: %s; nothing was written",
                                           w->spec.path, strerror(errno));
    if (close(w->fd) && !rc) rc = e2e_fail("%s: closing the written file failed: %s; nothing was written", w->spec.path,
                                           strerror(errno));
    w->fd = -1;
    return rc;
}

/* Rank 0: HDF5 writes its metadata and closes the file (its failed writes latched:
 * h5latch.h, so the close always completes); after a failure the file's blocks are
 * freed first (out_release), so that the closing flush does not fill a full disk
 * further. */
static int close_hdf5(JetWriter *w, int rc) {
    if (rc && w->f >= 0) out_release(w->tmp);
    hid_t ids[] = {w->x, w->offsets, w->counts, w->pos, w->value};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (ids[i] >= 0) H5Dclose(ids[i]);
    for (int k = 0; w->col && k < w->spec.n_columns; k++)
        if (w->col[k] >= 0) H5Dclose(w->col[k]);
    if (w->ftype >= 0) H5Tclose(w->ftype);
    if (w->f >= 0 && H5Fclose(w->f) < 0 && !rc) rc = h5_fail(w->spec.path, "cannot close the file");
    w->f = -1;
    return rc ? rc : latched(w);
}

int jetwriter_close(JetWriter *w, int rc) {
    if (!w) return -1; /* jetwriter_open failed on every rank */
    if (!w->opened) {  /* failed on every rank: no collective, the file removed */
        close_fd(w, -1);
        if (w->rank == 0) {
            close_hdf5(w, -1);
            if (w->tmp[0]) unlink(w->tmp);
        }
        free_writer(w);
        return -1;
    }
    rc = agree_fail_together(w->comm, close_fd(w, rc));
    if (w->rank == 0) {
        rc = close_hdf5(w, rc);
        /* the complete file put in place (fsync, rename, fsync the folder), or removed */
        if (!rc) rc = out_commit_path(w->tmp, w->spec.path);
        else unlink(w->tmp);
    }
    rc = agree_fail_together(w->comm, rc);
    free_writer(w);
    return rc;
}

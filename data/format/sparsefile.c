/* The sparse layout of a jet file (sparsefile.h): its index checked, jets' entries read
 * (raw, HDF5 or the memory cache), the cache loaded. Called by jetfile.c, never calls it. */
#include "sparsefile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "format.h"
#include "h5util.h"
#include "storage.h"

void sparsefile_close(struct SparseFile *s) {
    if (!s) return;
    if (s->value_type >= 0) H5Tclose(s->value_type);
    if (s->value >= 0) H5Dclose(s->value);
    if (s->pos >= 0) H5Dclose(s->pos);
    if (s->group >= 0) H5Gclose(s->group);
    free(s->offsets);
    free(s->counts);
    free(s->pos_raw.chunk_addr);
    free(s->value_raw.chunk_addr);
    free(s->cached);
    free(s->cache_at);
    free(s->cache_pos);
    free(s->cache_value);
    free(s);
}

/* the jet that entry e belongs to (the last i with offsets[i] <= e) */
static long long jet_of_entry(const struct SparseFile *s, long long n, long long e) {
    long long lo = 0, hi = n - 1;
    while (lo < hi) {
        long long mid = (lo + hi + 1) / 2;
        if (s->offsets[mid] <= e) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

/* a dataset of the X_jet group, opened as its storage asks (storage.h), with its dims
 * (at most 2); -1 when missing or unreadable */
static hid_t open_member(JetFile *f, hid_t g, const char *name, int want_nd, hsize_t *dims) {
    if (H5Lexists(g, name, H5P_DEFAULT) <= 0) {
        e2e_fail("%s: sparse X_jet has no dataset '%s' (a sparse X_jet holds offsets, counts, pos, value: "
                  "data/format/FORMAT.md)", f->path, name);
        return -1;
    }
    char full[64];
    snprintf(full, sizeof full, "%s/%s", DSET_X, name);
    hid_t d = storage_open_dataset(f, full);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d);
    int nd = H5Sget_simple_extent_ndims(sp);
    if (nd == want_nd) H5Sget_simple_extent_dims(sp, dims, NULL);
    H5Sclose(sp);
    if (nd != want_nd) {
        H5Dclose(d);
        e2e_fail("%s: X_jet/%s has %d dimensions; expected %d", f->path, name, nd, want_nd);
        return -1;
    }
    return d;
}

/* an integer dataset's width when it is an unsigned or signed integer of one of the
 * widths allowed, else 0 */
static int int_width(hid_t d, int want_signed) {
    hid_t t = H5Dget_type(d);
    int ok = H5Tget_class(t) == H5T_INTEGER && (H5Tget_sign(t) == H5T_SGN_2) == want_signed;
    int w = ok ? (int)H5Tget_size(t) : 0;
    H5Tclose(t);
    return w;
}

/* shape attribute, counts (N, C), offsets (N+1); reads both whole and fills f's shape */
static int read_index(JetFile *f, struct SparseFile *s) {
    long long shape[4] = {0, 0, 0, 0};
    hsize_t od[2] = {0, 0}, cd[2] = {0, 0};
    hid_t a = H5Aexists(s->group, ATTR_SHAPE) > 0 ? H5Aopen(s->group, ATTR_SHAPE, H5P_DEFAULT) : -1;
    hid_t sp = a >= 0 ? H5Aget_space(a) : -1;
    /* four values, read only then: a longer array overflowed shape[] (fuzz_sparse_reader) */
    int ok = sp >= 0 && H5Sget_simple_extent_npoints(sp) == 4 && H5Aread(a, H5T_NATIVE_LLONG, shape) >= 0;
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    if (!ok || shape[0] < 1 || shape[1] < 1 || shape[1] > JET_MAX_CHANNELS || shape[2] < 1 || shape[3] < 1 ||
        shape[2] > JET_MAX_SIDE || shape[3] > JET_MAX_SIDE)
        return e2e_fail("%s: sparse X_jet needs the attribute '%s' = (N, C, H, W) with N >= 1, 1 to %d channels and "
                         "images of 1 to %d pixels a side (got %s%lld %lld %lld %lld)", f->path, ATTR_SHAPE,
                         JET_MAX_CHANNELS, JET_MAX_SIDE, ok ? "" : "no readable 4 values: ", shape[0], shape[1],
                         shape[2], shape[3]);
    f->n = shape[0], f->c = (int)shape[1], f->h = (int)shape[2], f->w = (int)shape[3];
    hid_t off = open_member(f, s->group, SPARSE_OFFSETS, 1, od), cnt = off < 0 ? -1 : open_member(f, s->group, SPARSE_COUNTS, 2, cd);
    int rc = off < 0 || cnt < 0 ? -1 : 0;
    if (!rc && ((long long)od[0] != f->n + 1 || (long long)cd[0] != f->n || (long long)cd[1] != f->c))
        rc = e2e_fail("%s: sparse X_jet of %lld jets x %d channels has offsets of %llu and counts of %llu x %llu; "
                       "expected %lld and %lld x %d", f->path, f->n, f->c, (unsigned long long)od[0],
                       (unsigned long long)cd[0], (unsigned long long)cd[1], f->n + 1, f->n, f->c);
    if (!rc && (!int_width(off, 1) || !int_width(cnt, 0)))
        rc = e2e_fail("%s: X_jet/offsets must be signed and X_jet/counts unsigned integers", f->path);
    if (!rc) {
        s->offsets = malloc((size_t)(f->n + 1) * sizeof *s->offsets);
        s->counts = malloc((size_t)(f->n * f->c) * sizeof *s->counts);
        if (!s->offsets || !s->counts) rc = e2e_fail("%s: out of memory for the index of %lld jets", f->path, f->n);
    }
    if (!rc && (H5Dread(off, H5T_NATIVE_LLONG, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->offsets) < 0 ||
                H5Dread(cnt, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->counts) < 0))
        rc = h5_fail(f->path, "cannot read X_jet/offsets or X_jet/counts (truncated or damaged file?)");
    if (off >= 0) H5Dclose(off);
    if (cnt >= 0) H5Dclose(cnt);
    return rc;
}

/* offsets from 0, never decreasing; each jet's counts add up to its entries */
static int check_index(const JetFile *f, const struct SparseFile *s) {
    if (s->offsets[0] != 0)
        return e2e_fail("%s: X_jet/offsets starts at %lld; the first jet's entries start at 0", f->path, s->offsets[0]);
    for (long long i = 0; i < f->n; i++) {
        long long have = s->offsets[i + 1] - s->offsets[i], sum = 0;
        if (have < 0)
            return e2e_fail("%s: jet %lld: X_jet/offsets decrease (%lld, then %lld)", f->path, i, s->offsets[i],
                             s->offsets[i + 1]);
        for (int c = 0; c < f->c; c++) sum += s->counts[i * f->c + c];
        if (sum != have)
            return e2e_fail("%s: jet %lld: its channel counts (X_jet/counts) add up to %lld entries but "
                             "X_jet/offsets give it %lld", f->path, i, sum, have);
        if (have > (long long)f->c * f->h * f->w)
            return e2e_fail("%s: jet %lld has %lld entries, more than its %lld pixels", f->path, i, have,
                             (long long)f->c * f->h * f->w);
    }
    return 0;
}

/* pos and value: 1-D, as long as the offsets say, of the allowed types */
static int check_entries(JetFile *f, struct SparseFile *s) {
    hsize_t pd[1] = {0}, vd[1] = {0};
    s->pos = open_member(f, s->group, SPARSE_POS, 1, pd);
    if (s->pos < 0) return -1;
    s->value = open_member(f, s->group, SPARSE_VALUE, 1, vd);
    if (s->value < 0) return -1;
    s->nnz = s->offsets[f->n];
    if ((long long)pd[0] != s->nnz || (long long)vd[0] != s->nnz)
        return e2e_fail("%s: X_jet/offsets end at %lld entries but X_jet/pos holds %llu and X_jet/value %llu "
                         "(the counts disagree with the arrays)", f->path, s->nnz, (unsigned long long)pd[0],
                         (unsigned long long)vd[0]);
    s->g = (SparseGeom){f->c, (long long)f->h * f->w, sparse_pos_bytes((long long)f->h * f->w), 0};
    if (int_width(s->pos, 0) != s->g.pos_bytes)
        return e2e_fail("%s: X_jet/pos must be uint%d for planes of %lld pixels", f->path, 8 * s->g.pos_bytes,
                         s->g.hw);
    hid_t t = H5Dget_type(s->value);
    int little = 0;
    char tn[64];
    s->g.value_bytes = f->dtype_bytes = h5_float_kind(t, &little);
    int rc = f->dtype_bytes ? 0 : e2e_fail("%s: X_jet/value has dtype %s; expected float32 or float16", f->path,
                                            h5_type_name(t, tn, sizeof tn));
    H5Tclose(t);
    if (rc) return rc;
    s->value_type = f->dtype_bytes == 2 ? h5_half_type() : H5Tcopy(H5T_NATIVE_FLOAT);
    f->row_bytes = (long long)f->c * f->h * f->w * f->dtype_bytes;
    hid_t pp = H5Dget_create_plist(s->pos), vp = H5Dget_create_plist(s->value);
    f->filters = H5Pget_nfilters(pp) + H5Pget_nfilters(vp);
    hid_t pt = H5Dget_type(s->pos);
    const char *why = storage_raw_refusal(pp, H5Tget_order(pt) == H5T_ORDER_LE);
    if (!why) why = storage_raw_refusal(vp, little);
    f->raw = why == NULL;
    f->storage = why ? why : "raw reads";
    H5Tclose(pt);
    H5Pclose(pp);
    H5Pclose(vp);
    return s->value_type < 0 ? h5_fail(f->path, "cannot make the value type") : 0;
}

/* where an entry array's elements lie (raw reads), checked against the file's size */
static int map_array(const JetFile *f, const struct SparseFile *s, hid_t d, const char *name, int esize,
                     const struct stat *st, RawArray *a) {
    hid_t dcpl = H5Dget_create_plist(d);
    int chunked = H5Pget_layout(dcpl) == H5D_CHUNKED;
    hsize_t cd[1] = {0};
    if (chunked) H5Pget_chunk(dcpl, 1, cd);
    H5Pclose(dcpl);
    a->esize = esize;
    a->chunk = (long long)cd[0];
    long long end = 0, nch = chunked ? (s->nnz + a->chunk - 1) / a->chunk : 0;
    if (s->nnz == 0) return 0;
    if (!chunked) {
        haddr_t at = H5Dget_offset(d);
        if (at == HADDR_UNDEF)
            return e2e_fail("%s: X_jet/%s was never written (no storage allocated): incomplete file", f->path, name);
        a->contig_addr = (long long)at;
        end = a->contig_addr + s->nnz * esize;
    } else if (!(a->chunk_addr = malloc((size_t)nch * sizeof *a->chunk_addr)))
        return e2e_fail("%s: out of memory for %lld chunk addresses", f->path, nch);
    for (long long k = 0; k < nch; k++) {
        hsize_t off[1] = {(hsize_t)(k * a->chunk)}, size = 0;
        haddr_t at = HADDR_UNDEF;
        unsigned mask = 0;
        if (H5Dget_chunk_info_by_coord(d, off, &mask, &at, &size) < 0)
            return h5_fail(f->path, "cannot locate the chunks of the sparse X_jet");
        if (at == HADDR_UNDEF) {
            long long e0 = k * a->chunk, e1 = (k + 1) * a->chunk < s->nnz ? (k + 1) * a->chunk : s->nnz;
            return e2e_fail("%s: jets %lld to %lld: X_jet/%s entries %lld to %lld were never written: incomplete "
                             "file", f->path, jet_of_entry(s, f->n, e0), jet_of_entry(s, f->n, e1 - 1), name, e0,
                             e1 - 1);
        }
        a->chunk_addr[k] = (long long)at;
        if ((long long)(at + size) > end) end = (long long)(at + size);
    }
    if (end > (long long)st->st_size) {
        long long first = 0; /* the first entry that lies past the end */
        while (first < s->nnz && (a->chunk ? a->chunk_addr[first / a->chunk] + (first % a->chunk + 1) * esize
                                           : a->contig_addr + (first + 1) * esize) <= (long long)st->st_size)
            first++;
        return e2e_fail("%s: truncated file: jets %lld to %lld lie beyond its end (X_jet/%s needs %lld bytes, the "
                         "file has %lld)", f->data_path, jet_of_entry(s, f->n, first < s->nnz ? first : s->nnz - 1),
                         f->n - 1, name, end, (long long)st->st_size);
    }
    return 0;
}

static int raw_read(const JetFile *f, const RawArray *a, long long first, long long n, char *out);

/* Entries [e0, e0 + n) of one array read raw equal HDF5's own read of them: 1, 0
 * (differ or cannot be read raw), -1 (HDF5 cannot read them) */
static int raw_matches(const JetFile *f, hid_t d, hid_t type, const RawArray *a, long long e0, long long n) {
    char *x = malloc((size_t)(n * a->esize)), *y = malloc((size_t)(n * a->esize));
    int rc = x && y ? 0 : e2e_fail("out of memory");
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (!rc && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT) < 0) H5Eclear2(H5E_DEFAULT); /* not an MPI file */
    if (!rc && h5_rows_io(d, type, dxpl, e0, n, x, 0) < 0)
        rc = h5_fail(f->path, "cannot read the sparse X_jet's entries (truncated or damaged file?)");
    int same = !rc && raw_read(f, a, e0, n, y) == 0 && !memcmp(x, y, (size_t)(n * a->esize));
    e2e_clear_error();
    H5Pclose(dxpl);
    free(x);
    free(y);
    return rc ? -1 : same;
}

/* the first and last entries of both arrays read raw equal HDF5's reads: 1, 0 or -1 */
static int raw_entries_match(const JetFile *f, const struct SparseFile *s) {
    const long long k = s->nnz < 64 ? s->nnz : 64;
    hid_t pt = s->g.pos_bytes == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32;
    int ok = 1;
    for (int end = 0; ok == 1 && k > 0 && end < 2; end++) {
        long long e0 = end ? s->nnz - k : 0;
        ok = raw_matches(f, s->pos, pt, &s->pos_raw, e0, k);
        if (ok == 1) ok = raw_matches(f, s->value, s->value_type, &s->value_raw, e0, k);
    }
    return ok;
}

/* entries read through HDF5, f->storage saying why */
static int read_through_hdf5(JetFile *f, struct SparseFile *s, const char *why) {
    f->raw = 0;
    f->storage = why;
    free(s->pos_raw.chunk_addr);
    free(s->value_raw.chunk_addr);
    memset(&s->pos_raw, 0, sizeof s->pos_raw);
    memset(&s->value_raw, 0, sizeof s->value_raw);
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    return 0;
}

/* Raw reads of pos and value at HDF5's addresses in the file that holds them (another
 * one behind an external link), checked on the first and last entries against HDF5's
 * own reads; chunk addresses that this HDF5 gives relative to a user block are shifted
 * by it. Where neither holds, the entries are read through HDF5. */
static int settle_raw(JetFile *f, struct SparseFile *s) {
    char other[4096];
    long long userblock = 0, ub2 = 0;
    struct stat st;
    if (storage_open_data_file(f, s->pos, &st, &userblock)) return -1;
    storage_file_of(s->value, other, sizeof other, &ub2);
    if (other[0] && strcmp(other, f->data_path))
        return read_through_hdf5(f, s, "X_jet/pos and X_jet/value lie in different files");
    if (map_array(f, s, s->pos, SPARSE_POS, s->g.pos_bytes, &st, &s->pos_raw) ||
        map_array(f, s, s->value, SPARSE_VALUE, s->g.value_bytes, &st, &s->value_raw))
        return -1;
    int ok = raw_entries_match(f, s);
    RawArray *arrays[2] = {&s->pos_raw, &s->value_raw};
    if (ok == 0 && userblock) {
        for (int i = 0; i < 2; i++)
            for (long long k = 0; arrays[i]->chunk && k < (s->nnz + arrays[i]->chunk - 1) / arrays[i]->chunk; k++)
                arrays[i]->chunk_addr[k] += userblock;
        ok = raw_entries_match(f, s);
    }
    if (ok) return ok < 0 ? -1 : 0;
    return read_through_hdf5(f, s, "raw reads at its addresses did not give its bytes");
}

int sparsefile_open(JetFile *f) {
    struct SparseFile *s = calloc(1, sizeof *s);
    if (!s) return e2e_fail("out of memory");
    s->group = s->pos = s->value = s->value_type = -1;
    f->sparse = s;
    s->group = H5Gopen2(f->file, DSET_X, H5P_DEFAULT);
    if (s->group < 0) return h5_fail(f->path, "cannot open the sparse X_jet group");
    char *layout = h5_attr_str(s->group, ATTR_LAYOUT);
    int rc = layout && !strcmp(layout, LAYOUT_SPARSE)
                 ? 0
                 : e2e_fail("%s: X_jet is a group but not a sparse X_jet (its attribute '%s' is '%s', expected "
                             "'%s')", f->path, ATTR_LAYOUT, layout ? layout : "(absent)", LAYOUT_SPARSE);
    free(layout);
    if (!rc) rc = read_index(f, s);
    if (!rc) rc = check_index(f, s);
    if (!rc) rc = check_entries(f, s);
    if (!rc && f->raw) rc = settle_raw(f, s);
    return rc;
}

long long sparsefile_entries(const JetFile *f, const long long *rows, long long n) {
    long long e = 0;
    for (long long i = 0; i < n; i++) e += sparsefile_row_entries(f->sparse, rows[i]);
    return e;
}

/* elements [first, first + n) of an entry array, raw, across its chunks */
static int raw_read(const JetFile *f, const RawArray *a, long long first, long long n, char *out) {
    while (n > 0) {
        long long in_chunk = a->chunk ? a->chunk - first % a->chunk : n, k = n < in_chunk ? n : in_chunk;
        long long at = a->chunk ? a->chunk_addr[first / a->chunk] + (first % a->chunk) * a->esize
                                : a->contig_addr + first * a->esize;
        if (storage_pread(f, out, k * a->esize, at)) return -1;
        out += k * a->esize;
        first += k;
        n -= k;
    }
    return 0;
}

/* the run's entries [e0, e0 + n) from the file, raw or through HDF5 */
static int read_entries(const JetFile *f, long long e0, long long n, char *pos, char *value, hid_t dxpl) {
    const struct SparseFile *s = f->sparse;
    if (n == 0) return 0;
    if (f->raw) return raw_read(f, &s->pos_raw, e0, n, pos) || raw_read(f, &s->value_raw, e0, n, value) ? -1 : 0;
    hid_t pt = s->g.pos_bytes == 2 ? H5T_NATIVE_UINT16 : H5T_NATIVE_UINT32;
    if (h5_rows_io(s->pos, pt, dxpl, e0, n, pos, 0) < 0 || h5_rows_io(s->value, s->value_type, dxpl, e0, n, value, 0) < 0)
        return h5_fail(f->path, "cannot read the sparse X_jet's entries (truncated or damaged file?)");
    return 0;
}

static long long cache_slot(const struct SparseFile *s, long long r) {
    long long lo = 0, hi = s->n_cached - 1;
    while (lo <= hi) {
        long long mid = (lo + hi) / 2;
        if (s->cached[mid] == r) return mid;
        if (s->cached[mid] < r) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

static int check_row(const JetFile *f, long long r, const char *pos) {
    const struct SparseFile *s = f->sparse;
    int c;
    long long e;
    const char *why;
    if (!sparse_check(&s->g, s->counts + r * f->c, pos, &c, &e, &why)) return 0;
    long long p = s->g.pos_bytes == 2 ? ((const uint16_t *)pos)[e] : ((const uint32_t *)pos)[e];
    return e2e_fail("%s: jet %lld, channel %d: %s (entry %lld of the jet holds position %lld; a %d x %d plane "
                     "has positions 0 to %lld, each once, increasing)", f->path, r, c, why, e, p, f->h, f->w,
                     s->g.hw - 1);
}

int sparsefile_read(const JetFile *f, const long long *rows, long long n, void *pos, void *value, hid_t dxpl) {
    const struct SparseFile *s = f->sparse;
    const int pb = s->g.pos_bytes, vb = s->g.value_bytes;
    char *p = pos, *v = value;
    for (long long i = 0; i < n;) {
        long long k = cache_slot(s, rows[i]), e = sparsefile_row_entries(s, rows[i]);
        if (k >= 0) { /* checked when loaded */
            memcpy(p, s->cache_pos + s->cache_at[k] * pb, (size_t)(e * pb));
            memcpy(v, s->cache_value + s->cache_at[k] * vb, (size_t)(e * vb));
            p += e * pb, v += e * vb, i++;
            continue;
        }
        long long j = i + 1; /* a run of consecutive rows: their entries lie back to back */
        while (j < n && rows[j] == rows[j - 1] + 1 && cache_slot(s, rows[j]) < 0) j++;
        long long e0 = s->offsets[rows[i]], ne = s->offsets[rows[j - 1] + 1] - e0;
        if (read_entries(f, e0, ne, p, v, dxpl)) return -1;
        for (long long r = i; r < j; r++) {
            if (check_row(f, rows[r], p)) return -1;
            p += sparsefile_row_entries(s, rows[r]) * pb;
        }
        v += ne * vb;
        i = j;
    }
    return 0;
}

long long sparsefile_cache_bytes(const JetFile *f, const long long *rows, long long n) {
    const struct SparseFile *s = f->sparse;
    return sparsefile_entries(f, rows, n) * (s->g.pos_bytes + s->g.value_bytes) + n * 2 * (long long)sizeof(long long);
}

int sparsefile_cache_load(JetFile *f, const long long *rows, long long n, hid_t dxpl) {
    struct SparseFile *s = f->sparse;
    long long e = sparsefile_entries(f, rows, n);
    s->cached = malloc((size_t)(n ? n : 1) * sizeof *s->cached);
    s->cache_at = malloc((size_t)(n ? n : 1) * sizeof *s->cache_at);
    s->cache_pos = malloc((size_t)(e ? e : 1) * s->g.pos_bytes);
    s->cache_value = malloc((size_t)(e ? e : 1) * s->g.value_bytes);
    if (!s->cached || !s->cache_at || !s->cache_pos || !s->cache_value)
        return e2e_fail("%s: out of memory for the cache of %lld jets (%lld entries)", f->path, n, e);
    for (long long i = 0, at = 0; i < n; i++) {
        s->cached[i] = rows[i];
        s->cache_at[i] = at;
        at += sparsefile_row_entries(s, rows[i]);
    }
    /* read before any row counts as cached: sparsefile_read then goes to the file */
    if (sparsefile_read(f, rows, n, s->cache_pos, s->cache_value, dxpl)) return -1;
    s->n_cached = n;
    return 0;
}

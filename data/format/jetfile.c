/* One jet file (jetfile.h): opened and checked (a sparse X_jet handed to sparsefile.c),
 * its columns and rows read raw or through HDF5; the file list resolved and checked. */
#include "jetfile.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "format.h"
#include "h5util.h"
#include "half.h"
#include "keyed_rng.h"
#include "sparsefile.h"
#include "storage.h"

#define OPEN_PATH_MAX 8192

void jetfile_close(JetFile *f) {
    sparsefile_close(f->sparse);
    if (f->half >= 0) H5Tclose(f->half);
    if (f->x >= 0) H5Dclose(f->x);
    if (f->local >= 0) H5Fclose(f->local);
    if (f->file >= 0) H5Fclose(f->file);
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i < f->n_names; i++) free(f->names[i]);
    free(f->chunk_addr);
    free(f->data_path);
    free(f->path);
    memset(f, 0, sizeof *f);
    f->file = f->x = f->half = f->local = -1;
    f->fd = -1;
}

/* the file's root says it is an e2e-ddp checkpoint (for the message) */
static int is_checkpoint(hid_t file) {
    char *format = h5_attr_str(file, "format");
    int yes = format && strcmp(format, "e2e-ddp checkpoint") == 0;
    free(format);
    return yes;
}

/* What the file says it is: no `format` attribute (files from before it, or made by
 * hand) is fine; another format's name, or a version of ours this reader does not know
 * (a newer writer's: its layout may mean something else), is refused. */
static int check_format(const JetFile *f) {
    if (H5Aexists(f->file, ATTR_FORMAT) > 0) {
        char *format = h5_attr_str(f->file, ATTR_FORMAT);
        int ours = format && strcmp(format, FORMAT_NAME) == 0;
        int rc = ours ? 0 : e2e_fail("%s: its '%s' attribute says %s%s%s, not %s: it is not a jet file of this "
                                     "format (data/format/FORMAT.md)", f->path, ATTR_FORMAT, format ? "'" : "",
                                     format ? format : "something that is not a string", format ? "'" : "",
                                     FORMAT_NAME);
        free(format);
        if (rc) return rc;
    }
    if (H5Aexists(f->file, ATTR_FORMAT_VERSION) <= 0) return 0;
    hid_t a = H5Aopen(f->file, ATTR_FORMAT_VERSION, H5P_DEFAULT), t = H5Aget_type(a), sp = H5Aget_space(a);
    int v = 0, number = H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1 &&
                        H5Aread(a, H5T_NATIVE_INT, &v) >= 0;
    H5Sclose(sp), H5Tclose(t), H5Aclose(a);
    if (!number) return e2e_fail("%s: its '%s' attribute is not an integer", f->path, ATTR_FORMAT_VERSION);
    if (v < FORMAT_VERSION || v > FORMAT_VERSION_SPARSE)
        return e2e_fail("%s: format version %d; this reader knows versions %d (dense) and %d (sparse)%s", f->path, v,
                        FORMAT_VERSION, FORMAT_VERSION_SPARSE,
                        v > FORMAT_VERSION_SPARSE ? ": a newer e2e-ddp wrote it; read it with that one" : "");
    return 0;
}

/* X_jet (N, A, B, D) read as (N, C, H, W) when it was stored channel-last (N, H, W, C):
 * A == B with D smaller is a square image of D channels, where the other reading is A
 * channels of A x D images. Without a `channels` attribute naming A channels the file
 * is refused (e2e-convert transposes channel-last files); with it, the order is
 * declared. */
static int check_channel_order(const JetFile *f, long long names) {
    if (names == f->c || f->c != f->h || f->w >= f->h) return 0;
    return e2e_fail("%s: X_jet has shape %lld x %d x %d x %d: read as (N, C, H, W) that is %d channels of %d x %d "
                    "images, but it looks stored channel-last, (N, H, W, C) = %d x %d images of %d channels; "
                    "convert it with e2e-convert (which transposes channel-last files), or, if it is channel-major, "
                    "name its %d channels in the '%s' attribute", f->path, f->n, f->c, f->h, f->w, f->c, f->h, f->w,
                    f->c, f->h, f->w, f->c, ATTR_CHANNELS);
}

static int read_names(JetFile *f) {
    hssize_t n = -1;
    if (H5Aexists(f->file, ATTR_CHANNELS) > 0) { /* optional */
        hid_t a = H5Aopen(f->file, ATTR_CHANNELS, H5P_DEFAULT), s = H5Aget_space(a);
        n = H5Sget_simple_extent_npoints(s);
        H5Sclose(s), H5Aclose(a);
    }
    if (check_channel_order(f, n)) return -1;
    if (n < 0) return 0;
    hid_t a = H5Aopen(f->file, ATTR_CHANNELS, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    int rc = 0;
    char **names = NULL;
    if (H5Tget_class(t) != H5T_STRING || H5Sget_simple_extent_ndims(s) > 1)
        rc = e2e_fail("%s: attribute '%s' must be a list of strings", f->path, ATTR_CHANNELS);
    else if (n != f->c)
        rc = e2e_fail("%s: attribute '%s' names %lld channels but X_jet has %d%s", f->path, ATTR_CHANNELS,
                      (long long)n, f->c, n == f->w && f->c == f->h ? " (stored channel-last, (N, H, W, C)? "
                                                                       "e2e-convert transposes such files)" : "");
    else if (h5_attr_strs(a, &names) != n)
        rc = h5_fail(f->path, "cannot read the channel names");
    for (hssize_t i = 0; !rc && i < n; i++) {
        f->names[f->n_names++] = names[i];
        names[i] = NULL;
    }
    h5_strs_free(names, rc ? 0 : (int)n);
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

/* the file offsets of X_jet's chunks (raw reads), as HDF5 gives them */
static int map_chunks(JetFile *f, hid_t dcpl, long long *end) {
    *end = 0;
    if (H5Pget_layout(dcpl) == H5D_CONTIGUOUS) {
        haddr_t a = H5Dget_offset(f->x);  /* absolute: the user block included */
        if (a == HADDR_UNDEF)
            return e2e_fail("%s: X_jet was never written (no storage allocated): incomplete file", f->path);
        f->contig_addr = (long long)a;
        *end = f->contig_addr + f->n * f->row_bytes;
        return 0;
    }
    long long nch = (f->n + f->chunk_rows - 1) / f->chunk_rows;
    f->chunk_addr = malloc((size_t)nch * sizeof *f->chunk_addr);
    if (!f->chunk_addr) return e2e_fail("%s: out of memory for %lld chunk addresses", f->path, nch);
    for (long long k = 0; k < nch; k++) {
        hsize_t off[4] = {(hsize_t)(k * f->chunk_rows), 0, 0, 0}, size = 0;
        haddr_t a = HADDR_UNDEF;
        unsigned mask = 0;
        if (H5Dget_chunk_info_by_coord(f->x, off, &mask, &a, &size) < 0)
            return h5_fail(f->path, "cannot locate the chunks of X_jet");
        long long last = (k + 1) * f->chunk_rows < f->n ? (k + 1) * f->chunk_rows : f->n;
        if (a == HADDR_UNDEF)
            return e2e_fail("%s: X_jet rows %lld to %lld were never written: incomplete file", f->path,
                             k * f->chunk_rows, last - 1);
        f->chunk_addr[k] = (long long)a;
        if ((long long)a + (long long)size > *end) *end = (long long)a + (long long)size;
    }
    return 0;
}

static int read_run(const JetFile *f, long long row, long long n, void *out, hid_t dxpl);

/* Row r read raw equals HDF5's own read of it (byte for byte): 1, 0 (differs or cannot
 * be read raw), -1 (HDF5 cannot read it) */
static int raw_row_matches(JetFile *f, long long r) {
    char *a = malloc((size_t)f->row_bytes), *b = malloc((size_t)f->row_bytes);
    int rc = a && b ? 0 : e2e_fail("out of memory");
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (!rc && H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_INDEPENDENT) < 0) H5Eclear2(H5E_DEFAULT);  /* not an MPI file */
    if (!rc) rc = h5_rows_io(f->x, f->dtype_bytes == 2 ? f->half : H5T_NATIVE_FLOAT, dxpl, r, 1, a, 0) < 0
                      ? h5_fail(f->path, "cannot read X_jet (truncated or damaged file?)") : 0;
    int same = !rc && storage_pread(f, b, f->row_bytes, jetfile_row_addr(f, r)) == 0 && !memcmp(a, b, (size_t)f->row_bytes);
    e2e_clear_error();
    H5Pclose(dxpl);
    free(a);
    free(b);
    return rc ? -1 : same;
}

/* rows 0 and n - 1 read raw equal HDF5's reads of them: 1, 0, or -1 (HDF5 cannot) */
static int raw_rows_match(JetFile *f) {
    int first = raw_row_matches(f, 0);
    return first == 1 && f->n > 1 ? raw_row_matches(f, f->n - 1) : first;
}

/* Raw reads at HDF5's addresses, checked on the first and last rows; chunk addresses
 * that this HDF5 gives relative to a user block (1.10 does) are shifted by it. Where
 * neither holds, f->raw is cleared and the rows are read through HDF5. */
static int settle_raw(JetFile *f, hid_t dcpl) {
    long long userblock = 0, end = 0;
    struct stat ds;
    if (storage_open_data_file(f, f->x, &ds, &userblock) || map_chunks(f, dcpl, &end)) return -1;
    if (end > (long long)ds.st_size && !userblock)
        return e2e_fail("%s: truncated file: X_jet needs %lld bytes but the file has %lld", f->data_path, end,
                         (long long)ds.st_size);
    int ok = raw_rows_match(f);
    if (ok == 0 && userblock && f->chunk_rows) {
        for (long long k = 0; k < (f->n + f->chunk_rows - 1) / f->chunk_rows; k++) f->chunk_addr[k] += userblock;
        ok = raw_rows_match(f);
    }
    if (ok) return ok < 0 ? -1 : 0;
    f->raw = 0;
    f->storage = "raw reads at its addresses did not give its bytes";
    close(f->fd);
    f->fd = -1;
    return 0;
}

/* X_jet's rank, dtype and shape: (N, C, H, W) float32 or float16, N > 0, 1 to
 * JET_MAX_CHANNELS channels, non-empty images. */
static int check_x(const char *path, int nd, const hsize_t *d, int dtype_bytes, hid_t t) {
    char tn[64];
    if (nd != 4) {
        char shape[128] = "";
        for (int i = 0; i < nd && i < 8; i++)
            snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%llu", i ? " x " : "",
                     (unsigned long long)d[i]);
        return e2e_fail("%s: X_jet has %d dimension%s (%s); expected 4: (N, C, H, W)", path, nd,
                         nd == 1 ? "" : "s", nd > 0 ? shape : "scalar");
    }
    if (!dtype_bytes)
        return e2e_fail("%s: X_jet has dtype %s; expected float32 or float16", path, h5_type_name(t, tn, sizeof tn));
    if (d[0] == 0) return e2e_fail("%s: X_jet holds no rows", path);
    if (d[0] > (hsize_t)JET_MAX_ROWS) return e2e_fail("%s: X_jet claims %llu rows, more than 2^40", path, (unsigned long long)d[0]);
    if (d[1] == 0 || d[2] == 0 || d[3] == 0 || d[1] > JET_MAX_CHANNELS || d[2] > JET_MAX_SIDE || d[3] > JET_MAX_SIDE)
        return e2e_fail("%s: X_jet has shape %llu x %llu x %llu x %llu; expected 1 to %d channels and "
                         "non-empty images of at most %d pixels a side%s", path, (unsigned long long)d[0],
                         (unsigned long long)d[1], (unsigned long long)d[2], (unsigned long long)d[3],
                         JET_MAX_CHANNELS, JET_MAX_SIDE,
                         d[1] == d[2] && d[3] >= 1 && d[3] <= JET_MAX_CHANNELS
                             ? " (stored channel-last, (N, H, W, C)? e2e-convert transposes such files)" : "");
    return 0;
}

/* Whether raw reads can serve X_jet, from its storage; else f->storage says why not. */
static int raw_capable(JetFile *f, hid_t dcpl, int little, int whole_rows) {
    const char *why = storage_raw_refusal(dcpl, little);
    f->storage = why ? why : !whole_rows ? "chunks that cut images" : "raw reads";
    return why == NULL && whole_rows;
}

/* X_jet's shape, type and layout into f (its dataset open), and whether raw reads can
 * serve it (then its chunks are located and checked). */
static int describe_x(JetFile *f) {
    hid_t sp = H5Dget_space(f->x), t = H5Dget_type(f->x), dcpl = H5Dget_create_plist(f->x);
    hsize_t d[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, d, NULL), little = 0;
    f->dtype_bytes = h5_float_kind(t, &little);
    int rc = check_x(f->path, nd, d, f->dtype_bytes, t);
    if (!rc) {
        f->n = (long long)d[0];
        f->c = (int)d[1];
        f->h = (int)d[2];
        f->w = (int)d[3];
        f->row_bytes = (long long)f->c * f->h * f->w * f->dtype_bytes;
        f->filters = H5Pget_nfilters(dcpl);
        hsize_t cd[4] = {0, 0, 0, 0};
        if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
            H5Pget_chunk(dcpl, 4, cd);
            f->chunk_rows = (long long)cd[0];
        }
        int whole_rows = f->chunk_rows == 0 || (cd[1] == d[1] && cd[2] == d[2] && cd[3] == d[3]);
        f->raw = raw_capable(f, dcpl, little, whole_rows);
        if (f->dtype_bytes == 2 && (f->half = h5_half_type()) < 0) rc = h5_fail(f->path, "cannot make the float16 type");
        if (!rc && f->raw) rc = settle_raw(f, dcpl);
    }
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(sp);
    return rc;
}

/* Open MPI 4.1's MPI-IO writes a file's path and a suffix into a 256-byte buffer when it
 * opens it (the sharedfp "lockedfile" component's query): a longer path aborts the
 * process ("buffer overflow detected", found by fuzz_file_list). */
#define MPIIO_PATH_MAX 240

/* path without its "." components and doubled slashes, into out ("." when nothing is
 * left); ".." stays (a symbolic link before it makes it more than text) */
static void path_tidy(const char *path, char *out, size_t size) {
    size_t n = 0;
    if (path[0] == '/' && size > 1) out[n++] = '/';
    for (const char *p = path; *p && n + 1 < size;) {
        while (*p == '/') p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len && !(len == 1 && p[0] == '.') && n + len + 2 < size) {
            if (n && out[n - 1] != '/') out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len;
    }
    if (n == 0 && size > 1) out[n++] = '.';
    out[n] = '\0';
}

/* The file and its X_jet open (*sparse = 1: X_jet is a group, the sparse layout), or
 * a message saying why not. Through MPI-IO the path is tidied first and refused when
 * still longer than Open MPI takes. */
static int open_x(JetFile *f, hid_t fapl, int *sparse) {
    const char *path = f->path;
    char tidy[OPEN_PATH_MAX];
    path_tidy(path, tidy, sizeof tidy);
    if (H5Pget_driver(fapl) == H5FD_MPIO && strlen(tidy) > MPIIO_PATH_MAX)
        return e2e_fail("%s: the path is %zu characters long; Open MPI's MPI-IO cannot open a path longer than %d "
                        "(it would abort): reach the file by a shorter path (a relative one, or a symbolic link to "
                        "its folder)", path, strlen(tidy), MPIIO_PATH_MAX);
    f->file = H5Fopen(tidy, H5F_ACC_RDONLY, fapl);
    if (f->file < 0) {
        char cause[256];
        h5_cause(cause, sizeof cause);
        return strstr(cause, "truncated") ? e2e_fail("%s: truncated file (HDF5: %s)", path, cause)
                                          : e2e_fail("%s: not a readable HDF5 file (HDF5: %s)", path, cause);
    }
    if (H5Lexists(f->file, DSET_X, H5P_DEFAULT) <= 0)
        return e2e_fail("%s: no dataset '%s' (a jet file holds X_jet, m, pt, ieta, iphi: data/format/FORMAT.md)%s",
                         path, DSET_X, is_checkpoint(f->file) ? "; this is an e2e-ddp checkpoint, not a jet file" : "");
    H5O_info_t oi;
    if (H5Oget_info_by_name(f->file, DSET_X, &oi, H5P_DEFAULT) >= 0 && oi.type == H5O_TYPE_GROUP) {
        *sparse = 1;
        return 0;
    }
    f->x = storage_open_dataset(f, DSET_X);
    return f->x < 0 ? -1 : 0;
}

int jetfile_open(JetFile *f, const char *path, hid_t fapl) {
    memset(f, 0, sizeof *f);
    f->file = f->x = f->half = f->local = -1;
    f->fd = -1;
    f->path = strdup(path);
    if (!f->path) return e2e_fail("out of memory");
    struct stat st;
    int rc = 0, sparse = 0;
    if (stat(path, &st) != 0) rc = e2e_fail("%s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
    else if (S_ISDIR(st.st_mode)) rc = e2e_fail("%s: is a folder, not an HDF5 jet file", path);
    else if (!S_ISREG(st.st_mode)) rc = e2e_fail("%s: is not a regular file (a device, a pipe?)", path);
    if (!rc) rc = open_x(f, fapl, &sparse);
    if (!rc) rc = check_format(f);
    if (!rc) rc = sparse ? sparsefile_open(f) : describe_x(f);
    if (!rc) rc = read_names(f);
    if (!rc && h5_attr_read(f->file, ATTR_PIXEL_SIZE, H5T_NATIVE_DOUBLE, &f->pixel_size))
        f->pixel_size = 0; /* optional */
    if (rc) jetfile_close(f);
    return rc;
}

static int enum_of_integers(hid_t t) {
    if (H5Tget_class(t) != H5T_ENUM) return 0;
    hid_t base = H5Tget_super(t);
    int yes = H5Tget_class(base) == H5T_INTEGER;
    H5Tclose(base);
    return yes;
}

/* (N,) column name into out as mem_type: a float column, or with any_number (mem_type
 * double) an integer one or an enum of integers (numpy bool through h5py) too; the shape
 * and the type checked */
static int read_column_as(JetFile *f, const char *name, hid_t mem_type, int any_number, void *out, hid_t dxpl) {
    if (H5Lexists(f->file, name, H5P_DEFAULT) <= 0)
        return e2e_fail("%s: no dataset '%s' (a jet file holds X_jet, m, pt, ieta, iphi: data/format/FORMAT.md)",
                         f->path, name);
    hid_t d = storage_open_dataset(f, name);
    if (d < 0) return -1;
    hid_t sp = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims[H5S_MAX_RANK];
    int nd = H5Sget_simple_extent_dims(sp, dims, NULL), rc = 0;
    H5T_class_t cls = H5Tget_class(t);
    char tn[64];
    if (nd != 1)
        rc = e2e_fail("%s: %s has %d dimensions; expected 1: (N,)", f->path, name, nd);
    else if ((long long)dims[0] != f->n)
        rc = e2e_fail("%s: %s has %llu rows but X_jet has %lld", f->path, name,
                       (unsigned long long)dims[0], f->n);
    else if (cls != H5T_FLOAT && !(any_number && (cls == H5T_INTEGER || enum_of_integers(t))))
        rc = e2e_fail("%s: %s has dtype %s; expected %s", f->path, name, h5_type_name(t, tn, sizeof tn),
                       any_number ? "numbers (an integer, float or boolean type)" : "float32");
    else if (cls == H5T_ENUM ? h5_read_enum_numbers(d, t, f->n, out, dxpl) < 0
                             : H5Dread(d, mem_type, H5S_ALL, H5S_ALL, dxpl, out) < 0)
        rc = h5_fail(f->path, "cannot read a column (truncated or damaged file?)");
    H5Tclose(t);
    H5Sclose(sp);
    H5Dclose(d);
    return rc;
}

int jetfile_read_column(JetFile *f, const char *name, float *out, hid_t dxpl) {
    return read_column_as(f, name, H5T_NATIVE_FLOAT, 0, out, dxpl);
}

int jetfile_read_numbers(JetFile *f, const char *name, double *out, hid_t dxpl) {
    return read_column_as(f, name, H5T_NATIVE_DOUBLE, 1, out, dxpl);
}

long long jetfile_row_addr(const JetFile *f, long long r) {  /* raw files only */
    if (!f->chunk_rows) return f->contig_addr + r * f->row_bytes;
    return f->chunk_addr[r / f->chunk_rows] + (r % f->chunk_rows) * f->row_bytes;
}

int jetfile_read_rows_raw(const JetFile *f, const long long *rows, long long n, float *out, void *stage) {
    char *dst = f->dtype_bytes == 4 ? (char *)out : (char *)stage;
    for (long long i = 0; i < n;) {
        /* one read for each run of rows that lie back to back in the file */
        long long a = jetfile_row_addr(f, rows[i]), j = i + 1;
        while (j < n && jetfile_row_addr(f, rows[j]) == a + (j - i) * f->row_bytes) j++;
        if (storage_pread(f, dst + i * f->row_bytes, (j - i) * f->row_bytes, a)) return -1;
        i = j;
    }
    if (f->dtype_bytes == 2 && out) half_to_float_n(stage, out, (size_t)(n * (f->row_bytes / 2)));
    return 0;
}

/* one H5Dread of rows [row, row + n) into out (n == 0: an empty read, to join a
 * collective call); float16 rows come unconverted (HDF5's own half-to-float
 * conversion runs at about 50 MB/s) */
static int read_run(const JetFile *f, long long row, long long n, void *out, hid_t dxpl) {
    if (h5_rows_io(f->x, f->dtype_bytes == 2 ? f->half : H5T_NATIVE_FLOAT, dxpl, row, n, out, 0) < 0)
        return h5_fail(f->path, "cannot read X_jet rows (truncated or damaged file?)");
    return 0;
}

int jetfile_read_rows_hdf5(const JetFile *f, const long long *rows, long long n, float *out, void *stage,
                           hid_t dxpl) {
    const long long rowf = (long long)f->c * f->h * f->w, esize = f->dtype_bytes;
    char *dst = esize == 4 ? (char *)out : (char *)stage;
    if (n == 0) return read_run(f, 0, 0, dst, dxpl);
    for (long long i = 0; i < n;) {
        long long j = i + 1;
        while (j < n && rows[j] == rows[j - 1] + 1) j++;
        if (read_run(f, rows[i], j - i, dst + i * rowf * esize, dxpl)) return -1;
        i = j;
    }
    if (esize == 2 && out) half_to_float_n(stage, out, (size_t)(n * rowf));
    return 0;
}

void jet_list_free(char **list, int n) {
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* One line of a file list: comments and blanks dropped, the name made relative to the
 * list's folder, into full. 0 (full empty for nothing), or -1 for a binary line. */
static int list_line(const char *path, const char *dir, char *line, char *full, size_t size) {
    full[0] = '\0';
    for (char *c = line; *c; c++)
        if ((unsigned char)*c < 0x20 && !isspace((unsigned char)*c))
            return e2e_fail("%s: not an HDF5 file (no HDF5 signature) and not a text list of files", path);
    char *s = line, *hash = strchr(line, '#');
    if (hash) *hash = '\0';
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    if (!*s) return 0;
    if (s[0] == '/') snprintf(full, size, "%s", s);
    else snprintf(full, size, "%s/%s", dir, s);
    return 0;
}

/* No file is named twice: the same name, or the same file by device and inode (another
 * path to it, a symbolic or hard link). A file listed twice would put its jets in
 * training and test alike. */
static int check_listed_once(const char *path, char **list, const int *lineno, int n) {
    struct stat *st = calloc((size_t)n, sizeof *st);
    int *known = calloc((size_t)n, sizeof *known), rc = st && known ? 0 : e2e_fail("out of memory");
    for (int i = 0; !rc && i < n; i++) {
        known[i] = stat(list[i], &st[i]) == 0;
        for (int j = 0; !rc && j < i; j++)
            if (!strcmp(list[i], list[j]) || (known[i] && known[j] && st[i].st_dev == st[j].st_dev &&
                                               st[i].st_ino == st[j].st_ino))
                rc = e2e_fail("%s: line %d names %s, the same file as line %d (%s): a file listed twice would put "
                               "its jets in more than one split (training and test)", path, lineno[i], list[i],
                               lineno[j], list[j]);
    }
    free(st);
    free(known);
    return rc;
}

/* the names a list file holds, with their line numbers */
static int read_list(const char *path, FILE *fp, char ***out, int **lines, int *count) {
    char *dir_copy = strdup(path), *dir = dir_copy ? dirname(dir_copy) : ".";
    char line[4096], full[8192];
    char **list = NULL;
    int *at = NULL, n = 0, rc = 0, lineno = 0;
    while (!rc && fgets(line, sizeof line, fp)) {
        lineno++;
        char *text = line;
        if (lineno == 1 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3;  /* a UTF-8 byte-order mark */
        rc = list_line(path, dir, text, full, sizeof full);
        if (rc || !full[0]) continue;
        char **grown = realloc(list, (size_t)(n + 1) * sizeof *list);
        int *more = grown ? realloc(at, (size_t)(n + 1) * sizeof *at) : NULL;
        list = grown ? grown : list;
        at = more ? more : at;
        if (!grown || !more || !(list[n] = strdup(full))) {
            rc = e2e_fail("out of memory");
            break;
        }
        at[n++] = lineno;
    }
    free(dir_copy);
    *out = list;
    *lines = at;
    *count = n;
    return rc;
}

int jet_list_resolve(const char *path, char ***out, int *count) {
    struct stat st;
    *out = NULL;
    *count = 0;
    if (stat(path, &st) != 0) return e2e_fail("%s: %s", path, errno == ENOENT ? "no such file" : strerror(errno));
    if (S_ISDIR(st.st_mode)) return e2e_fail("%s: is a folder, not an HDF5 file or a file list", path);
    if (st.st_size == 0) return e2e_fail("%s: empty file (neither HDF5 nor a file list)", path);
    if (H5Fis_hdf5(path) > 0) {
        char **l = malloc(sizeof *l);
        if (!l || !(l[0] = strdup(path))) return free(l), e2e_fail("out of memory");
        *out = l;
        *count = 1;
        return 0;
    }
    FILE *fp = fopen(path, "rb");
    if (!fp) return e2e_fail("%s: cannot open: %s", path, strerror(errno));
    char sig[4] = {0};
    if (fread(sig, 1, 4, fp) >= 1 && (unsigned char)sig[0] == 0x89 && (st.st_size < 4 || !memcmp(sig + 1, "HDF", 3))) {
        fclose(fp);
        return e2e_fail("%s: truncated or damaged HDF5 file (its signature is incomplete)", path);
    }
    rewind(fp);
    char **list = NULL;
    int *lines = NULL, n = 0;
    int rc = read_list(path, fp, &list, &lines, &n);
    fclose(fp);
    if (!rc && n == 0) rc = e2e_fail("%s: the file list names no files", path);
    if (!rc) rc = check_listed_once(path, list, lines, n);
    free(lines);
    if (rc) {
        jet_list_free(list, n);
        return -1;
    }
    *out = list;
    *count = n;
    return 0;
}

int jet_list_check_copies(const JetFile *files, int n, const float *m) {
    uint64_t *h = malloc(sizeof *h * (size_t)(n ? n : 1));
    if (!h) return e2e_fail("out of memory");
    long long at = 0;
    for (int i = 0; i < n; i++) {
        h[i] = drng_mix(0x434f505953ULL ^ (uint64_t)files[i].n);  /* "COPYS" */
        for (long long r = 0; r < files[i].n; r++) {
            uint32_t bits;
            memcpy(&bits, &m[at + r], sizeof bits);
            h[i] = drng_mix(h[i] ^ bits);
        }
        at += files[i].n;
    }
    int rc = 0;
    for (int i = 0; !rc && i < n; i++)
        for (int j = 0; !rc && j < i; j++)
            if (h[i] == h[j] && files[i].n == files[j].n && files[i].c == files[j].c)
                rc = e2e_fail("%s holds the same jets as %s (the same %lld masses, in order): a copy listed twice "
                               "would put its jets in more than one split (training and test)", files[i].path,
                               files[j].path, files[i].n);
    free(h);
    return rc;
}

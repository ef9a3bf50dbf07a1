/* The project's HDF5 helpers (h5util.h): quiet errors and their cause, types,
 * attributes, whole datasets, row reads and writes, files built in memory. */
#include "h5util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "outfile.h"

void h5_quiet_begin(H5Quiet *q) {
    H5Eget_auto2(H5E_DEFAULT, &q->func, &q->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

void h5_quiet_end(const H5Quiet *q) { H5Eset_auto2(H5E_DEFAULT, q->func, q->data); }

typedef struct { char *buf; size_t len; } Cause;

static herr_t take_innermost(unsigned n, const H5E_error2_t *e, void *p) {
    Cause *c = p;
    if (n == 0 && e->desc) snprintf(c->buf, c->len, "%s", e->desc);
    return 0;
}

const char *h5_cause(char *buf, size_t len) {
    Cause c = {buf, len};
    buf[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, take_innermost, &c); /* innermost first */
    H5Eclear2(H5E_DEFAULT);
    return buf;
}

int h5_fail(const char *file, const char *what) {
    char cause[256];
    h5_cause(cause, sizeof cause);
    if (cause[0]) return e2e_fail("%s: %s (HDF5: %s)", file, what, cause);
    return e2e_fail("%s: %s", file, what);
}

hid_t h5_half_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0) return t;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

int h5_float_kind(hid_t type, int *little) {
    if (H5Tget_class(type) != H5T_FLOAT) return 0;
    size_t spos, epos, esize, mpos, msize;
    if (H5Tget_fields(type, &spos, &epos, &esize, &mpos, &msize) < 0) return 0;
    size_t size = H5Tget_size(type);
    H5T_order_t order = H5Tget_order(type);
    if (order != H5T_ORDER_LE && order != H5T_ORDER_BE) return 0;
    *little = order == H5T_ORDER_LE;
    if (size == 4 && spos == 31 && epos == 23 && esize == 8 && mpos == 0 && msize == 23 &&
        H5Tget_ebias(type) == 127)
        return 4;
    if (size == 2 && spos == 15 && epos == 10 && esize == 5 && mpos == 0 && msize == 10 &&
        H5Tget_ebias(type) == 15)
        return 2;
    return 0;
}

herr_t h5_rows_io(hid_t dset, hid_t memtype, hid_t dxpl, long long lo, long long n, void *buf, int write) {
    hid_t fs = H5Dget_space(dset);
    hsize_t count[H5S_MAX_RANK], start[H5S_MAX_RANK] = {(hsize_t)lo};
    int nd = H5Sget_simple_extent_dims(fs, count, NULL);
    count[0] = (hsize_t)(n ? n : 1);
    hid_t ms = H5Screate_simple(nd, count, NULL);
    if (n) H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL);
    else {
        H5Sselect_none(fs);
        H5Sselect_none(ms);
    }
    herr_t e = write ? H5Dwrite(dset, memtype, ms, fs, dxpl, buf) : H5Dread(dset, memtype, ms, fs, dxpl, buf);
    H5Sclose(ms);
    H5Sclose(fs);
    return e;
}

const char *h5_type_name(hid_t t, char *buf, size_t len) {
    size_t bits = 8 * H5Tget_size(t);
    switch (H5Tget_class(t)) {
    case H5T_INTEGER:
        snprintf(buf, len, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_FLOAT:
        snprintf(buf, len, "float%zu%s", bits, H5Tget_order(t) == H5T_ORDER_BE ? " (big-endian)" : "");
        break;
    case H5T_STRING: snprintf(buf, len, "string"); break;
    case H5T_ENUM: {
        hid_t base = H5Tget_super(t);
        char bn[32];
        snprintf(buf, len, "enum of %s", h5_type_name(base, bn, sizeof bn));
        H5Tclose(base);
        break;
    }
    case H5T_COMPOUND: snprintf(buf, len, "compound"); break;
    default: snprintf(buf, len, "a non-numeric type"); break;
    }
    return buf;
}

/* ---- attributes ---- */

/* an attribute of space sp: created, written, closed */
static int attr_put(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, hid_t sp,
                    const void *value) {
    hid_t a = sp < 0 ? -1 : H5Acreate2(obj, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, mem_type, value);
    if (a >= 0) H5Aclose(a);
    if (sp >= 0) H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

int h5_attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value) {
    return attr_put(obj, name, file_type, mem_type, H5Screate(H5S_SCALAR), value);
}

/* a string type: variable-length UTF-8, or fixed of len bytes (caller closes) */
static hid_t str_type(int variable, size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (variable) {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    } else {
        H5Tset_size(t, len);
    }
    return t;
}

int h5_attr_write_str(hid_t obj, const char *name, const char *s, int variable) {
    hid_t t = str_type(variable, strlen(s) + 1);
    int rc = attr_put(obj, name, t, t, H5Screate(H5S_SCALAR), variable ? (const void *)&s : s);
    H5Tclose(t);
    return rc;
}

int h5_attr_write_strs(hid_t obj, const char *name, const char *const *s, int n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t t = str_type(1, 0);
    static const char *const none[1] = {""}; /* n == 0: HDF5 still wants a buffer */
    int rc = attr_put(obj, name, t, t, H5Screate_simple(1, dims, NULL), n ? s : none);
    H5Tclose(t);
    return rc;
}

int h5_attr_read(hid_t obj, const char *name, hid_t mem_type, void *value) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), sp = a < 0 ? -1 : H5Aget_space(a);
    /* one value only: an array attribute would be read past the caller's variable */
    herr_t rc = sp < 0 || H5Sget_simple_extent_npoints(sp) != 1 ? -1 : H5Aread(a, mem_type, value);
    if (sp >= 0) H5Sclose(sp);
    if (a >= 0) H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

void h5_strs_free(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

/* n variable-length strings of attribute a into out[] (copies) */
static int read_vlen(hid_t a, hid_t ft, hid_t sp, hssize_t n, char **out) {
    char **v = calloc((size_t)n, sizeof *v);
    hid_t mt = str_type(1, 0);
    H5Tset_cset(mt, H5Tget_cset(ft));
    int got = v && H5Aread(a, mt, v) >= 0, rc = got ? 0 : -1;
    for (hssize_t i = 0; !rc && i < n; i++)
        if (!(out[i] = strdup(v[i] ? v[i] : ""))) rc = -1;
    if (got) H5Dvlen_reclaim(mt, sp, H5P_DEFAULT, v);
    H5Tclose(mt);
    free(v);
    return rc;
}

/* n fixed-length strings of attribute a into out[] (copies, NUL-terminated) */
static int read_fixed(hid_t a, hid_t ft, hssize_t n, char **out) {
    size_t len = H5Tget_size(ft);
    char *v = calloc((size_t)n, len + 1);
    hid_t mt = H5Tcopy(ft);
    int rc = v && H5Aread(a, mt, v) >= 0 ? 0 : -1;
    for (hssize_t i = 0; !rc && i < n; i++)
        if (!(out[i] = strndup(v + i * len, len))) rc = -1;
    H5Tclose(mt);
    free(v);
    return rc;
}

int h5_attr_strs(hid_t a, char ***out) {
    *out = NULL;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    hssize_t n = H5Sget_simple_extent_npoints(sp);
    int rc = -1;
    if (H5Tget_class(ft) == H5T_STRING && n >= 0 && (*out = calloc((size_t)n + 1, sizeof **out))) {
        rc = n == 0                        ? 0 /* an empty array: nothing to read */
             : H5Tis_variable_str(ft) > 0 ? read_vlen(a, ft, sp, n, *out)
                                          : read_fixed(a, ft, n, *out);
        if (rc) {
            h5_strs_free(*out, (int)n);
            *out = NULL;
        }
    }
    H5Sclose(sp);
    H5Tclose(ft);
    return rc ? -1 : (int)n;
}

char *h5_attr_str(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return NULL;
    char **s = NULL, *one = NULL;
    int n = h5_attr_strs(a, &s);
    H5Aclose(a);
    if (n == 1) {
        one = s[0];
        s[0] = NULL;
    }
    h5_strs_free(s, n);
    return one;
}

/* ---- datasets ---- */

int h5_dataset_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int ndim,
                     const hsize_t *dims, const void *data) {
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t d = sp < 0 ? -1 : H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    return rc < 0 ? -1 : 0;
}

/* ---- files written whole by one process ---- */

hid_t h5_memfile_create(void) {
    static int serial;  /* the core driver needs a name, never used for a file */
    char name[64];
    snprintf(name, sizeof name, "e2e-memfile-%d", ++serial);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    hid_t f = H5Pset_fapl_core(fapl, 1 << 20, 0) < 0 ? -1 : H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return f;
}

int h5_memfile_save(hid_t f, const char *path) {
    /* the superblock's end-of-file address is written by the flush */
    ssize_t n = f < 0 || H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? -1 : H5Fget_file_image(f, NULL, 0);
    void *image = n > 0 ? malloc((size_t)n) : NULL;
    int ok = image && H5Fget_file_image(f, image, (size_t)n) == n;
    if (f >= 0 && H5Fclose(f) < 0) ok = 0;
    int rc = ok ? out_write_file(path, image, (size_t)n)
                : (n > 0 && !image ? e2e_fail("%s: out of memory for a file of %lld bytes", path, (long long)n)
                                   : h5_fail(path, "cannot build the file in memory"));
    free(image);
    return rc;
}

int h5_file_format(const char *path, char *format, size_t size) {
    if (size) format[0] = '\0';
    FILE *probe = fopen(path, "rb");
    if (!probe) return -1;
    fclose(probe);
    H5Quiet q;
    h5_quiet_begin(&q);
    int kind = H5Fis_hdf5(path) > 0;
    hid_t f = kind ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    if (f >= 0) {
        char *s = h5_attr_str(f, "format");
        if (s && size) snprintf(format, size, "%s", s);
        free(s);
        H5Fclose(f);
    }
    H5Eclear2(H5E_DEFAULT);
    h5_quiet_end(&q);
    return kind;
}

/* An enum of integers (h5py's numpy bool is one: FALSE 0, TRUE 1) read as its members'
 * values: HDF5 converts no enum to a number, so the native enum is read and its integers
 * widened here. n values into out; -1 with no message when the read fails. */
int h5_read_enum_numbers(hid_t d, hid_t enum_type, long long n, double *out, hid_t dxpl) {
    hid_t mem = H5Tget_native_type(enum_type, H5T_DIR_ASCEND), base = H5Tget_super(enum_type);
    size_t size = H5Tget_size(mem);
    int is_signed = H5Tget_sign(base) != H5T_SGN_NONE;
    int known = size == 1 || size == 2 || size == 4 || size == 8;  /* what the switch reads */
    unsigned char *raw = known ? malloc((size_t)n * size + 1) : NULL;
    int rc = raw && H5Dread(d, mem, H5S_ALL, H5S_ALL, dxpl, raw) >= 0 ? 0 : -1;
    for (long long i = 0; !rc && i < n; i++) {
        const unsigned char *v = raw + i * size;
        switch (size) {
        case 1: out[i] = is_signed ? (double)*(const int8_t *)v : (double)*v; break;
        case 2: out[i] = is_signed ? (double)*(const int16_t *)v : (double)*(const uint16_t *)v; break;
        case 4: out[i] = is_signed ? (double)*(const int32_t *)v : (double)*(const uint32_t *)v; break;
        default: out[i] = is_signed ? (double)*(const int64_t *)v : (double)*(const uint64_t *)v; break; /* 8 */
        }
    }
    free(raw);
    H5Tclose(base);
    H5Tclose(mem);
    return rc;
}

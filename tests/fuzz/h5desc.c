/* HDF5 files as edited object lists (h5desc.h): read, edited from the fuzzer's bytes,
 * written back. */
#include "h5desc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BYTES (4u << 20) /* an object's data, at most */

static const char *const DSET_NAMES[] = {"X_jet", "m", "pt", "ieta", "iphi", "y", "q", "X_jet/offsets",
                                         "X_jet/counts", "X_jet/pos", "X_jet/value", "data/scales", "X_jet/x"};
static const char *const ATTR_NAMES[] = {"format", "format_version", "channels", "channel_kinds", "scalars",
                                         "scalar_scale", "pixel_size", "layout", "shape", "source", "seed",
                                         "command", "unit", "config", "version", "tensor_names", "data_files",
                                         "zero_suppress", "unbias", "hash", "blocks", "in_channels", "zz"};
static const char *const STRINGS[] = {"", "e2e-jet-images", "e2e-ddp checkpoint", "sparse", "dense", "energy",
                                      "signed", "pt", "iphi", "ieta", "m", "X_jet", "track_pt", "ecal", "hcal",
                                      "synthetic", "{\"epochs\": 2, \"seed\": 3}", "{\"zero_suppress\": 1e-3}",
                                      "\xef\xbb\xbf", "a\nb", "%s%n%d", "conv0.weight", "../../x"};
static const double VALUES[] = {0, -0.0, 1, -1, 2, 3, 7, 63, 64, 65, 255, 256, 65535, 65536, 2147483647.0,
                                -2147483648.0, 4294967295.0, 1e18, NAN, INFINITY, -INFINITY, 1e30, 1e-40, 5000,
                                1e7, 0.5, 3.0e38, 125, 8, 16};
#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))

static hid_t half_type(void) {
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    H5Tset_fields(t, 15, 10, 5, 0, 10);
    H5Tset_size(t, 2);
    H5Tset_ebias(t, 15);
    return t;
}

/* a type of the table; *vlen set for variable-length strings */
static hid_t table_type(unsigned k, int *vlen) {
    static const hid_t *const atomic[] = {&H5T_IEEE_F32LE_g, &H5T_IEEE_F32BE_g, &H5T_IEEE_F64LE_g, &H5T_STD_I32LE_g,
                                          &H5T_STD_U32LE_g, &H5T_STD_U16LE_g, &H5T_STD_I64LE_g, &H5T_STD_U8LE_g,
                                          &H5T_STD_I8LE_g, &H5T_STD_I64BE_g};
    *vlen = 0;
    k %= COUNT(atomic) + 3;
    if (k < (unsigned)COUNT(atomic)) return H5Tcopy(*atomic[k]);
    if (k == COUNT(atomic)) return half_type();
    hid_t s = H5Tcopy(H5T_C_S1);
    if (k == COUNT(atomic) + 1) {
        H5Tset_size(s, H5T_VARIABLE);
        H5Tset_cset(s, H5T_CSET_UTF8);
        *vlen = 1;
    } else {
        H5Tset_size(s, 8);
    }
    return s;
}

static size_t npoints(const H5Obj *o) {
    size_t n = 1;
    for (int i = 0; i < o->nd; i++) n *= (size_t)o->dims[i];
    return n;
}

/* ---- the description ---- */

static H5Obj *add(H5Desc *d) {
    if (d->n == d->cap) {
        int cap = d->cap ? 2 * d->cap : 16;
        H5Obj *o = realloc(d->o, (size_t)cap * sizeof *o);
        if (!o) return NULL;
        d->o = o;
        d->cap = cap;
    }
    H5Obj *o = &d->o[d->n++];
    memset(o, 0, sizeof *o);
    o->type = -1;
    return o;
}

static void free_obj(H5Obj *o) {
    if (o->type >= 0) H5Tclose(o->type);
    free(o->data);
}

void h5desc_free(H5Desc *d) {
    for (int i = 0; i < d->n; i++) free_obj(&d->o[i]);
    free(d->o);
    memset(d, 0, sizeof *d);
}

void h5desc_copy(H5Desc *dst, const H5Desc *src) {
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < src->n; i++) {
        H5Obj *o = add(dst);
        if (!o) return;
        *o = src->o[i];
        o->type = H5Tcopy(src->o[i].type);
        o->data = src->o[i].bytes ? malloc(src->o[i].bytes) : NULL;
        if (o->data) memcpy(o->data, src->o[i].data, src->o[i].bytes);
        else o->bytes = 0;
    }
}

/* ---- reading ---- */

/* an object's space and type, and its data read as stored */
static int take_data(H5Obj *o, hid_t obj, hid_t space, hid_t type, int attr) {
    o->type = H5Tcopy(type);
    o->nd = H5Sget_simple_extent_ndims(space);
    if (o->nd < 0 || o->nd > H5DESC_MAX_DIMS) return -1;
    H5Sget_simple_extent_dims(space, o->dims, NULL);
    o->vlen_str = H5Tis_variable_str(type) > 0;
    size_t n = npoints(o), size = H5Tget_size(type);
    if (n * size > MAX_BYTES) return -1;
    if (o->vlen_str) {
        char **s = calloc(n ? n : 1, sizeof *s);
        if (!s) return -1;
        herr_t rc = attr ? H5Aread(obj, type, s) : H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
        size_t total = 0;
        for (size_t i = 0; rc >= 0 && i < n; i++) total += strlen(s[i] ? s[i] : "") + 1;
        o->data = rc >= 0 ? malloc(total ? total : 1) : NULL;
        for (size_t i = 0, at = 0; o->data && i < n; i++) {
            size_t k = strlen(s[i] ? s[i] : "") + 1;
            memcpy(o->data + at, s[i] ? s[i] : "", k);
            at += k;
        }
        o->bytes = o->data ? total : 0;
        if (rc >= 0) H5Dvlen_reclaim(type, space, H5P_DEFAULT, s);
        free(s);
        return o->data ? 0 : -1;
    }
    o->bytes = n * size;
    o->data = malloc(o->bytes ? o->bytes : 1);
    if (!o->data) return -1;
    herr_t rc = attr ? H5Aread(obj, type, o->data) : H5Dread(obj, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, o->data);
    return rc < 0 ? -1 : 0;
}

typedef struct {
    H5Desc *d;
    const char *owner;
} AttrWalk;

static herr_t read_attr(hid_t obj, const char *name, const H5A_info_t *info, void *arg) {
    AttrWalk *w = arg;
    H5Obj *o = add(w->d);
    if (!o) return -1;
    snprintf(o->owner, sizeof o->owner, "%s", w->owner);
    snprintf(o->name, sizeof o->name, "%s", name);
    o->is_attr = 1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), s = H5Aget_space(a), t = H5Aget_type(a);
    int rc = take_data(o, a, s, t, 1);
    H5Tclose(t);
    H5Sclose(s);
    H5Aclose(a);
    if (rc) free_obj(o), w->d->n--;
    (void)info;
    return 0;
}

static void read_attrs(H5Desc *d, hid_t obj, const char *owner) {
    AttrWalk w = {d, owner};
    H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, NULL, read_attr, &w);
}

static void read_dataset(H5Desc *d, hid_t f, const char *path) {
    hid_t ds = H5Dopen2(f, path, H5P_DEFAULT);
    if (ds < 0) return;
    H5Obj *o = add(d);
    if (!o) return;
    snprintf(o->owner, sizeof o->owner, "%s", path);
    hid_t s = H5Dget_space(ds), t = H5Dget_type(ds), dcpl = H5Dget_create_plist(ds);
    int rc = take_data(o, ds, s, t, 0);
    H5D_layout_t lay = H5Pget_layout(dcpl);
    o->layout = lay == H5D_CHUNKED ? 1 : lay == H5D_COMPACT ? 2 : 0;
    if (o->layout == 1) H5Pget_chunk(dcpl, H5DESC_MAX_DIMS, o->chunk);
    o->deflate = H5Pget_nfilters(dcpl) > 0;
    H5Pclose(dcpl);
    H5Tclose(t);
    H5Sclose(s);
    if (rc) {
        free_obj(o);
        d->n--;
    } else {
        read_attrs(d, ds, path);
    }
    H5Dclose(ds);
}

static herr_t visit(hid_t f, const char *name, const H5L_info_t *info, void *arg) {
    H5Desc *d = arg;
    H5O_info_t oi;
    char path[256];
    snprintf(path, sizeof path, "/%s", name);
    if (H5Oget_info_by_name(f, name, &oi, H5P_DEFAULT) < 0) return 0;
    if (oi.type == H5O_TYPE_DATASET) read_dataset(d, f, path);
    if (oi.type == H5O_TYPE_GROUP) {
        hid_t g = H5Gopen2(f, name, H5P_DEFAULT);
        if (g >= 0) read_attrs(d, g, path), H5Gclose(g);
    }
    (void)info;
    return 0;
}

int h5desc_read(H5Desc *d, const char *path) {
    memset(d, 0, sizeof *d);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) return -1;
    read_attrs(d, f, "/");
    H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, visit, d);
    H5Fclose(f);
    return 0;
}

/* ---- writing ---- */

/* the parent groups of path (not path itself) */
static void make_groups(hid_t f, const char *path) {
    char p[256];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (H5Lexists(f, p, H5P_DEFAULT) <= 0) {
            hid_t g = H5Gcreate2(f, p, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (g >= 0) H5Gclose(g);
        }
        *s = '/';
    }
}

/* the object's data for n points: its bytes repeated (zeros where it has none); for
 * variable-length strings an array of n pointers into them (*owned to free) */
static void *data_for(const H5Obj *o, size_t n, void **owned) {
    *owned = NULL;
    if (o->vlen_str) {
        const char **s = malloc((n ? n : 1) * sizeof *s);
        if (!s) return NULL;
        size_t at = 0;
        for (size_t i = 0; i < n; i++) {
            if (at >= o->bytes) at = 0;
            s[i] = o->bytes ? (const char *)o->data + at : "";
            at += o->bytes ? strnlen(s[i], o->bytes - at) + 1 : 0;
        }
        *owned = s;
        return s;
    }
    size_t need = n * H5Tget_size(o->type);
    unsigned char *b = calloc(need ? need : 1, 1);
    for (size_t i = 0; b && o->bytes && i < need; i++) b[i] = o->data[i % o->bytes];
    *owned = b;
    return b;
}

/* the last byte of a variable-length string's data must end a string */
static int strings_ok(const H5Obj *o) { return !o->vlen_str || !o->bytes || o->data[o->bytes - 1] == '\0'; }

static void write_dataset(hid_t f, const H5Obj *o) {
    size_t n = npoints(o);
    if (n * H5Tget_size(o->type) > MAX_BYTES || !strings_ok(o)) return;
    hsize_t maxd[H5DESC_MAX_DIMS];
    for (int i = 0; i < o->nd; i++) maxd[i] = o->layout == 1 ? H5S_UNLIMITED : o->dims[i];
    hid_t s = o->nd ? H5Screate_simple(o->nd, o->dims, maxd) : H5Screate(H5S_SCALAR), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (o->layout == 1 && o->nd) {
        H5Pset_chunk(dcpl, o->nd, o->chunk);
        if (o->deflate) H5Pset_deflate(dcpl, 1);
    } else if (o->layout == 2) {
        H5Pset_layout(dcpl, H5D_COMPACT);
    }
    make_groups(f, o->owner);
    hid_t d = H5Dcreate2(f, o->owner, o->type, s, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    void *owned, *buf = d >= 0 ? data_for(o, n, &owned) : NULL;
    if (buf && n) H5Dwrite(d, o->type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (d >= 0) free(owned), H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(s);
}

static void write_attr(hid_t f, const H5Obj *o) {
    size_t n = npoints(o);
    if (n * H5Tget_size(o->type) > 65000 || !strings_ok(o)) return;
    if (H5Lexists(f, o->owner, H5P_DEFAULT) <= 0 && strcmp(o->owner, "/")) {
        hid_t g = H5Gcreate2(f, o->owner, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT); /* a group to hold it */
        if (g >= 0) H5Gclose(g);
    }
    hid_t obj = H5Oopen(f, o->owner, H5P_DEFAULT);
    if (obj < 0) return;
    if (H5Aexists(obj, o->name) > 0) H5Adelete(obj, o->name);
    hid_t s = o->nd ? H5Screate_simple(o->nd, o->dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, o->name, o->type, s, H5P_DEFAULT, H5P_DEFAULT);
    void *owned, *buf = a >= 0 ? data_for(o, n, &owned) : NULL;
    if (buf) H5Awrite(a, o->type, buf);
    if (a >= 0) free(owned), H5Aclose(a);
    H5Sclose(s);
    H5Oclose(obj);
}

int h5desc_write(const H5Desc *d, const char *path) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return -1;
    for (int i = 0; i < d->n; i++)
        if (!d->o[i].is_attr) write_dataset(f, &d->o[i]);
    for (int i = 0; i < d->n; i++)
        if (d->o[i].is_attr) write_attr(f, &d->o[i]);
    return H5Fclose(f) < 0 ? -1 : 0;
}

/* ---- edits ---- */

/* the data resized to the object's points (its bytes repeated) */
static void fit_data(H5Obj *o) {
    if (o->vlen_str) return; /* any count of strings is read cyclically */
    size_t need = npoints(o) * H5Tget_size(o->type);
    if (need > MAX_BYTES) need = MAX_BYTES;
    unsigned char *b = calloc(need ? need : 1, 1);
    if (!b) return;
    for (size_t i = 0; o->bytes && i < need; i++) b[i] = o->data[i % o->bytes];
    free(o->data);
    o->data = b;
    o->bytes = need;
}

static void set_strings(H5Obj *o, FuzzIn *in) {
    int k = 1 + (int)(fi_u8(in) % 4);
    size_t total = 0;
    char buf[512];
    free(o->data);
    o->data = NULL;
    for (int i = 0; i < k; i++) {
        unsigned pick = fi_u8(in);
        const char *s = STRINGS[pick % COUNT(STRINGS)];
        if (pick >= 240) { /* bytes of the input as a string */
            size_t len = fi_u8(in) % 200;
            len = fi_bytes(in, buf, len);
            buf[len] = '\0';
            s = buf;
        } else if (pick >= 230) { /* a long one */
            memset(buf, 'x', 400);
            buf[400] = '\0';
            s = buf;
        }
        size_t len = strlen(s) + 1;
        unsigned char *grown = realloc(o->data, total + len);
        if (!grown) break;
        o->data = grown;
        memcpy(o->data + total, s, len);
        total += len;
    }
    o->bytes = total;
    o->nd = 1;
    o->dims[0] = (hsize_t)(fi_u8(in) % 5 == 0 ? 0 : k);
}

/* one value of the table (or raw bytes) into element i */
static void poke(H5Obj *o, FuzzIn *in) {
    if (o->vlen_str) {
        set_strings(o, in);
        return;
    }
    size_t size = H5Tget_size(o->type), n = npoints(o);
    if (!n || !size || o->bytes < n * size) return;
    size_t i = fi_u32(in) % n;
    unsigned pick = fi_u8(in);
    unsigned char *at = o->data + i * size;
    if (pick < 200 && H5Tget_class(o->type) != H5T_STRING) {
        unsigned char tmp[64] = {0};
        double v = VALUES[pick % COUNT(VALUES)];
        if (pick % 3 == 0) v = (double)(n + pick % 3); /* near the element count: offsets, counts */
        memcpy(tmp, &v, sizeof v);
        if (size <= sizeof tmp && H5Tconvert(H5T_NATIVE_DOUBLE, o->type, 1, tmp, NULL, H5P_DEFAULT) >= 0)
            memcpy(at, tmp, size);
    } else {
        fi_bytes(in, at, size);
    }
}

static void set_dims(H5Obj *o, FuzzIn *in) {
    unsigned which = fi_u8(in), v = fi_u16(in);
    if (which % 8 == 7) { /* drop or add a dimension */
        if (o->nd > 0 && which & 8) o->nd--;
        else if (o->nd < H5DESC_MAX_DIMS) o->dims[o->nd] = 1 + v % 4, o->chunk[o->nd] = 1, o->nd++;
    } else if (o->nd) {
        int k = (int)(which % (unsigned)o->nd);
        o->dims[k] = v % 3 == 0 ? 0 : v % 130; /* 125 and around, a few rows or none */
        if (o->chunk[k] == 0) o->chunk[k] = 1;
    }
    fit_data(o);
}

static void set_storage(H5Obj *o, FuzzIn *in) {
    unsigned k = fi_u8(in);
    o->layout = (int)(k % 3);
    o->deflate = (k >> 2) & 1;
    for (int i = 0; i < o->nd; i++) {
        unsigned c = fi_u8(in);
        o->chunk[i] = c % 4 == 0 ? o->dims[i] : 1 + c % 70;
        if (!o->chunk[i]) o->chunk[i] = 1;
    }
}

static void set_type(H5Obj *o, FuzzIn *in) {
    int vlen = 0;
    hid_t t = table_type(fi_u8(in), &vlen);
    if (t < 0) return;
    H5Tclose(o->type);
    o->type = t;
    if (vlen != o->vlen_str) { /* strings from or to numbers: new contents */
        o->vlen_str = vlen;
        if (vlen) set_strings(o, in);
    }
    fit_data(o);
}

/* a new attribute (or one replaced) on the root, X_jet or a dataset, of the format's names */
static void new_attr(H5Desc *d, FuzzIn *in) {
    static const char *const owners[] = {"/", "/X_jet", "/data", "/m"};
    H5Obj *o = add(d);
    if (!o) return;
    o->is_attr = 1;
    snprintf(o->owner, sizeof o->owner, "%s", owners[fi_u8(in) % COUNT(owners)]);
    snprintf(o->name, sizeof o->name, "%s", ATTR_NAMES[fi_u8(in) % COUNT(ATTR_NAMES)]);
    for (int i = 0; i < d->n - 1; i++) /* replacing: the old one goes */
        if (d->o[i].is_attr && !strcmp(d->o[i].owner, o->owner) && !strcmp(d->o[i].name, o->name)) {
            free_obj(&d->o[i]);
            d->o[i] = d->o[--d->n];
            o = &d->o[d->n - 1];
            break;
        }
    o->type = table_type(fi_u8(in), &o->vlen_str);
    if (o->vlen_str) {
        set_strings(o, in);
        return;
    }
    o->nd = (int)(fi_u8(in) % 2);
    o->dims[0] = o->nd ? fi_u8(in) % 10 : 1;
    fit_data(o);
    size_t n = npoints(o);
    for (size_t i = 0; i < n && i < 10; i++) poke(o, in);
}

/* a dataset copied under another name (a scalar column, a sparse array) */
static void copy_dataset(H5Desc *d, int src, FuzzIn *in) {
    if (d->o[src].is_attr) return;
    H5Obj copy = d->o[src];
    H5Obj *o = add(d);
    if (!o) return;
    *o = copy;
    o->type = H5Tcopy(copy.type);
    o->data = copy.bytes ? malloc(copy.bytes) : NULL;
    if (o->data) memcpy(o->data, copy.data, copy.bytes);
    else o->bytes = 0;
    snprintf(o->owner, sizeof o->owner, "/%s", DSET_NAMES[fi_u8(in) % COUNT(DSET_NAMES)]);
}

/* up to 15 bytes of the input over the data, at a place it picks */
static void overwrite(H5Obj *o, FuzzIn *in) {
    if (!o->bytes) return;
    size_t at = fi_u32(in) % o->bytes, len = fi_u8(in) % 16;
    if (len > o->bytes - at) len = o->bytes - at;
    fi_bytes(in, o->data + at, len);
}

void h5desc_edit(H5Desc *d, FuzzIn *in, int max_edits) {
    for (int e = 0; e < max_edits && in->n && d->n; e++) {
        unsigned op = fi_u8(in) % 10;
        int k = (int)(fi_u8(in) % (unsigned)d->n);
        H5Obj *o = &d->o[k];
        switch (op) {
        case 0: case 1: poke(o, in); break;
        case 2: set_dims(o, in); break;
        case 3: set_type(o, in); break;
        case 4: set_storage(o, in); break;
        case 5: free_obj(o), d->o[k] = d->o[--d->n]; break;
        case 6: new_attr(d, in); break;
        case 7: copy_dataset(d, k, in); break;
        case 8: overwrite(o, in); break;
        default: for (int i = 0; i < 8; i++) poke(o, in); break;
        }
    }
}

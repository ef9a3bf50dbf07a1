#include "h5util.h"

#include <stdio.h>
#include <string.h>

#include "data_error.h"

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
    if (cause[0]) return data_fail("%s: %s (HDF5: %s)", file, what, cause);
    return data_fail("%s: %s", file, what);
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

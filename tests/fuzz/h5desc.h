/* An HDF5 file as a list of objects (its datasets and every attribute), edited by the
 * fuzzer and written back: the fuzz harnesses of the readers (tests/fuzz/) mutate the
 * structure HDF5 hands our code (shapes, types, storage, attribute values, the values
 * of the sparse index) instead of the file's bytes, which would mostly exercise HDF5's
 * own parser, a library we do not own. */
#ifndef E2E_FUZZ_H5DESC_H
#define E2E_FUZZ_H5DESC_H

#include <hdf5.h>
#include <stddef.h>

#include "fuzz_input.h"

#define H5DESC_MAX_DIMS 6

typedef struct {
    char owner[256];      /* a dataset's path ("/X_jet/pos"); an attribute's object ("/", "/X_jet") */
    char name[64];        /* an attribute's name ("" for a dataset) */
    int is_attr;
    hid_t type;           /* the file type (owned) */
    int vlen_str;         /* variable-length strings: data holds the strings one after the other, each with its NUL */
    int nd;               /* 0: a scalar */
    hsize_t dims[H5DESC_MAX_DIMS];
    int layout;           /* datasets: 0 contiguous, 1 chunked, 2 compact */
    hsize_t chunk[H5DESC_MAX_DIMS];
    int deflate;          /* chunked datasets: gzip */
    unsigned char *data;
    size_t bytes;
} H5Obj;

typedef struct {
    H5Obj *o;
    int n, cap;
} H5Desc;

/* Every attribute of every group and dataset, and every dataset with its data. 0 or -1. */
int h5desc_read(H5Desc *d, const char *path);
/* The file made from the description (POSIX driver); objects that HDF5 refuses to make
 * (a chunk larger than allowed, a compact dataset too big) are left out. 0 or -1. */
int h5desc_write(const H5Desc *d, const char *path);
void h5desc_copy(H5Desc *dst, const H5Desc *src);
void h5desc_free(H5Desc *d);
/* Up to max_edits edits taken from the fuzzer's bytes: dimensions, types, values
 * (interesting ones: 0, -1, NaN, Inf, 2^31 - 1, ...; or raw bytes), storage, deleted
 * objects, attributes added or replaced with names and strings of the format's
 * vocabulary, datasets copied under other names. */
void h5desc_edit(H5Desc *d, FuzzIn *in, int max_edits);

#endif

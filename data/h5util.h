/* Internal helpers shared by the writer, the reader and the inspector: HDF5 error
 * messages, the float16 file type, row reads and writes. */
#ifndef E2E_DATA_H5UTIL_H
#define E2E_DATA_H5UTIL_H

#include <hdf5.h>
#include <stdint.h>

/* Turns HDF5's automatic error printing off for the life of the guard (HDF5's stack
 * dumps are replaced by one message of ours) and restores it after. */
typedef struct { H5E_auto2_t func; void *data; } H5Quiet;
void h5_quiet_begin(H5Quiet *q);
void h5_quiet_end(const H5Quiet *q);

/* The innermost message of HDF5's error stack (the cause), or "" */
const char *h5_cause(char *buf, size_t len);
/* data_fail("<file>: <what> (HDF5: <cause>)") */
int h5_fail(const char *file, const char *what);

/* IEEE binary16, little-endian, as h5py and numpy write float16 (caller closes) */
hid_t h5_half_type(void);
/* 4: float32, 2: float16 (IEEE, either byte order; *little says which), 0: other */
int h5_float_kind(hid_t type, int *little);

/* Reads (write = 0) or writes rows [lo, lo + n) of dset, whole along the other
 * dimensions, from or to buf laid out as those rows; n == 0 selects nothing, to join
 * a collective call. Returns H5Dread's or H5Dwrite's result. */
herr_t h5_rows_io(hid_t dset, hid_t memtype, hid_t dxpl, long long lo, long long n, void *buf, int write);

#endif

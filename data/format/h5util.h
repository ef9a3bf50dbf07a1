/* The project's HDF5 helpers, one set for every file it reads or writes: the jet files
 * (writer, reader, inspector), checkpoints and prediction files (dist/). Error
 * messages, types, attributes, whole datasets, row reads and writes. The attribute and
 * dataset helpers return 0 or -1 and leave the message to the caller (which names the
 * file). */
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
/* e2e_fail("<file>: <what> (HDF5: <cause>)") */
int h5_fail(const char *file, const char *what);

/* IEEE binary16, little-endian, as h5py and numpy write float16 (caller closes) */
hid_t h5_half_type(void);
/* 4: float32, 2: float16 (IEEE, either byte order; *little says which), 0: other */
int h5_float_kind(hid_t type, int *little);

/* "float32", "int64", "string", ... for messages */
const char *h5_type_name(hid_t t, char *buf, size_t len);
/* The n values of dataset d, an enum of integers (enum_type, its type), as the numbers the
 * members stand for (h5py writes numpy bool as such an enum); -1 when the read fails. */
int h5_read_enum_numbers(hid_t d, hid_t enum_type, long long n, double *out, hid_t dxpl);

/* ---- attributes ---- */

/* A scalar attribute of file type `file_type`, written from memory of `mem_type`. */
int h5_attr_write(hid_t obj, const char *name, hid_t file_type, hid_t mem_type, const void *value);
/* A scalar string attribute: fixed-length (variable = 0) or variable-length UTF-8, as
 * h5py writes a Python str (variable = 1). */
int h5_attr_write_str(hid_t obj, const char *name, const char *s, int variable);
/* A 1-D attribute of n variable-length UTF-8 strings (n may be 0: an empty array). */
int h5_attr_write_strs(hid_t obj, const char *name, const char *const *s, int n);
/* A scalar attribute read as mem_type; -1 when absent or unreadable. */
int h5_attr_read(hid_t obj, const char *name, hid_t mem_type, void *value);
/* A scalar string attribute of either kind, as a malloc'd string; NULL when absent or
 * not a string. */
char *h5_attr_str(hid_t obj, const char *name);
/* The strings of an open string attribute of either kind (any shape, in order) as n
 * malloc'd strings in *out (free with h5_strs_free); returns n, or -1 when it is not a
 * string attribute or cannot be read. */
int h5_attr_strs(hid_t attr, char ***out);
void h5_strs_free(char **s, int n);

/* ---- datasets ---- */

/* Creates and writes the dataset `name` (ndim dimensions) of file type file_type from
 * memory of mem_type, contiguous, whole. */
int h5_dataset_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type, int ndim,
                     const hsize_t *dims, const void *data);

/* Reads (write = 0) or writes rows [lo, lo + n) of dset, whole along the other
 * dimensions, from or to buf laid out as those rows; n == 0 selects nothing, to join
 * a collective call. Returns H5Dread's or H5Dwrite's result. */
herr_t h5_rows_io(hid_t dset, hid_t memtype, hid_t dxpl, long long lo, long long n, void *buf, int write);

/* ---- files written whole by one process (checkpoints, prediction files) ----
 * The file is built in memory (the core driver, no backing store) and its image is
 * written through net/base/outfile.h (temporary name, checked writes, fsync, rename): HDF5
 * never writes to the disk itself, so a full disk is one checked write() that fails,
 * not a failed H5Fclose that leaves the library's state half torn down. */

/* A new, empty HDF5 file in memory; -1 on failure. */
hid_t h5_memfile_create(void);
/* Flushes f, writes its image to path, closes f (in every case). 0, or -1 with
 * e2e_error() naming path. */
int h5_memfile_save(hid_t f, const char *path);

/* What an existing file is: -1 it cannot be read (absent), 0 not HDF5, 1 HDF5; for HDF5
 * its root attribute "format" (empty when absent) goes to format. */
int h5_file_format(const char *path, char *format, size_t size);

#endif

/* How HDF5 stores a jet file's datasets, decided from what HDF5 says of them, for the
 * dense X_jet (jetfile.c) and the sparse X_jet's arrays (sparsefile.c) alike: filters
 * this library cannot decode and missing external raw files are refused with a message
 * naming the file and the dataset; virtual datasets are opened for reads by each rank
 * alone (MPI-IO cannot read them); the raw-read fast path (pread at HDF5's addresses)
 * is taken only where the bytes lie, unfiltered and little-endian, in one HDF5 file,
 * which may be another file behind an external link; and that raw read itself
 * (storage_pread), which jetfile.c and sparsefile.c both use. Internal to data/. */
#ifndef E2E_DATA_STORAGE_H
#define E2E_DATA_STORAGE_H

#include <hdf5.h>
#include <sys/stat.h>

#include "jetfile.h"

/* Opens dataset `name` (a path from the root: "X_jet", "X_jet/pos") of f's file:
 * through f->local when it is virtual, with "${ORIGIN}" as the external-file prefix
 * when its raw files are beside the HDF5 file; a filter that cannot be decoded here
 * or a missing external raw file is refused. -1 with e2e_error() naming f->path. */
hid_t storage_open_dataset(JetFile *f, const char *name);

/* Why raw reads cannot serve a dataset of this creation property list and byte order
 * (little: its elements are little-endian), for e2e-data info; NULL when they can. */
const char *storage_raw_refusal(hid_t dcpl, int little);

/* The file that holds dataset d's bytes (another file behind an external link) into
 * name, and that file's user block (chunk addresses of HDF5 1.10 are relative to it).
 * name is left empty when HDF5 does not tell. */
void storage_file_of(hid_t d, char *name, size_t size, long long *userblock);

/* For raw reads of dataset d: f->data_path is the file holding its bytes, *st that
 * file's status, f->fd open on it; *userblock as storage_file_of. 0 or -1. */
int storage_open_data_file(JetFile *f, hid_t d, struct stat *st, long long *userblock);

/* len bytes at file offset off of f->data_path into buf, with pread on f->fd (raw
 * reads: thread-safe, no HDF5, no MPI); a short file or a read error names f->path. */
int storage_pread(const JetFile *f, void *buf, long long len, long long off);

#endif

/* The sparse layout of a jet file (data/format/FORMAT.md, format version 2: X_jet is a group
 * of offsets, counts, pos and value): open and check it, read jets' entries (raw pread
 * without HDF5, HDF5 reads, or the rank's memory cache), and load that cache. Internal
 * to data/; messages name the file and the jet. */
#ifndef E2E_DATA_SPARSEFILE_H
#define E2E_DATA_SPARSEFILE_H

#include <hdf5.h>
#include <stdint.h>

#include "jetfile.h"
#include "sparse.h"

/* Where the elements of an unfiltered 1-D dataset lie in the file (raw reads). */
typedef struct {
    int esize;              /* bytes an element */
    long long chunk;        /* elements a chunk; 0: contiguous */
    long long *chunk_addr;  /* chunked: the file offset of each chunk */
    long long contig_addr;  /* contiguous: the file offset of element 0 */
} RawArray;

struct SparseFile {
    SparseGeom g;
    long long nnz;            /* entries in the file */
    long long *offsets;       /* [n + 1]: jet i's entries are [offsets[i], offsets[i+1]) */
    uint32_t *counts;         /* [n][C]: entries of each plane */
    hid_t group, pos, value;  /* X_jet and its entry arrays (HDF5 reads) */
    hid_t value_type;         /* the memory type of values: float32, or the float16 type */
    RawArray pos_raw, value_raw;
    /* the memory cache (sparsefile_cache_load): rows held, increasing, and where each
     * one's entries start in the cache's arrays */
    long long n_cached;
    long long *cached, *cache_at;
    char *cache_pos, *cache_value;
};

/* f's file is open and X_jet is a group: checks the layout (shape, dtypes, offsets
 * that start at 0 and never decrease, counts that add up to the offsets, arrays as
 * long as the offsets say, storage written and inside the file; the arrays opened as
 * their storage asks, storage.h) and fills f (n, c, h, w, dtype_bytes = the values'
 * width, raw with fd and data_path, storage, filters, sparse). Local result. */
int sparsefile_open(JetFile *f);
void sparsefile_close(struct SparseFile *s);

/* entries of file row r */
static inline long long sparsefile_row_entries(const struct SparseFile *s, long long r) {
    return s->offsets[r + 1] - s->offsets[r];
}
/* entries of file rows rows[0..n) */
long long sparsefile_entries(const JetFile *f, const long long *rows, long long n);

/* The entries of file rows rows[0..n) (any order) into pos and value, one row after
 * the other, each row's positions checked (sparse_check: a message naming the file,
 * the jet and the channel). From the cache where it holds the rows, else with raw
 * reads (one pread an array for each run of consecutive rows; thread-safe, no MPI, no
 * HDF5) or HDF5 reads with dxpl (f->raw == 0). */
int sparsefile_read(const JetFile *f, const long long *rows, long long n, void *pos, void *value,
                    hid_t dxpl);

/* The cache's size for file rows rows[0..n) (increasing), in bytes. */
long long sparsefile_cache_bytes(const JetFile *f, const long long *rows, long long n);
/* Reads file rows rows[0..n) (increasing) into memory, checked; later reads of them
 * come from there. Local result. */
int sparsefile_cache_load(JetFile *f, const long long *rows, long long n, hid_t dxpl);

#endif

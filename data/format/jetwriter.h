/* Writing one jet file (data/format/FORMAT.md) under MPI: every rank writes its own rows, in
 * rounds, dense (X_jet a dataset chunked along N, format version 1) or sparse (X_jet a
 * group, format version 2). e2e-synth (synthfile.c) and e2e-data convert (convert.c)
 * write through it. The file is written under a temporary name in the output's folder
 * and renamed over the output only when complete; after a failure nothing is left.
 *
 * No HDF5 call is collective: rank 0 alone makes the file's structure (HDF5's POSIX
 * driver; every dataset's storage allocated when it is made) and every rank writes its
 * rows' bytes with pwrite at the addresses rank 0 found. A collective HDF5 call cannot
 * be left by one rank whose write fails (MPI-IO's two-phase writes and the metadata
 * cache's synchronisation wait for every rank): a failure of one rank (a full disk, a
 * quota, an I/O error, a refused permission) then hung the others inside it. Here the
 * ranks meet only at agreements. Every call below is collective in that sense and ends
 * in one: 0 on every rank, or -1 on every rank with the lowest failing rank's message
 * (e2e_error()). */
#ifndef E2E_DATA_JETWRITER_H
#define E2E_DATA_JETWRITER_H

#include <hdf5.h>
#include <mpi.h>

typedef struct {
    const char *name;  /* a per-jet (N,) dataset: m, pt, ieta, iphi, ... */
    hid_t type;        /* its file type; the rows given to jetwriter_write are in it too */
} JetColumn;

typedef struct {
    const char *path;
    long long n;             /* jets */
    int c, h, w;
    int dtype_bytes;         /* 4: float32, 2: float16 */
    int sparse;              /* 0: dense, 1: sparse */
    long long chunk;         /* dense: rows a chunk of X_jet (0: jet_default_chunk) */
    long long sparse_entries; /* sparse: the entries the caller expects (an estimate from a
                                 sample of jets), for the free-space check; 0: unknown */
    int n_columns;
    const JetColumn *columns;
} JetWriterSpec;

typedef struct JetWriter JetWriter;

/* rows per chunk: about 4 MiB, and at least 64 chunks in the file */
long long jet_default_chunk(long long samples, long long row_bytes);

/* Creates the file (under its temporary name) and its datasets. */
int jetwriter_open(JetWriter **out, const JetWriterSpec *spec, MPI_Comm comm);
/* Rounds every rank takes part in, and the rows [*first, *first + *n) this rank writes
 * in round r (*n may be 0). The rows of a round are consecutive over the ranks (rank
 * order), so a file is the same whatever the number of ranks that wrote it. */
long long jetwriter_rounds(const JetWriter *w);
void jetwriter_round(const JetWriter *w, long long r, long long *first, long long *n);
/* Round r's rows: images as stored (n x C x H x W of dtype_bytes: float32, or binary16
 * bits) and cols[k] the n values of column k in its file type. */
int jetwriter_write(JetWriter *w, long long first, long long n, const void *images, const void *const *cols);
/* Rank 0: the open file (attributes), and column k's dataset (its attributes); -1 on
 * the other ranks: rank 0 writes attributes alone, then the ranks agree. */
hid_t jetwriter_file(const JetWriter *w);
hid_t jetwriter_column(const JetWriter *w, int k);
/* After the last round: the layout's own attributes (format, format_version; for the
 * sparse layout its last offset, shape and layout). The caller adds its attributes. */
int jetwriter_finish(JetWriter *w);
/* Closes (every rank syncs its writes; rank 0 closes the HDF5 file); with rc == 0 (an
 * agreed result: the same on every rank) renames the file over spec.path, else removes
 * it. Returns the agreed result. */
int jetwriter_close(JetWriter *w, int rc);

#endif

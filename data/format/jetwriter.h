/* Writing one jet file (data/format/FORMAT.md) under MPI: every rank writes its own rows, in
 * collective rounds, dense (X_jet a dataset chunked along N, format version 1) or
 * sparse (X_jet a group, format version 2). e2e-synth (synthfile.c) and e2e-data
 * convert (convert.c) write through it. The file is written under a temporary name in
 * the output's folder and renamed over the output only when complete; after a failure
 * nothing is left. Every call is collective and ends in an agreement: 0 on every rank,
 * or -1 on every rank with the first failing rank's message (e2e_error()). */
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
/* The open file (attributes), and column k's dataset (its attributes). */
hid_t jetwriter_file(const JetWriter *w);
hid_t jetwriter_column(const JetWriter *w, int k);
/* After the last round: the layout's own attributes (format, format_version; for the
 * sparse layout its last offset, shape and layout). The caller adds its attributes. */
int jetwriter_finish(JetWriter *w);
/* Closes; with rc == 0 on every rank renames the file over spec.path, else removes
 * it. Returns the agreed result. */
int jetwriter_close(JetWriter *w, int rc);

#endif

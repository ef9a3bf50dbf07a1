/* The files of a dataset as one sequence of rows (the files concatenated in list order)
 * and reading rows from them: dense rows raw or through HDF5, rows of sparse files as
 * their entries; the NaN policy's refusal, naming the file and the row. Internal to the
 * reader (data/README.md: I/O, sparse files, NaN and Inf). */
#ifndef E2E_DATA_ROWS_H
#define E2E_DATA_ROWS_H

#include <hdf5.h>
#include <mpi.h>

#include "jetfile.h"

typedef struct {
    const char *path;      /* the dataset (a file or a list of files), for messages */
    JetFile *file;         /* the n open files, in list order */
    int n;
    long long *start;      /* [n + 1]: each file's first dataset row; start[n] = N */
    long long row_floats;  /* values an image holds: c * h * w */
    int io;                /* DataIo (dataset.h) */
    hid_t dxpl_ind;        /* independent reads: batches, the memory cache */
} RowFiles;

/* Collective over comm: the file list resolved, every file seen by every rank, then
 * opened with the MPI-IO driver and checked (the same image shape and channel names in
 * every file). Agreed: every rank 0 or -1 with one message. */
int rows_open(RowFiles *rf, const char *path, int io, MPI_Comm comm);
void rows_close(RowFiles *rf);

/* the file that holds dataset row `row` */
int rows_file_of(const RowFiles *rf, long long row);
/* 1: f's rows are read with pread (its layout allows it and io is DATA_IO_AUTO) */
int rows_raw(const RowFiles *rf, const JetFile *f);
/* how many of rows[0..n), from the first on, lie in the first one's file */
long long rows_same_file(const RowFiles *rf, const long long *rows, long long n);
/* the length of the run of consecutive rows at rows[0], at most max */
long long rows_run_length(const long long *rows, long long n, long long max);

/* Dense dataset rows rows[0..n) into x (float32, in order), raw or through HDF5 with
 * dxpl; stage holds float16 rows before their decoding, and with x == NULL they stay
 * there undecoded (row i at stage + i rows). lrows: scratch for n file rows. */
int rows_read(const RowFiles *rf, const long long *rows, long long n, float *x, void *stage, long long *lrows,
              hid_t dxpl);
/* Rows rows[0..n) of one sparse file: their file rows into lrows, their entries into
 * pos and value (sparsefile_read). The file, or NULL on failure. */
const JetFile *rows_read_sparse(const RowFiles *rf, const long long *rows, long long n, long long *lrows, char *pos,
                                char *value);

/* The NaN policy: a row holding `bad` non-finite values is refused, naming its file
 * and its row there. Returns -1. */
int rows_reject_nonfinite(const RowFiles *rf, long long row, long long bad);
/* non-finite values among e stored values of value_bytes bytes each (4 or 2) */
long long values_nonfinite(const void *v, long long e, int value_bytes);
/* 1 when e stored values are all zero (of either sign): the image is empty */
int values_all_zero(const void *v, long long e, int value_bytes);

#endif

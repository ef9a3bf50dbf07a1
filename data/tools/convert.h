/* e2e-data convert's engine: a jet file into another layout (dense <-> sparse) or
 * dtype, every rank reading and writing its own rows of the one output (jetwriter.h).
 * The images, every per-jet (N,) dataset and every attribute are carried over; float32
 * -> float16 rounds to nearest even, every other way is exact (dense -> sparse ->
 * dense gives the same bytes). */
#ifndef E2E_DATA_CONVERT_H
#define E2E_DATA_CONVERT_H

#include <mpi.h>

typedef struct {
    const char *in, *out;    /* one jet file each; out is replaced (never in) */
    int sparse;              /* the output's layout: 0 dense, 1 sparse */
    int dtype_bytes;         /* the output's: 4 float32, 2 float16, 0 as the input */
    long long chunk;         /* dense output: rows a chunk (0: about 4 MiB, >= 64 chunks) */
    long long first, count;  /* the input rows [first, first + count) (count 0: to the end) */
    const char *command;     /* recorded in the output's command attribute (may be NULL) */
} ConvertOptions;

void convert_defaults(ConvertOptions *o);
/* Collective over comm: 0, or -1 on every rank with one message (e2e_error()). */
int data_convert(const ConvertOptions *o, MPI_Comm comm);

#endif

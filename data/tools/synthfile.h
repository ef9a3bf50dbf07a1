/* e2e-synth's engine: writes a synthetic jet file in the format of data/format/FORMAT.md,
 * for the mass regression or, labelled, for a classifier (column y), every rank
 * generating and writing its own slice of ONE file (data/format/jetwriter.h).
 * Jet i depends only on (seed, i): the data is the same whatever the number of ranks. */
#ifndef E2E_DATA_SYNTHFILE_H
#define E2E_DATA_SYNTHFILE_H

#include <mpi.h>
#include <stdint.h>

typedef struct {
    const char *out;
    long long samples;
    uint64_t seed;
    int size, channels;
    int dtype_bytes;    /* 4: float32, 2: float16 */
    int sparse;         /* 0: dense X_jet, 1: the sparse layout (format version 2) */
    long long chunk;    /* dense X_jet rows per chunk; 0: jet_default_chunk */
    double pixel_size;
    const char *command; /* the options, recorded in the file (may be NULL) */
    int classify;        /* 1: labelled top (1) and QCD (0) jets, the label in column y (uint8) */
    double signal_fraction, overlap; /* classify: synth.h's SynthConfig */
} SynthFileOptions;

void synth_file_defaults(SynthFileOptions *o);
/* Collective over comm. 0, or -1 on every rank with one message (e2e_error()). */
int synth_write_file(const SynthFileOptions *o, MPI_Comm comm);

#endif

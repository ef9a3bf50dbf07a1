/* A synthetic jet file for tests under mpirun (collective): e2e-synth's defaults but
 * the sizes given (chunk 0: the default chunking); the job is aborted when it cannot be
 * written. */
#ifndef E2E_TESTS_SYNTH_FILE_H
#define E2E_TESTS_SYNTH_FILE_H

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>

#include "error.h"
#include "synthfile.h"

static inline void synth_file_or_abort(const char *path, long long samples, int size, int channels,
                                       int dtype_bytes, long long chunk, uint64_t seed) {
    SynthFileOptions so;
    synth_file_defaults(&so);
    so.out = path;
    so.samples = samples;
    so.size = size;
    so.channels = channels;
    so.dtype_bytes = dtype_bytes;
    so.chunk = chunk;
    so.seed = seed;
    if (synth_write_file(&so, MPI_COMM_WORLD)) {
        fprintf(stderr, "cannot write %s: %s\n", path, e2e_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
}

#endif

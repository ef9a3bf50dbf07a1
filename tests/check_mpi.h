/* check.h for tests under mpirun: a scratch folder made by rank 0 and known to every
 * rank, and a result that fails on every rank when any rank failed a check. */
#ifndef E2E_TESTS_CHECK_MPI_H
#define E2E_TESTS_CHECK_MPI_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"

/* mkdtemp("/tmp/<prefix>_XXXXXX") on rank 0, broadcast; aborts the job on failure */
static inline void check_mpi_tmpdir(char *dir, int len, const char *prefix) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
        snprintf(dir, (size_t)len, "/tmp/%s_XXXXXX", prefix);
        if (!mkdtemp(dir)) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    MPI_Bcast(dir, len, MPI_CHAR, 0, MPI_COMM_WORLD);
}

/* Collective: removes dir (rank 0), prints this rank's tally, finalizes MPI, and gives
 * the exit code: 1 on every rank if any rank failed a check. */
static inline int check_mpi_finish(const char *name, const char *dir) {
    int rank, nranks, any;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &nranks);
    MPI_Barrier(MPI_COMM_WORLD);
    if (rank == 0 && dir && dir[0]) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    }
    MPI_Allreduce(&check_failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    char label[128];
    snprintf(label, sizeof label, "%s (rank %d of %d)", name, rank, nranks);
    int rc = check_main_result(label);
    MPI_Finalize();
    return any ? 1 : rc;
}

#endif

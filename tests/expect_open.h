/* For reader tests under mpirun: dataset_open must fail on every rank, without a hang
 * (alarm), with the same message on every rank, holding each of two needles. */
#ifndef E2E_TESTS_EXPECT_OPEN_H
#define E2E_TESTS_EXPECT_OPEN_H

#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "dataset.h"

static inline void expect_open_fails(const char *what, DatasetOptions o, const char *n1, const char *n2) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    Dataset *d = NULL;
    alarm(60);
    int rc = dataset_open(&d, &o);
    alarm(0);
    char mine[E2E_ERROR_LEN], first[E2E_ERROR_LEN];
    snprintf(mine, sizeof mine, "%s", e2e_error());
    memcpy(first, mine, sizeof first);
    MPI_Bcast(first, sizeof first, MPI_CHAR, 0, MPI_COMM_WORLD);
    int failed = rc == -1 && d == NULL, all;
    MPI_Allreduce(&failed, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    CHECK(all, "%s: dataset_open did not fail on every rank (here rc %d)", what, rc);
    CHECK(!strcmp(mine, first), "%s: rank %d says '%s', rank 0 says '%s'", what, rank, mine, first);
    CHECK(strstr(mine, n1) && strstr(mine, n2), "%s: message '%s' lacks '%s' or '%s'", what, mine, n1, n2);
    if (rank == 0) printf("%-26s -> %s\n", what, mine);
    if (d) dataset_close(d);
}

#endif

/* The agreement point (agree.h): one MPI_Allreduce of the flags and the lowest failing
 * rank, one of the sums, and a broadcast of the failing rank's message. */
#include "agree.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#define AGREE_FLAGS (1 + AGREE_USER_FLAGS)

int mpi_agree(MPI_Comm comm, int flags, const char *message, const double *values, int n_values,
              Agreement *out) {
    memset(out, 0, sizeof *out);
    out->error_rank = -1;
    if (n_values < 0 || n_values > AGREE_MAX_VALUES)
        return e2e_fail("agreement: %d values, at most %d", n_values, AGREE_MAX_VALUES);
    if (flags < 0 || flags >= (1 << AGREE_FLAGS))
        return e2e_fail("agreement: flags 0x%x beyond the %d known", (unsigned)flags, AGREE_FLAGS);
    int rank;
    MPI_Comm_rank(comm, &rank);
    /* each flag as its own int under MPI_MAX (= OR), and -rank of a failing rank so
     * that the max is minus the lowest failing rank */
    int v[AGREE_FLAGS + 1];
    for (int b = 0; b < AGREE_FLAGS; b++) v[b] = (flags >> b) & 1;
    v[AGREE_FLAGS] = (flags & AGREE_ERROR) ? -rank : INT_MIN;
    MPI_Allreduce(MPI_IN_PLACE, v, AGREE_FLAGS + 1, MPI_INT, MPI_MAX, comm);
    for (int b = 0; b < AGREE_FLAGS; b++) out->flags |= v[b] << b;
    out->error_rank = v[0] ? -v[AGREE_FLAGS] : -1;
    if (n_values > 0) {
        memcpy(out->sum, values, sizeof(double) * n_values);
        MPI_Allreduce(MPI_IN_PLACE, out->sum, n_values, MPI_DOUBLE, MPI_SUM, comm);
    }
    if (v[0]) {
        if (rank == out->error_rank)
            snprintf(out->message, sizeof out->message, "%s", message ? message : "unknown error");
        MPI_Bcast(out->message, sizeof out->message, MPI_CHAR, out->error_rank, comm);
    }
    return 0;
}

int agree_fail_together(MPI_Comm comm, int rc) {
    Agreement a;
    mpi_agree(comm, rc ? AGREE_ERROR : 0, e2e_error(), NULL, 0, &a);
    return (a.flags & AGREE_ERROR) ? e2e_fail("%s", a.message) : 0;
}

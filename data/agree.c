#include "agree.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "data_error.h"

int mpi_agree(MPI_Comm comm, int flags, const char *message, const double *values, int n_values,
              Agreement *out) {
    memset(out, 0, sizeof *out);
    out->error_rank = -1;
    if (n_values < 0 || n_values > AGREE_MAX_VALUES)
        return data_fail("agreement: %d values, at most %d", n_values, AGREE_MAX_VALUES);
    int rank;
    MPI_Comm_rank(comm, &rank);
    /* each flag as its own int under MPI_MAX (= OR), and -rank of a failing rank so
     * that the max is minus the lowest failing rank */
    int v[4] = {!!(flags & AGREE_ERROR), !!(flags & AGREE_STOP), !!(flags & AGREE_NONFINITE),
                (flags & AGREE_ERROR) ? -rank : INT_MIN};
    MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_INT, MPI_MAX, comm);
    out->flags = (v[0] ? AGREE_ERROR : 0) | (v[1] ? AGREE_STOP : 0) | (v[2] ? AGREE_NONFINITE : 0);
    out->error_rank = v[0] ? -v[3] : -1;
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

int data_agree(MPI_Comm comm, int rc) {
    Agreement a;
    mpi_agree(comm, rc ? AGREE_ERROR : 0, data_error(), NULL, 0, &a);
    return (a.flags & AGREE_ERROR) ? data_fail("%s", a.message) : 0;
}

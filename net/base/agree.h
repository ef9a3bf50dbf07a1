/* The agreement point, the one way ranks learn of each other: one collective in which
 * every rank passes its flags, its message (when it failed) and a few numbers to sum,
 * and every rank gets the OR of the flags, the lowest failing rank with its message, and
 * the sums. A rank that failed is so known to all before any of them enters a
 * collective that it would not join. The reader and the writers of data/ agree through
 * agree_fail_together, dist/'s communicator through comm_agree (dist/comm/comm.h),
 * which adds its own flags (a stop request, a non-finite step). Needs MPI: built into
 * e2e_base_mpi, not into a net/-only build. */
#ifndef E2E_BASE_AGREE_H
#define E2E_BASE_AGREE_H

#include <mpi.h>

/* AGREE_ERROR: this rank failed, its message goes to everyone. The other bits, from
 * AGREE_FIRST_USER_FLAG to (AGREE_FIRST_USER_FLAG << (AGREE_USER_FLAGS - 1)), are the
 * caller's: each is ORed over the ranks. */
enum { AGREE_ERROR = 1, AGREE_FIRST_USER_FLAG = 2 };
#define AGREE_USER_FLAGS 6

#define AGREE_MAX_VALUES 8
#define AGREE_MESSAGE_LEN 1024

typedef struct {
    int flags;                      /* OR over ranks */
    int error_rank;                 /* lowest rank with AGREE_ERROR, or -1 */
    char message[AGREE_MESSAGE_LEN]; /* error_rank's message (on every rank) */
    double sum[AGREE_MAX_VALUES];   /* sum over ranks of the values passed in */
} Agreement;

/* Collective over comm: this rank's flags, its message (read when AGREE_ERROR is set;
 * NULL reads as "unknown error") and n_values (0 to AGREE_MAX_VALUES) values to sum.
 * Fills *out on every rank and returns 0; -1 (e2e_error()) for a bad n_values or flag,
 * which every rank passes alike. */
int mpi_agree(MPI_Comm comm, int flags, const char *message, const double *values, int n_values,
              Agreement *out);

/* rc is this rank's result (0, or -1 with its message in e2e_error()). Returns 0 on
 * every rank when every rank succeeded; otherwise -1 on every rank, with the lowest
 * failing rank's message in e2e_error(). */
int agree_fail_together(MPI_Comm comm, int rc);

#endif

/* The agreement point: one collective in which every rank passes its own flags, its
 * message (when it failed) and a few numbers to sum, and every rank gets the OR of the
 * flags, the lowest failing rank with its message, and the sums. A rank that failed is
 * so known to all before any of them enters a collective that it would not join.
 *
 * data/'s reader and writer agree through it (data_agree), and so does dist/'s
 * communicator (comm_agree builds on mpi_agree): one implementation for the whole
 * program. It lives in data/ because data/ may use MPI but not dist/. */
#ifndef E2E_DATA_AGREE_H
#define E2E_DATA_AGREE_H

#include <mpi.h>

/* Flags that an agreement point ORs over the ranks. */
enum {
    AGREE_ERROR = 1,       /* this rank failed: its message goes to everyone */
    AGREE_STOP = 2,        /* a stop was requested (SIGUSR1/SIGTERM) */
    AGREE_NONFINITE = 4,   /* this rank's loss or gradients are NaN/Inf */
};

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
 * Fills *out on every rank and returns 0; -1 (data_error()) for a bad n_values, which
 * every rank passes alike. */
int mpi_agree(MPI_Comm comm, int flags, const char *message, const double *values, int n_values,
              Agreement *out);

/* data/'s use of it: rc is this rank's result (0, or -1 with its message in
 * data_error()). Returns 0 on every rank when every rank succeeded; otherwise -1 on
 * every rank, with the lowest failing rank's message in data_error(). */
int data_agree(MPI_Comm comm, int rc);

#endif

/* The communicator: MPI bootstrap, one GPU per local rank, gradient averaging (NCCL on
 * GPUs, MPI on CPUs), parameter broadcast, and the agreement points where ranks learn
 * of each other's errors and stop requests before any of them enters a collective
 * that the others would never join. */
#ifndef E2E_DIST_COMM_H
#define E2E_DIST_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "agree.h"
#include "ops.h"

typedef struct {
    MPI_Comm world;          /* a dup of MPI_COMM_WORLD, ours alone */
    int rank, size;
    int local_rank, local_size;  /* within the node: MPI_Comm_split_type(SHARED) */
    int thread_level;        /* what MPI_Init_thread provided */
    NetOps *ops;             /* the backend whose buffers are reduced */
    void *nccl;              /* NCCL communicator when the backend has a stream */
    float *host;             /* staging for MPI reductions of device buffers */
    size_t host_n;
    long allreduces;         /* gradient all-reduces done (comm_allreduce_mean on 2 or
                                more ranks; 1 rank has none) */
} Comm;

/* MPI_Init_thread(MPI_THREAD_MULTIPLE) (the data reader's prefetch thread does I/O),
 * then ranks and local ranks. Call once, first thing in main. */
int comm_init(Comm *c, int *argc, char ***argv);
/* Frees the communicators and calls MPI_Finalize. */
void comm_finalize(Comm *c);

/* Gradients are reduced in the backend's memory: with NCCL when the backend has a
 * stream (built with CUDA) and there are several ranks, else with MPI (staged through
 * host memory when the backend's memory is not the host's). Collective. */
int comm_attach(Comm *c, NetOps *ops);
/* buf (backend memory, n floats) = mean over ranks of buf, counted in c->allreduces.
 * Collective. */
int comm_allreduce_mean(Comm *c, float *buf, size_t n);
/* buf (backend memory) = rank 0's buf. Collective. */
int comm_broadcast(Comm *c, float *buf, size_t n);

/* ---- the control plane: agreement points, rank 0's work, broadcasts ----
 * Every decision that one rank takes or every rank must share goes through these, so
 * that a failure on any rank reaches every rank, with its message, before any of them
 * enters a collective the others would not join. The agreement itself is one
 * (net/base/agree.h, the reader's too); the flags of the training loop are these: */
enum {
    AGREE_STOP = AGREE_FIRST_USER_FLAG,             /* a stop was requested (SIGUSR1/SIGTERM) */
    AGREE_NONFINITE = AGREE_FIRST_USER_FLAG << 1,   /* this rank's loss or gradients are NaN/Inf */
};

/* The full agreement point (the training step's): this rank's flags (AGREE_ERROR means
 * e2e_error() holds its reason) and up to AGREE_MAX_VALUES values to sum (losses,
 * counts). Returns 0 with *out filled on every rank; when any rank set AGREE_ERROR,
 * -1 on every rank with the lowest failing rank's message in e2e_error(), prefixed
 * "rank N: " when there are several ranks. */
int comm_agree(Comm *c, int flags, const double *values, int n_values, Agreement *out);

/* This rank's outcome of its work: failed != 0 means e2e_error() holds the reason. 0 on
 * every rank, or -1 on every rank with the first failing rank's message (as comm_agree).
 * Work that rank 0 alone does (a file, a checkpoint) is written straight out:
 *     int failed = c->rank == 0 && write_the_file(...) != 0;
 *     if (comm_fail_together(c, failed)) return -1;  */
int comm_fail_together(Comm *c, int failed);

/* Broadcasts from rank 0 of host memory: a value, a flat struct, a string of at most
 * size bytes (NUL-terminated on every rank), n floats. Collective. */
void comm_bcast_int(Comm *c, int *v);
void comm_bcast_bytes(Comm *c, void *p, size_t bytes);
void comm_bcast_string(Comm *c, char *s, size_t size);
void comm_bcast_floats(Comm *c, float *p, size_t n);

/* 1 when every rank holds bitwise the same n floats of backend memory (their FNV-1a
 * hashes, net/base/hash.h, compared over ranks); collective. */
int comm_replicas_identical(Comm *c, const float *buf, size_t n, int *identical);

/* ---- measurements (dist/run/timeline.h) ---- */

/* Every rank's `bytes` bytes of host memory, gathered on rank 0 in rank order: there
 * *all (malloc'd) holds them one after another and (*counts)[r] (malloc'd) is rank r's
 * byte count; elsewhere both are NULL. 0, or -1 on every rank (rank 0 out of memory,
 * or 2 GB or more in all). Collective. */
int comm_gather_bytes(Comm *c, const void *mine, size_t bytes, char **all, size_t **counts);
/* What to add to this rank's clock() to read rank 0's: 0 on rank 0 and on the ranks of
 * its node (one monotonic clock per node, exactly); on other nodes the estimate below.
 * Collective. */
double comm_clock_offset(Comm *c, double (*clock)(void));
/* The estimate, whatever the node: from the shortest of 8 round trips to rank 0, the
 * midpoint of rank 0's send and receive against this rank's reading (off by at most
 * half that round trip: some microseconds over a cluster network). Collective. */
double comm_clock_offset_estimate(Comm *c, double (*clock)(void));

#endif

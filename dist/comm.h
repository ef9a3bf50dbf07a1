/* The communicator: MPI bootstrap, one GPU per local rank, gradient averaging (NCCL on
 * GPUs, MPI on CPUs), parameter broadcast, and the agreement points where ranks learn
 * of each other's errors and stop requests before any of them enters a collective
 * that the others would never join. */
#ifndef E2E_DIST_COMM_H
#define E2E_DIST_COMM_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

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
} Comm;

/* MPI_Init_thread(MPI_THREAD_MULTIPLE) (the data reader's prefetch thread does I/O),
 * then ranks and local ranks. Call once, first thing in main. */
int comm_init(Comm *c, int *argc, char ***argv);
/* Frees the communicators and calls MPI_Finalize. */
void comm_finalize(Comm *c);

/* Gradients are reduced in the backend's memory: with NCCL when the backend has a
 * stream (built with CUDA), else with MPI (staged through host memory when the
 * backend's memory is not the host's). Collective. */
int comm_attach(Comm *c, NetOps *ops);
/* buf (backend memory, n floats) = mean over ranks of buf. Collective. */
int comm_allreduce_mean(Comm *c, float *buf, size_t n);
/* buf (backend memory) = rank 0's buf. Collective. */
int comm_broadcast(Comm *c, float *buf, size_t n);

/* Flags that an agreement point ORs over the ranks. */
enum {
    AGREE_ERROR = 1,       /* this rank failed: its message goes to everyone */
    AGREE_STOP = 2,        /* a stop was requested (SIGUSR1/SIGTERM) */
    AGREE_NONFINITE = 4,   /* this rank's loss or gradients are NaN/Inf */
};

typedef struct {
    int flags;             /* OR over ranks */
    int error_rank;        /* lowest rank with AGREE_ERROR, or -1 */
    char message[512];     /* error_rank's message (on every rank) */
    double sum[8];         /* sum over ranks of the values passed in */
} Agreement;

/* A collective agreement point: every rank passes its own flags, message (used when
 * AGREE_ERROR is set) and up to 8 values to sum (losses, counts); every rank gets the
 * OR of the flags, the first failing rank's message, and the sums (at most 8). */
int comm_agree(Comm *c, int flags, const char *message, const double *values, int n_values,
               Agreement *out);

/* 1 when every rank holds bitwise the same n floats of backend memory (hash compared
 * over ranks); collective. */
int comm_replicas_identical(Comm *c, const float *buf, size_t n, int *identical);
/* FNV-1a over bytes: the replica check's hash, also stored in checkpoints. */
uint64_t comm_hash(const void *p, size_t bytes);

/* NCCL part (comm_nccl.c when built with CUDA, comm_nccl_none.c otherwise). */
int comm_nccl_available(void);
int comm_nccl_init(Comm *c);
int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n);
int comm_nccl_broadcast(Comm *c, float *buf, size_t n);
void comm_nccl_free(Comm *c);

#endif

/* The communicator's NCCL part (comm_nccl.c with CUDA, comm_nccl_none.c without): the
 * NCCL calls and their waits, nothing of MPI. comm.c alone calls it and does the
 * agreements around it (rank 0 makes the id, every rank sets up, all fail together). */
#ifndef E2E_DIST_COMM_NCCL_H
#define E2E_DIST_COMM_NCCL_H

#include "comm.h"

/* ncclUniqueId's bytes (NCCL_UNIQUE_ID_BYTES; comm_nccl.c checks it), as comm.c
 * broadcasts them without nccl.h */
#define COMM_NCCL_ID_BYTES 128
typedef struct {
    char bytes[COMM_NCCL_ID_BYTES];
} CommNcclId;

/* 1 when built with NCCL. */
int comm_nccl_available(void);
/* Rank 0: the communicator's id. 0, or -1 (e2e_error()). */
int comm_nccl_make_id(CommNcclId *id);
/* Starts this rank's set-up (non-blocking: it goes on in NCCL's background) into
 * c->nccl. 0, or -1 (e2e_error()) when the call failed at once. */
int comm_nccl_start(Comm *c, const CommNcclId *id);
/* Waits for the set-up to finish (polled, with a time limit). 0, or -1 (e2e_error()). */
int comm_nccl_wait_ready(Comm *c);
/* Aborts c->nccl (if any) and clears it. */
void comm_nccl_abort(Comm *c);
/* On the backend's stream, waited for: 0, or -1 (e2e_error()). */
int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n);
int comm_nccl_broadcast(Comm *c, float *buf, size_t n);
/* Finalizes and destroys c->nccl (aborts it when it cannot finish). */
void comm_nccl_free(Comm *c);

#endif

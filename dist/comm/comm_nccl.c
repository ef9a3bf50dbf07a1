/* NCCL on the GPU path: one communicator per job (its id broadcast over MPI), the
 * all-reduce and broadcast enqueued on the backend's stream, and completion awaited
 * while polling ncclCommGetAsyncError, so that a failed peer aborts the job instead of
 * hanging it. The communicator is non-blocking (config.blocking = 0): no NCCL call waits
 * inside NCCL (connections are made lazily, at the first collective, since NCCL 2.22),
 * so every wait is one of ours, with an error check and a time limit. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "comm.h"
#include "error.h"

/* A stuck collective or set-up with no error from NCCL is given up after this long. */
#define NCCL_TIMEOUT_S 600.0

int comm_nccl_available(void) { return 1; }

static cudaStream_t stream_of(Comm *c) { return (cudaStream_t)c->ops->stream(c->ops->ctx); }

/* Polling, without taking a whole core from the reader's threads. */
static void pause_briefly(void) {
    struct timespec t = {0, 20000};  /* 20 us: small beside a training step */
    nanosleep(&t, NULL);
}

static int give_up(Comm *c, const char *what, ncclResult_t r) {
    if (c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
    if (r == ncclInProgress)
        return e2e_fail("%s on rank %d did not finish in %.0f s", what, c->rank, NCCL_TIMEOUT_S);
    return e2e_fail("%s failed on rank %d: %s (%s; a peer may have died)", what, c->rank,
                    ncclGetErrorString(r), ncclGetLastError(NULL));
}

/* Polls until the work is done: with a stream, until the stream is idle; without, until
 * the communicator has no call in progress (its set-up, or the enqueueing of a
 * collective). Any asynchronous error, or the time limit, aborts the communicator: 0,
 * or -1. */
static int wait_for(Comm *c, const char *what, cudaStream_t stream) {
    double t0 = monotonic_seconds();
    for (;;) {
        if (stream) {
            cudaError_t q = cudaStreamQuery(stream);
            if (q == cudaSuccess) return 0;
            if (q != cudaErrorNotReady) return e2e_fail("%s: CUDA error %s", what, cudaGetErrorString(q));
        }
        ncclResult_t state;
        ncclResult_t r = ncclCommGetAsyncError((ncclComm_t)c->nccl, &state);
        if (r != ncclSuccess) return give_up(c, what, r);
        if (!stream && state == ncclSuccess) return 0;
        if (state != ncclSuccess && state != ncclInProgress) return give_up(c, what, state);
        if (monotonic_seconds() - t0 > NCCL_TIMEOUT_S) return give_up(c, what, ncclInProgress);
        pause_briefly();
    }
}

static int make_id(ncclUniqueId *id) {
    ncclResult_t r = ncclGetUniqueId(id);
    return r == ncclSuccess ? 0 : e2e_fail("NCCL: rank 0 could not make the communicator's id: %s",
                                           ncclGetErrorString(r));
}

/* Rank 0 makes the id (every rank learns whether it could) and broadcasts it. The
 * set-up then runs in NCCL's background; a rank whose call failed at once tells the
 * others before anyone waits for it, and after the wait the ranks agree again. */
int comm_nccl_init(Comm *c) {
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int failed = c->rank == 0 && make_id(&id) != 0;
    if (comm_fail_together(c, failed)) return -1;
    comm_bcast_bytes(c, &id, sizeof id);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRankConfig(&comm, c->size, id, c->rank, &config);
    int ok = r == ncclSuccess || r == ncclInProgress;
    c->nccl = comm;
    if (!ok) e2e_fail("NCCL communicator set-up failed: %s", ncclGetErrorString(r));
    if (comm_fail_together(c, !ok) == 0) {
        ok = wait_for(c, "NCCL communicator set-up", NULL) == 0;
        if (comm_fail_together(c, !ok) == 0) return 0;
    }
    if (c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
    return -1;
}

/* A collective's call may return ncclInProgress (non-blocking communicator): wait until
 * it is enqueued, then for the stream. */
static int finish(Comm *c, ncclResult_t r, const char *what) {
    if (r != ncclSuccess && r != ncclInProgress) return give_up(c, what, r);
    if (r == ncclInProgress && wait_for(c, what, NULL)) return -1;
    return wait_for(c, what, stream_of(c));
}

int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n) {
    if (!c->nccl) return e2e_fail("NCCL all-reduce on rank %d: the communicator was aborted", c->rank);
    return finish(c, ncclAllReduce(buf, buf, n, ncclFloat, ncclAvg, (ncclComm_t)c->nccl, stream_of(c)),
                  "NCCL all-reduce");
}

int comm_nccl_broadcast(Comm *c, float *buf, size_t n) {
    if (!c->nccl) return e2e_fail("NCCL broadcast on rank %d: the communicator was aborted", c->rank);
    return finish(c, ncclBroadcast(buf, buf, n, ncclFloat, 0, (ncclComm_t)c->nccl, stream_of(c)),
                  "NCCL broadcast");
}

/* A non-blocking communicator is finalized (its work flushed, polled with the time
 * limit) before it is destroyed; one that cannot finish is aborted instead. */
void comm_nccl_free(Comm *c) {
    if (!c->nccl) return;
    ncclResult_t r = ncclCommFinalize((ncclComm_t)c->nccl);
    if ((r == ncclSuccess || r == ncclInProgress) && wait_for(c, "NCCL communicator finalize", NULL) == 0)
        ncclCommDestroy((ncclComm_t)c->nccl);
    else if (c->nccl)
        ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

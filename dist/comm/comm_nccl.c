/* NCCL on the GPU path (comm_nccl.h): one communicator per job (comm.c broadcasts its id
 * over MPI and agrees around its set-up; this file calls nothing of comm.c), the
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
#include "comm_nccl.h"
#include "error.h"

_Static_assert(sizeof(ncclUniqueId) == sizeof(CommNcclId), "COMM_NCCL_ID_BYTES is not NCCL_UNIQUE_ID_BYTES");

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
    comm_nccl_abort(c);
    if (r == ncclInProgress)
        return e2e_fail("%s on rank %d did not finish in %.0f s", what, c->rank, NCCL_TIMEOUT_S);
    const char *detail = ncclGetLastError(NULL);
    if (!detail) detail = "";
    return e2e_fail("%s failed on rank %d: %s (%s%sa peer may have died)", what, c->rank, ncclGetErrorString(r),
                    detail, *detail ? "; " : "");
}

/* 1 when the stream has finished its work, 0 while it has not, -1 on a CUDA error. The
 * runtime leaves cudaErrorNotReady as this thread's last error: cleared here, as the
 * next launch check (cudaGetLastError) would take it for a failure. */
static int stream_done(cudaStream_t stream, const char *what) {
    cudaError_t q = cudaStreamQuery(stream);
    if (q == cudaSuccess) return 1;
    if (q != cudaErrorNotReady) return e2e_fail("%s: CUDA error %s", what, cudaGetErrorString(q));
    (void)cudaGetLastError();
    return 0;
}

/* Polls until the work is done: with a stream, until the stream is idle; without, until
 * the communicator has no call in progress (its set-up, or the enqueueing of a
 * collective). The communicator's asynchronous error is checked after every look at the
 * stream, the last one included (a collective that failed may still let its stream
 * finish). Any asynchronous error, or the time limit, aborts the communicator: 0, or -1. */
static int wait_for(Comm *c, const char *what, cudaStream_t stream) {
    double t0 = monotonic_seconds();
    for (;;) {
        int done = stream ? stream_done(stream, what) : 1;
        if (done < 0) return -1;
        ncclResult_t state;
        ncclResult_t r = ncclCommGetAsyncError((ncclComm_t)c->nccl, &state);
        if (r != ncclSuccess) return give_up(c, what, r);
        if (state != ncclSuccess && state != ncclInProgress) return give_up(c, what, state);
        if (done && (stream || state == ncclSuccess)) return 0;
        if (monotonic_seconds() - t0 > NCCL_TIMEOUT_S) return give_up(c, what, ncclInProgress);
        pause_briefly();
    }
}

int comm_nccl_make_id(CommNcclId *id) {
    ncclUniqueId uid;
    ncclResult_t r = ncclGetUniqueId(&uid);
    if (r != ncclSuccess)
        return e2e_fail("NCCL: rank 0 could not make the communicator's id: %s", ncclGetErrorString(r));
    memcpy(id->bytes, &uid, sizeof uid);
    return 0;
}

int comm_nccl_start(Comm *c, const CommNcclId *id) {
    ncclUniqueId uid;
    memcpy(&uid, id->bytes, sizeof uid);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRankConfig(&comm, c->size, uid, c->rank, &config);
    c->nccl = comm;
    if (r == ncclSuccess || r == ncclInProgress) return 0;
    return e2e_fail("NCCL communicator set-up failed: %s", ncclGetErrorString(r));
}

int comm_nccl_wait_ready(Comm *c) {
    if (!c->nccl) return e2e_fail("NCCL communicator set-up on rank %d: no communicator", c->rank);
    return wait_for(c, "NCCL communicator set-up", NULL);
}

void comm_nccl_abort(Comm *c) {
    if (c->nccl) ncclCommAbort((ncclComm_t)c->nccl);
    c->nccl = NULL;
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
    else
        comm_nccl_abort(c);
    c->nccl = NULL;
}

/* NCCL on the GPU path: one communicator per job (its id broadcast over MPI), the
 * all-reduce and broadcast enqueued on the backend's stream, and completion awaited
 * while polling ncclCommGetAsyncError, so that a failed peer aborts the job instead of
 * hanging it. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdio.h>
#include <time.h>

#include "comm.h"
#include "error.h"

/* A stuck collective with no error from NCCL is given up after this long. */
#define NCCL_TIMEOUT_S 600.0

#define NCCL_OK(call)                                                                        \
    do {                                                                                     \
        ncclResult_t r_ = (call);                                                            \
        if (r_ != ncclSuccess)                                                               \
            return net_fail("%s:%d: %s: %s", __FILE__, __LINE__, #call, ncclGetErrorString(r_)); \
    } while (0)

int comm_nccl_available(void) { return 1; }

static cudaStream_t stream_of(Comm *c) { return (cudaStream_t)c->ops->stream(c->ops->ctx); }

int comm_nccl_init(Comm *c) {
    ncclUniqueId id;
    if (c->rank == 0) NCCL_OK(ncclGetUniqueId(&id));
    MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, c->world);
    ncclComm_t comm;
    NCCL_OK(ncclCommInitRank(&comm, c->size, id, c->rank));
    c->nccl = comm;
    return 0;
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* Waits for the stream while watching the communicator for asynchronous errors. */
static int wait_nccl(Comm *c) {
    ncclComm_t comm = c->nccl;
    cudaStream_t s = stream_of(c);
    double t0 = seconds();
    for (;;) {
        cudaError_t q = cudaStreamQuery(s);
        if (q == cudaSuccess) return 0;
        if (q != cudaErrorNotReady)
            return net_fail("NCCL collective: CUDA error %s", cudaGetErrorString(q));
        ncclResult_t async;
        NCCL_OK(ncclCommGetAsyncError(comm, &async));
        if (async != ncclSuccess) {
            ncclCommAbort(comm);
            c->nccl = NULL;
            return net_fail("NCCL collective failed on rank %d: %s (a peer may have died)",
                            c->rank, ncclGetErrorString(async));
        }
        if (seconds() - t0 > NCCL_TIMEOUT_S) {
            ncclCommAbort(comm);
            c->nccl = NULL;
            return net_fail("NCCL collective on rank %d did not finish in %.0f s", c->rank,
                            NCCL_TIMEOUT_S);
        }
    }
}

int comm_nccl_allreduce_mean(Comm *c, float *buf, size_t n) {
    NCCL_OK(ncclAllReduce(buf, buf, n, ncclFloat, ncclAvg, (ncclComm_t)c->nccl, stream_of(c)));
    return wait_nccl(c);
}

int comm_nccl_broadcast(Comm *c, float *buf, size_t n) {
    NCCL_OK(ncclBroadcast(buf, buf, n, ncclFloat, 0, (ncclComm_t)c->nccl, stream_of(c)));
    return wait_nccl(c);
}

void comm_nccl_free(Comm *c) {
    if (c->nccl) ncclCommDestroy((ncclComm_t)c->nccl);
    c->nccl = NULL;
}

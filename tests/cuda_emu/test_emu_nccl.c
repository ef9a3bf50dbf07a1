/* The communicator's NCCL path (dist/comm/comm_nccl.c) on the emulated GPU and NCCL
 * (tests/cuda_emu/README.md), under real mpirun: with 2 and 4 ranks, comm_attach makes
 * one communicator; the gradients' mean and rank 0's broadcast arrive on every rank and
 * leave no error behind for the next kernel launch's check (cudaStreamQuery's
 * cudaErrorNotReady is not one); an all-reduce whose stream finishes but whose
 * communicator reports an asynchronous error fails on every rank with NCCL's message; a
 * set-up that fails at once or in the background fails comm_attach on every rank, and a
 * later attach works. With one rank no communicator is made at all (nothing to reduce),
 * even where its set-up would fail. */
#include <cuda_runtime_api.h>
#include <string.h>

#include "backend.h"
#include "check_mpi.h"
#include "comm.h"
#include "cuda_emu_control.h"
#include "error.h"

#define N 1000

/* every rank's h[i] = rank + i / 4 (exact in float, as are the means over 2 or 4 ranks) */
static void fill(float *h, int rank) {
    for (int i = 0; i < N; i++) h[i] = (float)rank + 0.25f * (float)(i % 64);
}

static void test_collectives(Comm *c, NetOps *g, float *buf) {
    float h[N];
    fill(h, c->rank);
    g->upload(g->ctx, buf, h, sizeof h);
    CHECK(comm_allreduce_mean(c, buf, N) == 0, "all-reduce: %s", e2e_error());
    cudaError_t last = cudaGetLastError();
    CHECK(last == cudaSuccess, "rank %d: the all-reduce left '%s' as the last CUDA error: the next launch check "
          "would end the run", c->rank, cudaGetErrorString(last));
    g->download(g->ctx, h, buf, sizeof h);
    int bad = 0;
    for (int i = 0; i < N; i++) bad += h[i] != (float)(c->size - 1) / 2.0f + 0.25f * (float)(i % 64);
    CHECK(bad == 0, "rank %d: %d of %d means wrong", c->rank, bad, N);

    fill(h, c->rank == 0 ? 7 : -1);
    g->upload(g->ctx, buf, h, sizeof h);
    CHECK(comm_broadcast(c, buf, N) == 0, "broadcast: %s", e2e_error());
    last = cudaGetLastError();
    CHECK(last == cudaSuccess, "rank %d: the broadcast left '%s' as the last CUDA error", c->rank,
          cudaGetErrorString(last));
    g->nonfinite_check(g->ctx, N, buf, buf + N);  /* the next op: its launch checks the last error */
    g->download(g->ctx, h, buf, sizeof h);
    bad = 0;
    for (int i = 0; i < N; i++) bad += h[i] != 7.0f + 0.25f * (float)(i % 64);
    CHECK(bad == 0, "rank %d: %d of %d broadcast values are not rank 0's", c->rank, bad, N);
}

/* the 2nd all-reduce of the communicator moves nothing and its stream finishes, with
 * ncclRemoteError as the communicator's asynchronous error */
static void test_async_failure(Comm *c, float *buf) {
    CHECK(cuda_emu_nccl_fail("allreduce:2") == 0, "fault injection");
    int rc = comm_allreduce_mean(c, buf, N);
    CHECK(rc == -1 && strstr(e2e_error(), "NCCL all-reduce failed") && strstr(e2e_error(), "remote process"),
          "rank %d: an all-reduce that failed asynchronously returned %d ('%s')", c->rank, rc, e2e_error());
    CHECK(c->nccl == NULL, "rank %d: the failed communicator is aborted", c->rank);
    cuda_emu_nccl_fail("");
    (void)cudaGetLastError();
}

static void test_setup_failures(Comm *c, NetOps *g, float *buf) {
    static const char *faults[] = {"init", "async-init"};
    for (int k = 0; k < 2; k++) {
        cuda_emu_nccl_fail(faults[k]);
        e2e_clear_error();
        CHECK(comm_attach(c, g) == -1 && strstr(e2e_error(), "NCCL communicator set-up") && !c->nccl,
              "rank %d: a set-up that fails (%s) fails comm_attach on every rank: '%s'", c->rank, faults[k],
              e2e_error());
    }
    cuda_emu_nccl_fail("");
    CHECK(comm_attach(c, g) == 0 && c->nccl, "rank %d: attach after the failures: %s", c->rank, e2e_error());
    test_collectives(c, g, buf);
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    BackendOptions bo = {.device = "cuda", .gpu = c.local_rank};
    NetOps *g = net_backend_create(&bo);
    CHECK(g != NULL, "rank %d: a cuda backend for local rank %d: %s", c.rank, c.local_rank, e2e_error());
    if (!g) MPI_Abort(MPI_COMM_WORLD, 1);
    float *buf = g->alloc(g->ctx, 2 * N * sizeof(float));
    long made = cuda_emu_nccl_communicators();
    if (c.size == 1) {
        cuda_emu_nccl_fail("init");  /* a set-up would fail: there must be none */
        CHECK(comm_attach(&c, g) == 0 && !c.nccl && cuda_emu_nccl_communicators() == made,
              "one rank: no NCCL communicator (%ld made): %s", cuda_emu_nccl_communicators() - made, e2e_error());
        cuda_emu_nccl_fail("");
        CHECK(comm_allreduce_mean(&c, buf, N) == 0 && comm_broadcast(&c, buf, N) == 0, "one rank: no-ops");
    } else {
        CHECK(comm_attach(&c, g) == 0 && c.nccl && cuda_emu_nccl_communicators() == made + 1,
              "rank %d: comm_attach made one NCCL communicator: %s", c.rank, e2e_error());
        test_collectives(&c, g, buf);
        test_async_failure(&c, buf);
        test_setup_failures(&c, g, buf);
    }
    g->release(g->ctx, buf);
    int any = 0;
    MPI_Allreduce(&check_failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    char label[64];
    snprintf(label, sizeof label, "test_emu_nccl (rank %d of %d)", c.rank, c.size);
    int rc = check_main_result(label);
    comm_finalize(&c);
    g->destroy(g);
    return any ? 1 : rc;
}

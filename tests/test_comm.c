/* The communicator under real mpirun (2 ranks): gradient mean, broadcast from rank 0,
 * agreement (flags OR'ed, the lowest failing rank's message on every rank, sums), the
 * replica check, node-local ranks. */
#include <string.h>

#include "check.h"
#include "comm.h"
#include "cpu/cpu_backend.h"

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    CHECK(c.size == 2, "run with mpirun -np 2 (size %d)", c.size);
    CHECK(c.thread_level == MPI_THREAD_MULTIPLE, "MPI gave thread level %d", c.thread_level);
    CHECK(c.local_size == c.size && c.local_rank == c.rank, "one node: local %d/%d vs %d/%d",
          c.local_rank, c.local_size, c.rank, c.size);
    NetOps *ops = net_cpu_create(1);
    CHECK(comm_attach(&c, ops) == 0 && c.nccl == NULL, "CPU backend must use MPI");

    enum { N = 1001 };
    float g[N];
    for (int i = 0; i < N; i++) g[i] = (float)(i + 1) * (c.rank + 1);  /* rank0: i+1, rank1: 2(i+1) */
    CHECK(comm_allreduce_mean(&c, g, N) == 0, "allreduce");
    int bad = 0;
    for (int i = 0; i < N; i++) bad += g[i] != 1.5f * (i + 1);
    CHECK(bad == 0, "mean over ranks wrong in %d places", bad);

    for (int i = 0; i < N; i++) g[i] = c.rank ? -1.0f : (float)i;
    CHECK(comm_broadcast(&c, g, N) == 0, "broadcast");
    bad = 0;
    for (int i = 0; i < N; i++) bad += g[i] != (float)i;
    CHECK(bad == 0, "broadcast from rank 0 wrong in %d places", bad);

    int same = 0;
    comm_replicas_identical(&c, g, N, &same);
    CHECK(same == 1, "identical replicas reported different");
    if (c.rank == 1) g[N - 1] += 1e-3f;
    comm_replicas_identical(&c, g, N, &same);
    CHECK(same == 0, "diverged replicas reported identical");

    Agreement a;
    double v[2] = {c.rank + 1.0, 10.0};
    comm_agree(&c, 0, NULL, v, 2, &a);
    CHECK(a.flags == 0 && a.error_rank == -1, "quiet agreement: flags %d rank %d", a.flags, a.error_rank);
    CHECK(a.sum[0] == 3.0 && a.sum[1] == 20.0, "sums %g %g", a.sum[0], a.sum[1]);
    comm_agree(&c, c.rank == 1 ? AGREE_ERROR : 0, "data.h5: NaN in X_jet row 7", NULL, 0, &a);
    CHECK(a.flags == AGREE_ERROR && a.error_rank == 1, "error on rank 1: flags %d rank %d", a.flags,
          a.error_rank);
    CHECK(strcmp(a.message, "data.h5: NaN in X_jet row 7") == 0, "message on rank %d: '%s'", c.rank,
          a.message);
    comm_agree(&c, AGREE_ERROR | (c.rank == 0 ? AGREE_STOP : 0), c.rank ? "second" : "first", NULL, 0, &a);
    CHECK(a.error_rank == 0 && strcmp(a.message, "first") == 0, "lowest failing rank wins: %d '%s'",
          a.error_rank, a.message);
    CHECK(a.flags == (AGREE_ERROR | AGREE_STOP), "flags OR'ed: %d", a.flags);
    comm_agree(&c, c.rank == 1 ? AGREE_NONFINITE : 0, NULL, NULL, 0, &a);
    CHECK(a.flags == AGREE_NONFINITE, "non-finite flag from rank 1: %d", a.flags);
    CHECK(comm_agree(&c, 0, NULL, v, 9, &a) == -1, "more than the supported values accepted");

    CHECK(comm_hash("abc", 3) == 0xe71fa2190541574bull, "FNV-1a of 'abc'");
    int rc = check_main_result(c.rank ? "test_comm (rank 1)" : "test_comm (rank 0)");
    ops->destroy(ops);
    comm_finalize(&c);
    return rc;
}

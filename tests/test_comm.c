/* The communicator under real mpirun (2 ranks): gradient mean, broadcast from rank 0,
 * the control plane (agreement: flags OR'ed, the lowest failing rank's message on every
 * rank, sums; rank 0's work with its outcome on every rank; typed broadcasts), the
 * replica check, node-local ranks; the measurements (a gather on rank 0, the clocks'
 * offset, the all-reduce count). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "comm.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "hash.h"

static double shifted_clock(void) { return MPI_Wtime() + 1000.0; }

/* The measurements' collectives: a gather of unequal parts on rank 0, the clocks'
 * offset (0 on one node; estimated, rank 1's clock 1000 s ahead, within a millisecond),
 * the all-reduce count. */
static void test_measurements(Comm *c) {
    char mine[3] = {'a', 'b', 'b'}, *all = NULL;
    size_t *counts = NULL;
    CHECK(comm_gather_bytes(c, c->rank ? mine + 1 : mine, (size_t)c->rank + 1, &all, &counts) == 0, "gather: %s",
          e2e_error());
    if (c->rank == 0)
        CHECK(all && counts && counts[0] == 1 && counts[1] == 2 && memcmp(all, "abb", 3) == 0, "gathered parts");
    else
        CHECK(!all && !counts, "rank 1 gets nothing back");
    free(all), free(counts);
    CHECK(comm_clock_offset(c, MPI_Wtime) == 0.0, "one node, one clock: offset 0 exactly");
    double off = comm_clock_offset_estimate(c, c->rank == 1 ? shifted_clock : MPI_Wtime);
    CHECK(c->rank == 0 ? off == 0.0 : fabs(off + 1000.0) < 1e-3, "estimated offset on rank %d: %.6f", c->rank, off);
    long before = c->allreduces;
    float g[3] = {1, 2, 3};
    CHECK(comm_allreduce_mean(c, g, 3) == 0 && c->allreduces == before + 1, "each all-reduce counted");
}

/* The agreement point: flags OR'ed, sums, and a failure's message (taken from the
 * failing rank's e2e_error(), named by rank) on every rank. */
static void test_agreement(Comm *c) {
    Agreement a;
    double v[2] = {c->rank + 1.0, 10.0};
    CHECK(comm_agree(c, 0, v, 2, &a) == 0, "quiet agreement failed: %s", e2e_error());
    CHECK(a.flags == 0 && a.error_rank == -1, "quiet agreement: flags %d rank %d", a.flags, a.error_rank);
    CHECK(a.sum[0] == 3.0 && a.sum[1] == 20.0, "sums %g %g", a.sum[0], a.sum[1]);
    e2e_clear_error();
    if (c->rank == 1) e2e_fail("data.h5: NaN in X_jet row 7");
    CHECK(comm_agree(c, c->rank == 1 ? AGREE_ERROR : 0, NULL, 0, &a) == -1, "an error agreed as success");
    CHECK(a.flags == AGREE_ERROR && a.error_rank == 1, "error on rank 1: flags %d rank %d", a.flags,
          a.error_rank);
    CHECK(strcmp(e2e_error(), "rank 1: data.h5: NaN in X_jet row 7") == 0, "message on rank %d: '%s'",
          c->rank, e2e_error());
    e2e_fail(c->rank ? "second" : "first");
    CHECK(comm_agree(c, AGREE_ERROR | (c->rank == 0 ? AGREE_STOP : 0), NULL, 0, &a) == -1, "two errors");
    CHECK(a.error_rank == 0 && strcmp(e2e_error(), "rank 0: first") == 0, "lowest failing rank wins: %d '%s'",
          a.error_rank, e2e_error());
    CHECK(a.flags == (AGREE_ERROR | AGREE_STOP), "flags OR'ed: %d", a.flags);
    CHECK(comm_agree(c, c->rank == 1 ? AGREE_NONFINITE : 0, NULL, 0, &a) == 0 && a.flags == AGREE_NONFINITE,
          "non-finite flag from rank 1: %d", a.flags);
    CHECK(comm_agree(c, 0, v, AGREE_MAX_VALUES + 1, &a) == -1, "more than the supported values accepted");

    CHECK(comm_fail_together(c, 0) == 0, "comm_fail_together: all succeeded");
    e2e_fail("backend: no GPU");
    CHECK(comm_fail_together(c, c->rank == 0) == -1 && strcmp(e2e_error(), "rank 0: backend: no GPU") == 0,
          "comm_fail_together: rank 0's failure on rank %d: '%s'", c->rank, e2e_error());
}

static int root_calls;
static int root_ok(int *answer) {
    root_calls++;
    *answer = 42;
    return 0;
}
static int root_fails(const char *path) {
    root_calls++;
    return e2e_fail("%s: cannot write", path);
}

/* Rank 0 does the work, every rank learns the outcome (comm_fail_together: rank 0's
 * message, named); broadcasts of typed values. */
static void test_root_and_broadcasts(Comm *c) {
    int answer = 0;
    int failed = c->rank == 0 && root_ok(&answer) != 0;
    CHECK(comm_fail_together(c, failed) == 0, "rank 0's work: success reported as failure");
    CHECK(root_calls == (c->rank == 0) && answer == (c->rank == 0 ? 42 : 0),
          "the work runs on rank 0 only (rank %d: %d calls, answer %d)", c->rank, root_calls, answer);
    comm_bcast_int(c, &answer);
    CHECK(answer == 42, "comm_bcast_int: rank %d has %d", c->rank, answer);
    e2e_clear_error();
    failed = c->rank == 0 && root_fails("run/metrics.csv") != 0;
    CHECK(comm_fail_together(c, failed) == -1, "rank 0's work: failure lost");
    CHECK(strcmp(e2e_error(), "rank 0: run/metrics.csv: cannot write") == 0, "rank 0's message on rank %d: '%s'",
          c->rank, e2e_error());

    struct { long step; double best; } st = {c->rank ? -1 : 17, c->rank ? 0.0 : 61.5};
    comm_bcast_bytes(c, &st, sizeof st);
    CHECK(st.step == 17 && st.best == 61.5, "comm_bcast_bytes: %ld %g", st.step, st.best);
    char path[8];
    snprintf(path, sizeof path, "%s", c->rank ? "xxxxxxx" : "ckpt.h5");
    if (c->rank == 0) memcpy(path, "12345678", 8);  /* no NUL: the broadcast ends it */
    comm_bcast_string(c, path, sizeof path);
    CHECK(strcmp(path, "1234567") == 0, "comm_bcast_string: '%s'", path);
    float f[3] = {c->rank ? 0.0f : 1.5f, c->rank ? 0.0f : -2.0f, c->rank ? 0.0f : 3.25f};
    comm_bcast_floats(c, f, 3);
    CHECK(f[0] == 1.5f && f[1] == -2.0f && f[2] == 3.25f, "comm_bcast_floats: %g %g %g", f[0], f[1], f[2]);
}

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

    test_agreement(&c);
    test_root_and_broadcasts(&c);
    test_measurements(&c);

    CHECK(fnv1a("abc", 3) == 0xe71fa2190541574bull, "FNV-1a of 'abc'");
    CHECK(fnv1a_more(fnv1a("ab", 2), "c", 1) == fnv1a("abc", 3), "FNV-1a continued over pieces");
    int rc = check_main_result(c.rank ? "test_comm (rank 1)" : "test_comm (rank 0)");
    ops->destroy(ops);
    comm_finalize(&c);
    return rc;
}

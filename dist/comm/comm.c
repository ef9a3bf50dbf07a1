/* The communicator (comm.h): MPI set-up, the gradient all-reduce and the parameters'
 * broadcast (through comm_nccl.h on GPUs), and the control plane. It marks its waits
 * for the watchdog (watchdog.h), which calls nothing of it. */
#include "comm.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm_nccl.h"
#include "error.h"
#include "hash.h"
#include "watchdog.h"

int comm_init(Comm *c, int *argc, char ***argv) {
    memset(c, 0, sizeof *c);
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &c->thread_level);
    else MPI_Query_thread(&c->thread_level);
    MPI_Comm_dup(MPI_COMM_WORLD, &c->world);
    MPI_Comm_rank(c->world, &c->rank);
    MPI_Comm_size(c->world, &c->size);
    /* the node-local rank from MPI itself: Slurm's variables are wrong under mpirun */
    MPI_Comm node;
    MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &c->local_rank);
    MPI_Comm_size(node, &c->local_size);
    MPI_Comm_free(&node);
    return 0;
}

void comm_finalize(Comm *c) {
    comm_nccl_free(c);
    free(c->host);
    c->host = NULL;
    if (c->world != MPI_COMM_NULL && c->world) MPI_Comm_free(&c->world);
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
}

/* host memory holding n floats of a backend buffer (the buffer itself on the CPU) */
static float *host_view(Comm *c, float *buf, size_t n) {
    if (ops_can(c->ops, OPS_HOST_MEMORY)) return buf;
    if (c->host_n < n) {
        free(c->host);
        c->host = malloc(n * sizeof(float));
        c->host_n = c->host ? n : 0;
        if (!c->host) return NULL;
    }
    c->ops->download(c->ops->ctx, c->host, buf, n * sizeof(float));
    return c->host;
}

static void host_done(Comm *c, float *buf, float *host, size_t n) {
    if (host != buf) c->ops->upload(c->ops->ctx, buf, host, n * sizeof(float));
}

static int allreduce_mean(Comm *c, float *buf, size_t n) {
    if (c->nccl) return comm_nccl_allreduce_mean(c, buf, n);
    float *h = host_view(c, buf, n);
    if (!h) return e2e_fail("all-reduce: out of host memory for %zu floats", n);
    for (size_t off = 0; off < n; off += INT_MAX) {
        int count = (int)(n - off < INT_MAX ? n - off : INT_MAX);
        MPI_Allreduce(MPI_IN_PLACE, h + off, count, MPI_FLOAT, MPI_SUM, c->world);
    }
    const float inv = 1.0f / (float)c->size;
    for (size_t i = 0; i < n; i++) h[i] *= inv;
    host_done(c, buf, h, n);
    return 0;
}

int comm_allreduce_mean(Comm *c, float *buf, size_t n) {
    if (c->size == 1) return 0;
    watchdog_wait("the gradient all-reduce");
    int rc = allreduce_mean(c, buf, n);
    watchdog_wait_end();
    c->allreduces++;
    return rc;
}

static int broadcast(Comm *c, float *buf, size_t n) {
    if (c->nccl) return comm_nccl_broadcast(c, buf, n);
    float *h = host_view(c, buf, n);
    if (!h) return e2e_fail("broadcast: out of host memory for %zu floats", n);
    for (size_t off = 0; off < n; off += INT_MAX) {
        int count = (int)(n - off < INT_MAX ? n - off : INT_MAX);
        MPI_Bcast(h + off, count, MPI_FLOAT, 0, c->world);
    }
    host_done(c, buf, h, n);
    return 0;
}

int comm_broadcast(Comm *c, float *buf, size_t n) {
    if (c->size == 1) return 0;
    watchdog_wait("the parameters' broadcast");
    int rc = broadcast(c, buf, n);
    watchdog_wait_end();
    return rc;
}

/* ---- the control plane ---- */

/* the agreement, marked for the watchdog as a wait in `waiting_in` */
static int agree(Comm *c, int flags, const double *values, int n_values, Agreement *out, const char *waiting_in) {
    const char *why = (flags & AGREE_ERROR) ? e2e_error() : NULL;
    char named[AGREE_MESSAGE_LEN];
    if (why && c->size > 1) {
        snprintf(named, sizeof named, "rank %d: %s", c->rank, why);
        why = named;
    }
    watchdog_wait(waiting_in);
    int rc = mpi_agree(c->world, flags, why, values, n_values, out);
    watchdog_wait_end();
    if (rc) return e2e_fail("comm_agree: %s", e2e_error());
    return (out->flags & AGREE_ERROR) ? e2e_fail("%s", out->message) : 0;
}

int comm_agree(Comm *c, int flags, const double *values, int n_values, Agreement *out) {
    return agree(c, flags, values, n_values, out, "the agreement point");
}

int comm_fail_together(Comm *c, int failed) {
    Agreement a;
    /* after set-up, or rank 0's work (files, checkpoints) that the others wait for */
    return agree(c, failed ? AGREE_ERROR : 0, NULL, 0, &a, "an agreement on work done (files, set-up)");
}

void comm_bcast_int(Comm *c, int *v) { comm_bcast_bytes(c, v, sizeof *v); }

void comm_bcast_bytes(Comm *c, void *p, size_t bytes) {
    watchdog_wait("a broadcast from rank 0");
    for (size_t off = 0; off < bytes; off += INT_MAX) {
        int count = (int)(bytes - off < INT_MAX ? bytes - off : INT_MAX);
        MPI_Bcast((char *)p + off, count, MPI_BYTE, 0, c->world);
    }
    watchdog_wait_end();
}

void comm_bcast_string(Comm *c, char *s, size_t size) {
    if (size == 0) return;
    comm_bcast_bytes(c, s, size);
    s[size - 1] = '\0';
}

void comm_bcast_floats(Comm *c, float *p, size_t n) { comm_bcast_bytes(c, p, n * sizeof(float)); }

int comm_replicas_identical(Comm *c, const float *buf, size_t n, int *identical) {
    float *h = host_view(c, (float *)buf, n);
    if (!h) return e2e_fail("replica check: out of host memory for %zu floats", n);
    uint64_t mine = fnv1a(h, n * sizeof(float)), lo = mine, hi = mine;
    watchdog_wait("the replica check");
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, c->world);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, c->world);
    watchdog_wait_end();
    *identical = lo == hi;
    return 0;
}

/* ---- measurements ---- */

int comm_gather_bytes(Comm *c, const void *mine, size_t bytes, char **all, size_t **counts) {
    long long n = (long long)bytes, *each = c->rank == 0 ? calloc((size_t)c->size, sizeof *each) : NULL;
    *all = NULL;
    *counts = NULL;
    int failed = c->rank == 0 && !each;
    watchdog_wait("a gather to rank 0");
    MPI_Gather(&n, 1, MPI_LONG_LONG, each, 1, MPI_LONG_LONG, 0, c->world);
    watchdog_wait_end();
    int *cnt = NULL, *disp = NULL;
    long long total = 0;
    for (int r = 0; each && r < c->size; r++) total += each[r];
    if (c->rank == 0 && !failed) {
        cnt = malloc(sizeof(int) * c->size);
        disp = malloc(sizeof(int) * c->size);
        *counts = malloc(sizeof(size_t) * c->size);
        *all = malloc(total ? (size_t)total : 1);
        failed = !cnt || !disp || !*counts || !*all || total >= INT_MAX;
        if (failed) e2e_fail("gathering %lld bytes on rank 0: out of memory or 2 GB or more", total);
        for (int r = 0, at = 0; !failed && r < c->size; at += cnt[r], r++) {
            cnt[r] = (int)each[r];
            disp[r] = at;
            (*counts)[r] = (size_t)each[r];
        }
    }
    int rc = comm_fail_together(c, failed);
    if (!rc) {
        watchdog_wait("a gather to rank 0");
        MPI_Gatherv(mine, (int)bytes, MPI_BYTE, *all, cnt, disp, MPI_BYTE, 0, c->world);
        watchdog_wait_end();
    }
    if (rc && c->rank == 0) {
        free(*all);
        free(*counts);
        *all = NULL;
        *counts = NULL;
    }
    free(each);
    free(cnt);
    free(disp);
    return rc;
}

/* 1 when this rank shares rank 0's node (MPI's shared-memory node) */
static int on_node_of_root(Comm *c) {
    MPI_Comm node;
    MPI_Comm_split_type(c->world, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node);
    int lowest = c->rank;
    MPI_Allreduce(MPI_IN_PLACE, &lowest, 1, MPI_INT, MPI_MIN, node);
    MPI_Comm_free(&node);
    return lowest == 0;
}

double comm_clock_offset(Comm *c, double (*clock)(void)) {
    int same = on_node_of_root(c);
    double offset = comm_clock_offset_estimate(c, clock);
    return c->rank == 0 || same ? 0.0 : offset;
}

double comm_clock_offset_estimate(Comm *c, double (*clock)(void)) {
    enum { ROUNDS = 8, TAG = 7262 };
    double best_rtt = INFINITY, offset = 0;
    watchdog_wait("the clocks' comparison");
    for (int r = 1; r < c->size; r++) {
        if (c->rank != 0 && c->rank != r) continue;
        for (int k = 0; k < ROUNDS; k++) {
            double t[3];  /* rank 0 sends, rank r answers, rank 0 receives */
            if (c->rank == 0) {
                t[0] = clock();
                MPI_Send(t, 1, MPI_DOUBLE, r, TAG, c->world);
                MPI_Recv(t + 1, 1, MPI_DOUBLE, r, TAG, c->world, MPI_STATUS_IGNORE);
                t[2] = clock();
                MPI_Send(t, 3, MPI_DOUBLE, r, TAG, c->world);
            } else {
                MPI_Recv(t, 1, MPI_DOUBLE, 0, TAG, c->world, MPI_STATUS_IGNORE);
                double mine = clock();
                MPI_Send(&mine, 1, MPI_DOUBLE, 0, TAG, c->world);
                MPI_Recv(t, 3, MPI_DOUBLE, 0, TAG, c->world, MPI_STATUS_IGNORE);
                if (t[2] - t[0] < best_rtt) {
                    best_rtt = t[2] - t[0];
                    offset = (t[0] + t[2]) / 2 - t[1];
                }
            }
        }
    }
    watchdog_wait_end();
    return offset;
}

/* ---- NCCL's set-up (comm_nccl.h), failing on every rank together ---- */

/* Rank 0 makes the id (every rank learns whether it could) and broadcasts it. The
 * set-up then runs in NCCL's background; a rank whose call failed at once tells the
 * others before anyone waits for it, and after the wait the ranks agree again. */
static int attach_nccl(Comm *c) {
    CommNcclId id;
    memset(&id, 0, sizeof id);
    int failed = c->rank == 0 && comm_nccl_make_id(&id) != 0;
    if (comm_fail_together(c, failed)) return -1;
    comm_bcast_bytes(c, &id, sizeof id);
    failed = comm_nccl_start(c, &id) != 0;
    if (comm_fail_together(c, failed) == 0) {
        failed = comm_nccl_wait_ready(c) != 0;
        if (comm_fail_together(c, failed) == 0) return 0;
    }
    comm_nccl_abort(c);
    return -1;
}

int comm_attach(Comm *c, NetOps *ops) {
    c->ops = ops;
    /* one rank has nothing to reduce: no NCCL communicator (one thing less to fail) */
    if (c->size > 1 && ops_can(ops, OPS_STREAM) && comm_nccl_available()) return attach_nccl(c);
    return 0;
}

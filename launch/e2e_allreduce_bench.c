/* e2e-allreduce-bench: measures the interconnect for the performance model
 * (launch/perf-model): the latency alpha and bandwidth beta of MPI point-to-point
 * messages (ping-pong between ranks 0 and 1), and the time of the trainer's own gradient
 * all-reduce (comm_allreduce_mean, the call dist/trainer.c makes every step; NCCL with
 * --device cuda) over message sizes up to a few times the model's gradient. Prints a
 * table and, with --json, the fitted parameters for launch/perf-model --net. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "comm.h"
#include "error.h"
#include "model.h"

static const char *usage =
    "usage: mpirun -np P e2e-allreduce-bench [options]   (P >= 2)\n"
    "\n"
    "Measures MPI ping-pong latency/bandwidth (ranks 0 and 1) and the trainer's gradient\n"
    "all-reduce (all ranks) for message sizes from 4 bytes up to --max-bytes, fits the\n"
    "alpha-beta parameters and prints them; --json writes them for launch/perf-model.\n"
    "\n"
    "  --device cpu|cuda  where the all-reduced buffer lives (cpu: MPI; cuda: NCCL) (cpu)\n"
    "  --floats N         gradient size in floats (default: the ResNet-15 arena of\n"
    "                     --channels/--size/--scalars/--blocks, padding included)\n"
    "  --channels C       (8)   --size PIXELS (125)   --scalars S (2)   --blocks N (3)\n"
    "  --max-bytes B      largest message (default: 4 x the gradient, at least 1 MiB)\n"
    "  --min-time S       seconds of repetitions per size and method (0.05)\n"
    "  --json FILE        write the results as JSON (rank 0)\n"
    "  --help             this text\n";

typedef struct {
    double bytes, pingpong_s, allreduce_s;
} Point;

static int is_root;         /* rank 0 prints */
static NetOps *ops;     /* destroyed after comm_finalize (NCCL's communicator goes first) */

typedef struct {
    ModelConfig mc;         /* the model whose arena is the default gradient */
    long floats;            /* --floats, or 0: the arena's */
    long max_bytes;         /* --max-bytes, or 0: from the gradient */
    double min_time;
    const char *device, *json;
} BenchArgs;

static int num(const char *opt, const char *s, long lo, long *out) {
    long long v;
    if (cli_ll("e2e-allreduce-bench", opt, s, lo, INT_MAX, &v, is_root)) return -1;
    *out = (long)v;
    return 0;
}

/* 0: go on, 1: --help (printed), 2: a bad command line (said on rank 0) */
static int parse(int argc, char **argv, BenchArgs *a) {
    static const struct option opts[] = {
        {"device", 1, 0, 'd'}, {"floats", 1, 0, 'f'}, {"channels", 1, 0, 'c'},
        {"size", 1, 0, 'z'}, {"scalars", 1, 0, 's'}, {"blocks", 1, 0, 'b'},
        {"max-bytes", 1, 0, 'm'}, {"min-time", 1, 0, 't'}, {"json", 1, 0, 'j'},
        {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    opterr = is_root;
    int o;
    long v;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int rc = 0;
        switch (o) {
        case 'd': a->device = optarg; break;
        case 'f': rc = num("--floats", optarg, 1, &a->floats); break;
        case 'c': rc = num("--channels", optarg, 1, &v); a->mc.in_channels = (int)v; break;
        case 'z': rc = num("--size", optarg, 1, &v); a->mc.height = a->mc.width = (int)v; break;
        case 's': rc = num("--scalars", optarg, 0, &v); a->mc.n_scalars = (int)v; break;
        case 'b': rc = num("--blocks", optarg, 1, &v); a->mc.blocks = (int)v; break;
        case 'm': rc = num("--max-bytes", optarg, 4, &a->max_bytes); break;
        case 't':
            rc = cli_double("e2e-allreduce-bench", "--min-time", optarg, 1e-9, 3600, &a->min_time, is_root);
            break;
        case 'j': a->json = optarg; break;
        case 'h': if (is_root) fputs(usage, stdout); return 1;
        default: rc = -1;
        }
        if (rc) {
            if (is_root) fputs("e2e-allreduce-bench: see --help\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        if (is_root) fprintf(stderr, "e2e-allreduce-bench: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    return 0;
}

/* average seconds of one call of `op` over enough repetitions to fill min_time; every
 * rank of `comm` runs the same count (rank 0 of comm decides) and the slowest rank's
 * time is returned. The best of three such measurements. */
typedef void (*Op)(void *ctx);

static double time_op(MPI_Comm comm, Op op, void *ctx, double min_time) {
    for (int w = 0; w < 3; w++) op(ctx);  /* warm-up */
    long reps = 1;
    double best = INFINITY;
    for (int trial = 0; trial < 3;) {
        MPI_Barrier(comm);
        double t0 = MPI_Wtime();
        for (long i = 0; i < reps; i++) op(ctx);
        double t = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm);
        if (t < min_time / 3 && reps < (1L << 30)) {  /* too short to trust: more reps */
            reps = t > 0 ? (long)(reps * (min_time / 3) / t * 1.2) + 1 : reps * 10;
            continue;
        }
        if (t / reps < best) best = t / reps;
        trial++;
    }
    return best;
}

typedef struct {
    MPI_Comm pair;
    int rank;
    char *buf;
    int bytes;
} PingPong;

static void pingpong_op(void *p) {
    PingPong *pp = p;
    if (pp->rank == 0) {
        MPI_Send(pp->buf, pp->bytes, MPI_BYTE, 1, 0, pp->pair);
        MPI_Recv(pp->buf, pp->bytes, MPI_BYTE, 1, 0, pp->pair, MPI_STATUS_IGNORE);
    } else {
        MPI_Recv(pp->buf, pp->bytes, MPI_BYTE, 0, 0, pp->pair, MPI_STATUS_IGNORE);
        MPI_Send(pp->buf, pp->bytes, MPI_BYTE, 0, 0, pp->pair);
    }
}

typedef struct {
    Comm *comm;
    float *buf;
    size_t n;
    int failed;
} Reduce;

static void allreduce_op(void *p) {
    Reduce *r = p;
    if (comm_allreduce_mean(r->comm, r->buf, r->n)) r->failed = 1;
}

/* least-squares slope of t against bytes over the points with bytes >= from */
static double slope(const Point *pt, int n, double from, int allreduce) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (pt[i].bytes < from) continue;
        double x = pt[i].bytes, y = allreduce ? pt[i].allreduce_s : pt[i].pingpong_s;
        sx += x; sy += y; sxx += x * x; sxy += x * y;
        k++;
    }
    if (k < 2) return NAN;
    return (k * sxy - sx * sy) / (k * sxx - sx * sx);
}

/* the smallest time among messages of at most `upto` bytes: the latency */
static double latency(const Point *pt, int n, double upto, int allreduce) {
    double best = INFINITY;
    for (int i = 0; i < n; i++)
        if (pt[i].bytes <= upto) {
            double y = allreduce ? pt[i].allreduce_s : pt[i].pingpong_s;
            if (y < best) best = y;
        }
    return best;
}

/* The gradient's size: --floats, or the arena of the ResNet-15 of the options. */
static int gradient_floats(BenchArgs *a, const char **what) {
    *what = "--floats";
    if (a->floats) return 0;
    Model *m = NULL;
    if (model_check_config(&a->mc) || model_create(&m, &a->mc, ops)) return -1;
    a->floats = (long)model_arena_size(m);
    model_free(m);
    *what = "ResNet-15 arena";
    return 0;
}

/* The buffers: one of backend memory for the all-reduce, host memory for ping-pong. */
typedef struct {
    float *dev;
    char *host;
} Buffers;

static int make_buffers(Comm *c, long max_bytes, Buffers *b) {
    size_t cap = (size_t)max_bytes / 4 + 1;
    b->dev = ops->alloc(ops->ctx, cap * sizeof(float));
    b->host = calloc(1, (size_t)max_bytes);
    float *init = calloc(cap, sizeof(float));
    int failed = !b->dev || !b->host || !init;
    if (failed) e2e_fail("out of memory for %ld bytes", max_bytes);
    for (size_t i = 0; !failed && i < cap; i++) init[i] = 1.0f;
    if (!failed) ops->upload(ops->ctx, b->dev, init, cap * sizeof(float));
    free(init);
    return comm_fail_together(c, failed);
}

/* Ping-pong (ranks 0 and 1) and the all-reduce (all ranks) for every message size. */
static int measure(Comm *c, MPI_Comm pair, const Buffers *buf, Point *pt, int np, double min_time) {
    for (int i = 0; i < np; i++) {
        int bytes = (int)pt[i].bytes;
        pt[i].pingpong_s = 0;
        if (pair != MPI_COMM_NULL) {
            PingPong pp = {.pair = pair, .rank = c->rank, .buf = buf->host, .bytes = bytes};
            pt[i].pingpong_s = time_op(pair, pingpong_op, &pp, min_time) / 2;
        }
        comm_bcast_bytes(c, &pt[i].pingpong_s, sizeof pt[i].pingpong_s);
        Reduce r = {.comm = c, .buf = buf->dev, .n = (size_t)bytes / 4};
        pt[i].allreduce_s = time_op(c->world, allreduce_op, &r, min_time);
        if (comm_fail_together(c, r.failed)) return -1;
        if (is_root)
            printf("%12d %13.2f us %14.1f %15.2f us%s\n", bytes, pt[i].pingpong_s * 1e6,
                   bytes / pt[i].pingpong_s / 1e6, pt[i].allreduce_s * 1e6,
                   i == np - 1 ? "   <- gradient" : "");
    }
    return 0;
}

/* The fitted interconnect (rank 0). */
typedef struct {
    double alpha, beta;              /* ping-pong: latency (s), bandwidth (bytes/s) */
    double alpha_ring, beta_ring;    /* the all-reduce, fitted as a ring */
    double measured, ring;           /* the gradient's all-reduce: measured, and the ring
                                        model from alpha and beta */
} Fit;

static Fit fit(const Point *pt, int np, long max_bytes, long floats, int p) {
    Fit f;
    /* alpha: the small-message latency; beta: 1 / slope over messages >= 256 KiB */
    double big = 256.0 * 1024;
    if (max_bytes < 4 * big) big = max_bytes / 4.0;
    f.alpha = latency(pt, np - 1, 64, 0);
    f.beta = 1.0 / slope(pt, np - 1, big, 0);
    double a_ar = latency(pt, np - 1, 64, 1), b_ar = slope(pt, np - 1, big, 1);
    /* the same ring form fitted to the all-reduce: T = 2(p-1) alpha + 2(p-1)/p n/beta */
    f.alpha_ring = a_ar / (2.0 * (p - 1));
    f.beta_ring = 2.0 * (p - 1) / p / b_ar;
    double n = (double)floats * 4;
    f.ring = 2.0 * (p - 1) * f.alpha + 2.0 * (p - 1) / p * n / f.beta;
    f.measured = pt[np - 1].allreduce_s;
    return f;
}

static void print_fit(const Fit *f, long floats, int p) {
    printf("\nping-pong fit: alpha = %.2f us, beta = %.3g GB/s\n", f->alpha * 1e6, f->beta / 1e9);
    printf("all-reduce fit, as a ring: alpha = %.2f us, beta = %.3g GB/s\n", f->alpha_ring * 1e6,
           f->beta_ring / 1e9);
    printf("gradient all-reduce (%ld floats, %d ranks): measured %.1f us, ring model from "
           "ping-pong alpha/beta %.1f us (ratio %.2f)\n", floats, p, f->measured * 1e6,
           f->ring * 1e6, f->measured / f->ring);
}

/* --json on rank 0, for launch/perf-model --net: the fit f of the np points pt */
static int write_json(const char *path, const Comm *c, const Fit *f, const Point *pt, int np, long floats) {
    FILE *out = fopen(path, "w");
    if (!out) return e2e_fail("%s: %s", path, strerror(errno));
    fprintf(out,
            "{\"ranks\": %d, \"ranks_per_node\": %d, \"device\": \"%s\",\n"
            " \"alpha_s\": %.6e, \"beta_bytes_per_s\": %.6e,\n"
            " \"allreduce_alpha_s\": %.6e, \"allreduce_beta_bytes_per_s\": %.6e,\n"
            " \"grad_floats\": %ld, \"grad_allreduce_s\": %.6e, \"grad_ring_model_s\": %.6e,\n"
            " \"points\": [",
            c->size, c->local_size, ops->name, f->alpha, f->beta, f->alpha_ring, f->beta_ring,
            floats, f->measured, f->ring);
    for (int i = 0; i < np; i++)
        fprintf(out, "%s\n  {\"bytes\": %.0f, \"pingpong_s\": %.6e, \"allreduce_s\": %.6e}",
                i ? "," : "", pt[i].bytes, pt[i].pingpong_s, pt[i].allreduce_s);
    fprintf(out, "]}\n");
    return fclose(out) ? e2e_fail("%s: %s", path, strerror(errno)) : 0;
}

/* Measures, fits and reports; 0, 1 (a failure, said on rank 0) or 2 (bad usage). */
static int bench(Comm *c, BenchArgs *a) {
    BackendOptions bo = {.device = a->device, .gpu = c->local_rank};
    ops = net_backend_create(&bo);
    if (comm_fail_together(c, !ops)) {
        if (is_root) fprintf(stderr, "e2e-allreduce-bench: --device %s: %s\n", a->device, e2e_error());
        return 1;
    }
    const char *what;
    if (gradient_floats(a, &what)) {
        if (is_root) fprintf(stderr, "e2e-allreduce-bench: model: %s\n", e2e_error());
        return 2;
    }
    long floats = a->floats, max_bytes = a->max_bytes;
    if (!max_bytes) max_bytes = 4 * floats * 4 > (1 << 20) ? 4 * floats * 4 : (1 << 20);
    if (max_bytes < floats * 4) max_bytes = floats * 4;
    comm_attach(c, ops);
    Buffers buf = {0};
    if (make_buffers(c, max_bytes, &buf)) {
        if (is_root) fprintf(stderr, "e2e-allreduce-bench: %s\n", e2e_error());
        return 1;
    }
    MPI_Comm pair;
    MPI_Comm_split(c->world, c->rank < 2 ? 0 : MPI_UNDEFINED, c->rank, &pair);
    Point pt[64];
    int np = 0;
    for (long b = 4; b <= max_bytes && np < 63; b *= 2) pt[np++].bytes = (double)b;
    pt[np++].bytes = (double)floats * 4;  /* the gradient itself, last */
    if (is_root) {
        printf("e2e-allreduce-bench: %d ranks (%d per node), %s buffers; gradient: %ld floats "
               "(%s, %.1f KiB)\n", c->size, c->local_size, ops->name, floats, what, floats * 4 / 1024.0);
        printf("%12s %16s %14s %18s\n", "bytes", "ping-pong 1-way", "MB/s", "all-reduce (mean)");
    }
    int failed = measure(c, pair, &buf, pt, np, a->min_time) != 0;
    if (failed && is_root) fprintf(stderr, "e2e-allreduce-bench: all-reduce failed: %s\n", e2e_error());
    if (!failed) {
        Fit f = fit(pt, np, max_bytes, floats, c->size);
        if (is_root) print_fit(&f, floats, c->size);
        if (a->json) failed = comm_fail_together(c, is_root && write_json(a->json, c, &f, pt, np, floats) != 0) != 0;
        if (failed && is_root) fprintf(stderr, "e2e-allreduce-bench: %s\n", e2e_error());
    }
    if (pair != MPI_COMM_NULL) MPI_Comm_free(&pair);
    if (buf.dev) ops->release(ops->ctx, buf.dev);
    free(buf.host);
    return failed;
}

static int run(Comm *c, int argc, char **argv) {
    BenchArgs a = {.mc = model_default_config(1), .min_time = 0.05, .device = "cpu"};
    int p = parse(argc, argv, &a);
    if (p) return p == 1 ? 0 : 2;
    if (c->size < 2) {
        if (is_root) fprintf(stderr, "e2e-allreduce-bench: needs at least 2 ranks (mpirun -np 2 ...), got %d\n", c->size);
        return 2;
    }
    return bench(c, &a);
}

int main(int argc, char **argv) {
    Comm c;
    comm_init(&c, &argc, &argv);
    is_root = c.rank == 0;
    int rc = run(&c, argc, argv);
    comm_finalize(&c);
    if (ops) ops->destroy(ops);
    return rc;
}

/* What the CUDA backend does with the algorithm lists cuDNN gives, and with the devices
 * and driver a node has, on the emulated device (tests/cuda_emu/README.md), each case in
 * a child process of its own (a failed call ends the process, as on a GPU; the child's
 * standard error is read back):
 *  - fp32 mode where cuDNN offers only FFT/Winograd, or only non-FMA math, for a shape:
 *    the convolutions run (the CPU's results), with a warning listing every candidate's
 *    algorithm, status, math type and memory; no algorithm at all: the process stops
 *    after listing them;
 *  - bf16 mode where the timed search finds no bf16 algorithm (the heuristics had one),
 *    or the heuristics have none: float operands, the CPU's results;
 *  - only non-deterministic algorithms: taken and counted;
 *  - a driver older than the CUDA runtime: named, with both versions; no GPU: said so;
 *  - a rank's GPU is its node-local rank modulo the GPUs the process sees (one each, as
 *    srun --gpus-per-task gives, or all of the node's). */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cuda_runtime_api.h>

#include "backend.h"
#include "check.h"
#include "conv_shape.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "cuda_emu_control.h"
#include "error.h"
#include "rng.h"

static char child_err[8192];  /* the last child's standard error */

/* Runs fn in a child with the environment pairs set first; its exit status (-1: a
 * signal), its standard error in child_err. */
static int in_child(int (*fn)(void), const char *const *env) {
    char path[] = "/tmp/test_emu_algos_XXXXXX";
    int fd = mkstemp(path);
    fflush(stdout), fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        for (int i = 0; env && env[i]; i += 2) setenv(env[i], env[i + 1], 1);
        _exit(fn());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    ssize_t got = pread(fd, child_err, sizeof child_err - 1, 0);
    child_err[got > 0 ? got : 0] = 0;
    close(fd);
    unlink(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* conv0's shape with 8 channels: forward, backward filter and data on the GPU against
 * the CPU; 0 when all agree to tol, else 1 */
static int convs_agree(const char *prec, double tol, CudaStats *st) {
    NetOps *cpu = net_cpu_create(1), *gpu = net_cuda_create(0, prec);
    if (!cpu || !gpu) return fprintf(stderr, "backends: %s\n", e2e_error()), 2;
    ConvShape s = conv_shape(2, 8, 12, 12, 16, 7, 1, 1);
    size_t nx = (size_t)s.n * s.in_c * s.in_h * s.in_w, ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    size_t nw = (size_t)s.out_c * s.in_c * s.k_h * s.k_w, sizes[4] = {nx, nw, ny, s.out_c};
    Rng rng;
    rng_seed(&rng, 5);
    float *h[4], *d[4], *y = calloc(ny, 4), *dw = calloc(nw, 4), *db = calloc(s.out_c, 4), *dx = calloc(nx, 4);
    for (int k = 0; k < 4; k++) {  /* x, w, dy, b */
        h[k] = malloc(sizes[k] * 4);
        for (size_t i = 0; i < sizes[k]; i++) h[k][i] = rng_range(&rng, -1, 1);
        d[k] = gpu->alloc(gpu->ctx, sizes[k] * 4);
        gpu->upload(gpu->ctx, d[k], h[k], sizes[k] * 4);
    }
    float *gy = gpu->alloc(gpu->ctx, ny * 4), *gdw = gpu->alloc(gpu->ctx, nw * 4), *gdb = gpu->alloc(gpu->ctx, 64);
    float *gdx = gpu->alloc(gpu->ctx, nx * 4), *back = malloc((nx > nw ? nx : nw) * 4 + ny * 4);
    cpu->conv2d_forward(cpu->ctx, &s, LAYOUT_NHWC, h[0], h[1], h[3], NULL, 0, y);
    cpu->conv2d_backward_filter(cpu->ctx, &s, LAYOUT_NHWC, h[0], h[2], dw, db);
    cpu->conv2d_backward_data(cpu->ctx, &s, h[2], h[1], NULL, dx);
    gpu->conv2d_forward(gpu->ctx, &s, LAYOUT_NHWC, d[0], d[1], d[3], NULL, 0, gy);
    gpu->conv2d_backward_filter(gpu->ctx, &s, LAYOUT_NHWC, d[0], d[2], gdw, gdb);
    gpu->conv2d_backward_data(gpu->ctx, &s, d[2], d[1], NULL, gdx);
    double worst = 0;
    const float *want[3] = {y, dw, dx}, *got[3] = {gy, gdw, gdx};
    size_t n[3] = {ny, nw, nx};
    for (int k = 0; k < 3; k++) {
        gpu->download(gpu->ctx, back, got[k], n[k] * 4);
        double e = rel_err(back, want[k], n[k], 1e-6);
        worst = e > worst ? e : worst;
    }
    net_cuda_stats(gpu, st);
    fprintf(stderr, "worst rel err %g, relaxed %ld, float instead of bf16 %ld, non-deterministic %ld\n", worst,
            st->fp32_relaxed, st->fp32_fallbacks, st->nondeterministic);
    return worst < tol ? 0 : 1;
}

static int fp32_case(void) {
    CudaStats st;
    return convs_agree("fp32", 1e-5, &st) || st.fp32_relaxed < 2;
}

static int bf16_case(void) {
    CudaStats st;
    int rc = convs_agree("bf16", 1e-5, &st);  /* float operands: as exact as fp32 */
    return rc || st.fp32_fallbacks < 3;
}

static int nondet_case(void) {
    CudaStats st;
    return convs_agree("fp32", 1e-5, &st) || st.nondeterministic < 3;
}

static void test_algorithm_lists(void) {
    const char *transform[] = {"E2E_EMU_CUDNN", "in_c=8:transform", NULL};
    int rc = in_child(fp32_case, transform);
    CHECK(rc == 0 && strstr(child_err, "no algorithm that sums plain products") && strstr(child_err, "WINOGRAD") &&
          strstr(child_err, "CUDNN_STATUS_NOT_SUPPORTED") && strstr(child_err, "bytes"),
          "fp32, only transforms for the shape: exit %d, stderr:\n%s", rc, child_err);
    const char *tensor_op[] = {"E2E_EMU_CUDNN", "in_c=8:tensor_op", NULL};
    rc = in_child(fp32_case, tensor_op);
    CHECK(rc == 0 && strstr(child_err, "no algorithm that uses FMA math") && strstr(child_err, "math TENSOR_OP"),
          "fp32, no FMA math for the shape: exit %d, stderr:\n%s", rc, child_err);
    const char *none[] = {"E2E_EMU_CUDNN", "in_c=8,fwd:none", NULL};
    rc = in_child(fp32_case, none);
    CHECK(rc == 1 && strstr(child_err, "no usable cuDNN algorithm") && strstr(child_err, "IMPLICIT_PRECOMP_GEMM") &&
          strstr(child_err, "n2 8x12x12 -> 16 k7"),
          "fp32, no algorithm at all: stops, listing them: exit %d, stderr:\n%s", rc, child_err);
    const char *find_none[] = {"E2E_EMU_CUDNN", "bf16,find:none", NULL};
    rc = in_child(bf16_case, find_none);
    CHECK(rc == 0 && strstr(child_err, "no bf16 algorithm ran"),
          "bf16, the timed search finds no bf16 algorithm: float operands: exit %d, stderr:\n%s", rc, child_err);
    const char *heur_none[] = {"E2E_EMU_CUDNN", "bf16,heur:none", NULL};
    rc = in_child(bf16_case, heur_none);
    CHECK(rc == 0, "bf16, no bf16 kernel in the heuristics: float operands: exit %d, stderr:\n%s", rc, child_err);
    const char *nondet[] = {"E2E_EMU_CUDNN", "nondet", NULL};
    rc = in_child(nondet_case, nondet);
    CHECK(rc == 0, "only non-deterministic algorithms: taken and counted: exit %d, stderr:\n%s", rc, child_err);
}

static int create_fails(void) {
    int n = net_cuda_device_count();
    NetOps *g = net_cuda_create(0, "fp32");
    fprintf(stderr, "count %d, create: %s\n", n, g ? "made" : e2e_error());
    return g ? 1 : n < 0 ? 2 : 3;
}

/* the GPU net_backend_create takes for node-local rank E2E_TEST_LOCAL_RANK: its index + 10 */
static int gpu_taken(void) {
    BackendOptions bo = {.device = "cuda", .gpu = atoi(getenv("E2E_TEST_LOCAL_RANK"))};
    NetOps *g = net_backend_create(&bo);
    int dev = -1;
    if (!g || cudaGetDevice(&dev) != cudaSuccess) return fprintf(stderr, "%s\n", e2e_error()), 1;
    return 10 + dev;
}

static void test_devices(void) {
    const char *old[] = {"E2E_EMU_DRIVER", "12040", NULL};
    int rc = in_child(create_fails, old);
    CHECK(rc == 2 && strstr(child_err, "driver") && strstr(child_err, "12.4") && strstr(child_err, "13.0"),
          "a driver older than the runtime: count -1, both versions named: exit %d: %s", rc, child_err);
    const char *none[] = {"E2E_EMU_GPUS", "0", NULL};
    rc = in_child(create_fails, none);
    CHECK(rc == 3 && strstr(child_err, "no GPU is visible"), "no GPU: exit %d: %s", rc, child_err);
    const char *one_each[] = {"E2E_EMU_GPUS", "1", "E2E_TEST_LOCAL_RANK", "1", NULL};
    rc = in_child(gpu_taken, one_each);
    CHECK(rc == 10, "local rank 1 seeing one GPU takes GPU 0: exit %d: %s", rc, child_err);
    const char *four[] = {"E2E_EMU_GPUS", "4", "E2E_TEST_LOCAL_RANK", "6", NULL};
    rc = in_child(gpu_taken, four);
    CHECK(rc == 12, "local rank 6 seeing 4 GPUs takes GPU 2: exit %d: %s", rc, child_err);
}

int main(void) {
    test_algorithm_lists();
    test_devices();
    return check_main_result("test_emu_algos");
}

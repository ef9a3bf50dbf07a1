/* The CPU backend's NetOps: memory is host memory, ops run on OpenMP threads. */
#include "cpu_backend.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../error.h"
#include "cpu_internal.h"

/* ---- memory ---- */

static void *cpu_alloc(void *ctx, size_t bytes) {
    size_t rounded = (bytes + 255) / 256 * 256;
    if (rounded == 0) rounded = 256;
    void *p = aligned_alloc(256, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

static void cpu_release(void *ctx, void *p) { free(p); }
static void cpu_copy(void *ctx, void *dst, const void *src, size_t bytes) {
    if (dst != src) memcpy(dst, src, bytes);
}
static void cpu_sync(void *ctx) {}

/* ---- convolutions: direct kernels where they apply, else im2col + GEMM ---- */

/* Here, not in conv_direct.c: that file is compiled for AVX2 and must not run before
 * this check. */
int conv_direct_supported(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

static void cpu_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x,
                             const float *w, const float *b, const float *residual, int relu,
                             float *y) {
    CpuCtx *c = ctx;
    if (c->direct && conv_direct_forward(c, s, lay, x, w, b, residual, relu, y) == 0) return;
    conv_gemm_forward(c, s, lay, x, w, b, residual, relu, y);
}

static void cpu_conv_backward_data(void *ctx, const ConvShape *s, const float *dy,
                                   const float *w, const float *mask, float *dx) {
    CpuCtx *c = ctx;
    if (c->direct && conv_direct_backward_data(c, s, dy, w, mask, dx) == 0) return;
    conv_gemm_backward_data(c, s, dy, w, mask, dx);
}

static void cpu_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                                     const float *dy, float *dw, float *db) {
    CpuCtx *c = ctx;
    if (c->direct && conv_direct_backward_filter(c, s, lay, x, dy, dw, db) == 0) return;
    conv_gemm_backward_filter(c, s, lay, x, dy, dw, db);
}

static void cpu_destroy(NetOps *self) {
    if (!self) return;
    CpuCtx *c = self->ctx;
    for (int i = 0; i < CPU_MAX_THREADS; i++) free(c->scratch[i]);
    free(c->shared);
    free(c);
    free(self);
}

NetOps *net_cpu_create(int threads) {
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > CPU_MAX_THREADS)
        return net_fail("cpu backend: %d threads asked for, at most %d", threads, CPU_MAX_THREADS),
               NULL;
    CpuCtx *c = calloc(1, sizeof *c);
    NetOps *o = calloc(1, sizeof *o);
    if (!c || !o) {
        free(c);
        free(o);
        net_fail("cpu backend: out of host memory");
        return NULL;
    }
    c->threads = threads;
    const char *mode = getenv("E2E_CPU_CONV");
    c->direct = conv_direct_supported() && !(mode && strcmp(mode, "gemm") == 0);
    *o = (NetOps){
        .name = "cpu",
        .ctx = c,
        .caps = OPS_HOST_MEMORY,
        .alloc = cpu_alloc,
        .release = cpu_release,
        .upload = cpu_copy,
        .download = cpu_copy,
        .sync = cpu_sync,
        .copy2d = cpu_copy2d,
        .conv2d_forward = cpu_conv_forward,
        .conv2d_backward_data = cpu_conv_backward_data,
        .conv2d_backward_filter = cpu_conv_backward_filter,
        .relu_backward = cpu_relu_backward,
        .maxpool2x2_forward = cpu_maxpool2x2_forward,
        .maxpool2x2_backward = cpu_maxpool2x2_backward,
        .global_maxpool_forward = cpu_global_maxpool_forward,
        .global_maxpool_backward = cpu_global_maxpool_backward,
        .linear_forward = cpu_linear_forward,
        .linear_backward = cpu_linear_backward,
        .l1_loss = cpu_l1_loss,
        .adam_update = cpu_adam_update,
        .nonfinite_check = cpu_nonfinite_check,
        .destroy = cpu_destroy,
    };
    return o;
}

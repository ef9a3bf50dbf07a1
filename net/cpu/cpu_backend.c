/* The CPU backend's NetOps: memory is host memory, ops run on OpenMP threads. */
#include "cpu_backend.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "conv_engine.h"
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

static void cpu_destroy(NetOps *self) {
    if (!self) return;
    CpuCtx *c = self->ctx;
    conv_engines_destroy(c);
    for (int i = 0; i < CPU_MAX_THREADS; i++) free(c->scratch[i]);
    free(c->shared);
    free(c);
    free(self);
}

NetOps *net_cpu_create(int threads) {
    if (threads <= 0) threads = omp_get_max_threads();
    if (threads > CPU_MAX_THREADS)
        return e2e_fail("cpu backend: %d threads asked for, at most %d", threads, CPU_MAX_THREADS),
               NULL;
    CpuCtx *c = calloc(1, sizeof *c);
    NetOps *o = calloc(1, sizeof *o);
    if (!c || !o) {
        free(c);
        free(o);
        e2e_fail("cpu backend: out of host memory");
        return NULL;
    }
    c->threads = threads;
    c->direct = conv_direct_supported();
    if (conv_engines_create(c)) {
        free(c);
        free(o);
        return NULL;
    }
    *o = (NetOps){
        .name = "cpu",
        .ctx = c,
        .caps = OPS_HOST_MEMORY | OPS_CONV_PREPARE,
        .alloc = cpu_alloc,
        .release = cpu_release,
        .upload = cpu_copy,
        .download = cpu_copy,
        .sync = cpu_sync,
        .copy2d = cpu_copy2d,
        .conv2d_prepare = cpu_conv_prepare,
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
        .add_scale = cpu_add_scale,
        .nonfinite_check = cpu_nonfinite_check,
        .destroy = cpu_destroy,
    };
    return o;
}

/* ---- the convolution engines chosen (cpu_backend.h) ---- */

static CpuCtx *cpu_ctx_of(NetOps *ops) {
    return ops && ops->destroy == cpu_destroy ? ops->ctx : NULL;
}

const char *net_cpu_conv_report(NetOps *ops) {
    CpuCtx *c = cpu_ctx_of(ops);
    return c ? conv_engines_report(c) : NULL;
}

int net_cpu_conv_plan(NetOps *ops, char *buf, size_t len) {
    CpuCtx *c = cpu_ctx_of(ops);
    return c ? conv_engines_plan_text(c, buf, len) : e2e_fail("net_cpu_conv_plan: not a CPU backend");
}

int net_cpu_conv_use_plan(NetOps *ops, const char *plan) {
    CpuCtx *c = cpu_ctx_of(ops);
    if (!c) return e2e_fail("net_cpu_conv_use_plan: not a CPU backend");
    return plan ? conv_engines_use_plan(c, plan) : e2e_fail("net_cpu_conv_use_plan: plan is NULL");
}

/* The CPU backend's NetOps: memory is host memory, ops run on OpenMP threads; in fp32,
 * or in bf16 on a CPU with bf16 instructions (net/README.md, "bf16 on the CPU"). */
#include "cpu_backend.h"

#include <cpuid.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "error.h"
#include "conv_engine.h"
#include "conv_onednn.h"
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
    for (int i = 0; i < CPU_BUFFERS; i++) free(c->buf[i]);
    free(c->shared);
    free(c);
    free(self);
}

/* ---- precision ---- */

/* ONEDNN_MAX_CPU_ISA (or DNNL_MAX_CPU_ISA) below AVX512_CORE_BF16: oneDNN's own cap,
 * which makes this CPU one without bf16 instructions for us too */
static int isa_cap_below_bf16(void) {
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    if (!cap) cap = getenv("DNNL_MAX_CPU_ISA");
    if (!cap || !*cap || !strcasecmp(cap, "ALL")) return 0;
    return strncasecmp(cap, "AVX512_CORE_BF16", 16) != 0 && strncasecmp(cap, "AVX512_CORE_AMX", 15) != 0 &&
           strncasecmp(cap, "AVX10", 5) != 0;
}

/* AVX512-BF16 (CPUID leaf 7 subleaf 1, EAX bit 5, with AVX-512 enabled by the OS) and
 * AMX-BF16 (leaf 7, EDX bit 22), read from CPUID: Clang 14, which builds the sanitizer
 * configuration (tests/sanitize.sh), knows neither name for __builtin_cpu_supports. */
static int cpu_avx512bf16(void) {
    unsigned a = 0, b, c, d;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
}

static int cpu_amx_bf16(void) {
    unsigned a, b, c, d = 0;
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && ((d >> 22) & 1);
}

int net_cpu_has_bf16(void) {
    int cpu = cpu_avx512bf16() || cpu_amx_bf16();
    return cpu && !isa_cap_below_bf16() && onednn_has_bf16();
}

/* 1 for bf16, 0 for fp32; -1 (e2e_error()) for another precision or bf16 without bf16
 * instructions (unless E2E_CPU_BF16=emulate), with *emulated set. */
static int parse_precision(const char *precision, int *emulated) {
    *emulated = 0;
    if (!precision || !strcmp(precision, "fp32")) return 0;
    if (strcmp(precision, "bf16") != 0)
        return e2e_fail("device cpu: precision '%s' is not available (the CPU computes in fp32 or bf16%s)",
                        precision, strcmp(precision, "tf32") ? "" : "; tf32 is a GPU mode");
    const char *mode = getenv("E2E_CPU_BF16");
    if (mode && *mode && strcmp(mode, "emulate") != 0)
        return e2e_fail("E2E_CPU_BF16=%s: expected emulate (or nothing)", mode);
    if (net_cpu_has_bf16()) return 1;
    if (mode && *mode) return *emulated = 1;
    const char *why = isa_cap_below_bf16() ? "ONEDNN_MAX_CPU_ISA leaves this CPU none"
                      : !cpu_avx512bf16() && !cpu_amx_bf16()
                          ? "this CPU has none"
                          : "this build's oneDNN does not run them";
    return e2e_fail("device cpu: precision bf16 needs bf16 instructions (AVX512-BF16 or AMX) that oneDNN runs: "
                    "%s, and emulated bf16 would be slower than fp32. Use --precision fp32 (E2E_CPU_BF16=emulate "
                    "runs bf16 emulated all the same, for tests)", why);
}

NetOps *net_cpu_create(int threads) { return net_cpu_create_precision(threads, "fp32"); }

/* The bf16 mode's element-wise ops in place of the float ones. */
static void use_bf16_ops(NetOps *o) {
    o->caps |= OPS_BF16_ACTIVATIONS;
    o->relu_backward = cpu_relu_backward_bf16;
    o->maxpool2x2_forward = cpu_maxpool2x2_forward_bf16;
    o->maxpool2x2_backward = cpu_maxpool2x2_backward_bf16;
    o->global_maxpool_forward = cpu_global_maxpool_forward_bf16;
    o->global_maxpool_backward = cpu_global_maxpool_backward_bf16;
}

NetOps *net_cpu_create_precision(int threads, const char *precision) {
    int emulated, bf16 = parse_precision(precision, &emulated);
    if (bf16 < 0) return NULL;
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
    c->bf16 = bf16;
    c->bf16_emulated = emulated;
    c->bf16_dot = bf16 && !emulated && cpu_avx512bf16();
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
        .bce_logits_loss = cpu_bce_logits_loss,
        .adam_update = cpu_adam_update,
        .add_scale = cpu_add_scale,
        .nonfinite_check = cpu_nonfinite_check,
        .destroy = cpu_destroy,
    };
    if (bf16) use_bf16_ops(o);
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

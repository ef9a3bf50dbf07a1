/* The direct convolutions' entry points (x86-64): the CPU check, and the dispatch to
 * the AVX-512 or the AVX2 build of the kernels (conv_direct_impl.h). Compiled for the
 * baseline ISA, so that it runs before the check. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cpu_internal.h"

#define DECLARE_WIDTH(suffix)                                                                  \
    int conv_direct_forward_##suffix(CpuCtx *c, const ConvShape *s, Layout lay, const float *x, \
                                     const float *w, const float *b, const float *residual,     \
                                     int relu, float *y);                                       \
    int conv_direct_backward_data_##suffix(CpuCtx *c, const ConvShape *s, const float *dy,     \
                                           const float *w, const float *mask, float *dx);      \
    int conv_direct_backward_filter_##suffix(CpuCtx *c, const ConvShape *s, Layout lay,        \
                                             const float *x, const float *dy, float *dw,       \
                                             float *db);
DECLARE_WIDTH(avx2)
DECLARE_WIDTH(avx512)

/* oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA, or its older name DNNL_MAX_CPU_ISA) caps the
 * direct kernels too, so one variable makes an AVX-512 machine behave as an AVX2 one. */
static int isa_cap_below_avx512(void) {
    const char *cap = getenv("ONEDNN_MAX_CPU_ISA");
    if (!cap) cap = getenv("DNNL_MAX_CPU_ISA");
    if (!cap || !*cap || !strcasecmp(cap, "ALL")) return 0;
    return strncasecmp(cap, "AVX512", 6) != 0 && strncasecmp(cap, "AVX10", 5) != 0;
}

int conv_direct_supported(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    return __builtin_cpu_supports("avx512f") && !isa_cap_below_avx512() ? 512 : 256;
}

int conv_direct_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x, const float *w,
                        const float *b, const float *residual, int relu, float *y) {
    if (c->direct == 512) return conv_direct_forward_avx512(c, s, lay, x, w, b, residual, relu, y);
    if (c->direct == 256) return conv_direct_forward_avx2(c, s, lay, x, w, b, residual, relu, y);
    return -1;
}

int conv_direct_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                              const float *mask, float *dx) {
    if (c->direct == 512) return conv_direct_backward_data_avx512(c, s, dy, w, mask, dx);
    if (c->direct == 256) return conv_direct_backward_data_avx2(c, s, dy, w, mask, dx);
    return -1;
}

int conv_direct_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                                const float *dy, float *dw, float *db) {
    if (c->direct == 512) return conv_direct_backward_filter_avx512(c, s, lay, x, dy, dw, db);
    if (c->direct == 256) return conv_direct_backward_filter_avx2(c, s, lay, x, dy, dw, db);
    return -1;
}

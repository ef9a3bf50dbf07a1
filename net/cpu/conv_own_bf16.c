/* Our own convolution engines in the bf16 mode: the direct forward and backward filter
 * on AVX512-BF16 dot products where the CPU has them (conv_direct_bf16.c), and
 * everywhere else the float
 * kernels (direct, or im2col + GEMM) on bf16 operands. The bf16 activations are widened to float (exactly), the
 * weights rounded to bf16 values, the float kernel runs (float accumulation, bias,
 * residual and ReLU in float), and its output is narrowed to bf16 once: the arithmetic of
 * oneDNN's bf16 kernels, at float speed plus the conversions. They serve the shapes and
 * passes oneDNN has no bf16 kernel for, the plan's timing (which takes oneDNN's kernels
 * where they are faster, as everywhere on a CPU with bf16 instructions), and a CPU without
 * bf16 instructions when asked to emulate (E2E_CPU_BF16=emulate). Activations are NHWC
 * here: conv_engine.c converts the network's NCHW input first. */
#include "cpu_internal.h"

static size_t in_count(const ConvShape *s) { return (size_t)s->n * s->in_c * s->in_h * s->in_w; }
static size_t out_count(const ConvShape *s) { return (size_t)s->n * s->out_c * s->out_h * s->out_w; }
static size_t w_count(const ConvShape *s) { return (size_t)s->out_c * s->in_c * s->k_h * s->k_w; }

static float *widened(CpuCtx *c, int slot, const uint16_t *src, size_t n) {
    float *dst = cpu_buffer(c, slot, n * sizeof(float));
    cpu_widen_bf16(c, src, dst, n);
    return dst;
}

static const float *rounded_weights(CpuCtx *c, const ConvShape *s, const float *w) {
    float *wr = cpu_buffer(c, BUF_WIDE_W, w_count(s) * sizeof(float));
    cpu_round_bf16(w, wr, w_count(s));
    return wr;
}

int conv_own_bf16_forward(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *x, const float *w,
                          const float *b, const uint16_t *residual, int relu, uint16_t *y) {
    if (direct && conv_direct_bf16_forward(c, s, x, w, b, residual, relu, y) == 0) return 0;  /* AVX512-BF16 */
    if (direct && !c->direct) return -1;
    const float *xf = widened(c, BUF_WIDE_X, x, in_count(s)), *wr = rounded_weights(c, s, w);
    const float *rf = residual ? widened(c, BUF_WIDE_RESIDUAL, residual, out_count(s)) : NULL;
    float *yf = cpu_buffer(c, BUF_WIDE_Y, out_count(s) * sizeof(float));
    if (direct) {
        if (conv_direct_forward(c, s, LAYOUT_NHWC, xf, wr, b, rf, relu, yf)) return -1;
    } else {
        conv_gemm_forward(c, s, LAYOUT_NHWC, xf, wr, b, rf, relu, yf);
    }
    cpu_narrow_bf16(c, yf, y, out_count(s), NULL);
    return 0;
}

int conv_own_bf16_backward_data(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *dy,
                                const float *w, const uint16_t *mask, uint16_t *dx) {
    if (direct && !c->direct) return -1;
    const float *dyf = widened(c, BUF_WIDE_Y, dy, out_count(s)), *wr = rounded_weights(c, s, w);
    float *dxf = cpu_buffer(c, BUF_WIDE_X, in_count(s) * sizeof(float));
    if (direct) {
        if (conv_direct_backward_data(c, s, dyf, wr, NULL, dxf)) return -1;
    } else {
        conv_gemm_backward_data(c, s, dyf, wr, NULL, dxf);
    }
    cpu_narrow_bf16(c, dxf, dx, in_count(s), mask);  /* the ReLU mask with the rounding */
    return 0;
}

int conv_own_bf16_backward_filter(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *x,
                                  const uint16_t *dy, float *dw, float *db) {
    if (direct && conv_direct_bf16_backward_filter(c, s, x, dy, dw, db) == 0) return 0;  /* AVX512-BF16 */
    if (direct && !c->direct) return -1;
    const float *xf = widened(c, BUF_WIDE_X, x, in_count(s)), *dyf = widened(c, BUF_WIDE_Y, dy, out_count(s));
    if (direct) return conv_direct_backward_filter(c, s, LAYOUT_NHWC, xf, dyf, dw, db);
    conv_gemm_backward_filter(c, s, LAYOUT_NHWC, xf, dyf, dw, db);
    return 0;
}

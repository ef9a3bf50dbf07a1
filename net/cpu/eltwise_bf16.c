/* The CPU backend's bf16 mode (net/README.md, "bf16"): the element-wise ops on bf16
 * activations and gradients (ReLU backward with the residual add, the max-pools), in
 * NetOps' signatures (the float pointers hold bf16 where ops.h's OPS_BF16_ACTIVATIONS
 * says so), and the conversions the convolutions need: the network's float NCHW input
 * to bf16 NHWC once per forward, bf16 arrays widened to float and float narrowed to bf16.
 * Every value is compared and added in float, then rounded once (bf16.h), so each op's
 * rules are eltwise.c's: ReLU keeps !(y <= 0) (a NaN passes), the max-pools take the
 * first maximum and a NaN always wins. */
#include <math.h>
#include <string.h>

#include "bf16.h"
#include "cpu_internal.h"

/* Element-wise loops below this many elements run on one thread. */
#define PAR_MIN 32768

typedef uint16_t bf16;

void cpu_relu_backward_bf16(void *ctx, size_t n, const float *y_, const float *dy_,
                            const float *addend_, float *dx_) {
    CpuCtx *c = ctx;
    const bf16 *y = (const bf16 *)y_, *dy = (const bf16 *)dy_, *addend = (const bf16 *)addend_;
    bf16 *dx = (bf16 *)dx_;
    if (addend) {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] = bf16_keep(f32_to_bf16(bf16_to_f32(dy[i]) + bf16_to_f32(addend[i])), !(bf16_to_f32(y[i]) <= 0.0f));
    } else {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dx[i] = bf16_keep(dy[i], !(bf16_to_f32(y[i]) <= 0.0f));
    }
}

static inline int takes_max(float v, float best) { return v > best || isnan(v); }

void cpu_maxpool2x2_forward_bf16(void *ctx, int n, int c, int h, int w, const float *x_, float *y_,
                                 int32_t *idx) {
    CpuCtx *cx = ctx;
    const bf16 *x = (const bf16 *)x_;
    bf16 *y = (bf16 *)y_;
    int oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        const bf16 *xi = x + (size_t)i * h * w * c;
        bf16 *yi = y + (size_t)i * oh * ow * c;
        int32_t *ii = idx + (size_t)i * oh * ow * c;
        for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++)
                for (int ch = 0; ch < c; ch++) {
                    int32_t best_at = ((2 * r) * w + 2 * q) * c + ch;
                    float best = -INFINITY;
                    for (int dr = 0; dr < 2; dr++)
                        for (int dq = 0; dq < 2; dq++) {
                            int32_t at = ((2 * r + dr) * w + 2 * q + dq) * c + ch;
                            float v = bf16_to_f32(xi[at]);
                            if (takes_max(v, best)) {
                                best = v;
                                best_at = at;
                            }
                        }
                    size_t o = ((size_t)r * ow + q) * c + ch;
                    yi[o] = xi[best_at];
                    ii[o] = best_at;
                }
    }
}

void cpu_maxpool2x2_backward_bf16(void *ctx, int n, int c, int h, int w, const float *dy_,
                                  const int32_t *idx, float *dx_) {
    CpuCtx *cx = ctx;
    const bf16 *dy = (const bf16 *)dy_;
    bf16 *dx = (bf16 *)dx_;
    size_t in = (size_t)h * w * c, out = (size_t)(h / 2) * (w / 2) * c;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        bf16 *dxi = dx + i * in;
        memset(dxi, 0, sizeof(bf16) * in);
        for (size_t j = 0; j < out; j++) dxi[idx[i * out + j]] = dy[i * out + j];
    }
}

/* x bf16, y float (the pooled features the linear head reads) */
void cpu_global_maxpool_forward_bf16(void *ctx, int n, int c, int h, int w, const float *x_,
                                     float *y, int ldy, int32_t *idx) {
    CpuCtx *cx = ctx;
    const bf16 *x = (const bf16 *)x_;
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        const bf16 *xi = x + i * hw * c;
        for (int ch = 0; ch < c; ch++) {
            float best = -INFINITY;
            int32_t at = 0;
            for (size_t p = 0; p < hw; p++) {
                float v = bf16_to_f32(xi[p * c + ch]);
                if (takes_max(v, best)) {
                    best = v;
                    at = (int32_t)p;
                }
            }
            y[(size_t)i * ldy + ch] = best;
            idx[(size_t)i * c + ch] = at;
        }
    }
}

/* dy float (from the linear head), dx bf16 */
void cpu_global_maxpool_backward_bf16(void *ctx, int n, int c, int h, int w, const float *dy,
                                      int ldy, const int32_t *idx, float *dx_) {
    CpuCtx *cx = ctx;
    bf16 *dx = (bf16 *)dx_;
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        bf16 *dxi = dx + i * hw * c;
        memset(dxi, 0, sizeof(bf16) * hw * c);
        for (int ch = 0; ch < c; ch++)
            dxi[(size_t)idx[(size_t)i * c + ch] * c + ch] = f32_to_bf16(dy[(size_t)i * ldy + ch]);
    }
}

/* ---- conversions ---- */

void cpu_widen_bf16(const CpuCtx *c, const uint16_t *src, float *dst, size_t n) {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

void cpu_narrow_bf16(const CpuCtx *c, const float *src, uint16_t *dst, size_t n, const uint16_t *mask) {
    if (mask) {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dst[i] = bf16_keep(f32_to_bf16(src[i]), !(bf16_to_f32(mask[i]) <= 0.0f));
    } else {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dst[i] = f32_to_bf16(src[i]);
    }
}

void cpu_round_bf16(const float *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_round(src[i]);
}

/* One sample's C planes of HW floats into HW pixels of C bf16 values. */
static void nchw_to_nhwc_bf16(const float *src, bf16 *dst, size_t C, size_t hw) {
    enum { PIXELS = 64 };  /* a block of pixels of every channel: reads and writes stay in L1 */
    for (size_t p0 = 0; p0 < hw; p0 += PIXELS) {
        size_t np = hw - p0 < PIXELS ? hw - p0 : PIXELS;
        for (size_t ch = 0; ch < C; ch++) {
            const float *s = src + ch * hw + p0;
            bf16 *d = dst + p0 * C + ch;
            for (size_t p = 0; p < np; p++) d[p * C] = f32_to_bf16(s[p]);
        }
    }
}

const uint16_t *cpu_input_bf16(CpuCtx *c, const ConvShape *s, const float *x, int fresh) {
    if (!fresh && c->input_of == x && memcmp(&c->input_shape, s, sizeof *s) == 0) return c->buf[BUF_INPUT_BF16];
    const size_t hw = (size_t)s->in_h * s->in_w, C = (size_t)s->in_c;
    bf16 *dst = cpu_buffer(c, BUF_INPUT_BF16, (size_t)s->n * C * hw * sizeof(bf16));
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) nchw_to_nhwc_bf16(x + (size_t)n * C * hw, dst + (size_t)n * C * hw, C, hw);
    c->input_of = x;
    c->input_shape = *s;
    return dst;
}

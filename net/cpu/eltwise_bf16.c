/* The CPU backend's bf16 mode (net/README.md, "bf16 on the CPU"): the element-wise ops
 * on bf16 activations and gradients (ReLU backward with the residual add, the
 * max-pools), in NetOps' signatures (the float pointers hold bf16 where ops.h's OPS_BF16_ACTIVATIONS
 * says so), and the conversions the convolutions need: the network's float NCHW input
 * to bf16 NHWC once per forward, bf16 arrays widened to float and float narrowed to bf16.
 * Every value is compared and added in float, then rounded once (bf16.h), so each op's
 * rules are eltwise.c's: ReLU keeps !(y <= 0) (a NaN passes), the max-pools take the
 * first maximum and a NaN always wins. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "simd.h"
#include "bf16.h"
#include "cpu_internal.h"

/* Element-wise loops below this many elements run on one thread. */
#define PAR_MIN 32768

/* The loops' bodies are compiled twice, for any x86-64 and for AVX-512 (x86-64-v4: 32
 * bf16 values a vector), one picked at load time from the CPU (AVX512_CLONES, simd.h):
 * the bf16 mode runs on CPUs with AVX512-BF16, and emulated on any other. */

typedef uint16_t bf16;

/* [lo, hi) of n split evenly over the threads of the parallel region */
#define THREAD_RANGE(n, lo, hi)                                                       \
    size_t lo = (n) * (size_t)omp_get_thread_num() / (size_t)omp_get_num_threads(), \
           hi = (n) * ((size_t)omp_get_thread_num() + 1) / (size_t)omp_get_num_threads()

AVX512_CLONES static void relu_backward_range(size_t lo, size_t hi, const bf16 *y, const bf16 *dy,
                                              const bf16 *addend, bf16 *dx) {
    if (addend) {
        for (size_t i = lo; i < hi; i++)
            dx[i] = bf16_keep(f32_to_bf16(bf16_to_f32(dy[i]) + bf16_to_f32(addend[i])), !(bf16_to_f32(y[i]) <= 0.0f));
    } else {
        for (size_t i = lo; i < hi; i++) dx[i] = bf16_keep(dy[i], !(bf16_to_f32(y[i]) <= 0.0f));
    }
}

void cpu_relu_backward_bf16(void *ctx, size_t n, const float *y, const float *dy, const float *addend, float *dx) {
    CpuCtx *c = ctx;
#pragma omp parallel num_threads(c->threads) if (n >= PAR_MIN)
    {
        THREAD_RANGE(n, lo, hi);
        relu_backward_range(lo, hi, (const bf16 *)y, (const bf16 *)dy, (const bf16 *)addend, (bf16 *)dx);
    }
}

static inline int takes_max(float v, float best) { return v > best || isnan(v); }

/* One sample: for each output pixel and channel, the window's four inputs in row-major
 * order, each taking over where takes_max says (the first maximum; a NaN always),
 * without branches, so that the channel loop vectorises. (Starting from the first input
 * equals starting from -infinity: a first input of -infinity loses to nothing else and
 * stays both the maximum and its place.) */
AVX512_CLONES static void maxpool_sample(const bf16 *xi, int c, int h, int w, bf16 *y, int32_t *idx) {
    const int oh = h / 2, ow = w / 2;
    for (int r = 0; r < oh; r++)
        for (int q = 0; q < ow; q++) {
            const int32_t a0 = ((2 * r) * w + 2 * q) * c, a1 = a0 + c, a2 = a0 + w * c, a3 = a2 + c;
            bf16 *yo = y + ((size_t)r * ow + q) * c;
            int32_t *io = idx + ((size_t)r * ow + q) * c;
            for (int ch = 0; ch < c; ch++) {
                float v0 = bf16_to_f32(xi[a0 + ch]), v1 = bf16_to_f32(xi[a1 + ch]);
                float v2 = bf16_to_f32(xi[a2 + ch]), v3 = bf16_to_f32(xi[a3 + ch]);
                float best = v0;
                int32_t at = a0 + ch;
                int take = v1 > best || v1 != v1;
                best = take ? v1 : best, at = take ? a1 + ch : at;
                take = v2 > best || v2 != v2;
                best = take ? v2 : best, at = take ? a2 + ch : at;
                take = v3 > best || v3 != v3;
                best = take ? v3 : best, at = take ? a3 + ch : at;
                yo[ch] = f32_to_bf16(best);  /* exact: best is a bf16 value */
                io[ch] = at;
            }
        }
}

void cpu_maxpool2x2_forward_bf16(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                 int32_t *idx) {
    CpuCtx *cx = ctx;
    const size_t in = (size_t)h * w * c, out = (size_t)(h / 2) * (w / 2) * c;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++)
        maxpool_sample((const bf16 *)x + i * in, c, h, w, (bf16 *)y + i * out, idx + i * out);
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

AVX512_CLONES static void widen_range(size_t lo, size_t hi, const bf16 *src, float *dst) {
    for (size_t i = lo; i < hi; i++) dst[i] = bf16_to_f32(src[i]);
}

void cpu_widen_bf16(const CpuCtx *c, const uint16_t *src, float *dst, size_t n) {
#pragma omp parallel num_threads(c->threads) if (n >= PAR_MIN)
    {
        THREAD_RANGE(n, lo, hi);
        widen_range(lo, hi, src, dst);
    }
}

AVX512_CLONES static void narrow_range(size_t lo, size_t hi, const float *src, bf16 *dst, const bf16 *mask) {
    if (mask) {
        for (size_t i = lo; i < hi; i++) dst[i] = bf16_keep(f32_to_bf16(src[i]), !(bf16_to_f32(mask[i]) <= 0.0f));
    } else {
        for (size_t i = lo; i < hi; i++) dst[i] = f32_to_bf16(src[i]);
    }
}

void cpu_narrow_bf16(const CpuCtx *c, const float *src, uint16_t *dst, size_t n, const uint16_t *mask) {
#pragma omp parallel num_threads(c->threads) if (n >= PAR_MIN)
    {
        THREAD_RANGE(n, lo, hi);
        narrow_range(lo, hi, src, dst, mask);
    }
}

AVX512_CLONES static void mask_range(size_t lo, size_t hi, const bf16 *mask, bf16 *dx) {
    for (size_t i = lo; i < hi; i++) dx[i] = bf16_keep(dx[i], !(bf16_to_f32(mask[i]) <= 0.0f));
}

void cpu_mask_bf16(int threads, size_t n, const uint16_t *mask, uint16_t *dx) {
#pragma omp parallel num_threads(threads) if (n >= PAR_MIN)
    {
        THREAD_RANGE(n, lo, hi);
        mask_range(lo, hi, mask, dx);
    }
}

void cpu_round_bf16(const float *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_round(src[i]);
}

/* One sample's C planes of HW floats into HW pixels of C bf16 values. */
AVX512_CLONES static void nchw_to_nhwc_bf16(const float *src, bf16 *dst, size_t C, size_t hw) {
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

#if defined(__x86_64__)
#include <immintrin.h>

/* The same for 8 channels with AVX512-BF16 (called where c->bf16_dot says the CPU has
 * it; the rounding is the instruction's, which f32_to_bf16 equals): 16 pixels at a
 * time, each channel's 16 floats rounded to 16 bf16 (VCVTNEPS2BF16), then an 8 x 16
 * transpose in two rounds of two-source word permutes (VPERMT2W). */
__attribute__((target("avx512f,avx512bw,avx512bf16"))) static void nchw8_to_nhwc_bf16(const float *src, bf16 *dst,
                                                                                     size_t hw) {
    __m512i lo, hi, first, second;  /* round 1: pixels 0-7 / 8-15 x channels 0-3 (k = 4 p + c) */
    uint16_t l[32], h[32], f[32], g[32];
    for (int k = 0; k < 32; k++) {
        l[k] = (uint16_t)((k % 4) * 16 + k / 4), h[k] = (uint16_t)((k % 4) * 16 + 8 + k / 4);
        int p = k / 8, c = k % 8;  /* round 2: pixels 0-3 / 4-7 x channels 0-7 (k = 8 p + c) */
        f[k] = (uint16_t)(c < 4 ? p * 4 + c : 32 + p * 4 + c - 4), g[k] = (uint16_t)(f[k] + 16);
    }
    lo = _mm512_loadu_si512(l), hi = _mm512_loadu_si512(h), first = _mm512_loadu_si512(f);
    second = _mm512_loadu_si512(g);
    size_t p = 0;
    for (; p + 16 <= hw; p += 16) {
        __m512i pair[4];
        for (int c = 0; c < 8; c += 2) {
            __m256i a = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + c * hw + p));
            __m256i b = (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + (c + 1) * hw + p));
            pair[c / 2] = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
        }
        __m512i q0 = _mm512_permutex2var_epi16(pair[0], lo, pair[1]), q1 = _mm512_permutex2var_epi16(pair[0], hi, pair[1]);
        __m512i r0 = _mm512_permutex2var_epi16(pair[2], lo, pair[3]), r1 = _mm512_permutex2var_epi16(pair[2], hi, pair[3]);
        bf16 *d = dst + p * 8;
        _mm512_storeu_si512(d, _mm512_permutex2var_epi16(q0, first, r0));
        _mm512_storeu_si512(d + 32, _mm512_permutex2var_epi16(q0, second, r0));
        _mm512_storeu_si512(d + 64, _mm512_permutex2var_epi16(q1, first, r1));
        _mm512_storeu_si512(d + 96, _mm512_permutex2var_epi16(q1, second, r1));
    }
    for (; p < hw; p++)
        for (int c = 0; c < 8; c++) dst[p * 8 + c] = f32_to_bf16(src[c * hw + p]);
}
#endif

const uint16_t *cpu_input_bf16(CpuCtx *c, const ConvShape *s, const float *x, int fresh) {
    if (!fresh && c->input_of == x && memcmp(&c->input_shape, s, sizeof *s) == 0) return c->buf[BUF_INPUT_BF16];
    const size_t hw = (size_t)s->in_h * s->in_w, C = (size_t)s->in_c;
    bf16 *dst = cpu_buffer(c, BUF_INPUT_BF16, (size_t)s->n * C * hw * sizeof(bf16));
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
#if defined(__x86_64__)
        if (C == 8 && c->bf16_dot) {
            nchw8_to_nhwc_bf16(x + (size_t)n * C * hw, dst + (size_t)n * C * hw, hw);
            continue;
        }
#endif
        nchw_to_nhwc_bf16(x + (size_t)n * C * hw, dst + (size_t)n * C * hw, C, hw);
    }
    c->input_of = x;
    c->input_shape = *s;
    return dst;
}

/* Our direct convolution forward in the bf16 mode on AVX512-BF16 (built with
 * -mavx512bf16; entered only where the CPU has the instructions, c->bf16_dot): bf16
 * activations and weights, float accumulation by VDPBF16PS (each lane adds the
 * products of a pair of input channels), bias, residual and ReLU in float, the output
 * rounded to bf16 once (VCVTNEPS2BF16). The tile is conv_direct_impl.h's float one with
 * a pair of input channels per tap: NV zmm of 16 output channels times NP output
 * pixels, one weight load per tap and one broadcast of a channel pair per pixel; 32
 * channels x 12 pixels (24 accumulators) where the output channels allow, else 16 x 24.
 * A row's pixels are cut into tiles of nearly equal size (121 = 21 + 5 x 20), so no
 * tile is a leftover of one pixel. Input is NHWC bf16 with an even channel count,
 * copied per sample into a zero-padded buffer. */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

typedef uint16_t bf16;

#define TILE_MAX 24

int conv_direct_bf16_fits(const ConvShape *s) { return s->in_c % 2 == 0 && s->out_c % 16 == 0; }

/* NP pixels x NV vectors of 16 output channels. x: the padded input at the tile's first
 * pixel, kernel row 0 (bf16); step: bf16 values between neighbouring output pixels;
 * row: between input rows; pairs: channel pairs per kernel row (KW * C / 2); w: packed
 * pairs, w[((kh * pairs + t) * OC + oc) * 2 + e] at the tile's first channel. */
static inline __attribute__((always_inline)) void fwd_tile(const int NP, const int NV, const bf16 *x, size_t step,
                                                           size_t row, int KH, int pairs, const bf16 *w, size_t OC,
                                                           const float *bias, const bf16 *res, int relu, bf16 *y) {
    __m512 acc[TILE_MAX][2], b[2];
    for (int v = 0; v < NV; v++) b[v] = bias ? _mm512_loadu_ps(bias + v * 16) : _mm512_setzero_ps();
#pragma GCC unroll 24
    for (int j = 0; j < NP; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = b[v];
    for (int kh = 0; kh < KH; kh++) {
        const bf16 *xr = x + kh * row;
        const bf16 *wr = w + (size_t)kh * pairs * OC * 2;
        for (int t = 0; t < pairs; t++) {
            __m512bh wv[2];
            for (int v = 0; v < NV; v++) wv[v] = (__m512bh)_mm512_loadu_si512(wr + ((size_t)t * OC + v * 16) * 2);
#pragma GCC unroll 24
            for (int j = 0; j < NP; j++) {
                int32_t pair;
                memcpy(&pair, xr + j * step + 2 * t, sizeof pair);
                __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
                for (int v = 0; v < NV; v++) acc[j][v] = _mm512_dpbf16_ps(acc[j][v], wv[v], xb);
            }
        }
    }
    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 24
    for (int j = 0; j < NP; j++)
        for (int v = 0; v < NV; v++) {
            __m512 o = acc[j][v];
            size_t at = j * OC + v * 16;
            if (res) o = _mm512_add_ps(o, _mm512_castsi512_ps(_mm512_slli_epi32(
                                              _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)(res + at))), 16)));
            if (relu) o = _mm512_max_ps(zero, o);  /* keeps a NaN, as PyTorch's ReLU */
            __m256bh r = _mm512_cvtneps_pbh(o);
            _mm256_storeu_si256((void *)(y + at), (__m256i)r);
        }
}

#define TILE_CASE(k, nv) case k: TILE_CALL(k, nv); break;
#define CASES_12(nv) TILE_CASE(12, nv) TILE_CASE(11, nv) TILE_CASE(10, nv) TILE_CASE(9, nv) TILE_CASE(8, nv) \
    TILE_CASE(7, nv) TILE_CASE(6, nv) TILE_CASE(5, nv) TILE_CASE(4, nv) TILE_CASE(3, nv) TILE_CASE(2, nv)
#define CASES_24(nv) TILE_CASE(24, nv) TILE_CASE(23, nv) TILE_CASE(22, nv) TILE_CASE(21, nv) TILE_CASE(20, nv) \
    TILE_CASE(19, nv) TILE_CASE(18, nv) TILE_CASE(17, nv) TILE_CASE(16, nv) TILE_CASE(15, nv) TILE_CASE(14, nv) \
    TILE_CASE(13, nv) CASES_12(nv)

/* One output row: every channel block, the pixels in tiles of nearly equal size. */
static void fwd_row(const bf16 *xp, size_t padded_w, int C, int stride, int KH, int KW, int OW, int OC,
                    const bf16 *wk, const float *bias, const bf16 *res, int relu, bf16 *y) {
    const size_t step = (size_t)stride * C, row = padded_w * C;
    const int pairs = KW * C / 2, nv = OC % 32 == 0 ? 2 : 1, tile = nv == 2 ? 12 : TILE_MAX;
    const int tiles = (OW + tile - 1) / tile;
    for (int oc = 0; oc < OC; oc += nv * 16)
        for (int k = 0, ow = 0; k < tiles; k++) {
            int np = OW / tiles + (k < OW % tiles);
            const bf16 *xt = xp + (size_t)ow * step, *rt = res ? res + (size_t)ow * OC + oc : NULL;
            const bf16 *wt = wk + (size_t)oc * 2;
            const float *bt = bias ? bias + oc : NULL;
            bf16 *yt = y + (size_t)ow * OC + oc;
#define TILE_CALL(k, nv) fwd_tile(k, nv, xt, step, row, KH, pairs, wt, OC, bt, rt, relu, yt)
            if (nv == 2) {
                switch (np) { CASES_12(2) default: TILE_CALL(1, 2); }
            } else {
                switch (np) { CASES_24(1) default: TILE_CALL(1, 1); }
            }
#undef TILE_CALL
            ow += np;
        }
}

/* wk[((kh * KW + kw) * IC / 2 + cp) * OC * 2 + oc * 2 + e] = w[oc][2 cp + e][kh][kw], rounded */
static void pack_weights(const ConvShape *s, const float *w, bf16 *wk) {
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w;
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++) {
                    size_t at = ((((size_t)kh * KW + kw) * IC / 2 + ic / 2) * OC + oc) * 2 + ic % 2;
                    __m128bh r = _mm_cvtneps_pbh(_mm_set1_ps(w[(((size_t)oc * IC + ic) * KH + kh) * KW + kw]));
                    memcpy(wk + at, &r, sizeof(bf16));
                }
}

int conv_direct_bf16_forward(CpuCtx *c, const ConvShape *s, const uint16_t *x, const float *w, const float *b,
                             const uint16_t *residual, int relu, uint16_t *y) {
    if (!c->bf16_dot || !conv_direct_bf16_fits(s)) return -1;
    const int IC = s->in_c, OC = s->out_c;
    bf16 *wk = (bf16 *)cpu_shared(c, ((size_t)s->k_h * s->k_w * IC * OC + 1) / 2);
    pack_weights(s, w, wk);
    const size_t ph = (size_t)s->in_h + 2 * s->pad, pw = (size_t)s->in_w + 2 * s->pad;
    const size_t in_n = (size_t)IC * s->in_h * s->in_w, out_n = (size_t)s->out_h * s->out_w * OC;
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
        bf16 *xp = (bf16 *)cpu_scratch(c, omp_get_thread_num(), (ph * pw * IC + 1) / 2);
        memset(xp, 0, sizeof(bf16) * ph * pw * IC);
        for (int ih = 0; ih < s->in_h; ih++)
            memcpy(xp + ((ih + s->pad) * pw + s->pad) * IC, x + n * in_n + (size_t)ih * s->in_w * IC,
                   sizeof(bf16) * s->in_w * IC);
        for (int oh = 0; oh < s->out_h; oh++) {
            size_t o = n * out_n + (size_t)oh * s->out_w * OC;
            fwd_row(xp + (size_t)oh * s->stride * pw * IC, pw, IC, s->stride, s->k_h, s->k_w, s->out_w, OC, wk, b,
                    residual ? residual + o : NULL, relu, y + o);
        }
    }
    return 0;
}

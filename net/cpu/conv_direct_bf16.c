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
            const bf16 *xt = xr + 2 * t;
            size_t st = step;
            __asm__("" : "+r"(st));  /* the pixels' addresses from one base each tap, not 24 kept in registers */
#pragma GCC unroll 24
            for (int j = 0; j < NP; j++) {
                int32_t pair;
                memcpy(&pair, xt + j * st, sizeof pair);
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

/* ---- backward filter ---- */

/* Filter tile: NT taps x NV vectors of 16 output channels, summed over the output pixel
 * pairs of rows [r0, r1) and added to part[t * OC + lane]. xq: the sample's padded input
 * with each value paired with the one `stride` columns to its right (xq_row bf16 a
 * row); dq: its output gradient with each pixel paired with its right neighbour (OWP
 * pairs a row). Each lane adds a pixel pair's two products at once (VDPBF16PS). */
static inline __attribute__((always_inline)) void filt_tile(const int NT, const int NV, const bf16 *xq, size_t xq_row,
                                                            int stride, int C, int kh, int t0, const bf16 *dq, int OWP,
                                                            int OC, int r0, int r1, float *part) {
    __m512 acc[TILE_MAX][2];
#pragma GCC unroll 24
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = _mm512_setzero_ps();
    const size_t pair_step = (size_t)2 * stride * C * 2;  /* bf16 from one pixel pair's column to the next's */
    for (int oh = r0; oh < r1; oh++) {
        const bf16 *xr = xq + (size_t)(oh * stride + kh) * xq_row + (size_t)t0 * 2;
        const bf16 *dr = dq + (size_t)oh * OWP * OC * 2;
        for (int q = 0; q < OWP; q++) {
            __m512bh d[2];
            for (int v = 0; v < NV; v++) d[v] = (__m512bh)_mm512_loadu_si512(dr + ((size_t)q * OC + v * 16) * 2);
            const bf16 *xt = xr + q * pair_step;
#pragma GCC unroll 24
            for (int j = 0; j < NT; j++) {
                int32_t pair;
                memcpy(&pair, xt + 2 * j, sizeof pair);
                __m512bh xb = (__m512bh)_mm512_set1_epi32(pair);
                for (int v = 0; v < NV; v++) acc[j][v] = _mm512_dpbf16_ps(acc[j][v], d[v], xb);
            }
        }
    }
#pragma GCC unroll 24
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < NV; v++) {
            float *pj = part + (size_t)j * OC + v * 16;
            _mm512_storeu_ps(pj, _mm512_add_ps(_mm512_loadu_ps(pj), acc[j][v]));
        }
}

/* xq[ih][iw][c] = (x at (ih, iw), x at (ih, iw + stride)) of the zero-padded sample x
 * (NHWC, C channels), dq[oh][q][oc] = (dy at (oh, 2q), at (oh, 2q + 1)), zero past the
 * row: each pair one 32-bit word (low half first), so the loops vectorise. prow: room
 * for one padded input row and `stride` more pixels. */
static void pair_sample(const ConvShape *s, const bf16 *x, const bf16 *dy, uint32_t *xq, uint32_t *dq, int OWP,
                        bf16 *prow) {
    const int C = s->in_c, OC = s->out_c, pw = s->in_w + 2 * s->pad;
    const size_t row = (size_t)pw * C, shift = (size_t)s->stride * C;
    memset(xq, 0, sizeof(uint32_t) * row * s->pad);  /* the padding rows above and below */
    memset(xq + row * (s->pad + s->in_h), 0, sizeof(uint32_t) * row * s->pad);
    memset(prow, 0, sizeof(bf16) * (row + shift));
    for (int ih = 0; ih < s->in_h; ih++) {
        memcpy(prow + (size_t)s->pad * C, x + (size_t)ih * s->in_w * C, sizeof(bf16) * s->in_w * C);
        uint32_t *q = xq + (size_t)(ih + s->pad) * row;
        for (size_t k = 0; k < row; k++) q[k] = prow[k] | (uint32_t)prow[k + shift] << 16;
    }
    for (int oh = 0; oh < s->out_h; oh++) {
        const bf16 *d = dy + (size_t)oh * s->out_w * OC;
        uint32_t *q = dq + (size_t)oh * OWP * OC;
        for (int p = 0; p < s->out_w / 2; p++)
            for (int oc = 0; oc < OC; oc++)
                q[p * OC + oc] = d[2 * p * OC + oc] | (uint32_t)d[(2 * p + 1) * OC + oc] << 16;
        if (s->out_w % 2)
            for (int oc = 0; oc < OC; oc++) q[(size_t)(OWP - 1) * OC + oc] = d[(size_t)(s->out_w - 1) * OC + oc];
    }
}

/* bias[oc] += the sum over the sample's pixels of dy, widened: float sums in pixel order */
static void bias_sums(const bf16 *dy, size_t pixels, int OC, float *bias) {
    for (size_t p = 0; p < pixels; p++)
        for (int oc = 0; oc < OC; oc++) {
            uint32_t u = (uint32_t)dy[p * OC + oc] << 16;
            float f;
            memcpy(&f, &u, sizeof f);
            bias[oc] += f;
        }
}

/* One sample's partial sums: pn[(kh * KW * C + tap) * OC + oc], then the bias's OC */
static void filt_sample(const ConvShape *s, const bf16 *xq, const bf16 *dq, const bf16 *dy, int OWP, float *pn) {
    const int C = s->in_c, OC = s->out_c, span = s->k_w * C, nv = OC % 32 == 0 ? 2 : 1;
    const int tile = nv == 2 ? 12 : TILE_MAX, tiles = (span + tile - 1) / tile;
    const size_t xq_row = (size_t)2 * (s->in_w + 2 * s->pad) * C, K = (size_t)s->k_h * span;
    int rows = 16384 / (OWP * OC * 4);  /* the rows of dq that every tap tile reads again: about 16 KiB */
    if (rows < 1) rows = 1;
    memset(pn, 0, sizeof(float) * (K * OC + OC));
    for (int r0 = 0; r0 < s->out_h; r0 += rows) {
        int r1 = r0 + rows < s->out_h ? r0 + rows : s->out_h;
        for (int oc = 0; oc < OC; oc += nv * 16)
            for (int kh = 0; kh < s->k_h; kh++)
                for (int k = 0, t = 0; k < tiles; k++) {
                    int nt = span / tiles + (k < span % tiles);
                    float *pt = pn + ((size_t)kh * span + t) * OC + oc;
                    const bf16 *d = dq + (size_t)oc * 2;
#define TILE_CALL(k, nv) filt_tile(k, nv, xq, xq_row, s->stride, C, kh, t, d, OWP, OC, r0, r1, pt)
                    if (nv == 2) {
                        switch (nt) { CASES_12(2) default: TILE_CALL(1, 2); }
                    } else {
                        switch (nt) { CASES_24(1) default: TILE_CALL(1, 1); }
                    }
#undef TILE_CALL
                    t += nt;
                }
    }
    bias_sums(dy, (size_t)s->out_h * s->out_w, OC, pn + K * OC);
}

int conv_direct_bf16_backward_filter(CpuCtx *c, const ConvShape *s, const uint16_t *x, const uint16_t *dy,
                                     float *dw, float *db) {
    if (!c->bf16_dot || !conv_direct_bf16_fits(s)) return -1;
    const int C = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w, OWP = (s->out_w + 1) / 2;
    const size_t K = (size_t)KH * KW * C, per = K * OC + OC;
    const size_t xq_n = (size_t)2 * (s->in_h + 2 * s->pad) * (s->in_w + 2 * s->pad) * C;
    const size_t dq_n = (size_t)2 * s->out_h * OWP * OC, prow_n = (size_t)(s->in_w + 2 * s->pad + s->stride) * C;
    float *part = cpu_shared(c, per * s->n + K * OC), *dwk = part + per * s->n;
    const size_t in_n = (size_t)C * s->in_h * s->in_w, out_n = (size_t)s->out_h * s->out_w * OC;
#pragma omp parallel num_threads(c->threads)
    {
#pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++) {
            bf16 *xq = (bf16 *)cpu_scratch(c, omp_get_thread_num(), (xq_n + dq_n + prow_n + 1) / 2);
            bf16 *dq = xq + xq_n;
            pair_sample(s, x + n * in_n, dy + n * out_n, (uint32_t *)xq, (uint32_t *)dq, OWP, dq + dq_n);
            filt_sample(s, xq, dq, dy + n * out_n, OWP, part + per * n);
        }
        cpu_sum_partials(part, s->n, per, K * OC, dwk, db);  /* in sample order */
    }
    /* dwk[(kh * KW + kw) * C + c][oc] -> dw[oc][c][kh][kw] */
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < C; ic++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    dw[(((size_t)oc * C + ic) * KH + kh) * KW + kw] = dwk[(((size_t)kh * KW + kw) * C + ic) * OC + oc];
    return 0;
}

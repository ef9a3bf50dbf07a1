/* Direct convolutions for AVX2 + FMA. This file is compiled with -mavx2 -mfma and is
 * entered only after conv_direct_supported() (cpu_backend.c) saw both at run time.
 *
 * One register tile serves all three passes: 16 output channels (two ymm vectors)
 * times 6 output pixels (forward, backward data) or 6 input taps (backward filter):
 * 12 accumulators + 2 vectors + 1 broadcast = 15 of the 16 ymm registers, and 8 loads
 * per 12 FMAs, so the tile is bound by the FMA units, not by loads.
 *
 * Input is first copied into a zero-padded NHWC buffer per sample (also turning the
 * network's NCHW input into NHWC), so the tiles never test borders. Backward data is
 * the forward tile run over the zero-dilated, padded output gradient with flipped,
 * transposed weights. Backward filter keeps per-sample partial sums and reduces them
 * in sample order, so results do not depend on the number of threads. */
#include <immintrin.h>
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"

#define TILE 6     /* pixels (forward) or taps (filter) per tile */
#define CHUNK 16   /* output channels per tile */

typedef struct {
    int h, w, c;   /* padded buffer: h x w pixels of c channels */
} Padded;

/* Copies one sample into xp (NHWC, zero border): the sample's pixel (ih, iw) lands at
 * (top + ih * dil, left + iw * dil); dil > 1 spreads pixels apart (backward data of a
 * strided conv). */
static void pad_sample(const float *x, Layout lay, int C, int H, int W, const Padded *p, int top,
                       int left, int dil, float *xp) {
    memset(xp, 0, sizeof(float) * (size_t)p->h * p->w * p->c);
    for (int ih = 0; ih < H; ih++) {
        float *row = xp + ((size_t)(top + ih * dil) * p->w + left) * C;
        if (lay == LAYOUT_NHWC && dil == 1) {
            memcpy(row, x + (size_t)ih * W * C, sizeof(float) * (size_t)W * C);
        } else if (lay == LAYOUT_NHWC) {
            for (int iw = 0; iw < W; iw++)
                memcpy(row + (size_t)iw * dil * C, x + ((size_t)ih * W + iw) * C,
                       sizeof(float) * C);
        } else {
            for (int c = 0; c < C; c++) {
                const float *src = x + ((size_t)c * H + ih) * W;
                for (int iw = 0; iw < W; iw++) row[(size_t)iw * dil * C + c] = src[iw];
            }
        }
    }
}

/* Forward tile: NP output pixels x 16 channels.
 * x: padded input at the tile's first pixel, kernel row 0; step: floats between
 * neighbouring output pixels; row: floats between input rows; span = KW * C taps per
 * kernel row (contiguous in NHWC); w: packed weights w[(kh * span + t) * ldw + lane]
 * at the tile's first channel. */
static inline __attribute__((always_inline)) void fwd_tile(
    const int NP, const float *x, size_t step, size_t row, int KH, int span, const float *w,
    size_t ldw, const float *bias, const float *res, const float *mask, size_t ldy, int relu,
    float *y) {
    __m256 acc[TILE][2];
    __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
    __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++) {
        acc[j][0] = b0;
        acc[j][1] = b1;
    }
    for (int kh = 0; kh < KH; kh++) {
        const float *xr = x + kh * row;
        const float *wr = w + (size_t)kh * span * ldw;
        for (int t = 0; t < span; t++) {
            __m256 w0 = _mm256_loadu_ps(wr + t * ldw);
            __m256 w1 = _mm256_loadu_ps(wr + t * ldw + 8);
#pragma GCC unroll 6
            for (int j = 0; j < NP; j++) {
                __m256 xb = _mm256_broadcast_ss(xr + j * step + t);
                acc[j][0] = _mm256_fmadd_ps(xb, w0, acc[j][0]);
                acc[j][1] = _mm256_fmadd_ps(xb, w1, acc[j][1]);
            }
        }
    }
    const __m256 zero = _mm256_setzero_ps();
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++) {
        __m256 v0 = acc[j][0], v1 = acc[j][1];
        if (res) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(res + j * ldy));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(res + j * ldy + 8));
        }
        if (relu) {  /* max(0, v) keeps a NaN, as PyTorch's ReLU does */
            v0 = _mm256_max_ps(zero, v0);
            v1 = _mm256_max_ps(zero, v1);
        }
        if (mask) {  /* keep where !(mask <= 0), as PyTorch's threshold backward */
            v0 = _mm256_and_ps(v0, _mm256_cmp_ps(_mm256_loadu_ps(mask + j * ldy), zero, _CMP_NLE_UQ));
            v1 = _mm256_and_ps(v1, _mm256_cmp_ps(_mm256_loadu_ps(mask + j * ldy + 8), zero, _CMP_NLE_UQ));
        }
        _mm256_storeu_ps(y + j * ldy, v0);
        _mm256_storeu_ps(y + j * ldy + 8, v1);
    }
}

/* One output row of a stride-`stride` convolution over a padded sample: all channel
 * chunks, all pixel tiles. */
static void fwd_row(const float *xp, const Padded *p, int stride, int KH, int KW, int OW,
                    int OC, const float *wk, const float *bias, const float *res,
                    const float *mask, int relu, float *y) {
    size_t step = (size_t)stride * p->c, row = (size_t)p->w * p->c;
    int span = KW * p->c;
    for (int oc = 0; oc < OC; oc += CHUNK) {
        const float *b = bias ? bias + oc : NULL;
        for (int ow = 0; ow < OW; ow += TILE) {
            const float *xt = xp + (size_t)ow * step;
            const float *rt = res ? res + (size_t)ow * OC + oc : NULL;
            const float *mt = mask ? mask + (size_t)ow * OC + oc : NULL;
            float *yt = y + (size_t)ow * OC + oc;
            switch (OW - ow < TILE ? OW - ow : TILE) {
            case 6: fwd_tile(6, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            case 5: fwd_tile(5, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            case 4: fwd_tile(4, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            case 3: fwd_tile(3, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            case 2: fwd_tile(2, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            default: fwd_tile(1, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt); break;
            }
        }
    }
}

int conv_direct_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                        const float *w, const float *b, const float *residual, int relu,
                        float *y) {
    if (s->out_c % CHUNK) return -1;
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w;
    /* wk[((kh * KW + kw) * IC + ic) * OC + oc] = w[oc][ic][kh][kw] */
    float *wk = cpu_shared(c, (size_t)KH * KW * IC * OC);
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    wk[(((size_t)kh * KW + kw) * IC + ic) * OC + oc] =
                        w[(((size_t)oc * IC + ic) * KH + kh) * KW + kw];
    const Padded p = {s->in_h + 2 * s->pad, s->in_w + 2 * s->pad, IC};
    const size_t in_n = (size_t)IC * s->in_h * s->in_w, out_n = (size_t)s->out_h * s->out_w * OC;
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
        float *xp = cpu_scratch(c, omp_get_thread_num(), (size_t)p.h * p.w * p.c);
        pad_sample(x + n * in_n, lay, IC, s->in_h, s->in_w, &p, s->pad, s->pad, 1, xp);
        for (int oh = 0; oh < s->out_h; oh++) {
            size_t o = n * out_n + (size_t)oh * s->out_w * OC;
            fwd_row(xp + (size_t)oh * s->stride * p.w * IC, &p, s->stride, KH, KW, s->out_w, OC,
                    wk, b, residual ? residual + o : NULL, NULL, relu, y + o);
        }
    }
    return 0;
}

/* dx = a stride-1 convolution of the zero-dilated output gradient, padded by k - 1 - pad
 * (more at the bottom/right when the strided conv dropped input rows), with the kernel
 * flipped and in/out channels swapped. */
int conv_direct_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                              const float *mask, float *dx) {
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w, st = s->stride;
    if (IC % CHUNK || s->pad > KH - 1 || s->pad > KW - 1) return -1;
    /* wf[((kh * KW + kw) * OC + oc) * IC + ic] = w[oc][ic][KH-1-kh][KW-1-kw] */
    float *wf = cpu_shared(c, (size_t)KH * KW * IC * OC);
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    wf[(((size_t)(KH - 1 - kh) * KW + (KW - 1 - kw)) * OC + oc) * IC + ic] =
                        w[(((size_t)oc * IC + ic) * KH + kh) * KW + kw];
    const Padded p = {s->in_h + KH - 1, s->in_w + KW - 1, OC};
    const int top = KH - 1 - s->pad, left = KW - 1 - s->pad;
    const size_t in_n = (size_t)IC * s->in_h * s->in_w, out_n = (size_t)s->out_h * s->out_w * OC;
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
        float *gp = cpu_scratch(c, omp_get_thread_num(), (size_t)p.h * p.w * p.c);
        pad_sample(dy + n * out_n, LAYOUT_NHWC, OC, s->out_h, s->out_w, &p, top, left, st, gp);
        for (int ih = 0; ih < s->in_h; ih++) {
            size_t o = n * in_n + (size_t)ih * s->in_w * IC;
            fwd_row(gp + (size_t)ih * p.w * OC, &p, 1, KH, KW, s->in_w, IC, wf, NULL, NULL,
                    mask ? mask + o : NULL, 0, dx + o);
        }
    }
    return 0;
}

/* Filter tile: NT taps x 16 output channels, summed over the output pixels of rows
 * [r0, r1). acc lives in registers and is added to part[t * OC + lane] at the end. */
static inline __attribute__((always_inline)) void filt_tile(
    const int NT, const float *xp, const Padded *p, int stride, int kh, int t0, const float *dy,
    int OW, int OC, int r0, int r1, float *part) {
    __m256 acc[TILE][2];
#pragma GCC unroll 6
    for (int j = 0; j < NT; j++) {
        acc[j][0] = _mm256_setzero_ps();
        acc[j][1] = _mm256_setzero_ps();
    }
    const size_t step = (size_t)stride * p->c;
    for (int oh = r0; oh < r1; oh++) {
        const float *xr = xp + ((size_t)(oh * stride + kh) * p->w) * p->c + t0;
        const float *dr = dy + (size_t)oh * OW * OC;
        for (int ow = 0; ow < OW; ow++) {
            __m256 d0 = _mm256_loadu_ps(dr + (size_t)ow * OC);
            __m256 d1 = _mm256_loadu_ps(dr + (size_t)ow * OC + 8);
            const float *xt = xr + ow * step;
#pragma GCC unroll 6
            for (int j = 0; j < NT; j++) {
                __m256 xb = _mm256_broadcast_ss(xt + j);
                acc[j][0] = _mm256_fmadd_ps(xb, d0, acc[j][0]);
                acc[j][1] = _mm256_fmadd_ps(xb, d1, acc[j][1]);
            }
        }
    }
#pragma GCC unroll 6
    for (int j = 0; j < NT; j++) {
        float *pj = part + (size_t)j * OC;
        _mm256_storeu_ps(pj, _mm256_add_ps(_mm256_loadu_ps(pj), acc[j][0]));
        _mm256_storeu_ps(pj + 8, _mm256_add_ps(_mm256_loadu_ps(pj + 8), acc[j][1]));
    }
}

int conv_direct_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                                const float *dy, float *dw, float *db) {
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w, OW = s->out_w;
    if (OC % CHUNK) return -1;
    const int span = KW * IC;
    const size_t K = (size_t)KH * span, per = K * OC + OC;
    float *part = cpu_shared(c, per * s->n + K * OC);
    float *dwk = part + per * s->n;
    const Padded p = {s->in_h + 2 * s->pad, s->in_w + 2 * s->pad, IC};
    const size_t in_n = (size_t)IC * s->in_h * s->in_w, out_n = (size_t)s->out_h * OW * OC;
    /* rows per pass: keep the rows of dy being reused by every tap tile near 16 KiB */
    int rows = 4096 / (OW * CHUNK);
    if (rows < 1) rows = 1;
#pragma omp parallel num_threads(c->threads)
    {
#pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++) {
            float *xp = cpu_scratch(c, omp_get_thread_num(), (size_t)p.h * p.w * p.c);
            pad_sample(x + n * in_n, lay, IC, s->in_h, s->in_w, &p, s->pad, s->pad, 1, xp);
            float *pn = part + per * n;
            const float *dyn = dy + n * out_n;
            memset(pn, 0, sizeof(float) * per);
            for (int r0 = 0; r0 < s->out_h; r0 += rows) {
                int r1 = r0 + rows < s->out_h ? r0 + rows : s->out_h;
                for (int oc = 0; oc < OC; oc += CHUNK)
                    for (int kh = 0; kh < KH; kh++)
                        for (int t = 0; t < span; t += TILE) {
                            float *pt = pn + ((size_t)kh * span + t) * OC + oc;
                            const float *d = dyn + oc;
                            switch (span - t < TILE ? span - t : TILE) {
                            case 6: filt_tile(6, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            case 5: filt_tile(5, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            case 4: filt_tile(4, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            case 3: filt_tile(3, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            case 2: filt_tile(2, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            default: filt_tile(1, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt); break;
                            }
                        }
            }
            float *pb = pn + K * OC;
            for (size_t q = 0; q < (size_t)s->out_h * OW; q++)
                for (int oc = 0; oc < OC; oc++) pb[oc] += dyn[q * OC + oc];
        }
        cpu_sum_partials(part, s->n, per, K * OC, dwk, db);
    }
    /* dwk[(kh * KW + kw) * IC + ic][oc] -> dw[oc][ic][kh][kw] */
    for (int oc = 0; oc < OC; oc++)
        for (int ic = 0; ic < IC; ic++)
            for (int kh = 0; kh < KH; kh++)
                for (int kw = 0; kw < KW; kw++)
                    dw[(((size_t)oc * IC + ic) * KH + kh) * KW + kw] =
                        dwk[(((size_t)kh * KW + kw) * IC + ic) * OC + oc];
    return 0;
}

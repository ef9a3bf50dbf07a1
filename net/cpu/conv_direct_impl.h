/* Direct convolutions, written once for a vector width and compiled twice:
 * conv_direct_avx2.c (-mavx2 -mfma, 8-float ymm vectors) and conv_direct_avx512.c
 * (-mavx512f, 16-float zmm vectors); conv_direct.c enters one of them after
 * conv_direct_supported() saw the CPU's support at run time. Includers define
 * DIRECT_BITS (256 or 512) and DIRECT_NAME(f), the name of f for that width.
 *
 * One register tile serves all three passes: NV vectors of output channels times TILE
 * output pixels (forward, backward data) or TILE input taps (backward filter). AVX2: 16
 * channels (2 ymm) x 6 = 12 accumulators + 2 weight vectors + 1 broadcast = 15 of the
 * 16 ymm registers, 8 loads per 12 FMAs. AVX-512: 32 channels (2 zmm) x 12 = 24 of its
 * 32 registers where the channel count allows (14 loads per 24 FMAs), else 16 channels
 * (1 zmm) x 12 (13 loads per 12 FMAs; broadcasts are cheap loads).
 *
 * Every output (or weight-gradient) element is summed in the same order at either
 * width: a lane accumulates its own channel over the same sequence of taps (or pixels,
 * in the same row blocks), whatever the tile. So the two widths give bitwise the same
 * results.
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

#define CHUNK 16   /* the channel count must be a multiple of this (conv_direct_fits) */

#if DIRECT_BITS == 512
typedef __m512 vec;
#define VL 16
#define TILE 12
#define vload _mm512_loadu_ps
#define vstore _mm512_storeu_ps
#define vbcast(p) _mm512_set1_ps(*(p))
#define vfma _mm512_fmadd_ps
#define vadd _mm512_add_ps
#define vmax _mm512_max_ps
#define vzero _mm512_setzero_ps
/* v where !(m <= 0) (a NaN in m keeps v), else 0 */
#define vkeep(v, m) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m, vzero(), _CMP_NLE_UQ), v)
#elif DIRECT_BITS == 256
typedef __m256 vec;
#define VL 8
#define TILE 6
#define vload _mm256_loadu_ps
#define vstore _mm256_storeu_ps
#define vbcast(p) _mm256_broadcast_ss(p)
#define vfma _mm256_fmadd_ps
#define vadd _mm256_add_ps
#define vmax _mm256_max_ps
#define vzero _mm256_setzero_ps
#define vkeep(v, m) _mm256_and_ps(v, _mm256_cmp_ps(m, vzero(), _CMP_NLE_UQ))
#else
#error "define DIRECT_BITS as 256 or 512"
#endif
/* A tile is NV vectors of channels: 2 (32 channels with AVX-512, where the channel
 * count allows; 16 with AVX2), else 1 (16 channels with AVX-512). */
#define NV_MAX 2
static inline int tile_vectors(int channels) {
    return channels % (NV_MAX * VL) == 0 ? NV_MAX : CHUNK / VL;
}

/* switch (k) over k = TILE .. 1 and nv = 2 or 1, calling TILE_CALL(constant k, constant nv) */
#define TILE_CASE(k, nv) case k: TILE_CALL(k, nv); break;
#if TILE == 12
#define TILE_SWITCH_NV(k, nv) switch (k) { TILE_CASE(12, nv) TILE_CASE(11, nv) TILE_CASE(10, nv) \
    TILE_CASE(9, nv) TILE_CASE(8, nv) TILE_CASE(7, nv) TILE_CASE(6, nv) TILE_CASE(5, nv) \
    TILE_CASE(4, nv) TILE_CASE(3, nv) TILE_CASE(2, nv) default: TILE_CALL(1, nv); }
#else
#define TILE_SWITCH_NV(k, nv) switch (k) { TILE_CASE(6, nv) TILE_CASE(5, nv) TILE_CASE(4, nv) \
    TILE_CASE(3, nv) TILE_CASE(2, nv) default: TILE_CALL(1, nv); }
#endif
#if CHUNK / VL == NV_MAX
#define TILE_SWITCH(k, nv) TILE_SWITCH_NV(k, NV_MAX)
#else
#define TILE_SWITCH(k, nv) if (nv == NV_MAX) { TILE_SWITCH_NV(k, NV_MAX) } else { TILE_SWITCH_NV(k, 1) }
#endif

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

/* Forward tile: NP output pixels x NV vectors of channels.
 * x: padded input at the tile's first pixel, kernel row 0; step: floats between
 * neighbouring output pixels; row: floats between input rows; span = KW * C taps per
 * kernel row (contiguous in NHWC); w: packed weights w[(kh * span + t) * ldw + lane]
 * at the tile's first channel. */
static inline __attribute__((always_inline)) void fwd_tile(
    const int NP, const int NV, const float *x, size_t step, size_t row, int KH, int span, const float *w,
    size_t ldw, const float *bias, const float *res, const float *mask, size_t ldy, int relu,
    float *y) {
    vec acc[TILE][NV_MAX], b[NV_MAX];
    for (int v = 0; v < NV; v++) b[v] = bias ? vload(bias + v * VL) : vzero();
#pragma GCC unroll 12
    for (int j = 0; j < NP; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = b[v];
    for (int kh = 0; kh < KH; kh++) {
        const float *xr = x + kh * row;
        const float *wr = w + (size_t)kh * span * ldw;
        for (int t = 0; t < span; t++) {
            vec wv[NV_MAX];
            for (int v = 0; v < NV; v++) wv[v] = vload(wr + t * ldw + v * VL);
#pragma GCC unroll 12
            for (int j = 0; j < NP; j++) {
                vec xb = vbcast(xr + j * step + t);
                for (int v = 0; v < NV; v++) acc[j][v] = vfma(xb, wv[v], acc[j][v]);
            }
        }
    }
    const vec zero = vzero();
#pragma GCC unroll 12
    for (int j = 0; j < NP; j++)
        for (int v = 0; v < NV; v++) {
            vec o = acc[j][v];
            size_t at = j * ldy + v * VL;
            if (res) o = vadd(o, vload(res + at));
            if (relu) o = vmax(zero, o);  /* max(0, v) keeps a NaN, as PyTorch's ReLU does */
            if (mask) o = vkeep(o, vload(mask + at));  /* as PyTorch's threshold backward */
            vstore(y + at, o);
        }
}

/* One output row of a stride-`stride` convolution over a padded sample: all channel
 * chunks, all pixel tiles. */
static void fwd_row(const float *xp, const Padded *p, int stride, int KH, int KW, int OW,
                    int OC, const float *wk, const float *bias, const float *res,
                    const float *mask, int relu, float *y) {
    size_t step = (size_t)stride * p->c, row = (size_t)p->w * p->c;
    int span = KW * p->c;
    const int nv = tile_vectors(OC);
    for (int oc = 0; oc < OC; oc += nv * VL) {
        const float *b = bias ? bias + oc : NULL;
        for (int ow = 0; ow < OW; ow += TILE) {
            const float *xt = xp + (size_t)ow * step;
            const float *rt = res ? res + (size_t)ow * OC + oc : NULL;
            const float *mt = mask ? mask + (size_t)ow * OC + oc : NULL;
            float *yt = y + (size_t)ow * OC + oc;
#define TILE_CALL(k, nv) fwd_tile(k, nv, xt, step, row, KH, span, wk + oc, OC, b, rt, mt, OC, relu, yt)
            TILE_SWITCH(OW - ow < TILE ? OW - ow : TILE, nv)
#undef TILE_CALL
        }
    }
}

int DIRECT_NAME(conv_direct_forward)(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                        const float *w, const float *b, const float *residual, int relu,
                        float *y) {
    if (!conv_direct_fits(s, CONV_FWD)) return -1;
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
int DIRECT_NAME(conv_direct_backward_data)(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                              const float *mask, float *dx) {
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w, st = s->stride;
    if (!conv_direct_fits(s, CONV_BWD_DATA)) return -1;
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
    const int NT, const int NV, const float *xp, const Padded *p, int stride, int kh, int t0, const float *dy,
    int OW, int OC, int r0, int r1, float *part) {
    vec acc[TILE][NV_MAX];
#pragma GCC unroll 12
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < NV; v++) acc[j][v] = vzero();
    const size_t step = (size_t)stride * p->c;
    for (int oh = r0; oh < r1; oh++) {
        const float *xr = xp + ((size_t)(oh * stride + kh) * p->w) * p->c + t0;
        const float *dr = dy + (size_t)oh * OW * OC;
        for (int ow = 0; ow < OW; ow++) {
            vec d[NV_MAX];
            for (int v = 0; v < NV; v++) d[v] = vload(dr + (size_t)ow * OC + v * VL);
            const float *xt = xr + ow * step;
#pragma GCC unroll 12
            for (int j = 0; j < NT; j++) {
                vec xb = vbcast(xt + j);
                for (int v = 0; v < NV; v++) acc[j][v] = vfma(xb, d[v], acc[j][v]);
            }
        }
    }
#pragma GCC unroll 12
    for (int j = 0; j < NT; j++)
        for (int v = 0; v < NV; v++) {
            float *pj = part + (size_t)j * OC + v * VL;
            vstore(pj, vadd(vload(pj), acc[j][v]));
        }
}

int DIRECT_NAME(conv_direct_backward_filter)(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                                const float *dy, float *dw, float *db) {
    const int IC = s->in_c, OC = s->out_c, KH = s->k_h, KW = s->k_w, OW = s->out_w;
    if (!conv_direct_fits(s, CONV_BWD_FILTER)) return -1;
    const int span = KW * IC;
    const size_t K = (size_t)KH * span, per = K * OC + OC;
    float *part = cpu_shared(c, per * s->n + K * OC);
    float *dwk = part + per * s->n;
    const Padded p = {s->in_h + 2 * s->pad, s->in_w + 2 * s->pad, IC};
    const size_t in_n = (size_t)IC * s->in_h * s->in_w, out_n = (size_t)s->out_h * OW * OC;
    /* rows per pass: keep the rows of dy being reused by every tap tile near 16 KiB */
    int rows = 4096 / (OW * CHUNK);  /* CHUNK, not the tile: the same sums at every width */
    if (rows < 1) rows = 1;
    const int nv = tile_vectors(OC);
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
                for (int oc = 0; oc < OC; oc += nv * VL)
                    for (int kh = 0; kh < KH; kh++)
                        for (int t = 0; t < span; t += TILE) {
                            float *pt = pn + ((size_t)kh * span + t) * OC + oc;
                            const float *d = dyn + oc;
#define TILE_CALL(k, nv) filt_tile(k, nv, xp, &p, s->stride, kh, t, d, OW, OC, r0, r1, pt)
                            TILE_SWITCH(span - t < TILE ? span - t : TILE, nv)
#undef TILE_CALL
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

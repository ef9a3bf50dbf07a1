/* Convolution as im2col + SGEMM (OpenBLAS), one sample per OpenMP iteration.
 * The portable path: every shape, every CPU. The column matrix of a sample is
 * col[p][(kh * KW + kw) * C + c] for output pixel p; weights are repacked from OIHW
 * to wr[o][(kh * KW + kw) * C + c] so that y = col * wr^T. */
#include <omp.h>
#include <string.h>

#include "cpu_internal.h"
#include "sgemm.h"

static size_t col_k(const ConvShape *s) { return (size_t)s->k_h * s->k_w * s->in_c; }
static size_t out_pixels(const ConvShape *s) { return (size_t)s->out_h * s->out_w; }
static size_t in_floats(const ConvShape *s) { return (size_t)s->in_c * s->in_h * s->in_w; }
static size_t out_floats(const ConvShape *s) { return out_pixels(s) * s->out_c; }

static void im2col(const ConvShape *s, Layout lay, const float *x, float *col) {
    size_t K = col_k(s);
    for (int oh = 0; oh < s->out_h; oh++)
        for (int ow = 0; ow < s->out_w; ow++) {
            float *row = col + ((size_t)oh * s->out_w + ow) * K;
            for (int kh = 0; kh < s->k_h; kh++) {
                int ih = oh * s->stride - s->pad + kh;
                for (int kw = 0; kw < s->k_w; kw++) {
                    int iw = ow * s->stride - s->pad + kw;
                    float *dst = row + ((size_t)kh * s->k_w + kw) * s->in_c;
                    if (ih < 0 || ih >= s->in_h || iw < 0 || iw >= s->in_w)
                        memset(dst, 0, sizeof(float) * s->in_c);
                    else if (lay == LAYOUT_NHWC)
                        memcpy(dst, x + ((size_t)ih * s->in_w + iw) * s->in_c,
                               sizeof(float) * s->in_c);
                    else
                        for (int c = 0; c < s->in_c; c++)
                            dst[c] = conv_input_at(x, lay, c, ih, iw, s->in_c, s->in_h, s->in_w);
                }
            }
        }
}

/* dx (NHWC, one sample) = sum of the column rows scattered back to their pixels */
static void col2im(const ConvShape *s, const float *col, float *dx) {
    size_t K = col_k(s);
    memset(dx, 0, sizeof(float) * in_floats(s));
    for (int oh = 0; oh < s->out_h; oh++)
        for (int ow = 0; ow < s->out_w; ow++) {
            const float *row = col + ((size_t)oh * s->out_w + ow) * K;
            for (int kh = 0; kh < s->k_h; kh++) {
                int ih = oh * s->stride - s->pad + kh;
                if (ih < 0 || ih >= s->in_h) continue;
                for (int kw = 0; kw < s->k_w; kw++) {
                    int iw = ow * s->stride - s->pad + kw;
                    if (iw < 0 || iw >= s->in_w) continue;
                    const float *src = row + ((size_t)kh * s->k_w + kw) * s->in_c;
                    float *dst = dx + ((size_t)ih * s->in_w + iw) * s->in_c;
                    for (int c = 0; c < s->in_c; c++) dst[c] += src[c];
                }
            }
        }
}

/* OIHW <-> wr[o][(kh * KW + kw) * C + c]: pack when to_packed, else the inverse */
static void repack_weights(const ConvShape *s, const float *src, float *dst, int to_packed) {
    size_t K = col_k(s);
    for (int o = 0; o < s->out_c; o++)
        for (int c = 0; c < s->in_c; c++)
            for (int kh = 0; kh < s->k_h; kh++)
                for (int kw = 0; kw < s->k_w; kw++) {
                    size_t oihw = (((size_t)o * s->in_c + c) * s->k_h + kh) * s->k_w + kw;
                    size_t packed = o * K + ((size_t)kh * s->k_w + kw) * s->in_c + c;
                    if (to_packed)
                        dst[packed] = src[oihw];
                    else
                        dst[oihw] = src[packed];
                }
}

void conv_gemm_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y) {
    size_t K = col_k(s), P = out_pixels(s), O = (size_t)s->out_c;
    float *wr = cpu_shared(c, O * K);
    repack_weights(s, w, wr, 1);
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
        float *col = cpu_scratch(c, omp_get_thread_num(), P * K);
        im2col(s, lay, x + n * in_floats(s), col);
        float *yn = y + n * out_floats(s);
        cpu_sgemm(0, 1, (int)P, (int)O, (int)K, 1.0f, col,
                    (int)K, wr, (int)K, 0.0f, yn, (int)O);
        const float *rn = residual ? residual + n * out_floats(s) : NULL;
        for (size_t p = 0; p < P; p++)
            for (size_t o = 0; o < O; o++) {
                float v = yn[p * O + o] + b[o];
                if (rn) v += rn[p * O + o];
                yn[p * O + o] = relu && v < 0.0f ? 0.0f : v;  /* a NaN stays */
            }
    }
}

void conv_gemm_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                             const float *mask, float *dx) {
    size_t K = col_k(s), P = out_pixels(s), O = (size_t)s->out_c;
    float *wr = cpu_shared(c, O * K);
    repack_weights(s, w, wr, 1);
#pragma omp parallel for schedule(static) num_threads(c->threads)
    for (int n = 0; n < s->n; n++) {
        float *col = cpu_scratch(c, omp_get_thread_num(), P * K);
        cpu_sgemm(0, 0, (int)P, (int)K, (int)O, 1.0f,
                    dy + n * out_floats(s), (int)O, wr, (int)K, 0.0f, col, (int)K);
        float *dxn = dx + n * in_floats(s);
        col2im(s, col, dxn);
        if (mask)
            for (size_t i = 0; i < in_floats(s); i++)
                if (mask[n * in_floats(s) + i] <= 0.0f) dxn[i] = 0.0f;
    }
}

/* Per-sample partial sums, then a reduction over samples in sample order: the result
 * does not depend on the number of threads. */
void conv_gemm_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                               const float *dy, float *dw, float *db) {
    size_t K = col_k(s), P = out_pixels(s), O = (size_t)s->out_c;
    size_t per = O * K + O;
    float *part = cpu_shared(c, per * s->n + O * K);
    float *dwr = part + per * s->n;
#pragma omp parallel num_threads(c->threads)
    {
#pragma omp for schedule(static)
        for (int n = 0; n < s->n; n++) {
            float *col = cpu_scratch(c, omp_get_thread_num(), P * K);
            const float *dyn = dy + n * out_floats(s);
            im2col(s, lay, x + n * in_floats(s), col);
            float *pn = part + per * n;
            cpu_sgemm(1, 0, (int)O, (int)K, (int)P, 1.0f, dyn,
                        (int)O, col, (int)K, 0.0f, pn, (int)K);
            float *pb = pn + O * K;
            for (size_t o = 0; o < O; o++) pb[o] = 0.0f;
            for (size_t p = 0; p < P; p++)
                for (size_t o = 0; o < O; o++) pb[o] += dyn[p * O + o];
        }
        cpu_sum_partials(part, s->n, per, O * K, dwr, db);
    }
    repack_weights(s, dwr, dw, 0);
}

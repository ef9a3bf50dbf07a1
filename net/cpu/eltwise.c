/* The CPU backend's non-convolution ops: ReLU backward, add, pools, linear, L1 loss,
 * Adam and the finiteness check. Loops are OpenMP-parallel where the work is large
 * enough to pay for it; every reduction runs in a fixed order (bitwise repeatable). */
#include <math.h>
#include <string.h>

#include "cpu_internal.h"
#include "sgemm.h"

/* Elementwise loops below this many elements run on one thread. */
#define PAR_MIN 32768

void cpu_sum_partials(const float *part, int samples, size_t per, size_t split, float *out,
                      float *tail) {
#pragma omp for schedule(static)
    for (size_t j = 0; j < per; j++) {
        float acc = 0.0f;
        for (int n = 0; n < samples; n++) acc += part[per * n + j];
        if (j < split)
            out[j] = acc;
        else
            tail[j - split] = acc;
    }
}

void cpu_relu_backward(void *ctx, size_t n, const float *y, const float *dy, const float *addend,
                       float *dx) {
    CpuCtx *c = ctx;
    if (addend) {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i] + addend[i];
    } else {
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
        for (size_t i = 0; i < n; i++) dx[i] = y[i] <= 0.0f ? 0.0f : dy[i];
    }
}

/* PyTorch's comparison (first maximum wins; a NaN always takes over). */
static inline int takes_max(float v, float best) { return v > best || isnan(v); }

void cpu_maxpool2x2_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                            int32_t *idx) {
    CpuCtx *cx = ctx;
    int oh = h / 2, ow = w / 2;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        const float *xi = x + (size_t)i * h * w * c;
        float *yi = y + (size_t)i * oh * ow * c;
        int32_t *ii = idx + (size_t)i * oh * ow * c;
        for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++)
                for (int ch = 0; ch < c; ch++) {
                    int32_t best_at = ((2 * r) * w + 2 * q) * c + ch;
                    float best = -INFINITY;
                    for (int dr = 0; dr < 2; dr++)
                        for (int dq = 0; dq < 2; dq++) {
                            int32_t at = ((2 * r + dr) * w + 2 * q + dq) * c + ch;
                            if (takes_max(xi[at], best)) {
                                best = xi[at];
                                best_at = at;
                            }
                        }
                    size_t o = ((size_t)r * ow + q) * c + ch;
                    yi[o] = best;
                    ii[o] = best_at;
                }
    }
}

void cpu_maxpool2x2_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                             const int32_t *idx, float *dx) {
    CpuCtx *cx = ctx;
    size_t in = (size_t)h * w * c, out = (size_t)(h / 2) * (w / 2) * c;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        float *dxi = dx + i * in;
        memset(dxi, 0, sizeof(float) * in);
        for (size_t j = 0; j < out; j++) dxi[idx[i * out + j]] = dy[i * out + j];
    }
}

void cpu_global_maxpool_forward(void *ctx, int n, int c, int h, int w, const float *x,
                                float *y, int ldy, int32_t *idx) {
    CpuCtx *cx = ctx;
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        const float *xi = x + i * hw * c;
        for (int ch = 0; ch < c; ch++) {
            float best = -INFINITY;
            int32_t at = 0;
            for (size_t p = 0; p < hw; p++)
                if (takes_max(xi[p * c + ch], best)) {
                    best = xi[p * c + ch];
                    at = (int32_t)p;
                }
            y[(size_t)i * ldy + ch] = best;
            idx[(size_t)i * c + ch] = at;
        }
    }
}

void cpu_global_maxpool_backward(void *ctx, int n, int c, int h, int w, const float *dy, int ldy,
                                 const int32_t *idx, float *dx) {
    CpuCtx *cx = ctx;
    size_t hw = (size_t)h * w;
#pragma omp parallel for schedule(static) num_threads(cx->threads)
    for (int i = 0; i < n; i++) {
        float *dxi = dx + i * hw * c;
        memset(dxi, 0, sizeof(float) * hw * c);
        for (int ch = 0; ch < c; ch++)
            dxi[(size_t)idx[(size_t)i * c + ch] * c + ch] = dy[(size_t)i * ldy + ch];
    }
}

void cpu_linear_forward(void *ctx, int n, int in, int out, const float *x, const float *w,
                        const float *b, float *y) {
    for (int i = 0; i < n; i++) memcpy(y + (size_t)i * out, b, sizeof(float) * out);
    cpu_sgemm(0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, y,
                out);
}

void cpu_linear_backward(void *ctx, int n, int in, int out, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db) {
    if (dx)
        cpu_sgemm(0, 0, n, in, out, 1.0f, dy, out, w, in,
                    0.0f, dx, in);
    cpu_sgemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f,
                dw, in);
    for (int o = 0; o < out; o++) {
        float acc = 0.0f;
        for (int i = 0; i < n; i++) acc += dy[(size_t)i * out + o];
        db[o] = acc;
    }
}

void cpu_l1_loss(void *ctx, int n, const float *pred, const float *target, const float *weight,
                 float *loss, float *dpred) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        float d = pred[i] - target[i], wi = weight ? weight[i] : 1.0f;
        acc += (double)wi * fabsf(d);
        float sign = d > 0.0f ? 1.0f : d < 0.0f ? -1.0f : d;  /* NaN stays NaN */
        dpred[i] = wi * sign / (float)n;
    }
    *loss = (float)(acc / n);
}

/* PyTorch's BCEWithLogitsLoss: max(x, 0) - x t + log1p(exp(-|x|)) never overflows, and
 * the sigmoid is taken on the side where exp does not overflow either. */
void cpu_bce_logits_loss(void *ctx, int n, const float *logit, const float *target, const float *weight,
                         float *loss, float *dlogit) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) {
        double x = logit[i], t = target[i], wi = weight ? weight[i] : 1.0;
        double e = exp(-fabs(x)), sig = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        acc += wi * ((x > 0 ? x : 0.0) - x * t + log1p(e));  /* a NaN logit stays NaN */
        dlogit[i] = (float)(wi * (sig - t) / n);
    }
    *loss = (float)(acc / n);
}

/* torch.optim.Adam's single-tensor update (the factors come from net/adam.c). */
void cpu_adam_update(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                     const AdamFactors *k) {
    CpuCtx *c = ctx;
    const float b1 = k->beta1, b2 = k->beta2, eps = k->eps, wd = k->weight_decay;
    const float one_m_b1 = k->one_minus_beta1, one_m_b2 = k->one_minus_beta2;
    const float step_size = k->step_size, bc2_sqrt = k->bias2_sqrt;
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        float mi = m[i] * b1 + one_m_b1 * gi;
        float vi = v[i] * b2 + one_m_b2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - step_size * mi / (sqrtf(vi) / bc2_sqrt + eps);
    }
}

/* y = (y + x) * scale: one rounding for the sum, one for the scale (none when 1) */
void cpu_add_scale(void *ctx, size_t n, const float *x, float *y, float scale) {
    CpuCtx *c = ctx;
#pragma omp parallel for simd schedule(static) num_threads(c->threads) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) y[i] = (y[i] + x[i]) * scale;
}

void cpu_nonfinite_check(void *ctx, size_t n, const float *x, float *out) {
    CpuCtx *c = ctx;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(c->threads) reduction(| : bad) if (n >= PAR_MIN)
    for (size_t i = 0; i < n; i++) bad |= !isfinite(x[i]);
    *out = bad ? 1.0f : 0.0f;
}

void cpu_copy2d(void *ctx, float *dst, size_t ld_dst, const float *src, size_t ld_src,
                size_t rows, size_t cols) {
    for (size_t r = 0; r < rows; r++) memcpy(dst + r * ld_dst, src + r * ld_src, cols * sizeof(float));
}

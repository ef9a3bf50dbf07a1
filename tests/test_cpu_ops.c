/* Every CPU op against a plain double-precision reference, and the convolution
 * gradients against finite differences, on every convolution engine (AVX2 direct
 * kernels, im2col + OpenBLAS GEMM, oneDNN), and the GEMMs themselves. */
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "check.h"
#include "conv_shape.h"
#include "cpu/conv_engine.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_internal.h"
#include "cpu/sgemm.h"
#include "error.h"
#include "ops.h"
#include "rng.h"

static Rng rng;

static float *rnd(size_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = rng_range(&rng, lo, hi);
    return p;
}

static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static double *dzeros(size_t n) { return calloc(n ? n : 1, sizeof(double)); }

static float *to_float(const double *d, size_t n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
    return f;
}

/* ---- reference convolution (double) ---- */

static size_t in_size(const ConvShape *s) { return (size_t)s->n * s->in_c * s->in_h * s->in_w; }
static size_t out_size(const ConvShape *s) {
    return (size_t)s->n * s->out_c * s->out_h * s->out_w;
}
static size_t w_size(const ConvShape *s) { return (size_t)s->out_c * s->in_c * s->k_h * s->k_w; }

static double xin(const ConvShape *s, Layout lay, const float *x, int n, int c, int h, int w) {
    const float *xn = x + (size_t)n * s->in_c * s->in_h * s->in_w;
    return conv_input_at(xn, lay, c, h, w, s->in_c, s->in_h, s->in_w);
}

static size_t yat(const ConvShape *s, int n, int h, int w, int c) {
    return (((size_t)n * s->out_h + h) * s->out_w + w) * s->out_c + c;
}

static size_t wat(const ConvShape *s, int o, int c, int kh, int kw) {
    return (((size_t)o * s->in_c + c) * s->k_h + kh) * s->k_w + kw;
}

/* calls f(n, o, c, oh, ow, kh, kw, ih, iw) for every in-bounds multiply-add */
#define FOR_EACH_MAC(s, BODY)                                                         \
    for (int n = 0; n < (s)->n; n++)                                                  \
        for (int oh = 0; oh < (s)->out_h; oh++)                                       \
            for (int ow = 0; ow < (s)->out_w; ow++)                                   \
                for (int o = 0; o < (s)->out_c; o++)                                  \
                    for (int c = 0; c < (s)->in_c; c++)                               \
                        for (int kh = 0; kh < (s)->k_h; kh++)                         \
                            for (int kw = 0; kw < (s)->k_w; kw++) {                   \
                                int ih = oh * (s)->stride - (s)->pad + kh;            \
                                int iw = ow * (s)->stride - (s)->pad + kw;            \
                                if (ih < 0 || iw < 0 || ih >= (s)->in_h || iw >= (s)->in_w) \
                                    continue;                                         \
                                BODY                                                  \
                            }

static void ref_forward(const ConvShape *s, Layout lay, const float *x, const float *w,
                        const float *b, const float *res, int relu, double *y) {
    for (size_t i = 0; i < out_size(s); i++) y[i] = 0.0;
    FOR_EACH_MAC(s, y[yat(s, n, oh, ow, o)] += xin(s, lay, x, n, c, ih, iw) * w[wat(s, o, c, kh, kw)];)
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++)
                for (int o = 0; o < s->out_c; o++) {
                    size_t i = yat(s, n, oh, ow, o);
                    y[i] += b[o] + (res ? res[i] : 0.0);
                    if (relu && y[i] < 0) y[i] = 0.0;
                }
}

static void ref_backward(const ConvShape *s, Layout lay, const float *x, const float *w,
                         const float *dy, double *dx, double *dw, double *db) {
    for (size_t i = 0; i < in_size(s); i++) dx[i] = 0.0;
    for (size_t i = 0; i < w_size(s); i++) dw[i] = 0.0;
    for (int o = 0; o < s->out_c; o++) db[o] = 0.0;
    FOR_EACH_MAC(s, {
        double g = dy[yat(s, n, oh, ow, o)];
        dx[(((size_t)n * s->in_h + ih) * s->in_w + iw) * s->in_c + c] += g * w[wat(s, o, c, kh, kw)];
        dw[wat(s, o, c, kh, kw)] += g * xin(s, lay, x, n, c, ih, iw);
    })
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++)
                for (int o = 0; o < s->out_c; o++) db[o] += dy[yat(s, n, oh, ow, o)];
}

static double dot(const float *a, const float *b, size_t n) {
    double acc = 0.0;
    for (size_t i = 0; i < n; i++) acc += (double)a[i] * b[i];
    return acc;
}

/* Forward (with and without the fused residual and ReLU), backward data and filter
 * against the reference, then finite differences of L = sum(conv(x, w) * r). */
static void test_conv(NetOps *ops, const char *path, ConvShape s, Layout lay) {
    char label[160];
    snprintf(label, sizeof label, "%s conv n%d %dx%dx%d -> %d k%d s%d p%d %s", path, s.n, s.in_c,
             s.in_h, s.in_w, s.out_c, s.k_h, s.stride, s.pad, lay == LAYOUT_NCHW ? "NCHW" : "NHWC");
    size_t ni = in_size(&s), no = out_size(&s), nw = w_size(&s);
    float *x = rnd(ni, -1, 1), *w = rnd(nw, -0.5f, 0.5f), *b = rnd(s.out_c, -0.5f, 0.5f);
    float *res = rnd(no, -1, 1), *r = rnd(no, -1, 1), *y = zeros(no);
    float *dx = zeros(ni), *dw = zeros(nw), *db = zeros(s.out_c);
    double *ry = dzeros(no), *rdx = dzeros(ni), *rdw = dzeros(nw), *rdb = dzeros(s.out_c);

    for (int variant = 0; variant < 2; variant++) {
        const float *rs = variant ? res : NULL;
        ops->conv2d_forward(ops->ctx, &s, lay, x, w, b, rs, variant, y);
        ref_forward(&s, lay, x, w, b, rs, variant, ry);
        float *fy = to_float(ry, no);
        double e = rel_err(y, fy, no, 1e-6);
        CHECK(e < 1e-5, "%s forward%s: rel err %g", label, variant ? "+residual+relu" : "", e);
        free(fy);
    }
    ops->conv2d_backward_filter(ops->ctx, &s, lay, x, r, dw, db);
    ref_backward(&s, lay, x, w, r, rdx, rdw, rdb);
    float *f = to_float(rdw, nw);
    double e = rel_err(dw, f, nw, 1e-6);
    CHECK(e < 1e-5, "%s backward filter: rel err %g", label, e);
    free(f);
    f = to_float(rdb, s.out_c);
    e = rel_err(db, f, s.out_c, 1e-6);
    CHECK(e < 1e-5, "%s backward bias: rel err %g", label, e);
    free(f);
    if (lay == LAYOUT_NHWC) {  /* the network never needs d(input) of its NCHW input */
        ops->conv2d_backward_data(ops->ctx, &s, r, w, NULL, dx);
        f = to_float(rdx, ni);
        e = rel_err(dx, f, ni, 1e-6);
        CHECK(e < 1e-5, "%s backward data: rel err %g", label, e);
        /* the fused ReLU mask: zero where mask <= 0, a NaN in the mask lets through */
        float *mask = rnd(ni, -1, 1), *dxm = zeros(ni);
        mask[0] = NAN;
        ops->conv2d_backward_data(ops->ctx, &s, r, w, mask, dxm);
        for (size_t i = 0; i < ni; i++) f[i] = mask[i] <= 0.0f ? 0.0f : f[i];
        e = rel_err(dxm, f, ni, 1e-6);
        CHECK(e < 1e-5, "%s backward data with ReLU mask: rel err %g", label, e);
        free(mask), free(dxm);
        free(f);
    }

    /* finite differences: L is linear in each of x, w, b, so a central difference is
     * exact up to rounding */
    const float eps = 0.25f;  /* exact for a linear L, and far above rounding */
    struct { float *p; size_t n; const float *grad; const char *what; } probes[3] = {
        {w, nw, dw, "weight"}, {b, (size_t)s.out_c, db, "bias"}, {x, ni, NULL, "input"}};
    for (int k = 0; k < 3; k++) {
        if (!probes[k].grad && lay == LAYOUT_NCHW) continue;
        double worst = 0.0;
        for (int t = 0; t < 6; t++) {
            size_t i = rng_next(&rng) % probes[k].n;
            float keep = probes[k].p[i];
            probes[k].p[i] = keep + eps;
            ops->conv2d_forward(ops->ctx, &s, lay, x, w, b, NULL, 0, y);
            double lp = dot(y, r, no);
            probes[k].p[i] = keep - eps;
            ops->conv2d_forward(ops->ctx, &s, lay, x, w, b, NULL, 0, y);
            double lm = dot(y, r, no);
            probes[k].p[i] = keep;
            double fd = (lp - lm) / (2 * eps);
            /* d(input) in NHWC order; x is NHWC here */
            double an = probes[k].grad ? probes[k].grad[i] : dx[i];
            double d = fabs(fd - an) / (fabs(an) + 1e-2);
            if (d > worst) worst = d;
        }
        CHECK(worst < 2e-3, "%s finite differences of %s: worst rel diff %g", label,
              probes[k].what, worst);
    }
    free(x), free(w), free(b), free(res), free(r), free(y), free(dx), free(dw), free(db);
    free(ry), free(rdx), free(rdw), free(rdb);
}

static void test_convs(NetOps *ops, const char *path) {
    test_conv(ops, path, conv_shape(3, 3, 13, 11, 16, 7, 1, 1), LAYOUT_NCHW);   /* conv0, 3 channels */
    test_conv(ops, path, conv_shape(2, 8, 12, 12, 16, 7, 1, 1), LAYOUT_NCHW);   /* conv0, 8 channels */
    test_conv(ops, path, conv_shape(3, 16, 9, 10, 16, 3, 1, 1), LAYOUT_NHWC);   /* layer1 */
    test_conv(ops, path, conv_shape(2, 16, 9, 9, 32, 3, 2, 1), LAYOUT_NHWC);    /* layer2 conv1, odd */
    test_conv(ops, path, conv_shape(2, 16, 10, 8, 32, 3, 2, 1), LAYOUT_NHWC);   /* layer2 conv1, even */
    test_conv(ops, path, conv_shape(2, 16, 9, 9, 32, 1, 2, 0), LAYOUT_NHWC);    /* shortcut */
    test_conv(ops, path, conv_shape(2, 32, 7, 7, 32, 3, 1, 1), LAYOUT_NHWC);    /* layer3 */
    test_conv(ops, path, conv_shape(2, 5, 9, 8, 8, 5, 3, 2), LAYOUT_NHWC);      /* odd sizes */
    test_conv(ops, path, conv_shape(1, 32, 6, 5, 48, 3, 1, 1), LAYOUT_NHWC);    /* 3 channel tiles */
    test_conv(ops, path, conv_shape(2, 3, 11, 12, 32, 7, 1, 1), LAYOUT_NCHW);   /* conv0, 32 maps */
}

/* Every pass of every convolution above ran on the engine the backend was forced to
 * (where the shape allows it), so the checks above were that engine's. */
static void check_engines(NetOps *ops, ConvEngine want, const char *path) {
    CpuCtx *c = ops->ctx;
    int passes = 0;
    CHECK(conv_engines_count(c) == 10, "[%s] %d convolution geometries planned, want 10", path,
          conv_engines_count(c));
    for (int i = 0; i < conv_engines_count(c); i++) {
        const ConvPlanEntry *e = conv_engines_entry(c, i);
        for (int op = 0; op < CONV_OPS; op++) {
            if (e->engine[op] == ENGINE_NONE) continue;
            ConvEngine expect = want == ENGINE_DIRECT && !conv_direct_fits(&e->s, op) ? ENGINE_GEMM : want;
            CHECK(e->engine[op] == expect, "[%s] geometry %d pass %d ran on %s", path, i, op,
                  conv_engine_name(e->engine[op]));
            passes++;
        }
        CHECK(e->chosen == CHOSEN_FORCED, "[%s] geometry %d: choice not forced", path, i);
    }
    CHECK(passes == 27, "[%s] %d passes planned, want 27 (no backward data of NCHW inputs)", path, passes);
}

/* ---- the other ops ---- */

static void test_pools(NetOps *ops) {
    const int n = 2, c = 16, h = 7, w = 9, oh = h / 2, ow = w / 2;
    size_t ni = (size_t)n * h * w * c, no = (size_t)n * oh * ow * c;
    float *x = rnd(ni, -1, 1), *y = zeros(no), *dy = rnd(no, -1, 1), *dx = zeros(ni);
    int32_t *idx = calloc(ni, sizeof(int32_t));
    /* ties, as after a ReLU: the first maximum in window order must win */
    for (size_t i = 0; i < ni; i += 3) x[i] = 0.0f;
    for (int q = 0; q < c; q++) x[((size_t)1 * w + 1) * c + q] = x[q] = 2.0f;
    ops->maxpool2x2_forward(ops->ctx, n, c, h, w, x, y, idx);
    ops->maxpool2x2_backward(ops->ctx, n, c, h, w, dy, idx, dx);
    int bad = 0;
    float *want_dx = zeros(ni);
    for (int i = 0; i < n; i++)
        for (int r = 0; r < oh; r++)
            for (int q = 0; q < ow; q++)
                for (int ch = 0; ch < c; ch++) {
                    float best = -INFINITY;
                    size_t at = 0;
                    for (int dr = 0; dr < 2; dr++)
                        for (int dq = 0; dq < 2; dq++) {
                            size_t k = (((size_t)i * h + 2 * r + dr) * w + 2 * q + dq) * c + ch;
                            if (x[k] > best) best = x[k], at = k;
                        }
                    size_t o = (((size_t)i * oh + r) * ow + q) * c + ch;
                    bad += y[o] != best;
                    want_dx[at] = dy[o];
                }
    CHECK(bad == 0, "maxpool2x2 forward: %d wrong maxima", bad);
    CHECK(memcmp(dx, want_dx, ni * sizeof(float)) == 0, "maxpool2x2 backward: gradient not routed to the first maximum");

    /* global max-pool into a wider row (features, then scalars) */
    const int ld = c + 3;
    float *g = zeros((size_t)n * ld), *dg = rnd((size_t)n * ld, -1, 1);
    int32_t *gi = calloc((size_t)n * c, sizeof(int32_t));
    for (size_t i = 0; i < ni; i++) x[i] = x[i] > 0.5f ? 0.5f : x[i];  /* ties at 0.5 */
    ops->global_maxpool_forward(ops->ctx, n, c, h, w, x, g, ld, gi);
    ops->global_maxpool_backward(ops->ctx, n, c, h, w, dg, ld, gi, dx);
    memset(want_dx, 0, ni * sizeof(float));
    bad = 0;
    for (int i = 0; i < n; i++)
        for (int ch = 0; ch < c; ch++) {
            float best = -INFINITY;
            size_t at = 0;
            for (int p = 0; p < h * w; p++) {
                size_t k = ((size_t)i * h * w + p) * c + ch;
                if (x[k] > best) best = x[k], at = k;
            }
            bad += g[(size_t)i * ld + ch] != best;
            want_dx[at] = dg[(size_t)i * ld + ch];
        }
    CHECK(bad == 0, "global maxpool forward: %d wrong maxima", bad);
    CHECK(memcmp(dx, want_dx, ni * sizeof(float)) == 0, "global maxpool backward: gradient misrouted");

    /* a NaN propagates through both pools, as in PyTorch */
    x[5 * c] = NAN;
    ops->maxpool2x2_forward(ops->ctx, n, c, h, w, x, y, idx);
    ops->global_maxpool_forward(ops->ctx, n, c, h, w, x, g, ld, gi);
    int nan_pool = 0;
    for (size_t i = 0; i < no; i++) nan_pool += isnan(y[i]);
    CHECK(nan_pool == 1, "maxpool2x2: a NaN input gives %d NaN outputs, want 1", nan_pool);
    CHECK(isnan(g[0]), "global maxpool: a NaN input must give a NaN feature");
    free(x), free(y), free(dy), free(dx), free(idx), free(want_dx), free(g), free(dg), free(gi);
}

static void test_linear_loss(NetOps *ops) {
    const int n = 5, in = 34, out = 3;
    float *x = rnd((size_t)n * in, -1, 1), *w = rnd((size_t)out * in, -1, 1), *b = rnd(out, -1, 1);
    float *y = zeros((size_t)n * out), *dy = rnd((size_t)n * out, -1, 1);
    float *dx = zeros((size_t)n * in), *dw = zeros((size_t)out * in), *db = zeros(out);
    ops->linear_forward(ops->ctx, n, in, out, x, w, b, y);
    ops->linear_backward(ops->ctx, n, in, out, x, w, dy, dx, dw, db);
    double ey = 0, edx = 0, edw = 0, edb = 0;
    for (int i = 0; i < n; i++)
        for (int o = 0; o < out; o++) {
            double acc = b[o];
            for (int k = 0; k < in; k++) acc += (double)x[i * in + k] * w[o * in + k];
            ey = fmax(ey, fabs(acc - y[i * out + o]));
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < in; k++) {
            double acc = 0;
            for (int o = 0; o < out; o++) acc += (double)dy[i * out + o] * w[o * in + k];
            edx = fmax(edx, fabs(acc - dx[i * in + k]));
        }
    for (int o = 0; o < out; o++) {
        double accb = 0;
        for (int i = 0; i < n; i++) accb += dy[i * out + o];
        edb = fmax(edb, fabs(accb - db[o]));
        for (int k = 0; k < in; k++) {
            double acc = 0;
            for (int i = 0; i < n; i++) acc += (double)dy[i * out + o] * x[i * in + k];
            edw = fmax(edw, fabs(acc - dw[o * in + k]));
        }
    }
    CHECK(ey < 1e-5 && edx < 1e-5 && edw < 1e-5 && edb < 1e-5,
          "linear: errors y %g dx %g dw %g db %g", ey, edx, edw, edb);

    /* L1 loss: weights, sign(0) = 0, mean over the batch */
    float pred[4] = {1.0f, 2.0f, 3.0f, -1.0f}, tgt[4] = {0.5f, 2.0f, 4.0f, 1.0f};
    float wt[4] = {1.0f, 3.0f, 2.0f, 0.5f}, loss = 0, dp[4];
    ops->l1_loss(ops->ctx, 4, pred, tgt, NULL, &loss, dp);
    CHECK(fabsf(loss - (0.5f + 0 + 1 + 2) / 4) < 1e-7, "l1 loss %g, want 0.875", loss);
    CHECK(dp[0] == 0.25f && dp[1] == 0.0f && dp[2] == -0.25f && dp[3] == -0.25f,
          "l1 gradient %g %g %g %g", dp[0], dp[1], dp[2], dp[3]);
    ops->l1_loss(ops->ctx, 4, pred, tgt, wt, &loss, dp);
    CHECK(fabsf(loss - (0.5f + 0 + 2 + 1) / 4) < 1e-7, "weighted l1 loss %g, want 0.875", loss);
    CHECK(dp[0] == 0.25f && dp[2] == -0.5f && dp[3] == -0.125f, "weighted l1 gradient");
    pred[1] = NAN;
    ops->l1_loss(ops->ctx, 4, pred, tgt, NULL, &loss, dp);
    CHECK(isnan(loss), "l1 loss of a NaN prediction must be NaN, got %g", loss);
    free(x), free(w), free(b), free(y), free(dy), free(dx), free(dw), free(db);
}

/* BCE with logits: by hand for small logits, stable for huge ones (no overflow, the
 * loss is |x| where the class disagrees, 0 where it agrees), weights, NaN, and the
 * gradient against a central difference of the loss in double */
static void test_bce(NetOps *ops) {
    float x[6] = {0.0f, 2.0f, -3.0f, 100.0f, -1e4f, 1e4f}, t[6] = {1, 0, 0, 0, 1, 1};
    float wt[6] = {1.0f, 2.0f, 0.5f, 1.0f, 1.0f, 3.0f}, loss = 0, d[6];
    double want = 0.0, wantw = 0.0;
    for (int i = 0; i < 6; i++) {
        double xi = x[i], l = fabs(xi) > 50 ? (xi > 0) != (t[i] > 0) ? fabs(xi) : 0.0
                                             : -(t[i] * log(1 / (1 + exp(-xi))) + (1 - t[i]) * log(1 - 1 / (1 + exp(-xi))));
        want += l / 6;
        wantw += wt[i] * l / 6;
    }
    ops->bce_logits_loss(ops->ctx, 6, x, t, NULL, &loss, d);
    CHECK(fabs(loss - want) <= 1e-6 * want, "bce loss %.9g, want %.9g", loss, want);
    CHECK(fabsf(d[0] - (0.5f - 1) / 6) < 1e-8f && fabsf(d[3] - 1.0f / 6) < 1e-8f && d[4] == -1.0f / 6 && d[5] == 0.0f,
          "bce gradient (sigmoid - t) / n: %g %g %g %g", d[0], d[3], d[4], d[5]);
    ops->bce_logits_loss(ops->ctx, 6, x, t, wt, &loss, d);
    CHECK(fabs(loss - wantw) <= 1e-6 * wantw, "weighted bce loss %.9g, want %.9g", loss, wantw);
    CHECK(fabsf(d[1] - 2.0f * (float)(1 / (1 + exp(-2.0))) / 6) < 1e-7f, "weighted bce gradient %g", d[1]);
    ops->bce_logits_loss(ops->ctx, 3, x, t, wt, &loss, d); /* the small logits: the loss resolves a step */
    for (int i = 0; i < 3; i++) { /* d loss / d x_i by central differences */
        float xp[3], lp, lm, dd[3];
        memcpy(xp, x, sizeof xp);
        xp[i] = x[i] + 1e-2f;
        ops->bce_logits_loss(ops->ctx, 3, xp, t, wt, &lp, dd);
        xp[i] = x[i] - 1e-2f;
        ops->bce_logits_loss(ops->ctx, 3, xp, t, wt, &lm, dd);
        CHECK(fabs((lp - lm) / 2e-2 - d[i]) < 1e-4, "bce gradient %d: %g, finite difference %g", i, d[i], (lp - lm) / 2e-2);
    }
    x[2] = NAN;
    ops->bce_logits_loss(ops->ctx, 6, x, t, NULL, &loss, d);
    CHECK(isnan(loss) && isnan(d[2]), "bce loss of a NaN logit must be NaN, got %g", loss);
}

static void test_eltwise(NetOps *ops) {
    const size_t n = 70000;  /* above the parallel threshold */
    float *a = rnd(n, -1, 1), *b = rnd(n, -1, 1), *o = zeros(n);
    float *y = rnd(n, -1, 1);
    y[3] = NAN;  /* PyTorch's threshold backward passes the gradient where y is NaN */
    ops->relu_backward(ops->ctx, n, y, a, NULL, o);
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != (y[i] <= 0 ? 0.0f : a[i]);
    CHECK(bad == 0, "relu backward: %d wrong", bad);
    ops->relu_backward(ops->ctx, n, y, a, b, o);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != (y[i] <= 0 ? 0.0f : a[i] + b[i]);
    CHECK(bad == 0, "relu backward with addend: %d wrong", bad);
    memcpy(o, a, n * sizeof(float));
    ops->relu_backward(ops->ctx, n, y, o, b, o);  /* in place */
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != (y[i] <= 0 ? 0.0f : a[i] + b[i]);
    CHECK(bad == 0, "relu backward in place: %d wrong", bad);
    free(y);
    float flag = -1;
    ops->nonfinite_check(ops->ctx, n, a, &flag);
    CHECK(flag == 0.0f, "finite data reported as non-finite");
    a[n - 7] = INFINITY;
    ops->nonfinite_check(ops->ctx, n, a, &flag);
    CHECK(flag == 1.0f, "an Inf was not found");
    a[n - 7] = NAN;
    ops->nonfinite_check(ops->ctx, n, a, &flag);
    CHECK(flag == 1.0f, "a NaN was not found");
    /* add_scale: y = (y + x) * scale, rounded once for the sum and once for the scale */
    a[n - 7] = 0.5f;
    memcpy(o, b, n * sizeof(float));
    ops->add_scale(ops->ctx, n, a, o, 1.0f);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != b[i] + a[i];
    CHECK(bad == 0, "add_scale by 1: %d wrong", bad);
    memcpy(o, b, n * sizeof(float));
    ops->add_scale(ops->ctx, n, a, o, 1.0f / 3);
    bad = 0;
    for (size_t i = 0; i < n; i++) bad += o[i] != (b[i] + a[i]) * (1.0f / 3);
    CHECK(bad == 0, "add_scale by 1/3: %d wrong", bad);
    float src[6] = {1, 2, 3, 4, 5, 6}, dst[8] = {0};
    ops->copy2d(ops->ctx, dst + 1, 4, src, 3, 2, 2);
    CHECK(dst[1] == 1 && dst[2] == 2 && dst[5] == 4 && dst[6] == 5 && dst[3] == 0 && dst[0] == 0,
          "copy2d");
    free(a), free(b), free(o);
}

/* Adam against torch.optim.Adam's update written out in double, with weight decay. */
static void test_adam(NetOps *ops) {
    const size_t n = 1000;
    float *p = rnd(n, -1, 1), *m = zeros(n), *v = zeros(n);
    double *rp = dzeros(n), *rm = dzeros(n), *rv = dzeros(n);
    for (size_t i = 0; i < n; i++) rp[i] = p[i];
    const float lr = 1e-2f;
    AdamHyper h = {.beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f};
    for (long step = 1; step <= 5; step++) {
        float *g = rnd(n, -1, 1);
        AdamFactors k = adam_factors(&h, lr, step);
        ops->adam_update(ops->ctx, n, p, g, m, v, &k);
        double bc1 = 1 - pow(h.beta1, step), bc2 = 1 - pow(h.beta2, step);
        for (size_t i = 0; i < n; i++) {
            double gi = g[i] + (double)h.weight_decay * rp[i];
            rm[i] = h.beta1 * rm[i] + (1 - h.beta1) * gi;
            rv[i] = h.beta2 * rv[i] + (1 - h.beta2) * gi * gi;
            rp[i] -= lr / bc1 * rm[i] / (sqrt(rv[i]) / sqrt(bc2) + h.eps);
        }
        free(g);
    }
    float *f = to_float(rp, n);
    double e = rel_err(p, f, n, 1e-6);
    CHECK(e < 1e-5, "adam: 5 steps off the reference by %g", e);
    free(f), free(p), free(m), free(v), free(rp), free(rm), free(rv);
}

/* Both GEMMs (cpu_sgemm: OpenBLAS or the portable loops; cpu_sgemm_portable) against a
 * double-precision product, for every transpose pair, padded leading dimensions and
 * beta 0 (which must overwrite a NaN already in C), 1 and 0.25; the bigger shape takes
 * the threaded path of the portable loops. */
static void test_sgemm(void) {
    const int shapes[][3] = {{7, 5, 9}, {33, 70, 41}};
    const float betas[] = {0.0f, 1.0f, 0.25f};
    for (int sh = 0; sh < 2; sh++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int bi = 0; bi < 3; bi++) {
                    const int m = shapes[sh][0], n = shapes[sh][1], k = shapes[sh][2];
                    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 2, ldc = n + 1;
                    const float alpha = 0.5f, beta = betas[bi];
                    float *a = rnd((size_t)(ta ? k : m) * lda, -1, 1), *b = rnd((size_t)(tb ? n : k) * ldb, -1, 1);
                    float *c0 = rnd((size_t)m * ldc, -1, 1);
                    double *ref = dzeros((size_t)m * n);
                    for (int i = 0; i < m; i++)
                        for (int j = 0; j < n; j++) {
                            double acc = 0;
                            for (int p = 0; p < k; p++)
                                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                            ref[i * n + j] = alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * c0[i * ldc + j]);
                        }
                    float *want = to_float(ref, (size_t)m * n);
                    for (int which = 0; which < 2; which++) {
                        float *c = malloc(sizeof(float) * m * ldc), *got = malloc(sizeof(float) * m * n);
                        memcpy(c, c0, sizeof(float) * m * ldc);
                        if (beta == 0.0f) c[0] = NAN;
                        (which ? cpu_sgemm_portable : cpu_sgemm)(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                        for (int i = 0; i < m; i++) memcpy(got + i * n, c + i * ldc, sizeof(float) * n);
                        double e = rel_err(got, want, (size_t)m * n, 1e-6);
                        CHECK(e < 1e-5, "%s %dx%dx%d ta %d tb %d beta %g: off by %g", which ? "cpu_sgemm_portable" : "cpu_sgemm",
                              m, n, k, ta, tb, beta, e);
                        CHECK(c[n] == c0[n], "%s wrote into C's padding", which ? "cpu_sgemm_portable" : "cpu_sgemm");
                        free(c), free(got);
                    }
                    free(a), free(b), free(c0), free(ref), free(want);
                }
}

static NetOps *forced(const char *engine) {
    setenv("E2E_CPU_CONV", engine, 1);
    NetOps *ops = net_cpu_create(2);
    unsetenv("E2E_CPU_CONV");
    return ops;
}

int main(void) {
    rng_seed(&rng, 1234);
    NetOps *direct = forced("direct");
    CHECK(direct != NULL, "cpu backend: %s", e2e_error());
    if (!direct) return check_main_result("test_cpu_ops");
    CpuCtx *dc = direct->ctx;
    CHECK(dc->direct == conv_direct_supported(), "direct kernels not picked at the CPU's widest vector");
    printf("direct kernels: %s\n", dc->direct == 512 ? "AVX-512" : dc->direct ? "AVX2" : "no (this CPU lacks AVX2/FMA)");
    NetOps *gemm = forced("gemm");
    CHECK(((CpuCtx *)gemm->ctx)->direct == 0, "E2E_CPU_CONV=gemm was ignored");
    NetOps *dnn = forced("onednn");
#ifdef E2E_HAVE_ONEDNN
    CHECK(dnn != NULL, "E2E_CPU_CONV=onednn in a build with oneDNN: %s", e2e_error());
#else
    CHECK(dnn == NULL && strstr(e2e_error(), "oneDNN"), "E2E_CPU_CONV=onednn without oneDNN: %s", e2e_error());
#endif
    printf("%s\n", dnn ? net_cpu_conv_report(dnn) : "oneDNN: not in this build");

    test_convs(direct, dc->direct ? "direct" : "gemm");
    check_engines(direct, ENGINE_DIRECT, "direct");
    if (dc->direct == 512) {  /* the AVX2 build of the kernels too, as an AVX2 machine runs it */
        NetOps *d256 = forced("direct");
        ((CpuCtx *)d256->ctx)->direct = 256;
        test_convs(d256, "direct-256");
        check_engines(d256, ENGINE_DIRECT, "direct-256");
        d256->destroy(d256);
    }
    test_convs(gemm, "gemm");
    check_engines(gemm, ENGINE_GEMM, "gemm");
    if (dnn) {
        test_convs(dnn, "onednn");
        check_engines(dnn, ENGINE_ONEDNN, "onednn");
        dnn->destroy(dnn);
    }
    test_pools(direct);
    test_linear_loss(direct);
    test_bce(direct);
    test_eltwise(direct);
    test_adam(direct);
    test_sgemm();

    CHECK(net_cpu_create(100000) == NULL, "absurd thread count accepted");
    CHECK(strstr(e2e_error(), "threads") != NULL, "thread error message: %s", e2e_error());
    direct->destroy(direct);
    gemm->destroy(gemm);
    return check_main_result("test_cpu_ops");
}

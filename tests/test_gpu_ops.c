/* The CUDA backend against the CPU backend on the same random inputs: every op (the
 * densification of sparse input against the dense pixels preprocessed on the host), then
 * the whole model (forward, loss, backward and Adam steps through model_train_pass, so
 * the staging and CUDA-graph paths run), in each precision. Every GPU output is
 * poisoned with NaN before the op, so an element the op fails to write fails the
 * comparison; NaN never passes (rel_err). Tolerances, max |gpu - cpu| / max |cpu|:
 *   op level:    fp32 1e-5, tf32 2e-3, bf16 1e-2 (convolutions; the other ops are
 *                precision-independent and held to 1e-5 or exact);
 *   model level: fp32 1e-4 (as tests/test_parity_torch.c between two fp32 models),
 *                tf32 1e-2, bf16 5e-2 (errors of 15 convolutions compound) for the loss and
 *                the predictions; the gradients, per tensor: fp32 1e-4, tf32 0.15,
 *                bf16 1.0, and over the whole arena (relative L2 norm): fp32 1e-5, tf32
 *                0.05, bf16 0.4. bf16 operands flip ReLU and max-pool decisions near ties
 *                (a global max-pool's gradient then lands on another pixel) and round
 *                every layer's gradient: exact bf16 arithmetic with float sums, as the
 *                CUDA emulation of tests/cuda_emu computes, gives up to 0.61 per tensor
 *                and 0.2 over the arena on these shapes (6 seeds); tf32's mantissa is 8
 *                times finer (estimates, to be confirmed on a GPU).
 * Every compared pass starts from the CPU's parameters and Adam state, so that an error
 * is that pass's own, not the drift of earlier steps (a gradient near zero whose sign
 * differs moves its parameter by lr, and the difference grows from there).
 * Needs neither MPI nor HDF5. Exits 77 (skipped) when there is no GPU.
 * E2E_TEST_PRINT_ERRORS=1 prints every measured error; E2E_TEST_PRECISIONS (e.g. "fp32")
 * runs only the precisions it names (tests/gpu_full.sh's compute-sanitizer runs). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adam.h"
#include "check.h"
#include "conv_shape.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"
#include "error.h"
#include "model.h"
#include "preprocess.h" /* data/'s CPU preprocessing: the reference for prep_input */
#include "rng.h"

static Rng rng;
static NetOps *cpu, *gpu;
static const char *prec;
static double conv_tol, model_tol, grad_tol, grad_l2_tol;

/* ---- host and device buffers ---- */

static float *rnd(size_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = rng_range(&rng, lo, hi);
    return p;
}

static float *hzeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

static void *dev(size_t bytes) {
    void *p = gpu->alloc(gpu->ctx, bytes);
    if (!p) {
        fprintf(stderr, "test_gpu_ops: device allocation of %zu bytes failed\n", bytes);
        exit(1);
    }
    return p;
}

static float *dev_from(const float *h, size_t n) {
    float *d = dev(n * sizeof(float));
    gpu->upload(gpu->ctx, d, h, n * sizeof(float));
    return d;
}

/* NaN in every float (or -1 in every int32: all bits set) */
static void poison(void *d, size_t bytes) {
    unsigned char *h = malloc(bytes ? bytes : 1);
    memset(h, 0xff, bytes);
    gpu->upload(gpu->ctx, d, h, bytes);
    free(h);
}

static float *dev_poisoned(size_t n) {
    float *d = dev(n * sizeof(float));
    poison(d, n * sizeof(float));
    return d;
}

static float *host_of(const void *d, size_t n) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    gpu->download(gpu->ctx, h, d, n * sizeof(float));
    return h;
}

static void dfree(void *d) { gpu->release(gpu->ctx, d); }

/* E2E_TEST_PRINT_ERRORS=1: print every measured error, passing or not, so that the
 * tolerances can be set from measurements (tests/gpu_full.sh sets it) */
static void print_err(const char *what, double e, double tol) {
    static int on = -1;
    if (on < 0) on = getenv("E2E_TEST_PRINT_ERRORS") != NULL;
    if (on) printf("[%s] %s: rel err %.3g (tolerance %g)\n", prec, what, e, tol);
}

/* CHECKs rel_err(gpu buffer, cpu reference) < tol; returns the error */
static double compare(const char *what, const float *d, const float *ref, size_t n, double tol) {
    float *h = host_of(d, n);
    double e = rel_err(h, ref, n, 1e-6);
    print_err(what, e, tol);
    CHECK(e < tol, "[%s] %s: rel err %g (tolerance %g)", prec, what, e, tol);
    free(h);
    return e;
}

static int exact(const void *d, const void *ref, size_t bytes) {
    void *h = malloc(bytes ? bytes : 1);
    gpu->download(gpu->ctx, h, d, bytes);
    int same = memcmp(h, ref, bytes) == 0;
    free(h);
    return same;
}

/* ---- convolutions ---- */

static void test_conv(ConvShape s, Layout lay) {
    char label[160];
    snprintf(label, sizeof label, "conv n%d %dx%dx%d -> %d k%d s%d p%d %s", s.n, s.in_c, s.in_h,
             s.in_w, s.out_c, s.k_h, s.stride, s.pad, lay == LAYOUT_NCHW ? "NCHW" : "NHWC");
    size_t ni = (size_t)s.n * s.in_c * s.in_h * s.in_w, no = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    size_t nw = (size_t)s.out_c * s.in_c * s.k_h * s.k_w;
    float *x = rnd(ni, -1, 1), *w = rnd(nw, -0.5f, 0.5f), *b = rnd(s.out_c, -0.5f, 0.5f);
    float *res = rnd(no, -1, 1), *dy = rnd(no, -1, 1), *mask = rnd(ni, -1, 1);
    mask[0] = NAN;  /* a NaN in the mask lets the gradient through */
    float *y = hzeros(no), *dx = hzeros(ni), *dw = hzeros(nw), *db = hzeros(s.out_c);
    float *gx = dev_from(x, ni), *gw = dev_from(w, nw), *gb = dev_from(b, s.out_c);
    float *gres = dev_from(res, no), *gdy = dev_from(dy, no), *gmask = dev_from(mask, ni);
    float *gy = dev(no * 4), *gdx = dev(ni * 4), *gdw = dev(nw * 4), *gdb = dev(s.out_c * 4);
    char what[200];
    for (int variant = 0; variant < 2; variant++) {
        const float *r = variant ? res : NULL;
        cpu->conv2d_forward(cpu->ctx, &s, lay, x, w, b, r, variant, y);
        poison(gy, no * 4);
        gpu->conv2d_forward(gpu->ctx, &s, lay, gx, gw, gb, variant ? gres : NULL, variant, gy);
        snprintf(what, sizeof what, "%s forward%s", label, variant ? "+residual+relu" : "");
        compare(what, gy, y, no, conv_tol);
    }
    cpu->conv2d_backward_filter(cpu->ctx, &s, lay, x, dy, dw, db);
    poison(gdw, nw * 4);
    poison(gdb, s.out_c * 4);
    gpu->conv2d_backward_filter(gpu->ctx, &s, lay, gx, gdy, gdw, gdb);
    snprintf(what, sizeof what, "%s backward filter", label);
    compare(what, gdw, dw, nw, conv_tol);
    snprintf(what, sizeof what, "%s backward bias", label);
    compare(what, gdb, db, s.out_c, 1e-5);  /* float sums of float dy in every precision */
    if (lay == LAYOUT_NHWC) {
        for (int m = 0; m < 2; m++) {
            cpu->conv2d_backward_data(cpu->ctx, &s, dy, w, m ? mask : NULL, dx);
            poison(gdx, ni * 4);
            gpu->conv2d_backward_data(gpu->ctx, &s, gdy, gw, m ? gmask : NULL, gdx);
            snprintf(what, sizeof what, "%s backward data%s", label, m ? " with ReLU mask" : "");
            compare(what, gdx, dx, ni, conv_tol);
        }
    }
    free(x), free(w), free(b), free(res), free(dy), free(mask), free(y), free(dx), free(dw), free(db);
    dfree(gx), dfree(gw), dfree(gb), dfree(gres), dfree(gdy), dfree(gmask), dfree(gy), dfree(gdx);
    dfree(gdw), dfree(gdb);
}

static void test_convs(void) {
    test_conv(conv_shape(3, 3, 13, 11, 16, 7, 1, 1), LAYOUT_NCHW);   /* conv0, 3 channels */
    test_conv(conv_shape(4, 8, 30, 30, 16, 7, 1, 1), LAYOUT_NCHW);   /* conv0, 8 channels */
    test_conv(conv_shape(4, 16, 15, 15, 16, 3, 1, 1), LAYOUT_NHWC);  /* layer1 */
    test_conv(conv_shape(2, 16, 9, 9, 32, 3, 2, 1), LAYOUT_NHWC);    /* layer2 conv1, odd */
    test_conv(conv_shape(2, 16, 10, 8, 32, 3, 2, 1), LAYOUT_NHWC);   /* layer2 conv1, even */
    test_conv(conv_shape(2, 16, 9, 9, 32, 1, 2, 0), LAYOUT_NHWC);    /* shortcut */
    test_conv(conv_shape(3, 32, 8, 8, 32, 3, 1, 1), LAYOUT_NHWC);    /* layer3 */
    test_conv(conv_shape(2, 8, 9, 8, 8, 5, 3, 2), LAYOUT_NHWC);      /* odd sizes */
    test_conv(conv_shape(64, 16, 30, 30, 16, 3, 1, 1), LAYOUT_NHWC); /* a batch the size of training */
}

/* ---- pools ---- */

static void test_pools(void) {
    const int n = 3, c = 16, h = 9, w = 11, oh = h / 2, ow = w / 2;
    size_t ni = (size_t)n * h * w * c, no = (size_t)n * oh * ow * c;
    float *x = rnd(ni, -1, 1), *dy = rnd(no, -1, 1);
    for (size_t i = 0; i < ni; i += 3) x[i] = 0.0f;           /* ties, as after a ReLU */
    for (int q = 0; q < c; q++) x[((size_t)1 * w + 1) * c + q] = x[q] = 2.0f;
    x[(size_t)5 * c + 3] = NAN;                               /* a NaN wins its window */
    float *y = hzeros(no), *dx = hzeros(ni);
    int32_t *idx = calloc(no, sizeof(int32_t));
    cpu->maxpool2x2_forward(cpu->ctx, n, c, h, w, x, y, idx);
    cpu->maxpool2x2_backward(cpu->ctx, n, c, h, w, dy, idx, dx);
    float *gx = dev_from(x, ni), *gdy = dev_from(dy, no), *gy = dev_poisoned(no), *gdx = dev_poisoned(ni);
    int32_t *gidx = dev(no * 4);
    poison(gidx, no * 4);
    gpu->maxpool2x2_forward(gpu->ctx, n, c, h, w, gx, gy, gidx);
    CHECK(exact(gidx, idx, no * 4), "[%s] maxpool2x2 forward: winners differ from the CPU's", prec);
    float *hy = host_of(gy, no);
    int bad = 0;
    for (size_t i = 0; i < no; i++) bad += !(hy[i] == y[i] || (isnan(hy[i]) && isnan(y[i])));
    CHECK(bad == 0, "[%s] maxpool2x2 forward: %d values differ", prec, bad);
    free(hy);
    gpu->maxpool2x2_backward(gpu->ctx, n, c, h, w, gdy, gidx, gdx);
    CHECK(exact(gdx, dx, ni * 4), "[%s] maxpool2x2 backward differs (odd edge rows must be 0)", prec);

    /* global max-pool into a wider row: the columns past c must stay untouched */
    const int ld = c + 3;
    for (size_t i = 0; i < ni; i++) x[i] = x[i] > 0.5f ? 0.5f : x[i];  /* many ties at 0.5 */
    x[(size_t)7 * c + 5] = NAN;
    x[(size_t)20 * c + 5] = NAN;  /* the last NaN wins, as PyTorch's scan */
    float *g = hzeros((size_t)n * ld), *dg = rnd((size_t)n * ld, -1, 1);
    for (size_t i = 0; i < (size_t)n * ld; i++) g[i] = 7.0f;
    int32_t *gi = calloc((size_t)n * c, sizeof(int32_t));
    cpu->global_maxpool_forward(cpu->ctx, n, c, h, w, x, g, ld, gi);
    cpu->global_maxpool_backward(cpu->ctx, n, c, h, w, dg, ld, gi, dx);
    gpu->upload(gpu->ctx, gx, x, ni * 4);
    float *gg = dev((size_t)n * ld * 4), *gdg = dev_from(dg, (size_t)n * ld);
    int32_t *ggi = dev((size_t)n * c * 4);
    float *seven = hzeros((size_t)n * ld);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < ld; j++) seven[(size_t)i * ld + j] = j < c ? NAN : 7.0f;
    gpu->upload(gpu->ctx, gg, seven, (size_t)n * ld * 4);
    poison(ggi, (size_t)n * c * 4);
    gpu->global_maxpool_forward(gpu->ctx, n, c, h, w, gx, gg, ld, ggi);
    CHECK(exact(ggi, gi, (size_t)n * c * 4), "[%s] global maxpool forward: winners differ", prec);
    float *hg = host_of(gg, (size_t)n * ld);
    bad = 0;
    for (size_t i = 0; i < (size_t)n * ld; i++) bad += !(hg[i] == g[i] || (isnan(hg[i]) && isnan(g[i])));
    CHECK(bad == 0, "[%s] global maxpool forward: %d values differ (or columns past c written)", prec, bad);
    CHECK(isnan(hg[5]), "[%s] global maxpool: a NaN input must give a NaN feature", prec);
    free(hg);
    poison(gdx, ni * 4);
    gpu->global_maxpool_backward(gpu->ctx, n, c, h, w, gdg, ld, ggi, gdx);
    CHECK(exact(gdx, dx, ni * 4), "[%s] global maxpool backward differs", prec);
    free(x), free(dy), free(y), free(dx), free(idx), free(g), free(dg), free(gi), free(seven);
    dfree(gx), dfree(gdy), dfree(gy), dfree(gdx), dfree(gidx), dfree(gg), dfree(gdg), dfree(ggi);
}

/* ---- the other ops ---- */

static void test_linear_loss(void) {
    const int n = 300, in = 34, out = 2;  /* n above one block's threads */
    float *x = rnd((size_t)n * in, -1, 1), *w = rnd((size_t)out * in, -1, 1), *b = rnd(out, -1, 1);
    float *dy = rnd((size_t)n * out, -1, 1);
    float *y = hzeros((size_t)n * out), *dx = hzeros((size_t)n * in), *dw = hzeros((size_t)out * in), *db = hzeros(out);
    cpu->linear_forward(cpu->ctx, n, in, out, x, w, b, y);
    cpu->linear_backward(cpu->ctx, n, in, out, x, w, dy, dx, dw, db);
    float *gx = dev_from(x, (size_t)n * in), *gw = dev_from(w, (size_t)out * in), *gb = dev_from(b, out);
    float *gdy = dev_from(dy, (size_t)n * out), *gy = dev_poisoned((size_t)n * out);
    float *gdx = dev_poisoned((size_t)n * in), *gdw = dev_poisoned((size_t)out * in), *gdb = dev_poisoned(out);
    gpu->linear_forward(gpu->ctx, n, in, out, gx, gw, gb, gy);
    gpu->linear_backward(gpu->ctx, n, in, out, gx, gw, gdy, gdx, gdw, gdb);
    compare("linear forward", gy, y, (size_t)n * out, 1e-5);
    compare("linear backward dx", gdx, dx, (size_t)n * in, 1e-5);
    compare("linear backward dw", gdw, dw, (size_t)out * in, 1e-5);
    compare("linear backward db", gdb, db, out, 1e-5);
    poison(gdw, (size_t)out * in * 4);
    gpu->linear_backward(gpu->ctx, n, in, out, gx, gw, gdy, NULL, gdw, gdb);  /* dx optional */
    compare("linear backward without dx", gdw, dw, (size_t)out * in, 1e-5);

    /* L1 loss on n = 300 (several strides of the block) with and without weights */
    float *pred = rnd(n, -1, 1), *tgt = rnd(n, -1, 1), *wt = rnd(n, 0, 2);
    pred[3] = tgt[3];  /* sign(0) = 0 */
    float loss, *dp = hzeros(n);
    float *gp = dev_from(pred, n), *gt = dev_from(tgt, n), *gwt = dev_from(wt, n);
    float *gloss = dev_poisoned(1), *gdp = dev_poisoned(n);
    for (int weighted = 0; weighted < 2; weighted++) {
        cpu->l1_loss(cpu->ctx, n, pred, tgt, weighted ? wt : NULL, &loss, dp);
        poison(gloss, 4);
        poison(gdp, (size_t)n * 4);
        gpu->l1_loss(gpu->ctx, n, gp, gt, weighted ? gwt : NULL, gloss, gdp);
        compare(weighted ? "weighted l1 loss" : "l1 loss", gloss, &loss, 1, 1e-6);
        CHECK(exact(gdp, dp, (size_t)n * 4), "[%s] l1 gradient differs (weighted %d)", prec, weighted);
    }
    /* BCE with logits: logits over a wide range (both sigmoid branches, huge ones), 0/1 labels */
    for (int i = 0; i < n; i++) tgt[i] = (float)(i % 3 == 0), pred[i] = (i % 7 ? 8.0f : 80.0f) * pred[i];
    gpu->upload(gpu->ctx, gp, pred, (size_t)n * 4);
    gpu->upload(gpu->ctx, gt, tgt, (size_t)n * 4);
    for (int weighted = 0; weighted < 2; weighted++) {
        cpu->bce_logits_loss(cpu->ctx, n, pred, tgt, weighted ? wt : NULL, &loss, dp);
        poison(gloss, 4);
        poison(gdp, (size_t)n * 4);
        gpu->bce_logits_loss(gpu->ctx, n, gp, gt, weighted ? gwt : NULL, gloss, gdp);
        compare(weighted ? "weighted bce loss" : "bce loss", gloss, &loss, 1, 1e-6);
        compare(weighted ? "weighted bce gradient" : "bce gradient", gdp, dp, (size_t)n, 1e-6);
    }
    pred[1] = NAN;
    gpu->upload(gpu->ctx, gp, pred, (size_t)n * 4);
    gpu->l1_loss(gpu->ctx, n, gp, gt, NULL, gloss, gdp);
    float *hl = host_of(gloss, 1);
    CHECK(isnan(hl[0]), "[%s] l1 loss of a NaN prediction must be NaN, got %g", prec, hl[0]);
    free(hl);
    gpu->bce_logits_loss(gpu->ctx, n, gp, gt, NULL, gloss, gdp);
    hl = host_of(gloss, 1);
    CHECK(isnan(hl[0]), "[%s] bce loss of a NaN logit must be NaN, got %g", prec, hl[0]);
    free(hl);
    free(x), free(w), free(b), free(dy), free(y), free(dx), free(dw), free(db);
    free(pred), free(tgt), free(wt), free(dp);
    dfree(gx), dfree(gw), dfree(gb), dfree(gdy), dfree(gy), dfree(gdx), dfree(gdw), dfree(gdb);
    dfree(gp), dfree(gt), dfree(gwt), dfree(gloss), dfree(gdp);
}

static void test_eltwise(void) {
    const size_t n = 300001;  /* not a multiple of anything */
    float *y = rnd(n, -1, 1), *a = rnd(n, -1, 1), *b = rnd(n, -1, 1), *o = hzeros(n);
    y[3] = NAN;
    float *gy = dev_from(y, n), *ga = dev_from(a, n), *gb = dev_from(b, n), *go = dev_poisoned(n);
    cpu->relu_backward(cpu->ctx, n, y, a, NULL, o);
    gpu->relu_backward(gpu->ctx, n, gy, ga, NULL, go);
    CHECK(exact(go, o, n * 4), "[%s] relu backward differs", prec);
    cpu->relu_backward(cpu->ctx, n, y, a, b, o);
    poison(go, n * 4);
    gpu->relu_backward(gpu->ctx, n, gy, ga, gb, go);
    CHECK(exact(go, o, n * 4), "[%s] relu backward with addend differs", prec);
    gpu->relu_backward(gpu->ctx, n, gy, ga, gb, ga);  /* in place: dx aliases dy */
    CHECK(exact(ga, o, n * 4), "[%s] relu backward in place differs", prec);

    float *flag = dev_poisoned(1), one = 1.0f, zero = 0.0f;
    gpu->nonfinite_check(gpu->ctx, n, gb, flag);
    CHECK(exact(flag, &zero, 4), "[%s] finite data reported as non-finite", prec);
    b[n - 7] = INFINITY;
    gpu->upload(gpu->ctx, gb, b, n * 4);
    gpu->nonfinite_check(gpu->ctx, n, gb, flag);
    CHECK(exact(flag, &one, 4), "[%s] an Inf was not found", prec);
    b[n - 7] = NAN;
    gpu->upload(gpu->ctx, gb, b, n * 4);
    gpu->nonfinite_check(gpu->ctx, n, gb, flag);
    CHECK(exact(flag, &one, 4), "[%s] a NaN was not found", prec);

    /* add_scale (gradient accumulation): rounded as the CPU's, bitwise (finite data: a
     * NaN's payload is the hardware's) */
    y[3] = 0.25f;
    gpu->upload(gpu->ctx, gy, y, n * 4);
    gpu->upload(gpu->ctx, ga, a, n * 4);
    memcpy(o, y, n * 4);
    cpu->add_scale(cpu->ctx, n, a, o, 1.0f / 3);
    gpu->add_scale(gpu->ctx, n, ga, gy, 1.0f / 3);
    CHECK(exact(gy, o, n * 4), "[%s] add_scale differs", prec);

    /* copy2d, and alloc gives zeros */
    float src[6] = {1, 2, 3, 4, 5, 6}, want[8] = {7, 1, 2, 7, 7, 4, 5, 7};
    float *gs = dev_from(src, 6), *gd = dev(8 * 4), sev[8];
    for (int i = 0; i < 8; i++) sev[i] = 7;
    gpu->upload(gpu->ctx, gd, sev, sizeof sev);
    gpu->copy2d(gpu->ctx, gd + 1, 4, gs, 3, 2, 2);
    CHECK(exact(gd, want, sizeof want), "[%s] copy2d", prec);
    float *z = dev(1000 * 4), *zeros = hzeros(1000);
    CHECK(exact(z, zeros, 4000), "[%s] alloc must return zeroed memory", prec);
    CHECK(ops_check(gpu) == 0, "[%s] the backend's declaration: %s", prec, e2e_error());
    CHECK(ops_can(gpu, OPS_STREAM | OPS_PINNED_HOST | OPS_ASYNC_UPLOAD | OPS_PREP_INPUT | OPS_GRAPHS) &&
          !ops_can(gpu, OPS_HOST_MEMORY), "[%s] capabilities 0x%x", prec, gpu->caps);
    CHECK(gpu->stream(gpu->ctx) != NULL, "[%s] the backend must name its stream", prec);
    free(y), free(a), free(b), free(o), free(zeros);
    dfree(gy), dfree(ga), dfree(gb), dfree(go), dfree(flag), dfree(gs), dfree(gd), dfree(z);
}

static void test_adam(void) {
    const size_t n = 100003;
    float *p = rnd(n, -1, 1), *m = hzeros(n), *v = hzeros(n);
    float *gp = dev_from(p, n), *gm = dev(n * 4), *gv = dev(n * 4), *gg = dev(n * 4);
    AdamHyper h = {.beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f};
    for (long step = 1; step <= 5; step++) {
        float *g = rnd(n, -1, 1);
        gpu->upload(gpu->ctx, gg, g, n * 4);
        AdamFactors k = adam_factors(&h, 1e-2f, step);
        cpu->adam_update(cpu->ctx, n, p, g, m, v, &k);
        gpu->adam_update(gpu->ctx, n, gp, gg, gm, gv, &k);
        free(g);
    }
    compare("adam: 5 steps, parameters", gp, p, n, 1e-6);
    compare("adam: 5 steps, first moments", gm, m, n, 1e-6);
    compare("adam: 5 steps, second moments", gv, v, n, 1e-6);
    printf("[%s] adam bitwise equal to the CPU's: %s\n", prec, exact(gp, p, n * 4) ? "yes" : "no");
    free(p), free(m), free(v);
    dfree(gp), dfree(gm), dfree(gv), dfree(gg);
}

/* IEEE binary16 bits of a float that binary16 holds exactly (k / 64, 0 <= k < 2048) */
static uint16_t half_bits(float f) {
    if (f == 0.0f) return 0;
    int e;
    float m = frexpf(f, &e);  /* f = m 2^e, m in [0.5, 1) */
    uint16_t exp = (uint16_t)(e - 1 + 15), man = (uint16_t)((m * 2.0f - 1.0f) * 1024.0f);
    return (uint16_t)(exp << 10 | man);
}

/* A batch's non-zero pixels as entries (the sparse layout): plane starts, positions and
 * values (float32 and their binary16 bits) of the non-zero pixels of raw (n*c planes of
 * hw), in plane order. Returns the entry count. */
static long long entries_of(const float *raw, int planes, size_t hw, uint32_t *starts, void *pos, int pos_bytes,
                            float *val, uint16_t *bits) {
    long long e = 0;
    starts[0] = 0;
    for (int p = 0; p < planes; p++) {
        for (size_t k = 0; k < hw; k++) {
            if (raw[p * hw + k] == 0.0f) continue;
            if (pos_bytes == 2) ((uint16_t *)pos)[e] = (uint16_t)k;
            else ((uint32_t *)pos)[e] = (uint32_t)k;
            val[e] = raw[p * hw + k];
            bits[e++] = half_bits(raw[p * hw + k]);
        }
        starts[p + 1] = (uint32_t)e;
    }
    return e;
}

/* densify_input (then prep_input in place, as the feed does) against the dense pixels
 * preprocessed on the host: uint16 and uint32 positions, float32 and binary16 values, a
 * plane without entries, and the planes of a 125 x 125 x 8 batch of 32 */
static void test_densify_case(int n, int c, size_t hw, int pos_bytes, double density) {
    const size_t total = (size_t)n * c * hw;
    float scale[8] = {0.02f, 0.2f, 1.0f, 0.5f, 1.5f, 0.1f, 3.0f, 0.05f}, thr = 1e-3f;
    float *raw = hzeros(total), *want = hzeros(total), *val = hzeros(total);
    uint16_t *bits = calloc(total, sizeof(uint16_t));
    uint32_t *starts = calloc((size_t)n * c + 1, sizeof(uint32_t));
    void *pos = calloc(total, (size_t)pos_bytes);
    for (size_t i = 0; i < total; i++) {
        int empty = (i / hw) == 1; /* plane 1 holds nothing */
        raw[i] = !empty && rng_uniform(&rng) < density ? (float)(1 + rng_next(&rng) % 2047) / 64.0f : 0.0f;
        float v = raw[i] * scale[(i / hw) % c];
        v = v < thr ? 0.0f : v;
        want[i] = v > 1.0f ? 1.0f : v;
    }
    long long nnz = entries_of(raw, n * c, hw, starts, pos, pos_bytes, val, bits);
    uint32_t *gs = dev(((size_t)n * c + 1) * 4);
    void *gp = dev((size_t)(nnz ? nnz : 1) * pos_bytes), *gv = dev((size_t)(nnz ? nnz : 1) * 4);
    void *gb = dev((size_t)(nnz ? nnz : 1) * 2);
    float *gx = dev_poisoned(total);
    gpu->upload(gpu->ctx, gs, starts, ((size_t)n * c + 1) * 4);
    gpu->upload(gpu->ctx, gp, pos, (size_t)nnz * pos_bytes);
    gpu->upload(gpu->ctx, gv, val, (size_t)nnz * 4);
    gpu->upload(gpu->ctx, gb, bits, (size_t)nnz * 2);
    for (int half = 0; half < 2; half++) {
        poison(gx, total * 4);
        gpu->densify_input(gpu->ctx, n, c, hw, gs, gp, pos_bytes, half ? gb : gv, half, gx);
        CHECK(exact(gx, raw, total * 4), "[%s] densify_input %d x %d x %zu, uint%d positions, %s values", prec, n, c,
              hw, 8 * pos_bytes, half ? "binary16" : "float32");
        gpu->prep_input(gpu->ctx, n, c, hw, gx, 0, scale, NULL, thr, gx);
        CHECK(exact(gx, want, total * 4), "[%s] densify_input then prep_input in place (%d x %d x %zu, %s)", prec, n,
              c, hw, half ? "binary16" : "float32");
    }
    free(raw), free(want), free(val), free(bits), free(starts), free(pos);
    dfree(gs), dfree(gp), dfree(gv), dfree(gb), dfree(gx);
}

static void test_densify(void) {
    test_densify_case(3, 8, 7 * 5, 2, 0.3);
    test_densify_case(2, 3, 300 * 300, 4, 0.01); /* planes too large for uint16 positions */
    test_densify_case(32, 8, 125 * 125, 2, 0.011);
}

/* prep_input from float32 and binary16 pixels of either sign: without kinds against the
 * energy-like rule written out here, with kinds (some channels signed) against the CPU
 * reader's preprocess_images given the scales whose inverses the GPU multiplies by
 * (dataset_prep_factors' numbers): bitwise equal; and as a plain conversion or copy. */
static void test_prep(void) {
    const int n = 3, c = 8;
    const size_t hw = 7 * 5, total = (size_t)n * c * hw;
    const float scales[8] = {50.0f, 5.0f, 1.0f, 2.0f, 0.75f, 10.0f, 0.25f, 20.0f};
    const unsigned char kind[8] = {CHANNEL_ENERGY, CHANNEL_SIGNED, CHANNEL_SIGNED, CHANNEL_ENERGY,
                                   CHANNEL_SIGNED, CHANNEL_ENERGY, CHANNEL_ENERGY, CHANNEL_SIGNED};
    float scale[8], thr = 1e-3f;
    for (int ch = 0; ch < c; ch++) scale[ch] = 1.0f / scales[ch];
    float *raw = hzeros(total), *want = hzeros(total), *want_plain = hzeros(total), *want_kinds = hzeros(total);
    uint16_t *bits = calloc(total, sizeof(uint16_t));
    for (size_t i = 0; i < total; i++) {
        float mag = (float)(rng_next(&rng) % 2048) / 64.0f; /* binary16 holds these exactly */
        raw[i] = rng_next(&rng) % 2 ? -mag : mag;
        bits[i] = (uint16_t)(half_bits(mag) | (signbit(raw[i]) ? 0x8000 : 0)); /* -0 too */
        float v = raw[i] * scale[(i / hw) % c];
        v = v < thr ? 0.0f : v; /* negatives too */
        want[i] = v > 1.0f ? 1.0f : v;
        want_plain[i] = raw[i];
    }
    memcpy(want_kinds, raw, total * 4);
    preprocess_images(want_kinds, n, c, (long long)hw, scales, kind, thr);
    size_t negative = 0;
    for (size_t i = 0; i < total; i++) negative += want_kinds[i] < 0;
    CHECK(negative > total / 10, "[%s] the signed channels keep negative values on the CPU (%zu)", prec, negative);
    void *graw = dev(total * 4), *ghalf = dev(total * 2);
    float *gx = dev_poisoned(total);
    gpu->upload(gpu->ctx, graw, raw, total * 4);
    gpu->upload(gpu->ctx, ghalf, bits, total * 2);
    struct { void *raw; int half; const float *scale; const unsigned char *kind; const float *want; const char *what; }
        cases[] = {{graw, 0, scale, NULL, want, "prep_input of float32 pixels"},
                   {ghalf, 1, scale, NULL, want, "prep_input of binary16 pixels"},
                   {graw, 0, scale, kind, want_kinds, "prep_input with channel kinds = the CPU's preprocess_images"},
                   {ghalf, 1, scale, kind, want_kinds, "prep_input of binary16 pixels with channel kinds"},
                   {ghalf, 1, NULL, NULL, want_plain, "binary16 to float32 without preprocessing"},
                   {graw, 0, NULL, NULL, want_plain, "prep_input as a plain copy"}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        poison(gx, total * 4);
        gpu->prep_input(gpu->ctx, n, c, hw, cases[k].raw, cases[k].half, cases[k].scale, cases[k].kind,
                        cases[k].scale ? thr : 0.0f, gx);
        CHECK(exact(gx, cases[k].want, total * 4), "[%s] %s", prec, cases[k].what);
    }

    /* upload_async from pageable and from pinned memory, after a mark */
    float *pinned = gpu->alloc_host(gpu->ctx, total * 4);
    CHECK(pinned != NULL, "[%s] alloc_host", prec);
    if (pinned) {
        memcpy(pinned, want, total * 4);
        gpu->mark(gpu->ctx);
        gpu->upload_async(gpu->ctx, gx, pinned, total * 4);
        memset(pinned, 0, total * 4);  /* the call returned: the source may be reused */
        CHECK(exact(gx, want, total * 4), "[%s] upload_async from pinned memory", prec);
        gpu->release_host(gpu->ctx, pinned);
    }
    gpu->mark(gpu->ctx);
    gpu->upload_async(gpu->ctx, gx, raw, total * 4);
    memset(raw, 0, total * 4);
    CHECK(exact(gx, want_plain, total * 4), "[%s] upload_async from pageable memory", prec);
    free(raw), free(want), free(want_plain), free(want_kinds), free(bits);
    dfree(graw), dfree(ghalf), dfree(gx);
}

/* ---- the whole model ---- */

typedef struct {
    Model *m;
    Adam adam;
} Trainer;

#define TRAIN_LR 1e-3f  /* PyTorch's default rate */

static int trainer_make(Trainer *t, NetOps *ops, const ModelConfig *cfg) {
    if (model_create(&t->m, cfg, ops)) {
        CHECK(0, "[%s] model_create on %s: %s", prec, ops->name, e2e_error());
        return -1;
    }
    model_init(t->m, 7);
    AdamHyper h = adam_default_hyper();
    if (adam_create(&t->adam, ops, model_arena_size(t->m), h)) {
        CHECK(0, "[%s] adam_create: %s", prec, e2e_error());
        return -1;
    }
    return 0;
}

static void trainer_free(Trainer *t) {
    adam_free(&t->adam);
    model_free(t->m);
}

/* per-tensor rel err of two arenas; returns the worst */
static double arena_err(const Model *m, const float *a, const float *ref, const char *what,
                        double tol) {
    double worst = 0;
    for (int i = 0; i < model_num_tensors(m); i++) {
        const ParamTensor *p = model_tensor(m, i);
        double e = rel_err(a + p->offset, ref + p->offset, p->numel, 1e-12);
        CHECK(e < tol, "[%s] %s of %s: rel err %g (tolerance %g)", prec, what, p->name, e, tol);
        if (e > worst) worst = e;
    }
    char label[200];
    snprintf(label, sizeof label, "%s, worst of %d tensors", what, model_num_tensors(m));
    print_err(label, worst, tol);
    return worst;
}

typedef struct {
    int n;
    float *x, *sc, *t, *w;
} OwnedBatch;

static OwnedBatch batch_make(const ModelConfig *cfg, int n) {
    OwnedBatch b = {.n = n};
    size_t nx = (size_t)n * cfg->in_channels * cfg->height * cfg->width;
    b.x = hzeros(nx);
    for (size_t i = 0; i < nx; i++)  /* sparse, as jet images */
        b.x[i] = rng_uniform(&rng) < 0.3f ? rng_uniform(&rng) : 0.0f;
    b.sc = rnd((size_t)n * cfg->n_scalars, 0, 1);
    b.t = rnd(n, 0.1f, 1);
    b.w = rnd(n, 0.5f, 2);
    return b;
}

static void batch_free(OwnedBatch *b) { free(b->x), free(b->sc), free(b->t), free(b->w); }

static Batch host_batch(const OwnedBatch *b, int weighted) {
    return (Batch){.n = b->n, .x = b->x, .scalars = b->sc, .target = b->t,
                       .weight = weighted ? b->w : NULL};
}

/* tg takes tc's parameters, Adam moments and step. */
static void same_state(Trainer *tc, Trainer *tg) {
    size_t na = model_arena_size(tc->m);
    float *p = hzeros(na), *m = hzeros(na), *v = hzeros(na);
    CHECK(model_get_params(tc->m, p) == 0 && model_set_params(tg->m, p) == 0 &&
          adam_get_moments(&tc->adam, m, v) == 0 && adam_set_moments(&tg->adam, m, v) == 0,
          "[%s] copying the training state: %s", prec, e2e_error());
    tg->adam.step = tc->adam.step;
    free(p), free(m), free(v);
}

/* One training pass on both backends from the same state; compares loss, predictions
 * and gradients. */
static void pass_both(Trainer *tc, Trainer *tg, const Batch *bc, const Batch *bg,
                      const char *label) {
    char what[160];
    same_state(tc, tg);
    CHECK(model_train_pass(tc->m, bc) == 0, "[%s] %s cpu pass: %s", prec, label, e2e_error());
    CHECK(model_train_pass(tg->m, bg) == 0, "[%s] %s gpu pass: %s", prec, label, e2e_error());
    float lc = 0, lg = 0;
    model_loss_value(tc->m, &lc);
    model_loss_value(tg->m, &lg);
    double le = fabs((double)lc - lg) / fabs((double)lc);
    CHECK(le < model_tol, "[%s] %s loss: gpu %.9g cpu %.9g (rel %g)", prec, label, lg, lc, le);
    snprintf(what, sizeof what, "%s loss", label);
    print_err(what, le, model_tol);
    snprintf(what, sizeof what, "%s predictions", label);
    compare(what, model_predictions(tg->m), model_predictions(tc->m), (size_t)bc->n, model_tol);
    size_t na = model_arena_size(tc->m);
    float *gc = hzeros(na), *gg = hzeros(na);
    model_get_grads(tc->m, gc);
    model_get_grads(tg->m, gg);
    snprintf(what, sizeof what, "%s gradient", label);
    arena_err(tc->m, gg, gc, what, grad_tol);
    double d2 = 0, c2 = 0;
    for (size_t i = 0; i < na; i++) d2 += ((double)gg[i] - gc[i]) * ((double)gg[i] - gc[i]), c2 += (double)gc[i] * gc[i];
    double l2 = sqrt(d2 / (c2 > 0 ? c2 : 1));
    CHECK(l2 < grad_l2_tol, "[%s] %s over the arena: relative L2 error %g (tolerance %g)", prec, what, l2, grad_l2_tol);
    snprintf(what, sizeof what, "%s gradient over the arena (L2)", label);
    print_err(what, l2, grad_l2_tol);
    free(gc), free(gg);
}

static void step_both(Trainer *tc, Trainer *tg) {
    adam_step(&tc->adam, TRAIN_LR, model_params(tc->m), model_grads(tc->m));
    adam_step(&tg->adam, TRAIN_LR, model_params(tg->m), model_grads(tg->m));
}

/* Parameters after Adam steps. An Adam step moves a parameter by about lr times the
 * sign of its gradient, and a gradient near zero may differ in sign between backends
 * (its size is below their difference), so every parameter must lie within 2 lr per
 * step of the CPU's. In fp32, after one step from the same state (strict), all but a
 * few must also agree to 1e-4 relative (1e-6 absolute): at most one in a thousand may
 * be such a near-zero-gradient parameter (over several independent steps the
 * differences spread: the bound alone holds). */
static void compare_params(Trainer *tc, Trainer *tg, int steps, const char *label, int strict) {
    size_t na = model_arena_size(tc->m);
    float *pc = hzeros(na), *pg = hzeros(na);
    model_get_params(tc->m, pc);
    model_get_params(tg->m, pg);
    char what[160];
    snprintf(what, sizeof what, "%s parameters after %d Adam steps", label, steps);
    double worst = 0, bound = 2.0 * TRAIN_LR * steps;
    size_t off = 0;
    for (size_t i = 0; i < na; i++) {
        double d = fabs((double)pg[i] - pc[i]);
        if (isnan(d)) d = INFINITY;
        if (d > worst) worst = d;
        off += d > 1e-6 + 1e-4 * fabs((double)pc[i]);
    }
    CHECK(worst <= bound, "[%s] %s: max |gpu - cpu| %g > %g", prec, what, worst, bound);
    if (getenv("E2E_TEST_PRINT_ERRORS"))
        printf("[%s] %s: max |gpu - cpu| %.3g (bound %g), %zu of %zu over 1e-4 relative\n", prec,
               what, worst, bound, off, na);
    if (strict && strcmp(prec, "fp32") == 0)
        CHECK(off * 1000 <= na, "[%s] %s: %zu of %zu differ by more than 1e-4 relative", prec, what, off, na);
    free(pc), free(pg);
}

/* hg's binary16 images (bits: planes of hw) as entries, densified and preprocessed on
 * the GPU, against hc's images preprocessed on the host */
static void pass_sparse(Trainer *tc, Trainer *tg, const Batch *hc, const Batch *hg, const uint16_t *bits,
                        int planes, size_t hw) {
    const size_t nx = (size_t)planes * hw;
    float *raw = hzeros(nx), *val = hzeros(nx);
    uint16_t *vbits = calloc(nx, sizeof(uint16_t)), *pos = calloc(nx, sizeof(uint16_t));
    uint32_t *starts = calloc((size_t)planes + 1, sizeof(uint32_t));
    for (size_t i = 0; i < nx; i++) { /* the binary16 values (k / 64, normal) as floats: exact */
        uint16_t h = bits[i];
        raw[i] = h ? ldexpf((float)(1024 + (h & 1023)), ((h >> 10) & 31) - 25) : 0.0f;
    }
    long long nnz = entries_of(raw, planes, hw, starts, pos, 2, val, vbits);
    Batch hs = *hg;
    hs.x_half = NULL;
    hs.sparse = (SparseImages){.nnz = nnz, .plane_start = starts, .pos = pos, .value = vbits, .pos_bytes = 2,
                              .value_bytes = 2};
    pass_both(tc, tg, hc, &hs, "sparse input densified and preprocessed on the GPU");
    free(raw), free(val), free(vbits), free(pos), free(starts);
}

/* Back-to-back passes and Adam steps with no synchronisation in between: a batch's copy
 * must not overwrite the one a running pass reads. The same passes on the same GPU with
 * the device synchronised after each give bitwise the same parameters (the same
 * algorithms: a staging race would change them); the CPU's lie within Adam's bound. */
static void test_back_to_back(Trainer *tc, Trainer *tg, const ModelConfig *cfg, const OwnedBatch *b) {
    Trainer ts;
    if (trainer_make(&ts, gpu, cfg)) return;
    same_state(tc, tg);
    same_state(tc, &ts);
    for (int k = 0; k < 8; k++) {  /* enqueued far ahead of the device */
        Batch h = host_batch(&b[k % 4], 0);
        CHECK(model_train_pass(tg->m, &h) == 0, "[%s] back-to-back pass %d: %s", prec, k, e2e_error());
        adam_step(&tg->adam, TRAIN_LR, model_params(tg->m), model_grads(tg->m));
    }
    for (int k = 0; k < 8; k++) {
        Batch h = host_batch(&b[k % 4], 0);
        gpu->sync(gpu->ctx);  /* the device idle before each of ts's passes */
        CHECK(model_train_pass(tc->m, &h) == 0 && model_train_pass(ts.m, &h) == 0, "[%s] pass %d: %s", prec, k,
              e2e_error());
        adam_step(&tc->adam, TRAIN_LR, model_params(tc->m), model_grads(tc->m));
        adam_step(&ts.adam, TRAIN_LR, model_params(ts.m), model_grads(ts.m));
    }
    compare_params(tc, tg, 8, "back-to-back", 0);
    size_t na = model_arena_size(tg->m);
    float *pg = hzeros(na), *ps = hzeros(na);
    model_get_params(tg->m, pg);
    model_get_params(ts.m, ps);
    CudaStats st;
    net_cuda_stats(gpu, &st);
    if (st.nondeterministic == 0)
        CHECK(memcmp(pg, ps, na * 4) == 0, "[%s] back-to-back passes differ from synchronised ones", prec);
    else
        arena_err(tg->m, pg, ps, "back-to-back against synchronised passes", model_tol);
    free(pg), free(ps);
    trainer_free(&ts);
}

static void test_model(void) {
    ModelConfig cfg = model_default_config(8);
    cfg.height = cfg.width = 29;
    Trainer tc, tg;
    if (trainer_make(&tc, cpu, &cfg) || trainer_make(&tg, gpu, &cfg)) return;
    CudaStats s0, s1;
    net_cuda_stats(gpu, &s0);
    OwnedBatch b[4];
    for (int i = 0; i < 4; i++) b[i] = batch_make(&cfg, 8);
    /* passes 1-3 of batch size 8: direct, recorded, replayed; pass 4 adds weights (a new
     * graph key: direct) */
    char label[64];
    for (int step = 0; step < 4; step++) {
        Batch hb = host_batch(&b[step], step == 3);
        snprintf(label, sizeof label, "model pass %d", step + 1);
        pass_both(&tc, &tg, &hb, &hb, label);
        step_both(&tc, &tg);
    }
    compare_params(&tc, &tg, 4, "model", 1);
    net_cuda_stats(gpu, &s1);
    CHECK(s1.graphs_recorded - s0.graphs_recorded == 1, "[%s] %ld graphs recorded, want 1", prec,
          s1.graphs_recorded - s0.graphs_recorded);
    CHECK(s1.graphs_replayed - s0.graphs_replayed == 2, "[%s] %ld graph launches, want 2", prec,
          s1.graphs_replayed - s0.graphs_replayed);
    printf("[%s] convolution plans %ld (non-deterministic %ld, float instead of bf16 %ld), cuDNN "
           "workspace %.1f MiB\n", prec, s1.conv_plans, s1.nondeterministic, s1.fp32_fallbacks,
           s1.workspace_bytes / 1048576.0);

    /* model_predict, and a smaller batch (new plans, a new graph key) */
    float pc[8], pg[8];
    Batch hb = host_batch(&b[0], 0);
    hb.n = 5;
    CHECK(model_predict(tc.m, &hb, pc) == 0 && model_predict(tg.m, &hb, pg) == 0,
          "[%s] model_predict: %s", prec, e2e_error());
    CHECK(rel_err(pg, pc, 5, 1e-6) < model_tol, "[%s] model_predict differs: rel err %g", prec,
          rel_err(pg, pc, 5, 1e-6));
    pass_both(&tc, &tg, &hb, &hb, "batch of 5");

    /* x_half + prep on the GPU against the same preprocessing done on the host */
    size_t nx = (size_t)8 * cfg.in_channels * cfg.height * cfg.width, hw = (size_t)cfg.height * cfg.width;
    uint16_t *bits = calloc(nx, sizeof(uint16_t));
    float *xp = hzeros(nx), scale[8] = {0.02f, 0.2f, 1.0f, 0.5f, 1.5f, 0.1f, 3.0f, 0.05f};
    for (size_t i = 0; i < nx; i++) {
        float raw = rng_uniform(&rng) < 0.3f ? (float)(rng_next(&rng) % 2048) / 64.0f : 0.0f;
        bits[i] = half_bits(raw);
        float v = raw * scale[(i / hw) % cfg.in_channels];
        v = v < 1e-3f ? 0.0f : v;
        xp[i] = v > 1.0f ? 1.0f : v;
    }
    InputPrep prep = {.scale = scale, .threshold = 1e-3f};
    Batch hc = host_batch(&b[1], 1), hg = hc;
    hc.x = xp;
    hg.x = NULL;
    hg.x_half = bits;
    hg.prep = &prep;
    pass_both(&tc, &tg, &hc, &hg, "binary16 input preprocessed on the GPU");

    pass_sparse(&tc, &tg, &hc, &hg, bits, 8 * cfg.in_channels, hw);

    /* a batch already on the device */
    float *dx = dev_from(xp, nx), *dsc = dev_from(b[1].sc, (size_t)8 * cfg.n_scalars);
    float *dt = dev_from(b[1].t, 8), *dw = dev_from(b[1].w, 8);
    Batch hd = {.n = 8, .x = dx, .scalars = dsc, .target = dt, .weight = dw, .on_device = 1};
    pass_both(&tc, &tg, &hc, &hd, "batch on the device");
    dfree(dx), dfree(dsc), dfree(dt), dfree(dw);
    free(bits), free(xp);

    /* the trainer's look-ahead: the next batch staged while a pass runs leaves that pass
     * alone, and model_train_pass(m, NULL) trains on it */
    Batch h0 = host_batch(&b[0], 0), h1 = host_batch(&b[1], 1);
    float lc0 = 0, lg0 = 0;
    CHECK(model_train_pass(tc.m, &h0) == 0 && model_train_pass(tg.m, &h0) == 0 &&
          model_stage_batch(tg.m, &h1) == 0, "[%s] pass and look-ahead: %s", prec, e2e_error());
    model_loss_value(tc.m, &lc0);
    model_loss_value(tg.m, &lg0);
    CHECK(fabs((double)lc0 - lg0) <= model_tol * fabs((double)lc0),
          "[%s] loss with the next batch staged during the pass: gpu %.9g cpu %.9g", prec, lg0, lc0);
    pass_both(&tc, &tg, &h1, NULL, "staged look-ahead batch");

    test_back_to_back(&tc, &tg, &cfg, b);

    /* graph replay against direct runs on the same backend (same algorithms): bitwise
     * equal when every algorithm is deterministic */
    Trainer ta, tb;
    if (trainer_make(&ta, gpu, &cfg) == 0 && trainer_make(&tb, gpu, &cfg) == 0) {
        int was = net_cuda_set_graphs(gpu, 0);
        for (int k = 0; k < 4; k++) {
            Batch h = host_batch(&b[k], 0);
            model_train_pass(tb.m, &h);
            adam_step(&tb.adam, TRAIN_LR, model_params(tb.m), model_grads(tb.m));
        }
        net_cuda_set_graphs(gpu, 1);
        for (int k = 0; k < 4; k++) {
            Batch h = host_batch(&b[k], 0);
            model_train_pass(ta.m, &h);
            adam_step(&ta.adam, TRAIN_LR, model_params(ta.m), model_grads(ta.m));
        }
        net_cuda_set_graphs(gpu, was);
        size_t na = model_arena_size(ta.m);
        float *pa = hzeros(na), *pb = hzeros(na);
        model_get_params(ta.m, pa);
        model_get_params(tb.m, pb);
        CudaStats st;
        net_cuda_stats(gpu, &st);
        if (st.nondeterministic == 0)
            CHECK(memcmp(pa, pb, na * 4) == 0, "[%s] graph replay and direct runs differ", prec);
        else
            arena_err(ta.m, pa, pb, "graph replay against direct runs", model_tol);
        free(pa), free(pb);
        trainer_free(&ta);
        trainer_free(&tb);
    }

    /* a capture that fails (as a call refused inside it would): the pass still runs,
     * directly, with the CPU's result, and graph replay goes off for the backend */
    Trainer fc, fg;
    if (trainer_make(&fc, cpu, &cfg) == 0 && trainer_make(&fg, gpu, &cfg) == 0) {
        int was = net_cuda_set_graphs(gpu, 1);
        CudaStats f0, f1;
        net_cuda_stats(gpu, &f0);
        Batch h = host_batch(&b[2], 0);
        pass_both(&fc, &fg, &h, &h, "pass before a failed capture");
        step_both(&fc, &fg);
        CHECK(net_cuda_fail_next_capture(gpu) == 0, "[%s] net_cuda_fail_next_capture", prec);
        pass_both(&fc, &fg, &h, &h, "pass whose capture failed");
        step_both(&fc, &fg);
        compare_params(&fc, &fg, 2, "after a failed capture", 1);
        net_cuda_stats(gpu, &f1);
        CHECK(f1.graphs_recorded == f0.graphs_recorded && f1.graphs_replayed == f0.graphs_replayed,
              "[%s] a failed capture recorded %ld graphs and launched %ld", prec,
              f1.graphs_recorded - f0.graphs_recorded, f1.graphs_replayed - f0.graphs_replayed);
        CHECK(net_cuda_set_graphs(gpu, was) == 0, "[%s] graph replay still on after a failed capture", prec);
        trainer_free(&fc);
        trainer_free(&fg);
    }
    for (int i = 0; i < 4; i++) batch_free(&b[i]);
    trainer_free(&tc);
    trainer_free(&tg);
}

int main(void) {
    /* what needs no GPU: refusals */
    cpu = net_cpu_create(2);
    CHECK(cpu != NULL, "cpu backend: %s", e2e_error());
    if (!cpu) return check_main_result("test_gpu_ops");
    CudaStats st;
    CHECK(net_cuda_stats(cpu, &st) == -1, "net_cuda_stats must refuse a CPU backend");
    CHECK(net_cuda_set_graphs(cpu, 1) == -1, "net_cuda_set_graphs must refuse a CPU backend");
    CHECK(net_cuda_fail_next_capture(cpu) == -1, "net_cuda_fail_next_capture must refuse a CPU backend");
    CHECK(net_cuda_create(0, "fp16") == NULL && strstr(e2e_error(), "precision"),
          "an unknown precision must be refused: %s", e2e_error());
    int devices = net_cuda_device_count();
    if (devices <= 0) {  /* no GPU, or a driver that cannot serve this build (its message) */
        if (check_failed) return check_main_result("test_gpu_ops");
        printf("test_gpu_ops: SKIPPED: %s (%d checks without a GPU passed)\n",
               devices < 0 ? e2e_error() : "cudaGetDeviceCount reports no GPU", check_passed);
        cpu->destroy(cpu);
        return CHECK_SKIP;
    }
    CHECK(net_cuda_create(devices, "fp32") == NULL && strstr(e2e_error(), "GPU"),
          "a GPU index past the last must be refused: %s", e2e_error());
    const char *precs[3] = {"fp32", "tf32", "bf16"};
    const double ctol[3] = {1e-5, 2e-3, 1e-2}, mtol[3] = {1e-4, 1e-2, 5e-2}, gtol[3] = {1e-4, 0.15, 1.0};
    const double gl2tol[3] = {1e-5, 0.05, 0.4};
    const char *only = getenv("E2E_TEST_PRECISIONS");  /* e.g. "fp32" under compute-sanitizer */
    for (int k = 0; k < 3; k++) {
        rng_seed(&rng, 1234 + k);
        prec = precs[k];
        if (only && !strstr(only, prec)) {
            printf("[%s] not run: E2E_TEST_PRECISIONS=%s\n", prec, only);
            continue;
        }
        conv_tol = ctol[k];
        model_tol = mtol[k];
        grad_tol = gtol[k];
        grad_l2_tol = gl2tol[k];
        gpu = net_cuda_create(0, prec);
        if (!gpu) {  /* tf32 and bf16 need compute capability 8.0 */
            CHECK(k > 0 && strstr(e2e_error(), "compute capability"), "cuda %s: %s", prec, e2e_error());
            printf("[%s] not run: %s\n", prec, e2e_error());
            continue;
        }
        test_convs();
        test_pools();
        test_linear_loss();
        test_eltwise();
        test_adam();
        test_prep();
        test_densify();
        test_model();
        gpu->destroy(gpu);
        printf("[%s] done\n", prec);
    }
    cpu->destroy(cpu);
    return check_main_result("test_gpu_ops");
}

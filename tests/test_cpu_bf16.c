/* The CPU backend's bf16 mode (net/README.md, "bf16 on the CPU"), op by op:
 *  - the rounding (net/cpu/bf16.h): ties to even, NaN, denormals, overflow; on a CPU with
 *    AVX512-BF16, bitwise the VCVTNEPS2BF16 instruction's on a million random floats;
 *  - every convolution pass on every engine (direct: AVX512-BF16 dot products forward,
 *    our float kernels on widened operands otherwise, and without the dot products;
 *    gemm: widened; onednn: its bf16 kernels) against a double-precision reference on
 *    the bf16-rounded operands, and that the forced engine ran;
 *  - the element-wise ops against the float ones on bf16 values;
 *  - the plan: bf16 entries kept apart from fp32 ones in one record, a recorded bf16
 *    plan followed by a second run bitwise, an fp32 plan refused by a bf16 backend;
 *  - every engine repeats bitwise run to run (direct also at 1 and 2 threads);
 *  - the refusal on a CPU without bf16 instructions (ONEDNN_MAX_CPU_ISA=AVX512_CORE
 *    makes this CPU one), E2E_CPU_BF16=emulate, a bad E2E_CPU_BF16, tf32.
 * On a CPU without bf16 instructions only the rounding and the refusal run. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam.h"
#include "check.h"
#include "conv_shape.h"
#include "cpu/bf16.h"
#include "cpu/conv_engine.h"
#include "cpu/cpu_backend.h"
#include "cpu/cpu_internal.h"
#include "error.h"
#include "model.h"
#include "rng.h"
#include "small_train.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static Rng rng;

static NetOps *backend(const char *precision, const char *engines, const char *plan, int threads) {
    setenv("E2E_CPU_CONV", engines, 1);
    setenv("E2E_CPU_CONV_PLAN", plan, 1);
    NetOps *ops = net_cpu_create_precision(threads, precision);
    unsetenv("E2E_CPU_CONV");
    unsetenv("E2E_CPU_CONV_PLAN");
    return ops;
}

/* ---- the rounding ---- */

static float from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#if defined(__x86_64__)
__attribute__((target("avx512f,avx512bf16"))) static void cvtneps2bf16(const float *x, uint16_t *out) {
    __m256bh r = _mm512_cvtneps_pbh(_mm512_loadu_ps(x));
    memcpy(out, &r, 32);
}
#endif

static void test_rounding(void) {
    CHECK(f32_to_bf16(1.0f) == 0x3f80, "1.0");
    CHECK(f32_to_bf16(from_bits(0x3f808000)) == 0x3f80, "a tie rounds to even (down)");
    CHECK(f32_to_bf16(from_bits(0x3f818000)) == 0x3f82, "a tie rounds to even (up)");
    CHECK(f32_to_bf16(from_bits(0x3f808001)) == 0x3f81, "above a tie rounds up");
    CHECK(f32_to_bf16(-0.0f) == 0x8000, "-0 keeps its sign");
    CHECK(f32_to_bf16(from_bits(0x00000001)) == 0x0000 && f32_to_bf16(from_bits(0x807fffff)) == 0x8000,
          "denormals become signed zeros");
    CHECK(f32_to_bf16(from_bits(0x7f7fffff)) == 0x7f80, "FLT_MAX rounds to infinity");
    CHECK(f32_to_bf16(from_bits(0xff800000)) == 0xff80, "-infinity");
    uint16_t nan = f32_to_bf16(from_bits(0x7f800001));
    CHECK((nan & 0x7f80) == 0x7f80 && (nan & 0x7f) && (nan & 0x40), "a signalling NaN becomes a quiet NaN: %04x",
          nan);
    CHECK(bf16_to_f32(0x4049) == from_bits(0x40490000), "widening is exact");
#if defined(__x86_64__)
    unsigned a = 0, b, c, d;  /* AVX512-BF16: CPUID leaf 7 subleaf 1, EAX bit 5 (Clang 14 has no builtin name) */
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) {
        printf("rounding against VCVTNEPS2BF16: not compared (no AVX512-BF16 here)\n");
        return;
    }
    int differ = 0;
    for (int k = 0; k < 1 << 16; k++) {
        float x[16];
        uint16_t hw[16];
        for (int i = 0; i < 16; i++) x[i] = from_bits((uint32_t)rng_next(&rng));
        cvtneps2bf16(x, hw);
        for (int i = 0; i < 16; i++) differ += hw[i] != f32_to_bf16(x[i]);
    }
    CHECK(differ == 0, "f32_to_bf16 differs from VCVTNEPS2BF16 on %d of 1048576 random floats", differ);
#endif
}

/* ---- the convolutions against a double reference ---- */

static size_t in_size(const ConvShape *s) { return (size_t)s->n * s->in_c * s->in_h * s->in_w; }
static size_t out_size(const ConvShape *s) { return (size_t)s->n * s->out_c * s->out_h * s->out_w; }
static size_t w_size(const ConvShape *s) { return (size_t)s->out_c * s->in_c * s->k_h * s->k_w; }

/* x in [lo, hi) as bf16, or as float rounded to bf16 values (into f) */
static uint16_t *rnd_bf16(size_t n, float lo, float hi, float *f) {
    uint16_t *p = malloc(2 * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        p[i] = f32_to_bf16(rng_range(&rng, lo, hi));
        if (f) f[i] = bf16_to_f32(p[i]);
    }
    return p;
}

static float *widen(const uint16_t *p, size_t n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) f[i] = bf16_to_f32(p[i]);
    return f;
}

/* y = act(conv(x, w) + b + res) in double (NHWC out; x of layout lay), and the
 * backward passes: dx (NHWC), dw (OIHW), db */
static void reference(const ConvShape *s, Layout lay, const float *x, const float *w, const float *b,
                      const float *res, int relu, const float *dy, double *y, double *dx, double *dw, double *db) {
    memset(y, 0, sizeof(double) * out_size(s));
    memset(dx, 0, sizeof(double) * in_size(s));
    memset(dw, 0, sizeof(double) * w_size(s));
    memset(db, 0, sizeof(double) * s->out_c);
    for (int n = 0; n < s->n; n++)
        for (int oh = 0; oh < s->out_h; oh++)
            for (int ow = 0; ow < s->out_w; ow++)
                for (int o = 0; o < s->out_c; o++) {
                    size_t yi = (((size_t)n * s->out_h + oh) * s->out_w + ow) * s->out_c + o;
                    for (int c = 0; c < s->in_c; c++)
                        for (int kh = 0; kh < s->k_h; kh++)
                            for (int kw = 0; kw < s->k_w; kw++) {
                                int ih = oh * s->stride - s->pad + kh, iw = ow * s->stride - s->pad + kw;
                                if (ih < 0 || iw < 0 || ih >= s->in_h || iw >= s->in_w) continue;
                                size_t wi = (((size_t)o * s->in_c + c) * s->k_h + kh) * s->k_w + kw;
                                double xv = conv_input_at(x + (size_t)n * s->in_c * s->in_h * s->in_w, lay, c, ih,
                                                          iw, s->in_c, s->in_h, s->in_w);
                                y[yi] += xv * w[wi];
                                dx[(((size_t)n * s->in_h + ih) * s->in_w + iw) * s->in_c + c] += (double)dy[yi] * w[wi];
                                dw[wi] += (double)dy[yi] * xv;
                            }
                    y[yi] += b[o] + (res ? res[yi] : 0.0);
                    if (relu && y[yi] < 0) y[yi] = 0;
                    db[o] += dy[yi];
                }
}

static double err_vs(const float *got, const double *want, size_t n) {
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) f[i] = (float)want[i];
    double e = rel_err(got, f, n, 1e-6);
    free(f);
    return e;
}

/* Outputs in bf16 are within a rounding of the exact result on the rounded operands
 * (2^-9 of the value, at most 2^-8 of the largest); weight and bias gradients are float
 * sums of exact products of bf16 values. */
#define BF16_OUT_TOL 8e-3
#define BF16_GRAD_TOL 1e-5

static void test_conv(NetOps *ops, const char *engine, ConvShape s, Layout lay) {
    char label[160];
    snprintf(label, sizeof label, "bf16 %s conv n%d %dx%dx%d -> %d k%d s%d p%d %s", engine, s.n, s.in_c, s.in_h,
             s.in_w, s.out_c, s.k_h, s.stride, s.pad, lay == LAYOUT_NCHW ? "NCHW" : "NHWC");
    size_t ni = in_size(&s), no = out_size(&s), nw = w_size(&s);
    float *xr = malloc(4 * ni), *resr = malloc(4 * no), *dyr = malloc(4 * no), *w = malloc(4 * nw), *wr = malloc(4 * nw);
    float *b = malloc(4 * s.out_c), *xin = malloc(4 * ni);
    uint16_t *x = rnd_bf16(ni, -1, 1, xr), *res = rnd_bf16(no, -1, 1, resr), *dy = rnd_bf16(no, -1, 1, dyr);
    for (size_t i = 0; i < nw; i++) w[i] = rng_range(&rng, -0.5f, 0.5f), wr[i] = bf16_round(w[i]);
    for (int i = 0; i < s.out_c; i++) b[i] = rng_range(&rng, -0.5f, 0.5f);
    /* the NCHW input is float: the op rounds it; the reference takes its rounded values */
    for (size_t i = 0; i < ni; i++) xin[i] = lay == LAYOUT_NCHW ? rng_range(&rng, -1, 1) : xr[i];
    if (lay == LAYOUT_NCHW)
        for (size_t i = 0; i < ni; i++) xr[i] = bf16_round(xin[i]);
    const void *xop = lay == LAYOUT_NCHW ? (const void *)xin : (const void *)x;
    uint16_t *y = calloc(no, 2), *dx = calloc(ni, 2), *mask = rnd_bf16(ni, -1, 1, NULL);
    float *dw = calloc(nw, 4), *db = calloc(s.out_c, 4);
    double *ry = malloc(8 * no), *rdx = malloc(8 * ni), *rdw = malloc(8 * nw), *rdb = malloc(8 * s.out_c);
    for (int variant = 0; variant < 2; variant++) {
        ops->conv2d_forward(ops->ctx, &s, lay, xop, w, b, variant ? (const float *)res : NULL, variant, (float *)y);
        reference(&s, lay, xr, wr, b, variant ? resr : NULL, variant, dyr, ry, rdx, rdw, rdb);
        float *yf = widen(y, no);
        double e = err_vs(yf, ry, no);
        CHECK(e < BF16_OUT_TOL, "%s forward%s: rel err %g", label, variant ? "+residual+relu" : "", e);
        free(yf);
    }
    ops->conv2d_backward_filter(ops->ctx, &s, lay, xop, (const float *)dy, dw, db);
    double e = err_vs(dw, rdw, nw), eb = err_vs(db, rdb, s.out_c);
    CHECK(e < BF16_GRAD_TOL && eb < BF16_GRAD_TOL, "%s backward filter: rel err %g, bias %g", label, e, eb);
    if (lay == LAYOUT_NHWC) {
        mask[0] = 0x7fc0;  /* a NaN in the mask lets the gradient through */
        ops->conv2d_backward_data(ops->ctx, &s, (const float *)dy, w, (const float *)mask, (float *)dx);
        for (size_t i = 0; i < ni; i++) rdx[i] = bf16_to_f32(mask[i]) <= 0.0f ? 0.0 : rdx[i];
        float *dxf = widen(dx, ni);
        e = err_vs(dxf, rdx, ni);
        CHECK(e < BF16_OUT_TOL, "%s backward data with ReLU mask: rel err %g", label, e);
        free(dxf);
    }
    free(xr), free(resr), free(dyr), free(w), free(wr), free(b), free(xin), free(x), free(res), free(dy);
    free(y), free(dx), free(mask), free(dw), free(db), free(ry), free(rdx), free(rdw), free(rdb);
}

/* engine "direct-widened": the direct engine without AVX512-BF16 dot products (our
 * float kernels on widened operands, as on a CPU emulating bf16) */
static void test_convs(const char *engine) {
    int widened = !strcmp(engine, "direct-widened");
    NetOps *ops = backend("bf16", widened ? "direct" : engine, "none", 2);
    if (!ops) {
        CHECK(0, "bf16 %s: %s", engine, e2e_error());
        return;
    }
    if (widened) ((CpuCtx *)ops->ctx)->bf16_dot = 0;
    CHECK(ops_can(ops, OPS_BF16_ACTIVATIONS), "a bf16 backend must declare bf16 activations");
    test_conv(ops, engine, conv_shape(2, 3, 13, 11, 16, 7, 1, 1), LAYOUT_NCHW);
    test_conv(ops, engine, conv_shape(2, 8, 12, 12, 16, 7, 1, 1), LAYOUT_NCHW);
    test_conv(ops, engine, conv_shape(3, 16, 9, 10, 16, 3, 1, 1), LAYOUT_NHWC);
    test_conv(ops, engine, conv_shape(2, 16, 9, 9, 32, 3, 2, 1), LAYOUT_NHWC);
    test_conv(ops, engine, conv_shape(2, 16, 10, 8, 32, 1, 2, 0), LAYOUT_NHWC);
    test_conv(ops, engine, conv_shape(2, 32, 7, 7, 32, 3, 1, 1), LAYOUT_NHWC);
    /* every pass of the model's geometries (the six above) ran on the forced engine */
    CpuCtx *c = ops->ctx;
    ConvEngine want = conv_engine_parse(widened ? "direct" : engine);
    CHECK(conv_engines_count(c) == 6, "bf16 %s: %d geometries planned", engine, conv_engines_count(c));
    for (int i = 0; i < conv_engines_count(c); i++) {
        const ConvPlanEntry *e = conv_engines_entry(c, i);
        CHECK(e->bf16, "bf16 %s: geometry %d planned as fp32", engine, i);
        for (int op = 0; op < CONV_OPS; op++) {
            if (e->engine[op] == ENGINE_NONE) continue;
            ConvEngine expect = want == ENGINE_DIRECT && !conv_direct_fits(&e->s, op) ? ENGINE_GEMM : want;
            CHECK(e->engine[op] == expect, "bf16 %s: geometry %d pass %d ran on %s", engine, i, op,
                  conv_engine_name(e->engine[op]));
        }
    }
    test_conv(ops, engine, conv_shape(2, 5, 9, 8, 8, 5, 3, 2), LAYOUT_NHWC);  /* odd sizes: any engine */
    test_conv(ops, engine, conv_shape(1, 16, 4, 53, 16, 3, 1, 1), LAYOUT_NHWC);  /* rows of tiles 18, 18, 17 */
    test_conv(ops, engine, conv_shape(1, 16, 4, 29, 32, 3, 1, 1), LAYOUT_NHWC);  /* of 10, 10, 9 */
    test_conv(ops, engine, conv_shape(2, 8, 13, 11, 16, 7, 1, 1), LAYOUT_NCHW);  /* 143 pixels: 8 x 16 + 15 */
    ops->destroy(ops);
}

/* ---- the element-wise ops ---- */

static void test_eltwise(void) {
    NetOps *b16 = backend("bf16", "gemm", "none", 2), *f32 = backend("fp32", "gemm", "none", 2);
    const int n = 2, c = 16, h = 7, w = 9, oh = h / 2, ow = w / 2;
    size_t ni = (size_t)n * h * w * c, no = (size_t)n * oh * ow * c;
    float *xf = malloc(4 * ni), *dyf = malloc(4 * no), *yf = malloc(4 * no), *dxf = malloc(4 * ni), *add = malloc(4 * ni);
    uint16_t *x = rnd_bf16(ni, -1, 1, xf), *dy = rnd_bf16(no, -1, 1, dyf), *ad = rnd_bf16(ni, -1, 1, add);
    uint16_t *y = calloc(no, 2), *dx = calloc(ni, 2);
    for (size_t i = 0; i < ni; i += 3) x[i] = 0, xf[i] = 0.0f;  /* ties, as after a ReLU */
    x[5] = 0x7fc0, xf[5] = NAN;                                 /* a NaN wins */
    int32_t *idx = calloc(ni, 4), *idxf = calloc(ni, 4);
    b16->maxpool2x2_forward(b16->ctx, n, c, h, w, (const float *)x, (float *)y, idx);
    f32->maxpool2x2_forward(f32->ctx, n, c, h, w, xf, yf, idxf);
    float *got = widen(y, no);  /* bitwise, the NaN too */
    CHECK(!memcmp(got, yf, 4 * no), "max-pool 2x2 forward differs from the float op");
    CHECK(!memcmp(idx, idxf, 4 * no), "max-pool 2x2 winners differ from the float op's");
    free(got);
    b16->maxpool2x2_backward(b16->ctx, n, c, h, w, (const float *)dy, idx, (float *)dx);
    f32->maxpool2x2_backward(f32->ctx, n, c, h, w, dyf, idxf, dxf);
    got = widen(dx, ni);
    CHECK(!memcmp(got, dxf, 4 * ni), "max-pool 2x2 backward differs from the float op");
    free(got);
    /* relu backward: y = x as the ReLU output; without an addend nothing rounds, with
     * one the float sum is rounded once */
    for (int with_addend = 0; with_addend < 2; with_addend++) {
        uint16_t *g = rnd_bf16(ni, -1, 1, dxf);
        float *gf = widen(g, ni);
        b16->relu_backward(b16->ctx, ni, (const float *)x, (const float *)g, with_addend ? (const float *)ad : NULL,
                           (float *)g);
        f32->relu_backward(f32->ctx, ni, xf, gf, with_addend ? add : NULL, gf);
        int differ = 0;
        for (size_t i = 0; i < ni; i++) differ += g[i] != f32_to_bf16(gf[i]);
        CHECK(differ == 0, "relu backward%s: %d values differ from the float op's, rounded", with_addend ? " + addend" : "",
              differ);
        free(g), free(gf);
    }
    /* global max-pool: bf16 in, float features out; float gradient in, bf16 out */
    float feat[2 * 20], featf[2 * 20], dfeat[2 * 20];
    for (int i = 0; i < 40; i++) dfeat[i] = rng_range(&rng, -1, 1);
    b16->global_maxpool_forward(b16->ctx, n, c, h, w, (const float *)x, feat, 20, idx);
    f32->global_maxpool_forward(f32->ctx, n, c, h, w, xf, featf, 20, idxf);
    CHECK(!memcmp(idx, idxf, 4 * n * c), "global max-pool winners differ from the float op's");
    CHECK(!memcmp(feat, featf, sizeof(float) * 16) && !memcmp(feat + 20, featf + 20, sizeof(float) * 16),
          "global max-pool features differ");
    b16->global_maxpool_backward(b16->ctx, n, c, h, w, dfeat, 20, idx, (float *)dx);
    f32->global_maxpool_backward(f32->ctx, n, c, h, w, dfeat, 20, idxf, dxf);
    int differ = 0;
    for (size_t i = 0; i < ni; i++) differ += dx[i] != f32_to_bf16(dxf[i]);
    CHECK(differ == 0, "global max-pool backward: %d values differ from the float op's, rounded", differ);
    free(xf), free(dyf), free(yf), free(dxf), free(add), free(x), free(dy), free(ad), free(y), free(dx);
    free(idx), free(idxf);
    b16->destroy(b16), f32->destroy(f32);
}

/* ---- the plan and determinism, on a small model ---- */

static int all_chosen(NetOps *ops, ConvChosen how) {
    CpuCtx *c = ops->ctx;
    for (int i = 0; i < conv_engines_count(c); i++)
        if (conv_engines_entry(c, i)->chosen != how) return 0;
    return conv_engines_count(c) > 0;
}

static int count_lines(const char *path, const char *with) {
    FILE *f = fopen(path, "r");
    char line[512];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) n += line[0] == 't' && (strstr(line, with) != NULL) == (with[0] != '!');
    if (f) fclose(f);
    return n;
}

static void test_plan(void) {
    char plan[64];
    snprintf(plan, sizeof plan, "/tmp/e2e-test-cpu-bf16-%ld.txt", (long)getpid());
    unlink(plan);
    NetOps *a = backend("bf16", "auto", plan, 2), *f = backend("fp32", "auto", plan, 2);
    float *pa, *pb, *pf;
    size_t n = small_train(a, &pa);
    small_train(f, &pf);
    CHECK(all_chosen(a, CHOSEN_TIMED) && all_chosen(f, CHOSEN_TIMED), "the first runs of each precision timed");
    /* our widened float path never contends with a bf16 kernel of oneDNN's: backward data
     * (ours has no bf16 kernel) is oneDNN's wherever oneDNN has one */
    CpuCtx *ca = a->ctx;
    for (int i = 0; i < conv_engines_count(ca); i++) {
        const ConvPlanEntry *e = conv_engines_entry(ca, i);
        if (e->engine[CONV_BWD_DATA] != ENGINE_NONE && conv_engines_onednn_kernel(ca, CONV_BWD_DATA, &e->s, e->lay))
            CHECK(e->engine[CONV_BWD_DATA] == ENGINE_ONEDNN, "bf16 auto: backward data of geometry %d on %s", i,
                  conv_engine_name(e->engine[CONV_BWD_DATA]));
    }
    CHECK(count_lines(plan, " bf16 ") == 5 && count_lines(plan, "! bf16 ") == 10,
          "one record, 5 bf16 and 5 fp32 entries: %d and %d lines", count_lines(plan, " bf16 "),
          count_lines(plan, "! bf16 ") - count_lines(plan, " bf16 "));
    NetOps *b = backend("bf16", "auto", plan, 2);
    small_train(b, &pb);
    CHECK(all_chosen(b, CHOSEN_RECORDED), "the second bf16 run did not read the record: %s", net_cpu_conv_report(b));
    CHECK(n && !memcmp(pa, pb, n * sizeof(float)), "two bf16 runs with one record differ");
    printf("%s\n", net_cpu_conv_report(b));
    char text[4096];
    CHECK(net_cpu_conv_plan(f, text, sizeof text) == 0 && net_cpu_conv_use_plan(b, text) == -1 &&
              strstr(e2e_error(), "bf16"),
          "an fp32 plan given to a bf16 backend: %s", e2e_error());
    CHECK(net_cpu_conv_plan(a, text, sizeof text) == 0 && strstr(text, " bf16 ") && net_cpu_conv_use_plan(b, text) == 0,
          "a bf16 plan given to a bf16 backend: %s", e2e_error());
    free(pa), free(pb), free(pf);
    a->destroy(a), b->destroy(b), f->destroy(f);
    unlink(plan);
}

static void test_repeats(void) {
    const char *engines[] = {"direct", "gemm", "onednn"};
    float *first[3] = {NULL};
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        float *pa, *pb;
        NetOps *a = backend("bf16", engines[k], "none", 2), *b = backend("bf16", engines[k], "none", k ? 2 : 1);
        n = small_train(a, &pa);
        small_train(b, &pb);
        CHECK(n && !memcmp(pa, pb, n * sizeof(float)), "bf16 %s: two runs%s differ", engines[k],
              k ? "" : " (at 2 and 1 threads)");
        first[k] = pa;
        free(pb);
        a->destroy(a), b->destroy(b);
    }
    for (int k = 1; k < 3; k++) {
        double e = rel_err(first[k], first[0], n, 1e-12);
        printf("bf16 %s vs direct after %d Adam steps: parameters' max rel diff %.3g\n", engines[k], SMALL_STEPS, e);
        CHECK(e < 5e-2, "bf16 %s vs direct: %g", engines[k], e);
    }
    for (int k = 0; k < 3; k++) free(first[k]);
}

/* ---- refusal ---- */

static void test_refusal(int has_bf16) {
    CHECK(net_cpu_create_precision(2, "tf32") == NULL && strstr(e2e_error(), "tf32") && strstr(e2e_error(), "GPU"),
          "tf32 on the CPU: %s", e2e_error());
    setenv("E2E_CPU_BF16", "sometimes", 1);
    CHECK(net_cpu_create_precision(2, "bf16") == NULL && strstr(e2e_error(), "E2E_CPU_BF16=sometimes"),
          "a bad E2E_CPU_BF16: %s", e2e_error());
    unsetenv("E2E_CPU_BF16");
    if (has_bf16) setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE", 1);  /* this CPU without its bf16 instructions */
    CHECK(!net_cpu_has_bf16(), "ONEDNN_MAX_CPU_ISA=AVX512_CORE leaves bf16 instructions");
    NetOps *o = net_cpu_create_precision(2, "bf16");
    CHECK(o == NULL && strstr(e2e_error(), "bf16 instructions") && strstr(e2e_error(), "--precision fp32"),
          "bf16 without bf16 instructions: %s", e2e_error());
    printf("refused: %s\n", e2e_error());
    setenv("E2E_CPU_BF16", "emulate", 1);
    setenv("E2E_CPU_CONV", "direct", 1);
    o = net_cpu_create_precision(2, "bf16");
    unsetenv("E2E_CPU_CONV");
    unsetenv("E2E_CPU_BF16");
    CHECK(o && ops_can(o, OPS_BF16_ACTIVATIONS), "E2E_CPU_BF16=emulate: %s", o ? "" : e2e_error());
    if (o) {
        float *p;
        size_t n = small_train(o, &p);
        int finite = n > 0;
        for (size_t i = 0; i < n; i++) finite &= isfinite(p[i]);
        CHECK(finite && strstr(net_cpu_conv_report(o), "emulated"), "emulated bf16 trains and says so: %s",
              net_cpu_conv_report(o));
        free(p);
        o->destroy(o);
    }
    unsetenv("ONEDNN_MAX_CPU_ISA");
}

int main(void) {
    rng_seed(&rng, 4321);
    test_rounding();
    int has_bf16 = net_cpu_has_bf16();
    if (has_bf16) {
        test_convs("direct");
        test_convs("direct-widened");
        test_convs("gemm");
        test_convs("onednn");
        test_eltwise();
        test_plan();
        test_repeats();
    } else {
        printf("bf16 ops: not run (this CPU has no bf16 instructions: only the refusal is checked)\n");
    }
    test_refusal(has_bf16);
    return check_main_result("test_cpu_bf16");
}

/* The CPU backend's choice of convolution engines (net/cpu/conv_engine.h):
 *  - E2E_CPU_CONV: a bad value is refused; each forced engine repeats bitwise;
 *  - auto: two runs with the same plan record choose the same engines and end with
 *    bitwise the same parameters; the record (not new timings) decides the second run
 *    (a record edited by hand is followed); an unwritable record is a warning;
 *  - a plan handed over (as rank 0's to every rank) is followed and repeats bitwise;
 *  - what holds for determinism: the direct kernels' results do not depend on the
 *    thread count; oneDNN repeats bitwise run to run (its backward filter is printed
 *    for 1 against 2 threads: it splits the batch reduction by thread). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adam.h"
#include "check.h"
#include "conv_shape.h"
#include "cpu/conv_engine.h"
#include "cpu/cpu_backend.h"
#include "error.h"
#include "model.h"
#include "rng.h"
#include "small_train.h"

static NetOps *backend(const char *engines, const char *plan, int threads) {
    setenv("E2E_CPU_CONV", engines, 1);
    setenv("E2E_CPU_CONV_PLAN", plan, 1);
    NetOps *ops = net_cpu_create(threads);
    unsetenv("E2E_CPU_CONV");
    unsetenv("E2E_CPU_CONV_PLAN");
    return ops;
}

static int plan_equal(NetOps *a, NetOps *b) {
    CpuCtx *ca = a->ctx, *cb = b->ctx;
    if (conv_engines_count(ca) != conv_engines_count(cb)) return 0;
    for (int i = 0; i < conv_engines_count(ca); i++)
        if (memcmp(conv_engines_entry(ca, i)->engine, conv_engines_entry(cb, i)->engine, CONV_OPS)) return 0;
    return 1;
}

static int all_chosen(NetOps *ops, ConvChosen how) {
    CpuCtx *c = ops->ctx;
    for (int i = 0; i < conv_engines_count(c); i++)
        if (conv_engines_entry(c, i)->chosen != how) return 0;
    return conv_engines_count(c) > 0;
}

static void test_bad_values(void) {
    CHECK(backend("fastest", "none", 2) == NULL, "E2E_CPU_CONV=fastest accepted");
    CHECK(strstr(e2e_error(), "E2E_CPU_CONV=fastest") && strstr(e2e_error(), "onednn"),
          "message for a bad E2E_CPU_CONV: %s", e2e_error());
    NetOps *ops = backend("auto", "none", 2);
    CHECK(ops && net_cpu_conv_use_plan(ops, "t2 n4 8x20x20 nchw o16 k7x7 s1 p1 : fwd=fastest") == -1,
          "a malformed plan accepted");
    CHECK(strstr(e2e_error(), "line 1"), "message for a malformed plan: %s", e2e_error());
    if (ops) ops->destroy(ops);
}

/* Each forced engine: two runs bitwise equal; the engines agree to rounding. */
static void test_forced(void) {
    const char *names[] = {"direct", "gemm", "onednn"};
    float *first[3] = {NULL};
    size_t n = 0;
    for (int k = 0; k < 3; k++) {
        NetOps *a = backend(names[k], "none", 2), *b = backend(names[k], "none", 2);
        if (!a || !b) {
            CHECK(k == 2, "E2E_CPU_CONV=%s: %s", names[k], e2e_error());  /* no oneDNN here */
            continue;
        }
        float *pa, *pb;
        n = small_train(a, &pa);
        small_train(b, &pb);
        CHECK(n && memcmp(pa, pb, n * sizeof(float)) == 0, "E2E_CPU_CONV=%s: two runs differ", names[k]);
        CHECK(all_chosen(a, CHOSEN_FORCED), "E2E_CPU_CONV=%s: not every choice forced", names[k]);
        first[k] = pa;
        free(pb);
        a->destroy(a), b->destroy(b);
    }
    for (int k = 1; k < 3; k++)
        if (first[k]) {
            double e = rel_err(first[k], first[0], n, 1e-12);
            CHECK(e < 1e-3, "%s vs direct after %d steps: rel err %g", names[k], SMALL_STEPS, e);
            printf("%s vs direct after %d Adam steps: parameters' max rel diff %.3g\n", names[k], SMALL_STEPS, e);
        }
    for (int k = 0; k < 3; k++) free(first[k]);
}

/* auto twice with one record: the second run reads the first's choice. */
static void test_recorded(const char *plan) {
    unlink(plan);
    NetOps *a = backend("auto", plan, 2), *b = backend("auto", plan, 2);
    float *pa, *pb;
    size_t n = small_train(a, &pa);
    CHECK(all_chosen(a, CHOSEN_TIMED), "the first auto run did not time: %s", net_cpu_conv_report(a));
    small_train(b, &pb);
    CHECK(all_chosen(b, CHOSEN_RECORDED), "the second auto run did not read the record: %s",
          net_cpu_conv_report(b));
    CHECK(plan_equal(a, b), "the two auto runs chose different engines");
    CHECK(n && memcmp(pa, pb, n * sizeof(float)) == 0, "two auto runs with one record differ");
    printf("%s\n", net_cpu_conv_report(a));

    /* the record, not a timing, decides: swap oneDNN and direct in it by hand */
    FILE *f = fopen(plan, "r");
    char text[8192] = "", out[8192] = "";
    size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[len] = '\0';
    int lines = 0;
    for (char *p = text, *o = out; *p; p++) {
        if (!strncmp(p, "=direct", 7)) o += sprintf(o, "=onednn"), p += 6;
        else if (!strncmp(p, "=onednn", 7)) o += sprintf(o, "=direct"), p += 6;
        else *o++ = *p, lines += *p == '\n';
    }
    CHECK(lines == 8, "record of 5 geometries and a 3-line header: %d lines", lines);
    f = fopen(plan, "w");
    if (f) fputs(out, f), fclose(f);
    NetOps *edited = backend("auto", plan, 2);
    float *pe;
    small_train(edited, &pe);
    CpuCtx *ca = a->ctx, *ce = edited->ctx;
    int followed = conv_engines_count(ce) == conv_engines_count(ca);
    for (int i = 0; followed && i < conv_engines_count(ca); i++)
        for (int op = 0; op < CONV_OPS; op++) {
            ConvEngine was = conv_engines_entry(ca, i)->engine[op], now = conv_engines_entry(ce, i)->engine[op];
            if (was == ENGINE_NONE) {
                followed &= now == ENGINE_NONE;
                continue;
            }
            ConvEngine want = was == ENGINE_ONEDNN ? ENGINE_DIRECT : was == ENGINE_DIRECT ? ENGINE_ONEDNN : was;
            const ConvPlanEntry *e = conv_engines_entry(ce, i);
            followed &= now == conv_engine_effective(ce, want, op, &e->s, e->lay);
        }
    CHECK(followed, "an edited record was not followed: %s", net_cpu_conv_report(edited));
    free(pa), free(pb), free(pe);
    a->destroy(a), b->destroy(b), edited->destroy(edited);
    unlink(plan);
}

/* A plan handed over (rank 0's, to the other ranks) replaces this backend's choice. */
static void test_given(void) {
    NetOps *a = backend("auto", "none", 2), *c = backend("auto", "none", 2);
    float *pa, *pc;
    size_t n = small_train(a, &pa);
    char text[4096], small[40];
    CHECK(net_cpu_conv_plan(a, text, sizeof text) == 0, "plan text: %s", e2e_error());
    CHECK(net_cpu_conv_plan(a, small, sizeof small) == -1, "a plan longer than its buffer was cut silently");
    CHECK(net_cpu_conv_use_plan(c, text) == 0, "use_plan: %s", e2e_error());
    CHECK(all_chosen(c, CHOSEN_GIVEN), "a given plan was not taken: %s", net_cpu_conv_report(c));
    small_train(c, &pc);
    CHECK(all_chosen(c, CHOSEN_GIVEN) && plan_equal(a, c), "the given plan did not stay");
    CHECK(n && memcmp(pa, pc, n * sizeof(float)) == 0, "a run on a given plan differs from its giver");
    free(pa), free(pc);
    a->destroy(a), c->destroy(c);
}

static void test_unwritable(void) {
    NetOps *ops = backend("auto", "/proc/e2e-ddp-no-such-dir/plan.txt", 2);
    float *p;
    small_train(ops, &p);
    CHECK(all_chosen(ops, CHOSEN_TIMED), "an unwritable record must leave timed choices");
    free(p);
    ops->destroy(ops);
}

/* Backward filter and the other passes at 1 and 2 threads, twice each. */
static void test_determinism(const char *engine) {
    ConvShape s = conv_shape(8, 16, 30, 30, 32, 3, 1, 1);
    size_t nx = (size_t)s.n * s.in_c * s.in_h * s.in_w, ny = (size_t)s.n * s.out_c * s.out_h * s.out_w;
    size_t nw = (size_t)s.out_c * s.in_c * 9;
    Rng r;
    rng_seed(&r, 5);
    float *x = malloc(nx * 4), *dy = malloc(ny * 4), *w = malloc(nw * 4), *b = calloc(s.out_c, 4);
    for (size_t i = 0; i < nx; i++) x[i] = rng_range(&r, -1, 1);
    for (size_t i = 0; i < ny; i++) dy[i] = rng_range(&r, -1, 1);
    for (size_t i = 0; i < nw; i++) w[i] = rng_range(&r, -1, 1);
    float *out[2][2][3];  /* [threads-1][repeat][pass] */
    size_t sizes[3] = {ny, nx, nw};
    for (int t = 0; t < 2; t++)
        for (int rep = 0; rep < 2; rep++) {
            NetOps *o = backend(engine, "none", t + 1);
            if (!o) return;
            for (int k = 0; k < 3; k++) out[t][rep][k] = malloc(sizes[k] * 4);
            float db[32];
            o->conv2d_forward(o->ctx, &s, LAYOUT_NHWC, x, w, b, NULL, 1, out[t][rep][0]);
            o->conv2d_backward_data(o->ctx, &s, dy, w, NULL, out[t][rep][1]);
            o->conv2d_backward_filter(o->ctx, &s, LAYOUT_NHWC, x, dy, out[t][rep][2], db);
            o->destroy(o);
        }
    static const char *pass[3] = {"forward", "backward data", "backward filter"};
    for (int k = 0; k < 3; k++) {
        for (int t = 0; t < 2; t++)
            CHECK(!memcmp(out[t][0][k], out[t][1][k], sizes[k] * 4), "%s %s at %d threads: two runs differ",
                  engine, pass[k], t + 1);
        int same = !memcmp(out[0][0][k], out[1][0][k], sizes[k] * 4);
        printf("%s %s: bitwise the same run to run; at 1 and 2 threads: %s\n", engine, pass[k],
               same ? "the same" : "different");
        if (!strcmp(engine, "direct")) CHECK(same, "direct %s depends on the thread count", pass[k]);
    }
    for (int t = 0; t < 2; t++)
        for (int rep = 0; rep < 2; rep++)
            for (int k = 0; k < 3; k++) free(out[t][rep][k]);
    free(x), free(dy), free(w), free(b);
}

/* The AVX-512 and the AVX2 builds of the direct kernels sum in the same order: bitwise
 * the same results (the shapes have tile remainders at both widths). */
static void test_direct_widths(void) {
    if (conv_direct_supported() != 512) {
        printf("direct kernels at 512 and 256 bits: not compared (no AVX-512 here)\n");
        return;
    }
    const ConvShape shapes[] = {conv_shape(3, 8, 23, 19, 16, 7, 1, 1), conv_shape(2, 16, 17, 13, 16, 3, 1, 1),
                                conv_shape(2, 16, 15, 15, 32, 3, 2, 1), conv_shape(2, 32, 9, 7, 48, 3, 1, 1),
                                conv_shape(2, 16, 14, 14, 32, 1, 2, 0)};
    NetOps *o = backend("direct", "none", 2);
    CpuCtx *c = o->ctx;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        const ConvShape *s = &shapes[k];
        Layout lay = k == 0 ? LAYOUT_NCHW : LAYOUT_NHWC;
        size_t nx = (size_t)s->n * s->in_c * s->in_h * s->in_w, ny = (size_t)s->n * s->out_c * s->out_h * s->out_w;
        size_t nw = (size_t)s->out_c * s->in_c * s->k_h * s->k_w, sizes[4] = {ny, nx, nw, (size_t)s->out_c};
        Rng r;
        rng_seed(&r, 9 + k);
        float *x = malloc(nx * 4), *dy = malloc(ny * 4), *w = malloc(nw * 4), *b = malloc(s->out_c * 4);
        float *res = malloc(ny * 4), *mask = malloc(nx * 4), *out[2][4];
        for (size_t i = 0; i < nx; i++) x[i] = rng_range(&r, -1, 1), mask[i] = rng_range(&r, -1, 1);
        for (size_t i = 0; i < ny; i++) dy[i] = rng_range(&r, -1, 1), res[i] = rng_range(&r, -1, 1);
        for (size_t i = 0; i < nw; i++) w[i] = rng_range(&r, -1, 1);
        for (int i = 0; i < s->out_c; i++) b[i] = rng_range(&r, -1, 1);
        for (int v = 0; v < 2; v++) {
            c->direct = v ? 256 : 512;
            for (int q = 0; q < 4; q++) out[v][q] = malloc(sizes[q] * 4);
            o->conv2d_forward(o->ctx, s, lay, x, w, b, res, 1, out[v][0]);
            if (lay == LAYOUT_NHWC) o->conv2d_backward_data(o->ctx, s, dy, w, mask, out[v][1]);
            else memset(out[v][1], 0, nx * 4);
            o->conv2d_backward_filter(o->ctx, s, lay, x, dy, out[v][2], out[v][3]);
        }
        for (int q = 0; q < 4; q++)
            CHECK(!memcmp(out[0][q], out[1][q], sizes[q] * 4), "shape %zu, output %d: 512 and 256 bits differ", k, q);
        for (int v = 0; v < 2; v++)
            for (int q = 0; q < 4; q++) free(out[v][q]);
        free(x), free(dy), free(w), free(b), free(res), free(mask);
    }
    CpuCtx *cc = c;
    CHECK(conv_engines_count(cc) == 5, "the direct engine planned %d geometries", conv_engines_count(cc));
    for (int i = 0; i < conv_engines_count(cc); i++)
        CHECK(conv_engines_entry(cc, i)->engine[CONV_FWD] == ENGINE_DIRECT, "geometry %d not on direct", i);
    o->destroy(o);
}

int main(void) {
    char plan[64];
    snprintf(plan, sizeof plan, "/tmp/e2e-test-cpu-engines-%ld.txt", (long)getpid());
    test_bad_values();
    test_forced();
    test_recorded(plan);
    test_given();
    test_unwritable();
    test_determinism("direct");
    test_direct_widths();
#ifdef E2E_HAVE_ONEDNN
    test_determinism("onednn");
#endif
    return check_main_result("test_cpu_engines");
}

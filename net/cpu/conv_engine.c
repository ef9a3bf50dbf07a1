/* The engine of every convolution pass (conv_engine.h): runs, times and chooses the
 * engines, and keeps the plan in use; the plan's text and record file are conv_plan.c's.
 *
 * Reproducibility: engines round differently, so the choice is part of a run's
 * numbers. A timed choice is therefore made once per kind of machine and kept: the
 * plan record (E2E_CPU_CONV_PLAN, by default a file per CPU model and ISA under
 * ~/.cache/e2e-ddp) holds one line per (threads, batch, geometry); a later run, a
 * resumed run and every rank of a node read the same line instead of timing again.
 * Across nodes whose records may differ, the trainer makes ranks agree by giving every
 * rank rank 0's plan (net_cpu_conv_plan / net_cpu_conv_use_plan). A timed choice
 * takes oneDNN only when it is 5% faster than our own engine, so near-ties go to the
 * engine whose results do not depend on the thread count. */
#include "conv_engine.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bf16.h"
#include "error.h"
#include "conv_onednn.h"

#define ONEDNN_MARGIN 0.05   /* oneDNN must be this much faster to be chosen */
#define TIME_ROUNDS 3        /* interleaved timed runs per engine, after a warm-up, and */
#define TIME_MAX_ROUNDS 40   /* more until each engine's best was seen twice (within 5%), */
#define TIME_MAX_SECONDS 1.0 /* so that a run slowed by other work cannot decide alone */
#define TIME_MAX_BYTES (1ull << 30)
#define ENGINES_VERSION 1    /* bumped when an engine changes: records start afresh */

typedef struct ConvEngines {
    ConvEngine forced;        /* NONE: auto */
    Onednn *dnn;              /* NULL when oneDNN is not used */
    char plan_path[1024];     /* the record, "" for none */
    char signature[512];      /* the machine, as the record's header names it */
    ConvPlanEntry *e;
    int count, cap;
    int warned;
    char *report;
} ConvEngines;

/* ---- running one engine ---- */

/* The bf16 mode: activations hold bf16; the network's float NCHW input is converted to
 * bf16 NHWC first (by forward; backward filter reuses that conversion), so that every
 * engine sees NHWC bf16; ours are conv_own_bf16.c's (AVX512-BF16 dot products, or our
 * float kernels on widened operands). */
static int run_bf16(CpuCtx *c, ConvEngine e, ConvOp op, const ConvCall *a) {
    ConvCall b = *a;
    if (b.lay == LAYOUT_NCHW && op != CONV_BWD_DATA) {
        b.x = (const float *)cpu_input_bf16(c, a->s, a->x, op == CONV_FWD);
        b.lay = LAYOUT_NHWC;
    }
    const ConvShape *s = b.s;
    const uint16_t *x = (const uint16_t *)b.x, *dy = (const uint16_t *)b.dy;
    Onednn *dnn = c->engines->dnn;
    int direct = e == ENGINE_DIRECT;
    switch (e) {
    case ENGINE_DIRECT:
    case ENGINE_GEMM:
        if (op == CONV_FWD)
            return conv_own_bf16_forward(c, direct, s, x, b.w, b.b, (const uint16_t *)b.residual, b.relu,
                                         (uint16_t *)b.y);
        if (op == CONV_BWD_DATA)
            return conv_own_bf16_backward_data(c, direct, s, dy, b.w, (const uint16_t *)b.mask, (uint16_t *)b.dx);
        return conv_own_bf16_backward_filter(c, direct, s, x, dy, b.dw, b.db);
    case ENGINE_ONEDNN:
        if (!dnn) return -1;
        if (op == CONV_FWD) return onednn_forward(dnn, s, b.lay, b.x, b.w, b.b, b.residual, b.relu, b.y);
        if (op == CONV_BWD_DATA) return onednn_backward_data(dnn, s, b.dy, b.w, b.mask, b.dx);
        return onednn_backward_filter(dnn, s, b.lay, b.x, b.dy, b.dw, b.db);
    default:
        return -1;
    }
}

int conv_engine_run(CpuCtx *c, ConvEngine e, ConvOp op, const ConvCall *a) {
    if (c->bf16) return run_bf16(c, e, op, a);
    const ConvShape *s = a->s;
    Onednn *dnn = c->engines->dnn;
    switch (e) {
    case ENGINE_DIRECT:
        if (!c->direct) return -1;
        if (op == CONV_FWD) return conv_direct_forward(c, s, a->lay, a->x, a->w, a->b, a->residual, a->relu, a->y);
        if (op == CONV_BWD_DATA) return conv_direct_backward_data(c, s, a->dy, a->w, a->mask, a->dx);
        return conv_direct_backward_filter(c, s, a->lay, a->x, a->dy, a->dw, a->db);
    case ENGINE_GEMM:
        if (op == CONV_FWD) conv_gemm_forward(c, s, a->lay, a->x, a->w, a->b, a->residual, a->relu, a->y);
        else if (op == CONV_BWD_DATA) conv_gemm_backward_data(c, s, a->dy, a->w, a->mask, a->dx);
        else conv_gemm_backward_filter(c, s, a->lay, a->x, a->dy, a->dw, a->db);
        return 0;
    case ENGINE_ONEDNN:
        if (!dnn) return -1;
        if (op == CONV_FWD) return onednn_forward(dnn, s, a->lay, a->x, a->w, a->b, a->residual, a->relu, a->y);
        if (op == CONV_BWD_DATA) return onednn_backward_data(dnn, s, a->dy, a->w, a->mask, a->dx);
        return onednn_backward_filter(dnn, s, a->lay, a->x, a->dy, a->dw, a->db);
    default:
        return -1;
    }
}

/* Our engine for a pass: the direct kernels where the CPU and the shape allow. */
static ConvEngine own_engine(const CpuCtx *c, ConvOp op, const ConvShape *s) {
    return c->direct && conv_direct_fits(s, op) ? ENGINE_DIRECT : ENGINE_GEMM;
}

/* The layout oneDNN is given x in: the bf16 mode converts the NCHW input to NHWC. */
static Layout onednn_layout(const CpuCtx *c, Layout lay) { return c->bf16 ? LAYOUT_NHWC : lay; }

ConvEngine conv_engine_effective(CpuCtx *c, ConvEngine e, ConvOp op, const ConvShape *s, Layout lay) {
    if (e == ENGINE_ONEDNN && c->engines->dnn && onednn_kernel(c->engines->dnn, op, s, onednn_layout(c, lay)))
        return e;
    if (e == ENGINE_GEMM) return e;
    return own_engine(c, op, s);
}

/* ---- timing ---- */

/* n values in [-1, 1), float or (bf16) bf16 */
static float *random_values(size_t n, unsigned seed, int bf16) {
    float *p = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!p) cpu_die(__FILE__, __LINE__, "out of host memory for timing convolution engines");
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        float v = (float)(seed >> 8) / 8388608.0f - 1.0f;
        if (bf16) ((uint16_t *)p)[i] = f32_to_bf16(v);
        else p[i] = v;
    }
    return p;
}

static double run_once(CpuCtx *c, ConvEngine e, ConvOp op, const ConvCall *a) {
    double t0 = omp_get_wtime();
    if (conv_engine_run(c, e, op, a)) return 0.0;
    return omp_get_wtime() - t0;
}

/* Whether every engine's best time was seen at least twice. */
static int settled(const double (*times)[2], int runs, int n_cand, const double *best) {
    for (int k = 0; k < n_cand; k++) {
        int near = 0;
        for (int r = 0; r < runs; r++) near += times[r][k] <= 1.05 * best[k];
        if (near < 2) return 0;
    }
    return 1;
}

/* Best time of own and oneDNN over interleaved rounds (ms; 0: cannot run). */
/* The bf16 mode's own engine is a contender where it runs on bf16 instructions (the
 * direct forward and backward filter on AVX512-BF16); elsewhere it is float kernels on
 * widened operands, which cannot beat a bf16 kernel of oneDNN's (the same float
 * arithmetic, conversions on top), and a timing disturbed by other work must not pick it. */
static int own_contends(const CpuCtx *c, ConvOp op, const ConvShape *s) {
    return !c->bf16 || (c->bf16_dot && op != CONV_BWD_DATA && conv_direct_bf16_fits(s) &&
                        own_engine(c, op, s) == ENGINE_DIRECT);
}

static void time_pass(CpuCtx *c, ConvPlanEntry *e, ConvOp op, const ConvCall *a, int rounds) {
    ConvEngine cand[2] = {own_engine(c, op, a->s),
                          conv_engine_effective(c, ENGINE_ONEDNN, op, a->s, a->lay)};
    int n_cand = cand[1] == ENGINE_ONEDNN ? 2 : 1, own = 1;
    if (n_cand == 2 && !own_contends(c, op, a->s)) cand[0] = ENGINE_ONEDNN, n_cand = 1, own = 0;
    double best[2] = {0, 0}, times[TIME_MAX_ROUNDS][2], spent = 0;
    for (int k = 0; k < n_cand; k++) run_once(c, cand[k], op, a);  /* warm-up */
    for (int r = 0; r < TIME_MAX_ROUNDS; r++) {
        for (int k = 0; k < n_cand; k++) {
            double t = run_once(c, cand[k], op, a);
            times[r][k] = t;
            spent += t;
            if (t > 0 && (best[k] == 0 || t < best[k])) best[k] = t;
        }
        if (r + 1 >= rounds && (settled(times, r + 1, n_cand, best) || spent > TIME_MAX_SECONDS)) break;
    }
    e->ms[op][0] = own ? (float)(best[0] * 1e3) : 0;  /* 0: not timed */
    e->ms[op][1] = (float)((own ? best[1] : best[0]) * 1e3);
    e->engine[op] = n_cand == 2 && best[1] > 0 && best[1] < (1.0 - ONEDNN_MARGIN) * best[0]
                        ? ENGINE_ONEDNN : cand[0];
}

void conv_engine_time(CpuCtx *c, ConvPlanEntry *e, int rounds) {
    ConvShape s = e->s;
    size_t nx = (size_t)s.in_c * s.in_h * s.in_w, ny = (size_t)s.out_c * s.out_h * s.out_w;
    /* a smaller batch where the real one would take more memory than is reasonable */
    while (s.n > c->threads && 4ull * (3 * nx + 2 * ny) * s.n > TIME_MAX_BYTES) s.n = (s.n + 1) / 2;
    size_t nw = (size_t)s.out_c * s.in_c * s.k_h * s.k_w;
    int act = c->bf16;  /* activations: bf16 in the bf16 mode, but for the float NCHW input */
    float *x = random_values(nx * s.n, 1, act && e->lay == LAYOUT_NHWC), *dy = random_values(ny * s.n, 2, act);
    float *y = random_values(ny * s.n, 3, act), *dx = random_values(nx * s.n, 4, act);
    float *w = random_values(nw, 5, 0), *dw = random_values(nw, 6, 0);
    float *b = random_values(s.out_c, 7, 0), *db = random_values(s.out_c, 8, 0);
    float *mask = random_values(nx * s.n, 9, act);
    /* forward with its ReLU; backward data with the fused ReLU mask that half the
     * model's convolutions have (for oneDNN an extra pass over dx) */
    ConvCall a = {.s = &s, .lay = e->lay, .x = x, .w = w, .b = b, .dy = dy, .mask = mask,
                  .relu = 1, .y = y, .dx = dx, .dw = dw, .db = db};
    memset(e->ms, 0, sizeof e->ms);
    for (int op = 0; op < CONV_OPS; op++) {
        if (op == CONV_BWD_DATA && e->lay == LAYOUT_NCHW) {
            e->engine[op] = ENGINE_NONE;  /* the network's input needs no gradient */
            continue;
        }
        time_pass(c, e, (ConvOp)op, &a, rounds);
    }
    free(x), free(dy), free(y), free(dx), free(w), free(dw), free(b), free(db), free(mask);
    c->input_of = NULL;  /* the bf16 copy of the input was of x, now freed */
}

/* ---- the plan ---- */

static int same_geometry(const ConvShape *a, const ConvShape *b) {
    ConvShape x = *a, y = *b;
    x.n = y.n = 0;
    return memcmp(&x, &y, sizeof x) == 0;
}

/* (a backend's entries are all of its precision) */
static ConvPlanEntry *find(ConvEngines *g, const ConvShape *s, Layout lay) {
    for (int i = 0; i < g->count; i++)
        if (g->e[i].lay == lay && same_geometry(&g->e[i].s, s)) return &g->e[i];
    return NULL;
}

/* Stores e in the plan in use (replacing the entry of its geometry), each engine made
 * one that runs here. */
static ConvPlanEntry *store_plan_entry(CpuCtx *c, ConvPlanEntry e) {
    ConvEngines *g = c->engines;
    for (int op = 0; op < CONV_OPS; op++)
        if (e.engine[op] != ENGINE_NONE)
            e.engine[op] = (unsigned char)conv_engine_effective(c, e.engine[op], op, &e.s, e.lay);
    ConvPlanEntry *at = find(g, &e.s, e.lay);
    if (!at) {
        if (g->count == g->cap) {
            int cap = g->cap ? 2 * g->cap : 16;
            ConvPlanEntry *grown = realloc(g->e, sizeof *grown * cap);
            if (!grown) cpu_die(__FILE__, __LINE__, "out of host memory for the engine plan");
            g->e = grown;
            g->cap = cap;
        }
        at = &g->e[g->count++];
    }
    *at = e;
    return at;
}

static void decide(void *ctx, ConvPlanEntry *e) { conv_engine_time(ctx, e, TIME_ROUNDS); }

static ConvPlanEntry *plan(CpuCtx *c, const ConvShape *s, Layout lay) {
    ConvEngines *g = c->engines;
    ConvPlanEntry e = {.s = *s, .lay = lay, .bf16 = (unsigned char)c->bf16};
    if (g->forced != ENGINE_NONE) {
        for (int op = 0; op < CONV_OPS; op++) e.engine[op] = g->forced;
        if (lay == LAYOUT_NCHW) e.engine[CONV_BWD_DATA] = ENGINE_NONE;
        e.chosen = CHOSEN_FORCED;
    } else if (g->plan_path[0]) {
        char header[700];
        snprintf(header, sizeof header,
                 "# e2e-ddp CPU convolution engines, chosen by timing (net/README.md).\n"
                 "# One line per threads, batch and geometry; delete a line to time it again.\n"
                 "# machine: %s\n", g->signature);
        int rc = conv_plan_record(g->plan_path, header, c->threads, &e, decide, c);
        if (rc < 0 && !g->warned++)
            fprintf(stderr, "e2e-ddp: warning: %s; engines are timed but not recorded\n", e2e_error());
        e.chosen = rc == 1 ? CHOSEN_RECORDED : CHOSEN_TIMED;
    } else {
        decide(c, &e);
        e.chosen = CHOSEN_TIMED;
    }
    return store_plan_entry(c, e);
}

void cpu_conv_prepare(void *ctx, const ConvShape *s, Layout lay) {
    CpuCtx *c = ctx;
    if (!find(c->engines, s, lay)) plan(c, s, lay);  /* a geometry keeps its first choice */
}

static void run_pass(CpuCtx *c, ConvOp op, const ConvCall *a) {
    const ConvPlanEntry *e = find(c->engines, a->s, a->lay);
    if (!e) e = plan(c, a->s, a->lay);  /* a convolution no model announced */
    ConvEngine k = e->engine[op] != ENGINE_NONE ? e->engine[op] : own_engine(c, op, a->s);
    if (conv_engine_run(c, k, op, a) == 0) return;
    if (conv_engine_run(c, own_engine(c, op, a->s), op, a) == 0) return;
    conv_engine_run(c, ENGINE_GEMM, op, a);
}

void cpu_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                      const float *b, const float *residual, int relu, float *y) {
    ConvCall a = {.s = s, .lay = lay, .x = x, .w = w, .b = b, .residual = residual, .relu = relu, .y = y};
    run_pass(ctx, CONV_FWD, &a);
}

void cpu_conv_backward_data(void *ctx, const ConvShape *s, const float *dy, const float *w,
                            const float *mask, float *dx) {
    ConvCall a = {.s = s, .lay = LAYOUT_NHWC, .dy = dy, .w = w, .mask = mask, .dx = dx};
    run_pass(ctx, CONV_BWD_DATA, &a);
}

void cpu_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                              const float *dy, float *dw, float *db) {
    ConvCall a = {.s = s, .lay = lay, .x = x, .dy = dy, .dw = dw, .db = db};
    run_pass(ctx, CONV_BWD_FILTER, &a);
}

/* ---- set-up, report, plan exchange ---- */

static const char *direct_name(const CpuCtx *c) {
    return c->direct == 512 ? "avx512" : c->direct == 256 ? "avx2" : "none";
}

/* "AMD EPYC 9B45; direct avx512; oneDNN 2.6.3, avx512_core_bf16; engines v1" */
static void machine_signature(const CpuCtx *c, char *buf, size_t len) {
    char model[160] = "unknown CPU", line[256];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    if (f) fclose(f);
    snprintf(buf, len, "%s; direct %s; %s; engines v%d", model, direct_name(c), onednn_describe(),
             ENGINES_VERSION);
}

/* E2E_CPU_CONV_PLAN, else ${XDG_CACHE_HOME:-$HOME/.cache}/e2e-ddp/cpu-conv-plan-<machine>.txt
 * (/tmp/e2e-ddp-<uid>/ without a home) with the machine's signature as a file name; ""
 * (none) for "none". */
static void plan_path(ConvEngines *g, char *buf, size_t len) {
    const char *env = getenv("E2E_CPU_CONV_PLAN"), *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    buf[0] = '\0';
    if (env) {
        if (strcmp(env, "none") != 0) snprintf(buf, len, "%s", env);
        return;
    }
    char name[300];
    size_t k = 0;
    for (const char *p = g->signature; *p && k + 1 < sizeof name; p++) {
        int file_name_char = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                             (*p >= '0' && *p <= '9') || *p == '.' || *p == '_';
        if (file_name_char) name[k++] = *p;
        else if (k > 0 && name[k - 1] != '-') name[k++] = '-';
    }
    name[k] = '\0';
    if (xdg && *xdg) snprintf(buf, len, "%s/e2e-ddp/cpu-conv-plan-%s.txt", xdg, name);
    else if (home && *home) snprintf(buf, len, "%s/.cache/e2e-ddp/cpu-conv-plan-%s.txt", home, name);
    else snprintf(buf, len, "/tmp/e2e-ddp-%ld/cpu-conv-plan-%s.txt", (long)getuid(), name);
}

int conv_engines_create(CpuCtx *c) {
    const char *mode = getenv("E2E_CPU_CONV");
    ConvEngine forced = ENGINE_NONE;
    if (mode && *mode && strcmp(mode, "auto") != 0) {
        forced = conv_engine_parse(mode);
        if (forced == ENGINE_NONE || forced == ENGINE_KINDS)
            return e2e_fail("E2E_CPU_CONV=%s: expected auto, direct, onednn or gemm", mode);
    }
    ConvEngines *g = calloc(1, sizeof *g);
    if (!g) return e2e_fail("cpu backend: out of host memory");
    g->forced = forced;
    if (forced == ENGINE_GEMM) c->direct = 0;
    if (forced == ENGINE_NONE || forced == ENGINE_ONEDNN) {
        g->dnn = onednn_create(c->threads, c->bf16);
        if (!g->dnn && forced == ENGINE_ONEDNN) {
            char why[256];
            snprintf(why, sizeof why, "%s", e2e_error());  /* e2e_fail writes over it */
            free(g);
            return e2e_fail("E2E_CPU_CONV=onednn: %s", why);
        }
    }
    c->engines = g;
    machine_signature(c, g->signature, sizeof g->signature);
    if (forced == ENGINE_NONE) plan_path(g, g->plan_path, sizeof g->plan_path);
    return 0;
}

void conv_engines_destroy(CpuCtx *c) {
    ConvEngines *g = c->engines;
    if (!g) return;
    onednn_destroy(g->dnn);
    free(g->e);
    free(g->report);
    free(g);
    c->engines = NULL;
}

int conv_engines_count(const CpuCtx *c) { return c->engines->count; }
const ConvPlanEntry *conv_engines_entry(const CpuCtx *c, int i) {
    return i >= 0 && i < c->engines->count ? &c->engines->e[i] : NULL;
}
const char *conv_engines_onednn_kernel(CpuCtx *c, ConvOp op, const ConvShape *s, Layout lay) {
    return c->engines->dnn ? onednn_kernel(c->engines->dnn, op, s, onednn_layout(c, lay)) : NULL;
}

static const char *chosen_names[] = {"forced", "timed", "recorded", "given"};

const char *conv_engines_report(CpuCtx *c) {
    ConvEngines *g = c->engines;
    size_t cap = 512 + 160 * (size_t)g->count;
    char *r = realloc(g->report, cap);
    if (!r) return "convolution engines: (out of memory for the report)";
    g->report = r;
    int at = snprintf(r, cap, "convolution engines %s%s (%s; direct kernels %s)",
                      g->forced ? conv_engine_name(g->forced) : "auto",
                      !c->bf16 ? "" : c->bf16_emulated ? ", bf16 emulated (this CPU has no bf16 instructions)" : ", bf16",
                      g->dnn ? onednn_describe() : "no oneDNN", direct_name(c));
    if (g->forced == ENGINE_NONE)
        at += snprintf(r + at, cap - at, ", plan %s", g->plan_path[0] ? g->plan_path : "not recorded");
    for (int i = 0; i < g->count && at < (int)cap; i++) {
        const ConvPlanEntry *e = &g->e[i];
        const ConvShape *s = &e->s;
        at += snprintf(r + at, cap - at, "%s%dx%dx%d>%d k%d s%d p%d%s %s:", i ? " | " : ": ", s->in_c,
                       s->in_h, s->in_w, s->out_c, s->k_h, s->stride, s->pad,
                       e->lay == LAYOUT_NCHW ? " nchw" : "", chosen_names[e->chosen]);
        for (int op = 0; op < CONV_OPS && at < (int)cap; op++)
            if (e->engine[op] != ENGINE_NONE)
                at += snprintf(r + at, cap - at, " %s=%s", op == CONV_FWD ? "fwd" : op == CONV_BWD_DATA ? "bwd_data" : "bwd_filter",
                               conv_engine_name(e->engine[op]));
    }
    return r;
}

int conv_engines_plan_text(CpuCtx *c, char *buf, size_t len) {
    ConvEngines *g = c->engines;
    size_t at = 0;
    if (len) buf[0] = '\0';
    for (int i = 0; i < g->count; i++) {
        char line[256];
        conv_plan_line(&g->e[i], c->threads, line, sizeof line);
        int need = snprintf(buf + at, at < len ? len - at : 0, "%s\n", line);
        if (need < 0 || at + (size_t)need >= len)
            return e2e_fail("engine plan: %d entries need more than %zu bytes", g->count, len);
        at += (size_t)need;
    }
    return 0;
}

int conv_engines_use_plan(CpuCtx *c, const char *text) {
    int line_no = 0;
    for (const char *line = text; *line;) {
        const char *next = strchr(line, '\n');
        size_t n = next ? (size_t)(next - line) : strlen(line);
        char buf[512];
        snprintf(buf, sizeof buf, "%.*s", (int)(n < sizeof buf ? n : sizeof buf - 1), line);
        line_no++;
        ConvPlanEntry e;
        int threads;
        if (buf[strspn(buf, " \t\r")] != '\0' && buf[0] != '#') {
            if (conv_plan_parse(buf, &e, &threads))
                return e2e_fail("engine plan, line %d: '%.80s' is not a plan entry", line_no, buf);
            if (e.bf16 != c->bf16)
                return e2e_fail("engine plan, line %d: an entry for %s convolutions, this backend computes in %s",
                                line_no, e.bf16 ? "bf16" : "fp32", c->bf16 ? "bf16" : "fp32");
            e.chosen = CHOSEN_GIVEN;
            store_plan_entry(c, e);
        }
        line = next ? next + 1 : line + n;
    }
    return 0;
}

/* The CPU backend's convolution engines and the choice among them (net/README.md,
 * "Convolution engines"): for every convolution geometry of a model and every pass
 * (forward, backward data, backward filter) one engine runs:
 *   direct  our AVX2+FMA kernels (conv_direct.c), where the CPU and the shape allow;
 *   gemm    im2col + BLAS (conv_gemm.c), any shape, any CPU;
 *   onednn  oneDNN's JIT kernels for the machine's widest ISA (conv_onednn.c).
 * E2E_CPU_CONV=auto (the default) times "own" (direct, or gemm where direct does not
 * apply) against oneDNN on the real shape at model build and keeps the choice in a
 * plan record, so that every later run on this kind of machine uses the same engines
 * and repeats bitwise; direct, onednn and gemm force one engine. In the bf16 mode the
 * same three run on bf16 activations (net/README.md, "bf16 on the CPU"). */
#ifndef E2E_NET_CPU_CONV_ENGINE_H
#define E2E_NET_CPU_CONV_ENGINE_H

#include "cpu_internal.h"

typedef enum { ENGINE_NONE = 0, ENGINE_DIRECT, ENGINE_GEMM, ENGINE_ONEDNN, ENGINE_KINDS } ConvEngine;

/* How an engine choice came about. */
typedef enum { CHOSEN_FORCED = 0, CHOSEN_TIMED, CHOSEN_RECORDED, CHOSEN_GIVEN } ConvChosen;

/* The engines of one geometry. */
typedef struct {
    ConvShape s;                     /* n: the batch the choice was made for */
    Layout lay;                      /* of x */
    unsigned char engine[CONV_OPS];  /* ConvEngine; NONE: a pass that was not planned */
    float ms[CONV_OPS][2];           /* the timings behind it: own engine, oneDNN (0: none) */
    unsigned char chosen;            /* ConvChosen */
    unsigned char bf16;              /* for the bf16 mode (bf16 activations), else fp32 */
} ConvPlanEntry;

/* Reads E2E_CPU_CONV (auto | direct | onednn | gemm) and E2E_CPU_CONV_PLAN (the plan
 * record's path, or "none"); -1 with e2e_error() on a bad value or when oneDNN is
 * forced but missing. */
int conv_engines_create(CpuCtx *c);
void conv_engines_destroy(CpuCtx *c);

/* The plan in use: its entries, in the order the geometries were first seen. */
int conv_engines_count(const CpuCtx *c);
const ConvPlanEntry *conv_engines_entry(const CpuCtx *c, int i);
/* oneDNN's kernel for a pass ("brgconv:avx512_core"), or NULL where oneDNN has none
 * but its reference code, or is not in use. */
const char *conv_engines_onednn_kernel(CpuCtx *c, ConvOp op, const ConvShape *s, Layout lay);

/* net_cpu_conv_report, net_cpu_conv_plan and net_cpu_conv_use_plan (cpu_backend.h). */
const char *conv_engines_report(CpuCtx *c);
int conv_engines_plan_text(CpuCtx *c, char *buf, size_t len);
int conv_engines_use_plan(CpuCtx *c, const char *text);

/* NetOps' convolution members (ops.h). */
void cpu_conv_prepare(void *ctx, const ConvShape *s, Layout lay);
void cpu_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                      const float *b, const float *residual, int relu, float *y);
void cpu_conv_backward_data(void *ctx, const ConvShape *s, const float *dy, const float *w,
                            const float *mask, float *dx);
void cpu_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                              const float *dy, float *dw, float *db);

/* One pass of one engine on the convolution's arguments; -1 when that engine cannot do
 * the shape. For the choice and for benchmarks. In the bf16 mode the activation
 * pointers (x, unless lay is NCHW: the network's float input; residual, y, dy, mask, dx)
 * hold bf16. */
typedef struct {
    const ConvShape *s;
    Layout lay;
    const float *x, *w, *b, *residual, *dy, *mask;
    int relu;
    float *y, *dx, *dw, *db;
} ConvCall;
int conv_engine_run(CpuCtx *c, ConvEngine e, ConvOp op, const ConvCall *a);
/* The engine that runs op where the engine asked for cannot (fallback order: oneDNN,
 * direct, gemm). */
ConvEngine conv_engine_effective(CpuCtx *c, ConvEngine e, ConvOp op, const ConvShape *s, Layout lay);
/* Times own and oneDNN on a geometry (random data, `rounds` interleaved runs after a
 * warm-up, best of each, milliseconds; 0 where an engine cannot run the pass) into
 * e->ms, and makes the auto choice from them into e->engine. */
void conv_engine_time(CpuCtx *c, ConvPlanEntry *e, int rounds);

/* The plan's text form (conv_plan.c), one line per geometry (the record file holds these):
 *   t2 n32 8x125x125 nchw o16 k7x7 s1 p1 : fwd=onednn bwd_data=none bwd_filter=direct
 * with "bf16" after the batch for the bf16 mode's entries:
 *   t2 n32 bf16 8x125x125 nchw o16 k7x7 s1 p1 : fwd=onednn bwd_data=none bwd_filter=onednn
 * conv_plan_line returns the characters written (snprintf's count); conv_plan_parse
 * returns 0, or -1 for a line that is not a plan entry. */
const char *conv_engine_name(ConvEngine e);
ConvEngine conv_engine_parse(const char *name);  /* ENGINE_KINDS when unknown */
int conv_plan_line(const ConvPlanEntry *e, int threads, char *buf, size_t len);
int conv_plan_parse(const char *line, ConvPlanEntry *e, int *threads);
/* The record at path, under an exclusive lock (path + ".lock"): when it holds an entry
 * for (threads, e->s with its n, e->lay, e->bf16), its engines go into e and 1 is returned;
 * else decide(arg, e) fills e, its line is added to the record and 0 is returned; -1
 * (with e2e_error()) when the record cannot be read or written (e is then decided
 * but not kept). header opens a new record file. */
int conv_plan_record(const char *path, const char *header, int threads, ConvPlanEntry *e,
                     void (*decide)(void *arg, ConvPlanEntry *e), void *arg);

#endif

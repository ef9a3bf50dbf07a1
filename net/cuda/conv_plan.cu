/* A convolution plan's cuDNN side: its descriptors, and the algorithm chosen for it once,
 * by cudnnFind*AlgorithmEx on the real buffers (or cuDNN's heuristics with
 * E2E_CUDNN_ALGO=heuristic). A result counts when it ran and its workspace fits
 * CudaCtx.ws_limit; in fp32 mode it must also use FMA math and sum plain products (no FFT
 * or Winograd transform); the fastest deterministic one wins, else the fastest. When
 * cuDNN offers none such:
 *  - fp32 mode takes a transform with FMA math, else any math (TF32 may then serve the
 *    shape), and says so with every candidate's algorithm, status, math type and
 *    memory (CudaStats.fp32_relaxed);
 *  - bf16 mode runs the shape on float operands (CudaStats.fp32_fallbacks): decided from
 *    cuDNN's heuristics when the plan is made, or after the timed search when that finds
 *    no bf16 algorithm that ran (cuda_plan_choose answers 1: the caller prepares its
 *    operands again);
 *  - with no candidate at all, the process stops after listing them.
 * conv.cu calls down into this file; it calls nothing of conv.cu. */
#include <stdio.h>
#include <string.h>

extern "C" {
#include "error.h"  /* a C header */
}
#include "cuda_internal.h"

/* The fields the three cudnnConvolution*AlgoPerf_t share. */
typedef struct {
    int algo;
    cudnnStatus_t status;
    float time;
    size_t memory;
    cudnnDeterminism_t determinism;
    cudnnMathType_t math;
} Perf;

#define COPY_PERF(dst, src, n)                                                            \
    for (int i_ = 0; i_ < (n); i_++)                                                      \
        dst[i_] = (Perf){(int)src[i_].algo, src[i_].status, src[i_].time, src[i_].memory, \
                         src[i_].determinism, src[i_].mathType};

#define MAX_ALGOS 16

/* How much a result may give up in fp32 mode: nothing, the plain sums, the FMA math. */
typedef enum { TIER_WANTED = 0, TIER_TRANSFORM = 1, TIER_ANY_MATH = 2 } Tier;

static const char *algo_name(int pass, int algo) {
    static const char *fwd[] = {"IMPLICIT_GEMM", "IMPLICIT_PRECOMP_GEMM", "GEMM", "DIRECT",
                                "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char *data[] = {"ALGO_0", "ALGO_1", "FFT", "FFT_TILING", "WINOGRAD", "WINOGRAD_NONFUSED"};
    static const char *filter[] = {"ALGO_0", "ALGO_1", "FFT", "ALGO_3", "WINOGRAD", "WINOGRAD_NONFUSED",
                                   "FFT_TILING"};
    if (pass == PASS_FWD) return algo >= 0 && algo < 8 ? fwd[algo] : "?";
    if (pass == PASS_BWD_DATA) return algo >= 0 && algo < 6 ? data[algo] : "?";
    return algo >= 0 && algo < 7 ? filter[algo] : "?";
}

static const char *math_name(cudnnMathType_t m) {
    switch (m) {
    case CUDNN_DEFAULT_MATH: return "DEFAULT";
    case CUDNN_TENSOR_OP_MATH: return "TENSOR_OP";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION: return "TENSOR_OP_ALLOW_CONVERSION";
    case CUDNN_FMA_MATH: return "FMA";
    default: return "?";
    }
}

static cudnnMathType_t math_type(const CudaCtx *c) {
    switch (c->prec) {
    case PREC_FP32: return CUDNN_FMA_MATH;        /* no TF32, no tensor cores */
    case PREC_TF32: return CUDNN_DEFAULT_MATH;    /* TF32 permitted */
    default: return CUDNN_TENSOR_OP_MATH;         /* bf16 tensor cores */
    }
}

/* fp32 mode admits FMA kernels only; before compute capability 8.0 there is no TF32,
 * so there the default math is FMA math too */
static int math_ok(const CudaCtx *c, cudnnMathType_t m) {
    if (c->prec != PREC_FP32) return 1;
    return m == CUDNN_FMA_MATH || (c->cc_major < 8 && m == CUDNN_DEFAULT_MATH);
}

/* FFT and Winograd transforms trade accuracy for speed; fp32 mode keeps to algorithms
 * that sum plain products (implicit or explicit GEMM, direct) */
static int plain_sums(int pass, int algo) {
    switch (pass) {
    case PASS_FWD:
        return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
               algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
    case PASS_BWD_DATA:
        return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
    default:
        return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 ||
               algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
    }
}

static int usable(const CudaCtx *c, int pass, const Perf *r, Tier tier) {
    if (r->status != CUDNN_STATUS_SUCCESS || r->memory > c->ws_limit) return 0;
    if (c->prec != PREC_FP32 || tier == TIER_ANY_MATH) return 1;
    return math_ok(c, r->math) && (tier == TIER_TRANSFORM || plain_sums(pass, r->algo));
}

/* The first usable result (results come fastest first), deterministic if any is. */
static const Perf *pick(const CudaCtx *c, int pass, const Perf *r, int n, Tier tier, int *deterministic) {
    for (int want_det = 1; want_det >= 0; want_det--)
        for (int i = 0; i < n; i++) {
            if (!usable(c, pass, &r[i], tier)) continue;
            if (want_det && r[i].determinism != CUDNN_DETERMINISTIC) continue;
            *deterministic = r[i].determinism == CUDNN_DETERMINISTIC;
            return &r[i];
        }
    return NULL;
}

/* The largest workspace among candidates that may be taken, for the timed search. */
static size_t search_workspace(const CudaCtx *c, int pass, const Perf *r, int n) {
    size_t most = 0;
    for (int i = 0; i < n; i++)
        if (usable(c, pass, &r[i], TIER_ANY_MATH) && r[i].memory > most) most = r[i].memory;
    return most;
}

/* ---- descriptors ---- */

/* Sets p's descriptors for bf16 or float operands. */
static void describe(CudaCtx *c, ConvPlan *p, int bf16) {
    const ConvShape *s = &p->s;
    cudnnDataType_t dt = bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
    p->bf16 = bf16;
    cudnnCheck(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, dt, s->n, s->in_c, s->in_h, s->in_w));
    cudnnCheck(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, dt, s->n, s->out_c, s->out_h, s->out_w));
    cudnnCheck(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NHWC, s->out_c, s->in_c, s->k_h, s->k_w));
    cudnnCheck(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    cudnnCheck(cudnnSetConvolutionMathType(p->conv, math_type(c)));
}

/* cuDNN's heuristic ranking for plan p (no device work). */
static int heuristics(CudaCtx *c, const ConvPlan *p, Perf *r) {
    int got = 0;
    if (p->pass == PASS_FWD) {
        cudnnConvolutionFwdAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, p->x, p->w, p->conv, p->y, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
    } else if (p->pass == PASS_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, p->w, p->y, p->conv, p->x, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, p->x, p->y, p->conv, p->w, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
    }
    return got;
}

void cuda_plan_init(CudaCtx *c, ConvPlan *p, int pass, const ConvShape *s) {
    memset(p, 0, sizeof *p);
    p->pass = pass;
    p->s = *s;
    cudnnCheck(cudnnCreateTensorDescriptor(&p->x));
    cudnnCheck(cudnnCreateTensorDescriptor(&p->y));
    cudnnCheck(cudnnCreateFilterDescriptor(&p->w));
    cudnnCheck(cudnnCreateConvolutionDescriptor(&p->conv));
    describe(c, p, c->prec == PREC_BF16);
    int on, oc, oh, ow;
    cudnnCheck(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
    if (on != s->n || oc != s->out_c || oh != s->out_h || ow != s->out_w)
        cuda_die(__FILE__, __LINE__, "cudnnGetConvolution2dForwardOutputDim", "output shape differs from the model's");
    if (p->bf16) {  /* no bf16 kernel in cuDNN's heuristics (e.g. few input channels): float operands */
        Perf r[MAX_ALGOS];
        int got = heuristics(c, p, r), det;
        if (!pick(c, p->pass, r, got, TIER_WANTED, &det)) {
            describe(c, p, 0);
            c->fp32_fallbacks++;
        }
    }
}

void cuda_plan_destroy(ConvPlan *p) {
    if (p->x) (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->y) (void)cudnnDestroyTensorDescriptor(p->y);
    if (p->w) (void)cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) (void)cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

/* ---- the choice ---- */

/* "forward n32 8x125x125 -> 16 k7 s1 p1, float operands" */
static void describe_plan(const CudaCtx *c, const ConvPlan *p, char *buf, size_t len) {
    static const char *passes[] = {"forward", "backward data", "backward filter"};
    static const char *modes[] = {"fp32", "tf32", "bf16"};
    const ConvShape *s = &p->s;
    snprintf(buf, len, "%s convolution n%d %dx%dx%d -> %d k%d s%d p%d (%s operands, %s mode)", passes[p->pass],
             s->n, s->in_c, s->in_h, s->in_w, s->out_c, s->k_h, s->stride, s->pad, p->bf16 ? "bf16" : "float",
             modes[c->prec]);
}

/* Every candidate in one line: algorithm (status, math type, memory[, non-deterministic]). */
static const char *list_candidates(int pass, const Perf *r, int n, char *buf, size_t len) {
    size_t at = (size_t)snprintf(buf, len, "%s", n ? "" : "none");
    for (int i = 0; i < n && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s (%s, math %s, %zu bytes%s)", i ? "; " : "",
                               algo_name(pass, r[i].algo), cudnnGetErrorString(r[i].status),
                               math_name(r[i].math), r[i].memory,
                               r[i].determinism == CUDNN_DETERMINISTIC ? "" : ", non-deterministic");
    return buf;
}

/* The candidates of p: cuDNN's heuristics, then (unless E2E_CUDNN_ALGO=heuristic) the
 * timed search on a, b, out. The count, or -1 when the workspace cannot grow (capture). */
static int candidates(CudaCtx *c, ConvPlan *p, const void *a, const void *b, void *out, Perf *r) {
    int got = heuristics(c, p, r);
    if (c->heuristic_algos) return got;
    if (cuda_grow(c, &c->workspace, search_workspace(c, p->pass, r, got))) return -1;
    void *ws = c->workspace.p;
    size_t wsb = c->workspace.bytes;
    if (p->pass == PASS_FWD) {
        cudnnConvolutionFwdAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnFindConvolutionForwardAlgorithmEx(c->cudnn, p->x, a, p->w, b, p->conv, p->y, out,
                                                          MAX_ALGOS, &got, q, ws, wsb));
        COPY_PERF(r, q, got);
    } else if (p->pass == PASS_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnFindConvolutionBackwardDataAlgorithmEx(c->cudnn, p->w, a, p->y, b, p->conv, p->x, out,
                                                               MAX_ALGOS, &got, q, ws, wsb));
        COPY_PERF(r, q, got);
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnFindConvolutionBackwardFilterAlgorithmEx(c->cudnn, p->x, a, p->y, b, p->conv, p->w, out,
                                                                 MAX_ALGOS, &got, q, ws, wsb));
        COPY_PERF(r, q, got);
    }
    return got;
}

/* The best result, giving up what fp32 mode must (with a warning); NULL when none ran. */
static const Perf *best_of(CudaCtx *c, ConvPlan *p, const Perf *r, int n) {
    char what[200], list[900];
    for (int tier = TIER_WANTED; tier <= TIER_ANY_MATH; tier++) {
        const Perf *best = pick(c, p->pass, r, n, (Tier)tier, &p->deterministic);
        if (!best || tier == TIER_WANTED) {
            if (best || c->prec != PREC_FP32) return best;
            continue;
        }
        describe_plan(c, p, what, sizeof what);
        e2e_warn("cuda: %s: cuDNN offers no algorithm that %s; taking %s (math %s). cuDNN's candidates: %s", what,
                 tier == TIER_TRANSFORM ? "sums plain products with FMA math" : "uses FMA math (no TF32)",
                 algo_name(p->pass, best->algo), math_name(best->math), list_candidates(p->pass, r, n, list, sizeof list));
        c->fp32_relaxed++;
        return best;
    }
    return NULL;
}

int cuda_plan_choose(CudaCtx *c, ConvPlan *p, const void *a, const void *b, void *out) {
    if (p->chosen) return 0;
    if (c->recording) {
        cuda_fail_capture(c, "a convolution whose algorithm was not chosen yet came up during the capture");
        return -1;
    }
    Perf r[MAX_ALGOS];
    int got = candidates(c, p, a, b, out, r);
    if (got < 0) return -1;
    const Perf *best = best_of(c, p, r, got);
    char what[200], list[900];
    describe_plan(c, p, what, sizeof what);
    if (!best && p->bf16) {  /* the timed search found no bf16 algorithm that ran: float operands */
        e2e_warn("cuda: %s: no bf16 algorithm ran; the shape runs on float operands. cuDNN's candidates: %s", what,
                 list_candidates(p->pass, r, got, list, sizeof list));
        describe(c, p, 0);
        c->fp32_fallbacks++;
        return 1;
    }
    if (!best) {
        fprintf(stderr, "e2e-ddp: %s: no usable cuDNN algorithm (workspace limit %zu bytes); cuDNN's candidates: %s\n",
                what, c->ws_limit, list_candidates(p->pass, r, got, list, sizeof list));
        cuda_die(__FILE__, __LINE__, "choosing a convolution algorithm", "no usable cuDNN algorithm (candidates above)");
        return -1;  /* inside a capture cuda_die returns */
    }
    if (cuda_grow(c, &c->workspace, best->memory)) return -1;
    p->algo = best->algo;
    p->ws_bytes = best->memory;
    cudnnCheck(cudnnSetConvolutionMathType(p->conv, best->math));
    if (!p->deterministic) c->nondeterministic++;
    p->chosen = 1;
    return 0;
}

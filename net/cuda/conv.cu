/* Convolutions through cuDNN (the legacy convolution API: cudnnConvolutionForward,
 * ...BackwardData, ...BackwardFilter), NHWC activations and KRSC ("NHWC") filters,
 * with our own kernels around them: layout and precision conversion, weight repacking,
 * the fused epilogues (bias, residual, ReLU; the backward ReLU mask) and the bias
 * gradient.
 *
 * Precision (CudaCtx.prec):
 *  - fp32: float tensors, math type CUDNN_FMA_MATH: cuDNN may use only FMA kernels, so
 *    no TF32 (the same choice as PyTorch with torch.backends.cudnn.allow_tf32 = False);
 *  - tf32: float tensors, CUDNN_DEFAULT_MATH: TF32 tensor cores are permitted;
 *  - bf16: the operands are converted to bf16 copies (weights from the fp32 master
 *    copy each call), cuDNN accumulates in float (convolution compute type FLOAT) and
 *    writes bf16, which our epilogue widens to float. Bias, residual, ReLU, the mask and
 *    the bias gradient stay float.
 * An algorithm is chosen once per (pass, shape): timed by cudnnFind*AlgorithmEx on the
 * real buffers (or cuDNN's heuristics with E2E_CUDNN_ALGO=heuristic). Results count when
 * they ran, their workspace fits in CudaCtx.ws_limit, and, in fp32 mode, their math type
 * is CUDNN_FMA_MATH and they sum plain products (no FFT or Winograd transforms); the
 * fastest deterministic one wins, else the fastest. In bf16 mode a shape for which
 * cuDNN's heuristics offer no bf16 kernel (e.g. few input channels) runs on float
 * operands instead (CudaStats.fp32_fallbacks). */
#include <cuda_bf16.h>
#include <stdio.h>
#include <string.h>

#include "cuda_internal.h"

typedef __nv_bfloat16 bf16;

__device__ inline float to_f(float v) { return v; }
__device__ inline float to_f(bf16 v) { return __bfloat162float(v); }
__device__ inline void put(float *p, float v) { *p = v; }
__device__ inline void put(bf16 *p, float v) { *p = __float2bfloat16(v); }

#define THREADS 256
#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* y (NHWC, T) = x (NCHW when nchw, else NHWC; float) */
template <typename T>
__global__ void k_to_nhwc(size_t total, int c, size_t hw, int nchw, const float *x, T *y) {
    GRID_STRIDE(i, total) {
        float v;
        if (nchw) {
            size_t ch = i % c, p = (i / c) % hw, s = i / ((size_t)c * hw);
            v = x[(s * c + ch) * hw + p];
        } else {
            v = x[i];
        }
        put(&y[i], v);
    }
}

/* KRSC (T) from OIHW (float): y[((o * kh + r) * kw + q) * ci + ch] = w[((o * ci + ch) * kh + r) * kw + q] */
template <typename T>
__global__ void k_pack_w(size_t total, int ci, int kh, int kw, const float *w, T *y) {
    GRID_STRIDE(i, total) {
        size_t ch = i % ci, q = (i / ci) % kw, r = (i / ((size_t)ci * kw)) % kh;
        size_t o = i / ((size_t)ci * kw * kh);
        put(&y[i], w[((o * ci + ch) * kh + r) * kw + q]);
    }
}

/* OIHW (float) from KRSC (T) */
template <typename T>
__global__ void k_unpack_dw(size_t total, int ci, int kh, int kw, const T *dk, float *dw) {
    GRID_STRIDE(i, total) {  /* i runs over OIHW */
        size_t q = i % kw, r = (i / kw) % kh, ch = (i / ((size_t)kw * kh)) % ci;
        size_t o = i / ((size_t)kw * kh * ci);
        dw[i] = to_f(dk[((o * kh + r) * kw + q) * ci + ch]);
    }
}

/* y = act(acc + b [+ res]); ReLU as v < 0 ? 0 : v, so a NaN passes as in PyTorch. acc may be y. */
template <typename T>
__global__ void k_fwd_epilogue(size_t total, int c, const T *acc, const float *b, const float *res,
                               int relu, float *y) {
    GRID_STRIDE(i, total) {
        float v = to_f(acc[i]) + b[i % c];
        if (res) v += res[i];
        if (relu) v = v < 0.0f ? 0.0f : v;
        y[i] = v;
    }
}

/* dx = mask <= 0 ? 0 : acc (a NaN in mask lets the gradient through); no mask: dx = acc */
template <typename T>
__global__ void k_mask_epilogue(size_t total, const T *acc, const float *mask, float *dx) {
    GRID_STRIDE(i, total) {
        float v = to_f(acc[i]);
        if (mask && mask[i] <= 0.0f) v = 0.0f;
        dx[i] = v;
    }
}

/* Bias gradient, stage 1: block b sums rows [b * per, (b + 1) * per) of dy (rows x c)
 * into partial[b * c + ch]. Threads are (lane, channel) pairs: lanes consecutive rows
 * read side by side, so a warp reads contiguous memory; lanes are added in order. */
__global__ void k_bias_partial(size_t rows, int c, size_t per, const float *dy, float *partial) {
    __shared__ float sh[THREADS];
    int cb = c < THREADS ? c : THREADS, lanes = THREADS / cb;
    int t = threadIdx.x, lane = t / cb, c0 = t % cb;
    size_t r0 = blockIdx.x * per, r1 = r0 + per < rows ? r0 + per : rows;
    for (int base = 0; base < c; base += cb) {
        int ch = base + c0;
        float acc = 0.0f;
        if (lane < lanes && ch < c)
            for (size_t r = r0 + lane; r < r1; r += lanes) acc += dy[r * c + ch];
        sh[t] = acc;
        __syncthreads();
        if (t < cb && base + t < c) {
            float s = 0.0f;
            for (int l = 0; l < lanes; l++) s += sh[l * cb + t];
            partial[(size_t)blockIdx.x * c + base + t] = s;
        }
        __syncthreads();
    }
}

/* stage 2: db[ch] = sum over blocks, in block order */
__global__ void k_bias_final(int blocks, int c, const float *partial, float *db) {
    int ch = blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    float s = 0.0f;
    for (int b = 0; b < blocks; b++) s += partial[(size_t)b * c + ch];
    db[ch] = s;
}

/* ---- plans ---- */

static size_t in_numel(const ConvShape *s) { return (size_t)s->n * s->in_c * s->in_h * s->in_w; }
static size_t out_numel(const ConvShape *s) { return (size_t)s->n * s->out_c * s->out_h * s->out_w; }
static size_t w_numel(const ConvShape *s) { return (size_t)s->out_c * s->in_c * s->k_h * s->k_w; }

static cudnnMathType_t math_type(const CudaCtx *c) {
    switch (c->prec) {
    case PREC_FP32: return CUDNN_FMA_MATH;        /* no TF32, no tensor cores */
    case PREC_TF32: return CUDNN_DEFAULT_MATH;    /* TF32 permitted */
    default: return CUDNN_TENSOR_OP_MATH;         /* bf16 tensor cores */
    }
}

static void destroy_plan(ConvPlan *p) {
    if (p->x) (void)cudnnDestroyTensorDescriptor(p->x);
    if (p->y) (void)cudnnDestroyTensorDescriptor(p->y);
    if (p->w) (void)cudnnDestroyFilterDescriptor(p->w);
    if (p->conv) (void)cudnnDestroyConvolutionDescriptor(p->conv);
    memset(p, 0, sizeof *p);
}

void cuda_plans_destroy(CudaCtx *c) {
    for (int i = 0; i < c->n_plans; i++) destroy_plan(&c->plans[i]);
    c->n_plans = 0;
}

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

static int usable(const CudaCtx *c, int pass, const Perf *r) {
    return r->status == CUDNN_STATUS_SUCCESS && r->memory <= c->ws_limit && math_ok(c, r->math) &&
           (c->prec != PREC_FP32 || plain_sums(pass, r->algo));
}

/* The first usable result (results come fastest first), deterministic if any is. */
static const Perf *pick(const CudaCtx *c, int pass, const Perf *r, int n, int *deterministic) {
    for (int want_det = 1; want_det >= 0; want_det--)
        for (int i = 0; i < n; i++) {
            if (!usable(c, pass, &r[i])) continue;
            if (want_det && r[i].determinism != CUDNN_DETERMINISTIC) continue;
            *deterministic = r[i].determinism == CUDNN_DETERMINISTIC;
            return &r[i];
        }
    return NULL;
}

/* The largest workspace among usable candidates, for the timed search. */
static size_t search_workspace(const CudaCtx *c, int pass, const Perf *r, int n) {
    size_t most = 0;
    for (int i = 0; i < n; i++)
        if (usable(c, pass, &r[i]) && r[i].memory > most) most = r[i].memory;
    return most;
}

#define MAX_ALGOS 16

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

/* Finds or makes the plan of (pass, s): descriptors, and whether its operands are bf16
 * (in bf16 mode, unless cuDNN's heuristics offer no bf16 kernel for the shape: then
 * float, counted in fp32_fallbacks). The algorithm is chosen later, by choose(). NULL
 * inside a capture when the plan would be new. */
static ConvPlan *get_plan(CudaCtx *c, int pass, const ConvShape *s) {
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].pass == pass && memcmp(&c->plans[i].s, s, sizeof *s) == 0) {
            if (!c->plans[i].chosen && c->recording) break;
            return &c->plans[i];
        }
    if (c->recording) {
        cuda_fail_capture(c, "a convolution shape with no plan yet came up during the capture");
        return NULL;
    }
    for (int i = 0; i < c->n_plans; i++)  /* an unchosen plan of an interrupted call */
        if (c->plans[i].pass == pass && memcmp(&c->plans[i].s, s, sizeof *s) == 0) return &c->plans[i];
    if (c->n_plans == CUDA_MAX_PLANS) cuda_plans_destroy(c);  /* many batch sizes: start over */
    ConvPlan *p = &c->plans[c->n_plans++];
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
        cuda_die(__FILE__, __LINE__, "cudnnGetConvolution2dForwardOutputDim",
                 "output shape differs from the model's");
    if (p->bf16) {
        Perf r[MAX_ALGOS];
        int got = heuristics(c, p, r), det;
        if (!pick(c, p->pass, r, got, &det)) {
            describe(c, p, 0);
            c->fp32_fallbacks++;
        }
    }
    return p;
}

/* Chooses p's algorithm once, on its real operands a, b and output out (forward: x, w,
 * y; backward data: w, dy, dx; backward filter: x, dy, dw); the timed search writes
 * out, which the caller's own call then overwrites. -1 inside a capture. */
static int choose(CudaCtx *c, ConvPlan *p, const void *a, const void *b, void *out) {
    if (p->chosen) return 0;
    if (c->recording) {
        cuda_fail_capture(c, "a convolution whose algorithm was not chosen yet came up during the capture");
        return -1;
    }
    Perf r[MAX_ALGOS];
    int got = heuristics(c, p, r);
    if (!c->heuristic_algos) {
        if (cuda_grow(c, &c->workspace, search_workspace(c, p->pass, r, got))) return -1;
        void *ws = c->workspace.p;
        size_t wsb = c->workspace.bytes;
        if (p->pass == PASS_FWD) {
            cudnnConvolutionFwdAlgoPerf_t q[MAX_ALGOS];
            cudnnCheck(cudnnFindConvolutionForwardAlgorithmEx(c->cudnn, p->x, a, p->w, b, p->conv, p->y,
                                                              out, MAX_ALGOS, &got, q, ws, wsb));
            COPY_PERF(r, q, got);
        } else if (p->pass == PASS_BWD_DATA) {
            cudnnConvolutionBwdDataAlgoPerf_t q[MAX_ALGOS];
            cudnnCheck(cudnnFindConvolutionBackwardDataAlgorithmEx(c->cudnn, p->w, a, p->y, b, p->conv,
                                                                   p->x, out, MAX_ALGOS, &got, q, ws, wsb));
            COPY_PERF(r, q, got);
        } else {
            cudnnConvolutionBwdFilterAlgoPerf_t q[MAX_ALGOS];
            cudnnCheck(cudnnFindConvolutionBackwardFilterAlgorithmEx(c->cudnn, p->x, a, p->y, b, p->conv,
                                                                     p->w, out, MAX_ALGOS, &got, q, ws, wsb));
            COPY_PERF(r, q, got);
        }
    }
    const Perf *best = pick(c, p->pass, r, got, &p->deterministic);
    if (!best) {
        const ConvShape *s = &p->s;
        char msg[240];
        snprintf(msg, sizeof msg,
                 "no usable cuDNN algorithm (%s operands, pass %d, n%d %dx%dx%d -> %d k%d s%d p%d)",
                 p->bf16 ? "bf16" : "float", p->pass, s->n, s->in_c, s->in_h, s->in_w, s->out_c,
                 s->k_h, s->stride, s->pad);
        cuda_die(__FILE__, __LINE__, "choosing a convolution algorithm", msg);
    }
    if (cuda_grow(c, &c->workspace, best->memory)) return -1;
    p->algo = best->algo;
    p->ws_bytes = best->memory;
    cudnnCheck(cudnnSetConvolutionMathType(p->conv, best->math));
    if (!p->deterministic) c->nondeterministic++;
    p->chosen = 1;
    return 0;
}

/* ---- the three passes ---- */

static unsigned blocks_for(size_t n) { return cuda_blocks(n, THREADS); }

/* x (float, either layout) as the convolution reads it: x itself when it is float NHWC,
 * else a converted copy in c->xs. NULL when the copy cannot be made (capture). */
static const void *conv_input(CudaCtx *c, const ConvShape *s, int bf, Layout lay, const float *x) {
    size_t nx = in_numel(s);
    int nchw = lay == LAYOUT_NCHW;
    if (!bf && !nchw) return x;
    if (cuda_grow(c, &c->xs, nx * (bf ? 2 : 4))) return NULL;
    size_t hw = (size_t)s->in_h * s->in_w;
    if (bf)
        k_to_nhwc<bf16><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, s->in_c, hw, nchw, x, (bf16 *)c->xs.p);
    else
        k_to_nhwc<float><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, s->in_c, hw, nchw, x, (float *)c->xs.p);
    cudaCheckLaunch();
    return c->xs.p;
}

/* dy as bf16 in buffer buf (the float dy itself when not bf). */
static const void *conv_grad(CudaCtx *c, const ConvShape *s, int bf, const float *dy, Scratch *buf) {
    if (!bf) return dy;
    size_t ny = out_numel(s);
    if (cuda_grow(c, buf, ny * 2)) return NULL;
    k_to_nhwc<bf16><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, (size_t)s->out_h * s->out_w, 0,
                                                               dy, (bf16 *)buf->p);
    cudaCheckLaunch();
    return buf->p;
}

/* The weights repacked to KRSC (bf16 when bf) in c->ws. */
static const void *conv_weights(CudaCtx *c, const ConvShape *s, int bf, const float *w) {
    size_t nw = w_numel(s);
    if (cuda_grow(c, &c->ws, nw * (bf ? 2 : 4))) return NULL;
    if (bf)
        k_pack_w<bf16><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w, w, (bf16 *)c->ws.p);
    else
        k_pack_w<float><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w, w, (float *)c->ws.p);
    cudaCheckLaunch();
    return c->ws.p;
}

/* Buffers are made ready (and may move) before the first kernel that fills them is
 * enqueued, so no later growth loses their contents. */
void cuda_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_FWD, s);
    if (!p) return;
    int bf = p->bf16;
    size_t ny = out_numel(s);
    if (bf && cuda_grow(c, &c->ys, ny * 2)) return;
    const void *xin = conv_input(c, s, bf, lay, x);
    const void *wk = xin ? conv_weights(c, s, bf, w) : NULL;
    void *acc = bf ? c->ys.p : (void *)y;
    if (!wk || choose(c, p, xin, wk, acc)) return;
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionForward(c->cudnn, &one, p->x, xin, p->w, wk, p->conv,
                                       (cudnnConvolutionFwdAlgo_t)p->algo, c->workspace.p, p->ws_bytes,
                                       &zero, p->y, acc));
    if (bf)
        k_fwd_epilogue<bf16><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, (const bf16 *)acc, b,
                                                                        residual, relu, y);
    else
        k_fwd_epilogue<float><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, y, b, residual, relu, y);
    cudaCheckLaunch();
}

void cuda_conv_backward_data(void *ctx, const ConvShape *s, const float *dy, const float *w,
                             const float *mask, float *dx) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_BWD_DATA, s);
    if (!p) return;
    int bf = p->bf16;
    size_t nx = in_numel(s);
    if (bf && cuda_grow(c, &c->ys, nx * 2)) return;
    const void *dyin = conv_grad(c, s, bf, dy, &c->xs);
    const void *wk = dyin ? conv_weights(c, s, bf, w) : NULL;
    void *acc = bf ? c->ys.p : (void *)dx;
    if (!wk || choose(c, p, wk, dyin, acc)) return;
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionBackwardData(c->cudnn, &one, p->w, wk, p->y, dyin, p->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)p->algo, c->workspace.p,
                                            p->ws_bytes, &zero, p->x, acc));
    if (bf)
        k_mask_epilogue<bf16><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, (const bf16 *)acc, mask, dx);
    else if (mask)
        k_mask_epilogue<float><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, dx, mask, dx);
    cudaCheckLaunch();
}

void cuda_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                               const float *dy, float *dw, float *db) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_BWD_FILTER, s);
    if (!p) return;
    int bf = p->bf16;
    size_t ny = out_numel(s), nw = w_numel(s);
    /* the bias gradient's partial sums: up to 1024 blocks of at least 64 rows */
    size_t rows = (size_t)s->n * s->out_h * s->out_w;
    size_t nblk = (rows + 63) / 64;
    if (nblk > 1024) nblk = 1024;
    size_t per = (rows + nblk - 1) / nblk;
    nblk = (rows + per - 1) / per;
    if (cuda_grow(c, &c->dws, nw * (bf ? 2 : 4)) ||
        cuda_grow(c, &c->partial, nblk * s->out_c * sizeof(float)) ||
        (bf && cuda_grow(c, &c->ys, ny * 2)))
        return;
    const void *xin = conv_input(c, s, bf, lay, x);
    const void *dyin = xin ? conv_grad(c, s, bf, dy, &c->ys) : NULL;
    if (!dyin || choose(c, p, xin, dyin, c->dws.p)) return;
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionBackwardFilter(c->cudnn, &one, p->x, xin, p->y, dyin, p->conv,
                                              (cudnnConvolutionBwdFilterAlgo_t)p->algo, c->workspace.p,
                                              p->ws_bytes, &zero, p->w, c->dws.p));
    if (bf)
        k_unpack_dw<bf16><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w,
                                                                     (const bf16 *)c->dws.p, dw);
    else
        k_unpack_dw<float><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w,
                                                                      (const float *)c->dws.p, dw);
    cudaCheckLaunch();
    k_bias_partial<<<(unsigned)nblk, THREADS, 0, c->stream>>>(rows, s->out_c, per, dy, (float *)c->partial.p);
    cudaCheckLaunch();
    k_bias_final<<<(s->out_c + 127) / 128, 128, 0, c->stream>>>((int)nblk, s->out_c, (const float *)c->partial.p, db);
    cudaCheckLaunch();
}

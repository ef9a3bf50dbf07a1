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
 * real buffers (or cuDNN's heuristics with E2E_CUDNN_ALGO=heuristic), keeping only
 * results whose math type is allowed (fp32: CUDNN_FMA_MATH only), preferring
 * deterministic ones, and whose workspace fits in CudaCtx.ws_limit. */
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

static cudnnDataType_t data_type(const CudaCtx *c) {
    return c->prec == PREC_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_FLOAT;
}
static size_t elem_size(const CudaCtx *c) { return c->prec == PREC_BF16 ? 2 : 4; }

static cudnnMathType_t math_type(const CudaCtx *c) {
    switch (c->prec) {
    case PREC_FP32: return CUDNN_FMA_MATH;        /* no TF32, no tensor cores */
    case PREC_TF32: return CUDNN_DEFAULT_MATH;    /* TF32 permitted */
    default: return CUDNN_TENSOR_OP_MATH;         /* bf16 tensor cores */
    }
}

void cuda_plans_destroy(CudaCtx *c) {
    for (int i = 0; i < c->n_plans; i++) {
        ConvPlan *p = &c->plans[i];
        if (p->x) (void)cudnnDestroyTensorDescriptor(p->x);
        if (p->y) (void)cudnnDestroyTensorDescriptor(p->y);
        if (p->w) (void)cudnnDestroyFilterDescriptor(p->w);
        if (p->conv) (void)cudnnDestroyConvolutionDescriptor(p->conv);
    }
    memset(c->plans, 0, sizeof c->plans);
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

/* The first usable result (results come fastest first): a successful run, an allowed
 * math type, a workspace within the limit; deterministic if any such is there. */
static const Perf *pick(const CudaCtx *c, const Perf *r, int n, int *deterministic) {
    for (int want_det = 1; want_det >= 0; want_det--)
        for (int i = 0; i < n; i++) {
            if (r[i].status != CUDNN_STATUS_SUCCESS || r[i].memory > c->ws_limit) continue;
            if (c->prec == PREC_FP32 && r[i].math != CUDNN_FMA_MATH) continue;
            if (want_det && r[i].determinism != CUDNN_DETERMINISTIC) continue;
            *deterministic = r[i].determinism == CUDNN_DETERMINISTIC;
            return &r[i];
        }
    return NULL;
}

/* The largest workspace among the heuristics' usable candidates, for the timed search. */
static size_t search_workspace(const CudaCtx *c, const Perf *r, int n) {
    size_t most = 0;
    for (int i = 0; i < n; i++)
        if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].memory <= c->ws_limit && r[i].memory > most)
            most = r[i].memory;
    return most;
}

#define MAX_ALGOS 16

/* Finds or makes the plan of (pass, s). a, b, out are the pass's real operands (for
 * the timed search; its results are overwritten afterwards): forward x, w, y; backward
 * data w, dy, dx; backward filter x, dy, dw. NULL inside a capture when the plan is new. */
static ConvPlan *get_plan(CudaCtx *c, int pass, const ConvShape *s, const void *a, const void *b,
                          void *out) {
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].pass == pass && memcmp(&c->plans[i].s, s, sizeof *s) == 0) return &c->plans[i];
    if (c->recording) {
        c->capture_error = 1;
        return NULL;
    }
    if (c->n_plans == CUDA_MAX_PLANS) cuda_plans_destroy(c);  /* many batch sizes: start over */
    ConvPlan *p = &c->plans[c->n_plans++];
    memset(p, 0, sizeof *p);
    p->pass = pass;
    p->s = *s;
    cudnnDataType_t dt = data_type(c);
    cudnnCheck(cudnnCreateTensorDescriptor(&p->x));
    cudnnCheck(cudnnCreateTensorDescriptor(&p->y));
    cudnnCheck(cudnnCreateFilterDescriptor(&p->w));
    cudnnCheck(cudnnCreateConvolutionDescriptor(&p->conv));
    cudnnCheck(cudnnSetTensor4dDescriptor(p->x, CUDNN_TENSOR_NHWC, dt, s->n, s->in_c, s->in_h, s->in_w));
    cudnnCheck(cudnnSetTensor4dDescriptor(p->y, CUDNN_TENSOR_NHWC, dt, s->n, s->out_c, s->out_h, s->out_w));
    cudnnCheck(cudnnSetFilter4dDescriptor(p->w, dt, CUDNN_TENSOR_NHWC, s->out_c, s->in_c, s->k_h, s->k_w));
    cudnnCheck(cudnnSetConvolution2dDescriptor(p->conv, s->pad, s->pad, s->stride, s->stride, 1, 1,
                                               CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    cudnnCheck(cudnnSetConvolutionMathType(p->conv, math_type(c)));
    int on, oc, oh, ow;
    cudnnCheck(cudnnGetConvolution2dForwardOutputDim(p->conv, p->x, p->w, &on, &oc, &oh, &ow));
    if (on != s->n || oc != s->out_c || oh != s->out_h || ow != s->out_w)
        cuda_die(__FILE__, __LINE__, "cudnnGetConvolution2dForwardOutputDim", "output shape differs from the model's");

    Perf r[MAX_ALGOS];
    int got = 0;
    if (pass == PASS_FWD) {
        cudnnConvolutionFwdAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionForwardAlgorithm_v7(c->cudnn, p->x, p->w, p->conv, p->y, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
        if (!c->heuristic_algos) {
            if (cuda_grow(c, &c->workspace, search_workspace(c, r, got))) return NULL;
            cudnnCheck(cudnnFindConvolutionForwardAlgorithmEx(c->cudnn, p->x, a, p->w, b, p->conv, p->y, out,
                                                              MAX_ALGOS, &got, q, c->workspace.p, c->workspace.bytes));
            COPY_PERF(r, q, got);
        }
    } else if (pass == PASS_BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionBackwardDataAlgorithm_v7(c->cudnn, p->w, p->y, p->conv, p->x, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
        if (!c->heuristic_algos) {
            if (cuda_grow(c, &c->workspace, search_workspace(c, r, got))) return NULL;
            cudnnCheck(cudnnFindConvolutionBackwardDataAlgorithmEx(c->cudnn, p->w, a, p->y, b, p->conv, p->x, out,
                                                                   MAX_ALGOS, &got, q, c->workspace.p, c->workspace.bytes));
            COPY_PERF(r, q, got);
        }
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t q[MAX_ALGOS];
        cudnnCheck(cudnnGetConvolutionBackwardFilterAlgorithm_v7(c->cudnn, p->x, p->y, p->conv, p->w, MAX_ALGOS, &got, q));
        COPY_PERF(r, q, got);
        if (!c->heuristic_algos) {
            if (cuda_grow(c, &c->workspace, search_workspace(c, r, got))) return NULL;
            cudnnCheck(cudnnFindConvolutionBackwardFilterAlgorithmEx(c->cudnn, p->x, a, p->y, b, p->conv, p->w, out,
                                                                     MAX_ALGOS, &got, q, c->workspace.p, c->workspace.bytes));
            COPY_PERF(r, q, got);
        }
    }
    const Perf *best = pick(c, r, got, &p->deterministic);
    if (!best) {
        char msg[200];
        snprintf(msg, sizeof msg, "no usable cuDNN algorithm for pass %d, n%d %dx%dx%d -> %d k%d s%d p%d",
                 pass, s->n, s->in_c, s->in_h, s->in_w, s->out_c, s->k_h, s->stride, s->pad);
        cuda_die(__FILE__, __LINE__, "choosing a convolution algorithm", msg);
    }
    p->algo = best->algo;
    p->ws_bytes = best->memory;
    if (!p->deterministic) c->nondeterministic++;
    cudnnCheck(cudnnSetConvolutionMathType(p->conv, best->math));
    if (cuda_grow(c, &c->workspace, p->ws_bytes)) return NULL;
    return p;
}

/* ---- the three passes ---- */

static unsigned blocks_for(size_t n) { return cuda_blocks(n, THREADS); }

/* x (float, either layout) as the convolution reads it: x itself when it is float NHWC,
 * else a converted copy in c->xs. NULL when the copy cannot be made (capture). */
static const void *conv_input(CudaCtx *c, const ConvShape *s, Layout lay, const float *x) {
    size_t nx = in_numel(s);
    int nchw = lay == LAYOUT_NCHW;
    if (c->prec != PREC_BF16 && !nchw) return x;
    if (cuda_grow(c, &c->xs, nx * elem_size(c))) return NULL;
    size_t hw = (size_t)s->in_h * s->in_w;
    if (c->prec == PREC_BF16)
        k_to_nhwc<bf16><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, s->in_c, hw, nchw, x, (bf16 *)c->xs.p);
    else
        k_to_nhwc<float><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, s->in_c, hw, nchw, x, (float *)c->xs.p);
    cudaCheckLaunch();
    return c->xs.p;
}

/* The weights repacked to KRSC (bf16 in bf16 mode) in c->ws. */
static const void *conv_weights(CudaCtx *c, const ConvShape *s, const float *w) {
    size_t nw = w_numel(s);
    if (cuda_grow(c, &c->ws, nw * elem_size(c))) return NULL;
    if (c->prec == PREC_BF16)
        k_pack_w<bf16><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w, w, (bf16 *)c->ws.p);
    else
        k_pack_w<float><<<blocks_for(nw), THREADS, 0, c->stream>>>(nw, s->in_c, s->k_h, s->k_w, w, (float *)c->ws.p);
    cudaCheckLaunch();
    return c->ws.p;
}

void cuda_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y) {
    CudaCtx *c = (CudaCtx *)ctx;
    int bf = c->prec == PREC_BF16;
    size_t ny = out_numel(s);
    const void *xin = conv_input(c, s, lay, x);
    const void *wk = xin ? conv_weights(c, s, w) : NULL;
    if (!wk || (bf && cuda_grow(c, &c->ys, ny * 2))) return;
    void *acc = bf ? c->ys.p : (void *)y;
    ConvPlan *p = get_plan(c, PASS_FWD, s, xin, wk, acc);
    if (!p) return;
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
    int bf = c->prec == PREC_BF16;
    size_t nx = in_numel(s), ny = out_numel(s);
    const void *dyin = dy;
    if (bf) {  /* dy to bf16 in xs (the input side of this pass) */
        if (cuda_grow(c, &c->xs, ny * 2)) return;
        k_to_nhwc<bf16><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, (size_t)s->out_h * s->out_w, 0,
                                                                   dy, (bf16 *)c->xs.p);
        cudaCheckLaunch();
        dyin = c->xs.p;
    }
    const void *wk = conv_weights(c, s, w);
    if (!wk || (bf && cuda_grow(c, &c->ys, nx * 2))) return;
    void *acc = bf ? c->ys.p : (void *)dx;
    ConvPlan *p = get_plan(c, PASS_BWD_DATA, s, wk, dyin, acc);
    if (!p) return;
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
    int bf = c->prec == PREC_BF16;
    size_t ny = out_numel(s), nw = w_numel(s);
    const void *xin = conv_input(c, s, lay, x);
    if (!xin) return;
    const void *dyin = dy;
    if (bf) {  /* dy to bf16 in ys */
        if (cuda_grow(c, &c->ys, ny * 2)) return;
        k_to_nhwc<bf16><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, (size_t)s->out_h * s->out_w, 0,
                                                                   dy, (bf16 *)c->ys.p);
        cudaCheckLaunch();
        dyin = c->ys.p;
    }
    if (cuda_grow(c, &c->dws, nw * elem_size(c))) return;
    /* the bias gradient's partial sums: up to 1024 blocks of at least 64 rows */
    size_t rows = (size_t)s->n * s->out_h * s->out_w;
    size_t nblk = (rows + 63) / 64;
    if (nblk > 1024) nblk = 1024;
    size_t per = (rows + nblk - 1) / nblk;
    nblk = (rows + per - 1) / per;
    if (cuda_grow(c, &c->partial, nblk * s->out_c * sizeof(float))) return;
    ConvPlan *p = get_plan(c, PASS_BWD_FILTER, s, xin, dyin, c->dws.p);
    if (!p) return;
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

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
 * A plan per (pass, shape) holds the descriptors and the algorithm (conv_plan.cu: how
 * it is chosen, and the fallbacks when cuDNN offers none that fits the mode); this file
 * keeps the plans (least recently used out when the table is full) and calls down into
 * conv_plan.cu, which calls nothing here. */
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

void cuda_plans_destroy(CudaCtx *c) {
    for (int i = 0; i < c->n_plans; i++) cuda_plan_destroy(&c->plans[i]);
    c->n_plans = 0;
}

/* A slot for a new plan: a free one, else the least recently used plan's (a pass uses
 * far fewer than CUDA_MAX_PLANS plans, so those of the pass under way, and of the pass a
 * capture is about to record, are never the ones that go). */
static ConvPlan *plan_slot(CudaCtx *c) {
    if (c->n_plans < CUDA_MAX_PLANS) return &c->plans[c->n_plans++];
    ConvPlan *oldest = &c->plans[0];
    for (int i = 1; i < c->n_plans; i++)
        if (c->plans[i].last_use < oldest->last_use) oldest = &c->plans[i];
    cuda_plan_destroy(oldest);
    return oldest;
}

/* Finds or makes the plan of (pass, s) (cuda_plan_init: descriptors, and float operands
 * where bf16 mode has no bf16 kernel); the algorithm is chosen later (cuda_plan_choose).
 * NULL inside a capture when the plan would be new. */
static ConvPlan *get_plan(CudaCtx *c, int pass, const ConvShape *s) {
    for (int i = 0; i < c->n_plans; i++)
        if (c->plans[i].pass == pass && memcmp(&c->plans[i].s, s, sizeof *s) == 0) {
            if (!c->plans[i].chosen && c->recording) break;
            c->plans[i].last_use = ++c->plan_uses;
            return &c->plans[i];
        }
    if (c->recording) {
        cuda_fail_capture(c, "a convolution shape with no plan yet came up during the capture");
        return NULL;
    }
    ConvPlan *p = plan_slot(c);
    cuda_plan_init(c, p, pass, s);
    p->last_use = ++c->plan_uses;
    return p;
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

/* Each pass first makes its operands in the plan's type and has the plan's algorithm
 * chosen on them; when the choice moves the plan to float operands (no bf16 algorithm
 * ran: cuda_plan_choose answers 1) they are made again. Buffers are made ready (and may
 * move) before the first kernel that fills them is enqueued, so no later growth loses
 * their contents. 0, or -1 when the op cannot go on (a capture it fails). */
static int forward_operands(CudaCtx *c, ConvPlan *p, Layout lay, const float *x, const float *w, float *y,
                            const void **xin, const void **wk, void **acc) {
    const ConvShape *s = &p->s;
    for (;;) {
        int bf = p->bf16;
        if (bf && cuda_grow(c, &c->ys, out_numel(s) * 2)) return -1;
        *xin = conv_input(c, s, bf, lay, x);
        *wk = *xin ? conv_weights(c, s, bf, w) : NULL;
        *acc = bf ? c->ys.p : (void *)y;
        if (!*wk) return -1;
        int r = cuda_plan_choose(c, p, *xin, *wk, *acc);
        if (r <= 0) return r;
    }
}

void cuda_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_FWD, s);
    const void *xin, *wk;
    void *acc;
    if (!p || forward_operands(c, p, lay, x, w, y, &xin, &wk, &acc)) return;
    size_t ny = out_numel(s);
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionForward(c->cudnn, &one, p->x, xin, p->w, wk, p->conv,
                                       (cudnnConvolutionFwdAlgo_t)p->algo, c->workspace.p, p->ws_bytes,
                                       &zero, p->y, acc));
    if (p->bf16)
        k_fwd_epilogue<bf16><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, (const bf16 *)acc, b,
                                                                        residual, relu, y);
    else
        k_fwd_epilogue<float><<<blocks_for(ny), THREADS, 0, c->stream>>>(ny, s->out_c, y, b, residual, relu, y);
    cudaCheckLaunch();
}

static int backward_data_operands(CudaCtx *c, ConvPlan *p, const float *dy, const float *w, float *dx,
                                  const void **dyin, const void **wk, void **acc) {
    const ConvShape *s = &p->s;
    for (;;) {
        int bf = p->bf16;
        if (bf && cuda_grow(c, &c->ys, in_numel(s) * 2)) return -1;
        *dyin = conv_grad(c, s, bf, dy, &c->xs);
        *wk = *dyin ? conv_weights(c, s, bf, w) : NULL;
        *acc = bf ? c->ys.p : (void *)dx;
        if (!*wk) return -1;
        int r = cuda_plan_choose(c, p, *wk, *dyin, *acc);
        if (r <= 0) return r;
    }
}

void cuda_conv_backward_data(void *ctx, const ConvShape *s, const float *dy, const float *w,
                             const float *mask, float *dx) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_BWD_DATA, s);
    const void *dyin, *wk;
    void *acc;
    if (!p || backward_data_operands(c, p, dy, w, dx, &dyin, &wk, &acc)) return;
    size_t nx = in_numel(s);
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionBackwardData(c->cudnn, &one, p->w, wk, p->y, dyin, p->conv,
                                            (cudnnConvolutionBwdDataAlgo_t)p->algo, c->workspace.p,
                                            p->ws_bytes, &zero, p->x, acc));
    if (p->bf16)
        k_mask_epilogue<bf16><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, (const bf16 *)acc, mask, dx);
    else if (mask)
        k_mask_epilogue<float><<<blocks_for(nx), THREADS, 0, c->stream>>>(nx, dx, mask, dx);
    cudaCheckLaunch();
}

/* the bias gradient's partial sums: up to 1024 blocks of at least 64 rows */
static size_t bias_blocks(const ConvShape *s, size_t *rows, size_t *per) {
    *rows = (size_t)s->n * s->out_h * s->out_w;
    size_t nblk = (*rows + 63) / 64;
    if (nblk > 1024) nblk = 1024;
    *per = (*rows + nblk - 1) / nblk;
    return (*rows + *per - 1) / *per;
}

static int backward_filter_operands(CudaCtx *c, ConvPlan *p, Layout lay, const float *x, const float *dy,
                                    size_t nblk, const void **xin, const void **dyin) {
    const ConvShape *s = &p->s;
    for (;;) {
        int bf = p->bf16;
        if (cuda_grow(c, &c->dws, w_numel(s) * (bf ? 2 : 4)) ||
            cuda_grow(c, &c->partial, nblk * s->out_c * sizeof(float)) ||
            (bf && cuda_grow(c, &c->ys, out_numel(s) * 2)))
            return -1;
        *xin = conv_input(c, s, bf, lay, x);
        *dyin = *xin ? conv_grad(c, s, bf, dy, &c->ys) : NULL;
        if (!*dyin) return -1;
        int r = cuda_plan_choose(c, p, *xin, *dyin, c->dws.p);
        if (r <= 0) return r;
    }
}

void cuda_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                               const float *dy, float *dw, float *db) {
    CudaCtx *c = (CudaCtx *)ctx;
    ConvPlan *p = get_plan(c, PASS_BWD_FILTER, s);
    size_t rows, per, nblk = bias_blocks(s, &rows, &per), nw = w_numel(s);
    const void *xin, *dyin;
    if (!p || backward_filter_operands(c, p, lay, x, dy, nblk, &xin, &dyin)) return;
    const float one = 1.0f, zero = 0.0f;
    cudnnCheck(cudnnConvolutionBackwardFilter(c->cudnn, &one, p->x, xin, p->y, dyin, p->conv,
                                              (cudnnConvolutionBwdFilterAlgo_t)p->algo, c->workspace.p,
                                              p->ws_bytes, &zero, p->w, c->dws.p));
    if (p->bf16)
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

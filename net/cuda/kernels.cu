/* The CUDA backend's own kernels for every op but the convolutions: ReLU backward,
 * pools, the linear head, L1 loss, Adam, the finiteness check and input preprocessing.
 * All run on CudaCtx.stream and are graph-capturable (no allocation, no
 * synchronisation). Every reduction adds in a fixed order, so results repeat bitwise
 * from run to run; the semantics are those of net/cpu/eltwise.c, rule for rule. */
#include <cuda_fp16.h>
#include <math.h>

#include "cuda_internal.h"
/* the reader's per-pixel preprocessing, the one definition (plain C, no dependency): the
 * only file of data/ that net/ includes */
#include "prep_pixel.h"

#define THREADS 256
#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static unsigned blocks_for(size_t n) { return cuda_blocks(n, THREADS); }

/* ---- ReLU backward ---- */

__global__ void k_relu_backward(size_t n, const float *y, const float *dy, const float *addend,
                                float *dx) {
    GRID_STRIDE(i, n) {
        float yi = y[i];
        if (addend)
            dx[i] = yi <= 0.0f ? 0.0f : dy[i] + addend[i];
        else
            dx[i] = yi <= 0.0f ? 0.0f : dy[i];
    }
}

void cuda_relu_backward(void *ctx, size_t n, const float *y, const float *dy, const float *addend,
                        float *dx) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!n) return;
    k_relu_backward<<<blocks_for(n), THREADS, 0, c->stream>>>(n, y, dy, addend, dx);
    cudaCheckLaunch();
}

/* ---- max pools: first maximum in row-major order wins, a NaN always takes over ---- */

__device__ inline int takes_max(float v, float best) { return v > best || isnan(v); }

__global__ void k_maxpool_fwd(size_t total, int c, int h, int w, const float *x, float *y,
                              int32_t *idx) {
    int oh = h / 2, ow = w / 2;
    GRID_STRIDE(o, total) {
        size_t ch = o % c, q = (o / c) % ow, r = (o / ((size_t)c * ow)) % oh;
        size_t i = o / ((size_t)c * ow * oh);
        const float *xi = x + i * (size_t)h * w * c;
        int32_t best_at = (int32_t)(((2 * r) * w + 2 * q) * c + ch);
        float best = -INFINITY;
        for (int dr = 0; dr < 2; dr++)
            for (int dq = 0; dq < 2; dq++) {
                int32_t at = (int32_t)(((2 * r + dr) * w + 2 * q + dq) * c + ch);
                if (takes_max(xi[at], best)) {
                    best = xi[at];
                    best_at = at;
                }
            }
        y[o] = best;
        idx[o] = best_at;
    }
}

void cuda_maxpool2x2_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                             int32_t *idx) {
    CudaCtx *cx = (CudaCtx *)ctx;
    size_t total = (size_t)n * (h / 2) * (w / 2) * c;
    if (!total) return;
    k_maxpool_fwd<<<blocks_for(total), THREADS, 0, cx->stream>>>(total, c, h, w, x, y, idx);
    cudaCheckLaunch();
}

/* one thread per element of dx: the gradient of its window's output if it won, else 0 */
__global__ void k_maxpool_bwd(size_t total, int c, int h, int w, const float *dy,
                              const int32_t *idx, float *dx) {
    int oh = h / 2, ow = w / 2;
    GRID_STRIDE(e, total) {
        size_t ch = e % c, ww = (e / c) % w, hh = (e / ((size_t)c * w)) % h;
        size_t i = e / ((size_t)c * w * h);
        size_t r = hh / 2, q = ww / 2;
        float v = 0.0f;
        if ((int)r < oh && (int)q < ow) {
            size_t o = ((i * oh + r) * ow + q) * c + ch;
            if ((size_t)idx[o] == (hh * w + ww) * c + ch) v = dy[o];
        }
        dx[e] = v;
    }
}

void cuda_maxpool2x2_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                              const int32_t *idx, float *dx) {
    CudaCtx *cx = (CudaCtx *)ctx;
    size_t total = (size_t)n * h * w * c;
    if (!total) return;
    k_maxpool_bwd<<<blocks_for(total), THREADS, 0, cx->stream>>>(total, c, h, w, dy, idx, dx);
    cudaCheckLaunch();
}

/* The rule of a sequential scan (the last NaN, else the first maximum) as a merge that
 * does not depend on the order partial results meet in. */
__device__ inline void merge_max(float &bv, int &bi, float v, int p) {
    bool vn = isnan(v), bn = isnan(bv);
    if (vn && bn) {
        if (p > bi) bv = v, bi = p;
    } else if (vn) {
        bv = v, bi = p;
    } else if (!bn && (v > bv || (v == bv && p < bi))) {
        bv = v, bi = p;
    }
}

/* One block per sample: threads are (part, channel) pairs; part k scans positions k,
 * k + parts, ...; then the parts merge. */
__global__ void k_global_max_fwd(int c, int hw, const float *x, float *y, int ldy, int32_t *idx) {
    __shared__ float sv[THREADS];
    __shared__ int si[THREADS];
    int cb = c < THREADS ? c : THREADS, parts = THREADS / cb;
    int t = threadIdx.x, part = t / cb, c0 = t % cb;
    size_t i = blockIdx.x;
    const float *xi = x + i * (size_t)hw * c;
    for (int base = 0; base < c; base += cb) {
        int ch = base + c0;
        float bv = -INFINITY;
        int bi = 0x7fffffff;
        if (part < parts && ch < c)
            for (int p = part; p < hw; p += parts) merge_max(bv, bi, xi[(size_t)p * c + ch], p);
        sv[t] = bv;
        si[t] = bi;
        __syncthreads();
        if (t < cb && base + t < c) {
            for (int k = 1; k < parts; k++) merge_max(bv, bi, sv[k * cb + t], si[k * cb + t]);
            y[i * ldy + base + t] = bv;
            idx[i * c + base + t] = bi;
        }
        __syncthreads();
    }
}

void cuda_global_maxpool_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                 int ldy, int32_t *idx) {
    CudaCtx *cx = (CudaCtx *)ctx;
    if (n <= 0 || c <= 0) return;
    k_global_max_fwd<<<n, THREADS, 0, cx->stream>>>(c, h * w, x, y, ldy, idx);
    cudaCheckLaunch();
}

__global__ void k_global_max_bwd(size_t total, int c, int hw, const float *dy, int ldy,
                                 const int32_t *idx, float *dx) {
    GRID_STRIDE(e, total) {
        size_t ch = e % c, p = (e / c) % hw, i = e / ((size_t)c * hw);
        dx[e] = (size_t)idx[i * c + ch] == p ? dy[i * ldy + ch] : 0.0f;
    }
}

void cuda_global_maxpool_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                                  int ldy, const int32_t *idx, float *dx) {
    CudaCtx *cx = (CudaCtx *)ctx;
    size_t total = (size_t)n * h * w * c;
    if (!total) return;
    k_global_max_bwd<<<blocks_for(total), THREADS, 0, cx->stream>>>(total, c, h * w, dy, ldy, idx, dx);
    cudaCheckLaunch();
}

/* ---- linear head: y = x w^T + b (tiny: 34 -> 1 in ResNet-15) ---- */

__global__ void k_linear_fwd(int n, int in, int out, const float *x, const float *w,
                             const float *b, float *y) {
    GRID_STRIDE(e, (size_t)n * out) {
        size_t i = e / out, o = e % out;
        float acc = 0.0f;
        for (int k = 0; k < in; k++) acc += x[i * in + k] * w[o * in + k];
        y[e] = b[o] + acc;
    }
}

void cuda_linear_forward(void *ctx, int n, int in, int out, const float *x, const float *w,
                         const float *b, float *y) {
    CudaCtx *c = (CudaCtx *)ctx;
    size_t total = (size_t)n * out;
    if (!total) return;
    k_linear_fwd<<<blocks_for(total), THREADS, 0, c->stream>>>(n, in, out, x, w, b, y);
    cudaCheckLaunch();
}

__global__ void k_linear_dx(int n, int in, int out, const float *dy, const float *w, float *dx) {
    GRID_STRIDE(e, (size_t)n * in) {
        size_t i = e / in, k = e % in;
        float acc = 0.0f;
        for (int o = 0; o < out; o++) acc += dy[i * out + o] * w[(size_t)o * in + k];
        dx[e] = acc;
    }
}

/* One block per weight (o, k) and per bias o: a sum over the batch, strided per thread
 * and then a fixed tree. */
__global__ void k_linear_dw(int n, int in, int out, const float *x, const float *dy, float *dw,
                            float *db) {
    __shared__ float sh[THREADS];
    int b = blockIdx.x, is_bias = b >= out * in;
    int o = is_bias ? b - out * in : b / in, k = is_bias ? 0 : b % in;
    float acc = 0.0f;
    for (int i = threadIdx.x; i < n; i += THREADS)
        acc += dy[(size_t)i * out + o] * (is_bias ? 1.0f : x[(size_t)i * in + k]);
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s /= 2) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        if (is_bias)
            db[o] = sh[0];
        else
            dw[b] = sh[0];
    }
}

void cuda_linear_backward(void *ctx, int n, int in, int out, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (dx && n > 0) {
        k_linear_dx<<<blocks_for((size_t)n * in), THREADS, 0, c->stream>>>(n, in, out, dy, w, dx);
        cudaCheckLaunch();
    }
    k_linear_dw<<<out * in + out, THREADS, 0, c->stream>>>(n, in, out, x, dy, dw, db);
    cudaCheckLaunch();
}

/* The one-block loss kernels' end: the sum of every thread's acc over n into *loss, in
 * double, in a fixed order (the same value every run). Every thread of the block calls it. */
static __device__ void block_mean_to(float *loss, double acc, int n) {
    __shared__ double sh[THREADS];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s /= 2) {
        if ((int)threadIdx.x < s) sh[threadIdx.x] += sh[threadIdx.x + s];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss = (float)(sh[0] / n);
}

/* ---- L1 loss: one block, double accumulation as the CPU ---- */

__global__ void k_l1_loss(int n, const float *pred, const float *target, const float *weight,
                          float *loss, float *dpred) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < n; i += THREADS) {
        float d = pred[i] - target[i], wi = weight ? weight[i] : 1.0f;
        acc += (double)wi * fabsf(d);
        float sign = d > 0.0f ? 1.0f : d < 0.0f ? -1.0f : d;  /* NaN stays NaN, sign(0) = 0 */
        dpred[i] = wi * sign / (float)n;
    }
    block_mean_to(loss, acc, n);
}

void cuda_l1_loss(void *ctx, int n, const float *pred, const float *target, const float *weight,
                  float *loss, float *dpred) {
    CudaCtx *c = (CudaCtx *)ctx;
    k_l1_loss<<<1, THREADS, 0, c->stream>>>(n, pred, target, weight, loss, dpred);
    cudaCheckLaunch();
}

/* ---- BCE with logits: one block, each term in double as the CPU (net/cpu/eltwise.c) ---- */

__global__ void k_bce_logits_loss(int n, const float *logit, const float *target, const float *weight,
                                  float *loss, float *dlogit) {
    double acc = 0.0;
    for (int i = threadIdx.x; i < n; i += THREADS) {
        double x = logit[i], t = target[i], wi = weight ? weight[i] : 1.0;
        double e = exp(-fabs(x)), sig = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
        acc += wi * ((x > 0 ? x : 0.0) - x * t + log1p(e));
        dlogit[i] = (float)(wi * (sig - t) / n);
    }
    block_mean_to(loss, acc, n);
}

void cuda_bce_logits_loss(void *ctx, int n, const float *logit, const float *target, const float *weight,
                          float *loss, float *dlogit) {
    CudaCtx *c = (CudaCtx *)ctx;
    k_bce_logits_loss<<<1, THREADS, 0, c->stream>>>(n, logit, target, weight, loss, dlogit);
    cudaCheckLaunch();
}

/* ---- Adam: net/cpu/eltwise.c's update, operation for operation. The _rn intrinsics
 * keep nvcc from contracting into FMAs, so each rounding is the CPU's. ---- */

__global__ void k_adam(size_t n, float *p, const float *g, float *m, float *v, float b1, float b2,
                       float one_m_b1, float one_m_b2, float eps, float wd, float step_size,
                       float bc2_sqrt) {
    GRID_STRIDE(i, n) {
        float pi = p[i];
        float gi = wd != 0.0f ? __fadd_rn(g[i], __fmul_rn(wd, pi)) : g[i];
        float mi = __fadd_rn(__fmul_rn(m[i], b1), __fmul_rn(one_m_b1, gi));
        float vi = __fadd_rn(__fmul_rn(v[i], b2), __fmul_rn(__fmul_rn(one_m_b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fsub_rn(pi, __fdiv_rn(__fmul_rn(step_size, mi), den));
    }
}

void cuda_adam_update(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                      const AdamFactors *k) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!n) return;
    k_adam<<<blocks_for(n), THREADS, 0, c->stream>>>(n, p, g, m, v, k->beta1, k->beta2,
                                                     k->one_minus_beta1, k->one_minus_beta2,
                                                     k->eps, k->weight_decay, k->step_size,
                                                     k->bias2_sqrt);
    cudaCheckLaunch();
}

/* ---- gradient accumulation: y = (y + x) * scale, rounded as the CPU's ---- */

__global__ void k_add_scale(size_t n, const float *x, float *y, float scale) {
    GRID_STRIDE(i, n) { y[i] = __fmul_rn(__fadd_rn(y[i], x[i]), scale); }
}

void cuda_add_scale(void *ctx, size_t n, const float *x, float *y, float scale) {
    CudaCtx *c = (CudaCtx *)ctx;
    if (!n) return;
    k_add_scale<<<blocks_for(n), THREADS, 0, c->stream>>>(n, x, y, scale);
    cudaCheckLaunch();
}

/* ---- finiteness: out was zeroed; any thread that sees a NaN or Inf writes 1 ---- */

__global__ void k_nonfinite(size_t n, const float *x, float *out) {
    GRID_STRIDE(i, n) {
        if (!isfinite(x[i])) *out = 1.0f;
    }
}

void cuda_nonfinite_check(void *ctx, size_t n, const float *x, float *out) {
    CudaCtx *c = (CudaCtx *)ctx;
    cudaCheck(cudaMemsetAsync(out, 0, sizeof(float), c->stream));
    if (!n) return;
    k_nonfinite<<<blocks_for(n), THREADS, 0, c->stream>>>(n, x, out);
    cudaCheckLaunch();
}

/* ---- input preprocessing (raw float32 or binary16 pixels, NCHW) ---- */

typedef struct {
    float s[OPS_PREP_MAX_CHANNELS];      /* 1 / scale */
    unsigned char kind[OPS_PREP_MAX_CHANNELS]; /* ChannelKind */
} Scales;

__global__ void k_prep(size_t total, int c, size_t hw, const void *raw, int half, int scaled,
                       Scales sc, float threshold, float *x) {
    GRID_STRIDE(i, total) {
        float v = half ? __half2float(((const __half *)raw)[i]) : ((const float *)raw)[i];
        if (scaled) {
            int ch = (int)((i / hw) % c);
            v = prep_pixel(v, sc.s[ch], sc.kind[ch], threshold);
        }
        x[i] = v;
    }
}

void cuda_prep_input(void *ctx, int n, int c, size_t hw, const void *raw, int raw_half,
                     const float *scale, const unsigned char *kind, float threshold, float *x) {
    CudaCtx *cx = (CudaCtx *)ctx;
    size_t total = (size_t)n * c * hw;
    if (!total) return;
    if (!raw_half && !scale) {  /* a plain copy */
        if (raw != x)
            cudaCheck(cudaMemcpyAsync(x, raw, total * sizeof(float), cudaMemcpyDeviceToDevice, cx->stream));
        return;
    }
    Scales sc = {};
    if (scale)
        for (int ch = 0; ch < c && ch < OPS_PREP_MAX_CHANNELS; ch++) {
            sc.s[ch] = scale[ch];
            sc.kind[ch] = kind ? kind[ch] : (unsigned char)CHANNEL_ENERGY;
        }
    k_prep<<<blocks_for(total), THREADS, 0, cx->stream>>>(total, c, hw, raw, raw_half, scale != NULL,
                                                          sc, threshold, x);
    cudaCheckLaunch();
}

/* ---- sparse input: a batch's non-zero pixels scattered into its zeroed NCHW images ---- */

/* a block a plane (grid-stride over the planes), its threads over the plane's entries:
 * the entries of a plane are contiguous, and their positions differ, so no two threads
 * write one pixel */
template <typename P>
__global__ void k_densify(int planes, size_t hw, const uint32_t *plane_start, const P *pos, const void *value,
                          int half, float *x) {
    for (int p = blockIdx.x; p < planes; p += gridDim.x) {
        float *plane = x + (size_t)p * hw;
        for (uint32_t e = plane_start[p] + threadIdx.x; e < plane_start[p + 1]; e += blockDim.x)
            plane[pos[e]] = half ? __half2float(((const __half *)value)[e]) : ((const float *)value)[e];
    }
}

void cuda_densify_input(void *ctx, int n, int c, size_t hw, const uint32_t *plane_start, const void *pos,
                        int pos_bytes, const void *value, int value_half, float *x) {
    CudaCtx *cx = (CudaCtx *)ctx;
    const int planes = n * c;
    if (!planes) return;
    cudaCheck(cudaMemsetAsync(x, 0, (size_t)planes * hw * sizeof(float), cx->stream));
    const int blocks = planes < 65535 ? planes : 65535;
    if (pos_bytes == 2)
        k_densify<uint16_t><<<blocks, THREADS, 0, cx->stream>>>(planes, hw, plane_start, (const uint16_t *)pos, value,
                                                                value_half, x);
    else
        k_densify<uint32_t><<<blocks, THREADS, 0, cx->stream>>>(planes, hw, plane_start, (const uint32_t *)pos, value,
                                                                value_half, x);
    cudaCheckLaunch();
}

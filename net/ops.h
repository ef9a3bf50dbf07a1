/* The op interface: everything the model graph (net/resnet15.c), the staging of host
 * batches (net/batch_staging.c) and the optimizer (net/adam.c) ask of a backend.
 * net/cpu/ and net/cuda/ each fill one NetOps: the required members, and the members of the
 * capabilities they declare.
 *
 * Conventions shared by every backend (the GPU tests compare backends op by op):
 *  - every pointer passed to an op lives in the backend's memory (host memory for
 *    the CPU backend, device memory for CUDA), allocated with ops->alloc;
 *  - activations and their gradients are NHWC, float32 (bf16 on a backend that declares
 *    OPS_BF16_ACTIVATIONS, below);
 *  - weights are PyTorch's OIHW (out, in, kh, kw) as stored in the parameter arena;
 *    a backend repacks them internally if its kernels want another order;
 *  - gradient-producing ops overwrite their outputs (no accumulation): every
 *    parameter is used once in ResNet-15, so the arena needs no zeroing per step;
 *  - ops run in stream order; results are visible to the host after download (which
 *    waits for them) or sync.
 * Argument checking happens once, at the model API (net/model.h); ops trust it. */
#ifndef E2E_NET_OPS_H
#define E2E_NET_OPS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LAYOUT_NHWC = 0, LAYOUT_NCHW = 1 } Layout;

/* Geometry of one 2-D convolution with bias. */
typedef struct {
    int n;                    /* batch */
    int in_c, in_h, in_w;
    int out_c, out_h, out_w;  /* out = (in + 2 pad - k) / stride + 1 */
    int k_h, k_w, stride, pad;
} ConvShape;

enum { OPS_GRAPH_DIRECT = 0, OPS_GRAPH_RECORDING = 1, OPS_GRAPH_REPLAYED = 2 };
#define OPS_PREP_MAX_CHANNELS 64

/* The factors of one Adam update (net/adam.c computes them as PyTorch does: Python
 * floats, i.e. double, rounded to float when they meet the tensors), so that every
 * backend's update rounds alike. */
typedef struct {
    float beta1, beta2, eps, weight_decay;
    float one_minus_beta1, one_minus_beta2;
    float step_size;     /* lr / (1 - beta1^step) */
    float bias2_sqrt;    /* sqrt(1 - beta2^step) */
} AdamFactors;

/* What a backend offers beyond the required members: the set it declares in
 * NetOps.caps. Each capability names the members it brings; a backend that does not
 * declare one leaves them NULL, and no caller looks at them (callers ask ops_can). */
enum {
    OPS_HOST_MEMORY = 1 << 0,  /* backend memory is host memory: ops read host batches in
                                  place, upload/download are copies */
    OPS_STREAM = 1 << 1,       /* stream: the ops' stream, for a collective that must join
                                  it (NCCL in dist/) */
    OPS_PINNED_HOST = 1 << 2,  /* alloc_host, release_host */
    OPS_ASYNC_UPLOAD = 1 << 3, /* mark, upload_async */
    OPS_PREP_INPUT = 1 << 4,   /* prep_input */
    OPS_GRAPHS = 1 << 5,       /* graph_begin, graph_end */
    OPS_CONV_PREPARE = 1 << 6, /* conv2d_prepare */
    OPS_SPARSE_INPUT = 1 << 7, /* densify_input */
    /* No member: the backend computes in bf16 (the CPU's bf16 mode, net/README.md) and
     * keeps activations and their gradients as bf16 (2 bytes each) in the buffers the
     * graph allocates as floats: every tensor the convolutions, relu_backward and the
     * max-pools exchange (conv2d_* x, but for the network's NCHW input, residual, y, dy,
     * mask, dx; the pools' x, y, dy, dx), but the global max-pool's y and dy (the pooled
     * features the linear head reads) and everything else (input, weights and their
     * gradients, linear, loss, Adam) stay float32. The graph never reads those buffers
     * itself, so it runs unchanged; anything else that reads them must look. */
    OPS_BF16_ACTIVATIONS = 1 << 8,
};

typedef struct NetOps NetOps;
struct NetOps {
    const char *name;   /* "cpu" or "cuda" */
    void *ctx;          /* backend state: threads, handles, workspaces, streams */
    unsigned caps;      /* the OPS_* capabilities this backend declares */

    /* memory (bytes; alloc returns zeroed memory aligned to 256 bytes, or NULL) */
    void *(*alloc)(void *ctx, size_t bytes);
    void (*release)(void *ctx, void *p);
    void (*upload)(void *ctx, void *dst, const void *host_src, size_t bytes);
    void (*download)(void *ctx, void *host_dst, const void *src, size_t bytes);
    /* waits for every op enqueued so far (timing tools: net/ops_profile.c, benchmarks) */
    void (*sync)(void *ctx);
    /* dst[r * ld_dst + c] = src[r * ld_src + c] for r < rows, c < cols */
    void (*copy2d)(void *ctx, float *dst, size_t ld_dst, const float *src, size_t ld_src,
                   size_t rows, size_t cols);

    /* y = act(conv(x, w) + b [+ residual]); act = ReLU when relu != 0; residual
     * (NULL for none) has y's shape. x is NHWC or, for the network's input, NCHW. */
    void (*conv2d_forward)(void *ctx, const ConvShape *s, Layout x_layout, const float *x,
                           const float *w, const float *b, const float *residual, int relu,
                           float *y);
    /* dx = d(loss)/dx from dy (both NHWC); when mask is not NULL (an earlier ReLU's
     * output, shaped like dx), dx is zeroed where mask <= 0: the ReLU's backward fused. */
    void (*conv2d_backward_data)(void *ctx, const ConvShape *s, const float *dy,
                                 const float *w, const float *mask, float *dx);
    /* dw (OIHW) and db, summed over the batch */
    void (*conv2d_backward_filter)(void *ctx, const ConvShape *s, Layout x_layout,
                                   const float *x, const float *dy, float *dw, float *db);

    /* dx = y > 0 ? dy + addend : 0, with y the ReLU's output (PyTorch's threshold
     * backward: a NaN in y lets the gradient through); addend may be NULL (none); dx may
     * alias dy or addend. The residual blocks' add and ReLU backward in one pass. */
    void (*relu_backward)(void *ctx, size_t n, const float *y, const float *dy,
                          const float *addend, float *dx);

    /* 2x2 stride-2 max pool (floor), NHWC. idx[j] is the offset of output j's winner in
     * x (first maximum in row-major window order, as PyTorch). backward writes all of dx. */
    void (*maxpool2x2_forward)(void *ctx, int n, int c, int h, int w, const float *x,
                               float *y, int32_t *idx);
    void (*maxpool2x2_backward)(void *ctx, int n, int c, int h, int w, const float *dy,
                                const int32_t *idx, float *dx);
    /* y[i * ldy + ch] = max over (h, w) of x[i, :, :, ch]; idx[i * c + ch] = winning
     * row-major (h, w) offset (first maximum, as PyTorch's AdaptiveMaxPool2d);
     * backward writes all of dx (zero but at the winners). */
    void (*global_maxpool_forward)(void *ctx, int n, int c, int h, int w, const float *x,
                                   float *y, int ldy, int32_t *idx);
    void (*global_maxpool_backward)(void *ctx, int n, int c, int h, int w, const float *dy,
                                    int ldy, const int32_t *idx, float *dx);

    /* y[n, out] = x[n, in] w^T + b, w is (out, in) as nn.Linear */
    void (*linear_forward)(void *ctx, int n, int in, int out, const float *x, const float *w,
                           const float *b, float *y);
    /* dx (may be NULL), dw, db from dy */
    void (*linear_backward)(void *ctx, int n, int in, int out, const float *x, const float *w,
                            const float *dy, float *dx, float *dw, float *db);

    /* *loss = sum_i w_i |pred_i - target_i| / n (w_i = 1 when weight is NULL) and
     * dpred_i = w_i sign(pred_i - target_i) / n, sign(0) = 0 as PyTorch. loss is one
     * float in backend memory. */
    void (*l1_loss)(void *ctx, int n, const float *pred, const float *target,
                    const float *weight, float *loss, float *dpred);
    /* Binary cross-entropy on logits, PyTorch's BCEWithLogitsLoss (weight per sample, mean
     * over the batch), stable for any logit x: *loss = sum_i w_i (max(x_i, 0) - x_i t_i +
     * log(1 + exp(-|x_i|))) / n and dlogit_i = w_i (sigmoid(x_i) - t_i) / n (w_i = 1 when
     * weight is NULL), each term in double. loss is one float in backend memory. */
    void (*bce_logits_loss)(void *ctx, int n, const float *logit, const float *target,
                            const float *weight, float *loss, float *dlogit);

    /* One Adam update of n parameters (PyTorch semantics, bias-corrected) with the
     * step's factors. */
    void (*adam_update)(void *ctx, size_t n, float *param, const float *grad, float *m,
                        float *v, const AdamFactors *k);

    /* y = (y + x) * scale over n floats: gradient accumulation over micro-batches (the
     * model's sum, then the mean; net/model.h model_accumulate_grads). */
    void (*add_scale)(void *ctx, size_t n, const float *x, float *y, float scale);

    /* Fills out[0] with 1 when any of x[0..n) is NaN or Inf, else 0 (out in backend memory). */
    void (*nonfinite_check)(void *ctx, size_t n, const float *x, float *out);

    void (*destroy)(NetOps *self);

    /* ---- Members of the capabilities (caps); NULL where not declared. ---- */

    /* OPS_STREAM: the stream the ops run on (a cudaStream_t). */
    void *(*stream)(void *ctx);

    /* OPS_CONV_PREPARE: called by model_create once per convolution of the graph
     * (ConvShape.n = the model's max_batch, x_layout as in its forward), before any op
     * runs, so that the backend can choose its kernels for the shape (the CPU backend's
     * convolution engines, net/README.md). */
    void (*conv2d_prepare)(void *ctx, const ConvShape *s, Layout x_layout);

    /* OPS_PINNED_HOST: page-locked host memory (uploads from it need no bounce copy), e.g. for the data
     * reader's batch buffers. NULL on failure; free with release_host. */
    void *(*alloc_host)(void *ctx, size_t bytes);
    void (*release_host)(void *ctx, void *p);

    /* OPS_ASYNC_UPLOAD: input copies that overlap the ops already enqueued. mark records "every op enqueued
     * so far"; upload_async copies host_src into dst on a separate copy stream once the
     * ops before the last mark are done (at once if there was none), and ops enqueued
     * after it wait for the copy. It returns when host_src may be reused. So dst must be
     * a buffer that only ops before the last mark read (a staging buffer). */
    void (*mark)(void *ctx);
    void (*upload_async)(void *ctx, void *dst, const void *host_src, size_t bytes);

    /* OPS_PREP_INPUT: the network's input from raw pixels: x[i] = raw[i] as float (raw is IEEE binary16
     * when raw_half, else float32), then, when scale is not NULL, the reader's per-pixel
     * preprocessing (net/base/prep_pixel.h, the one definition): v = scale[ch] * v, v = 0 where
     * |v| < threshold (NaN too), then clipped to [0, 1] where kind[ch] is 0 (energy-like)
     * or to [-1, 1] where it is 1 (signed; kind NULL: every channel energy-like). raw and
     * x are (n, c, hw) NCHW in backend memory and may be the same buffer; scale and kind
     * are c entries in HOST memory, read during the call (c <= OPS_PREP_MAX_CHANNELS). */
    void (*prep_input)(void *ctx, int n, int c, size_t hw, const void *raw, int raw_half,
                       const float *scale, const unsigned char *kind, float threshold, float *x);

    /* OPS_SPARSE_INPUT: the network's input from a batch's non-zero pixels (SparseImages of
     * model.h): x (n, c, hw) NCHW float32 becomes 0, then x[p * hw + pos[e]] = value[e] as
     * float for every plane p < n * c and entry e in [plane_start[p], plane_start[p + 1]).
     * pos is uint16 (pos_bytes 2) or uint32; value is IEEE binary16 when value_half, else
     * float32. Every pointer in backend memory. No preprocessing: prep_input on x follows. */
    void (*densify_input)(void *ctx, int n, int c, size_t hw, const uint32_t *plane_start,
                          const void *pos, int pos_bytes, const void *value, int value_half,
                          float *x);

    /* OPS_GRAPHS: recording a sequence of ops once and replaying it (CUDA graphs). graph_begin(ctx,
     * key) answers OPS_GRAPH_DIRECT (run the ops; graph_end does nothing),
     * OPS_GRAPH_RECORDING (run the ops: they are recorded, not executed, until graph_end,
     * which then enqueues the recording) or OPS_GRAPH_REPLAYED (the recording for key is
     * enqueued: do not run the ops). The same key must mean the same ops on the same
     * buffers. graph_end returns 0, or -1 with e2e_error() when recording failed (the
     * ops did not run). pass_failed != 0: the caller's side of the recorded pass failed,
     * so the recording is incomplete: it is dropped (nothing runs, nothing is kept for
     * the key) and graph_end returns 0. */
    int (*graph_begin)(void *ctx, uint64_t key);
    int (*graph_end)(void *ctx, int pass_failed);
};

/* 1 when the backend declares every capability in cap. */
static inline int ops_can(const NetOps *o, unsigned cap) { return (o->caps & cap) == cap; }

#ifdef __cplusplus
extern "C" {
#endif
/* 0 when every required member is set and every declared capability's members are;
 * else -1 with a message naming the backend and the missing member (e2e_error()). */
int ops_check(const NetOps *o);
#ifdef __cplusplus
}
#endif

#endif

/* Shared state of the CUDA backend's files: the context, checked-call macros, and the
 * functions each file gives the others. */
#ifndef E2E_NET_CUDA_INTERNAL_H
#define E2E_NET_CUDA_INTERNAL_H

#include <cuda_runtime.h>
#include <cudnn.h>
#include <stddef.h>
#include <stdint.h>

#include "../ops.h"

/* A failed CUDA or cuDNN call inside an op (capture_guard.cu): the ops return nothing,
 * so the process stops with the call, file and line (as llm.c does); MPI then ends the
 * other ranks. Except while this thread records a CUDA graph: then the call only fails
 * the recording (calls during a capture enqueue, they run nothing) and returns;
 * graph_end reports it and model_train_pass runs the pass directly. */
void cuda_die(const char *file, int line, const char *what, const char *msg);
#define cudaCheck(call)                                                              \
    do {                                                                             \
        cudaError_t e_ = (call);                                                     \
        if (e_ != cudaSuccess) cuda_die(__FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    } while (0)
#define cudnnCheck(call)                                                             \
    do {                                                                             \
        cudnnStatus_t s_ = (call);                                                   \
        if (s_ != CUDNN_STATUS_SUCCESS) cuda_die(__FILE__, __LINE__, #call, cudnnGetErrorString(s_)); \
    } while (0)
/* after every kernel launch */
#define cudaCheckLaunch() cudaCheck(cudaGetLastError())

typedef enum { PREC_FP32 = 0, PREC_TF32 = 1, PREC_BF16 = 2 } Precision;

/* One convolution pass of one shape: its cuDNN descriptors and the algorithm chosen
 * for it (once, on first use, outside graph capture). */
enum { PASS_FWD = 0, PASS_BWD_DATA = 1, PASS_BWD_FILTER = 2 };
typedef struct {
    int pass;
    ConvShape s;                       /* the layout of x plays no part: x is NHWC here */
    cudnnTensorDescriptor_t x, y;      /* NHWC */
    cudnnFilterDescriptor_t w;         /* KRSC ("NHWC" filter) */
    cudnnConvolutionDescriptor_t conv;
    int bf16;                          /* bf16 operands (bf16 mode, when cuDNN has a kernel) */
    int chosen;                        /* algo, ws_bytes and deterministic are set */
    int algo;                          /* a cudnnConvolution{Fwd,BwdData,BwdFilter}Algo_t */
    size_t ws_bytes;
    int deterministic;
    long last_use;                     /* CudaCtx.plan_uses at its last use (the table keeps the latest) */
} ConvPlan;

#define CUDA_MAX_PLANS 128
#define CUDA_MAX_GRAPHS 16
#define CUDA_BOUNCE_SLOTS 4

typedef struct {
    uint64_t key;
    cudaGraphExec_t exec;     /* NULL until recorded */
    unsigned generation;      /* c->generation at recording; stale when it moved on */
    int seen;                 /* passes run for this key so far (the first runs directly) */
    long last_use;
} GraphEntry;

/* A device buffer that only grows (between passes: never while a graph records). */
typedef struct {
    void *p;
    size_t bytes;
} Scratch;

/* A pinned host buffer that uploads copy pageable memory through. */
typedef struct {
    void *p;
    size_t bytes;
    cudaEvent_t done;   /* the copy out of it finished */
} Bounce;

typedef struct {
    int device;
    Precision prec;
    int cc_major, cc_minor;
    cudaStream_t stream;        /* every op */
    cudaStream_t copy_stream;   /* upload_async */
    cudaEvent_t mark_ev;        /* mark(): the point upload_async waits for */
    cudaEvent_t copy_ev;        /* the last upload_async finished */
    cudnnHandle_t cudnn;
    int heuristic_algos;        /* E2E_CUDNN_ALGO=heuristic */
    size_t ws_limit;            /* largest cuDNN workspace an algorithm may ask for */

    ConvPlan plans[CUDA_MAX_PLANS];
    int n_plans;
    long plan_uses;             /* plan look-ups so far: the clock of ConvPlan.last_use */
    long nondeterministic;      /* plans that had to take a non-deterministic algorithm */
    long fp32_fallbacks;        /* bf16 mode: plans cuDNN had no bf16 kernel for */
    long fp32_relaxed;          /* fp32 mode: plans that took a transform or non-FMA algorithm */

    Scratch workspace;   /* cuDNN */
    Scratch xs;          /* x as the convolution reads it: NHWC, and bf16 in bf16 mode */
    Scratch ys;          /* bf16 mode: the convolution's bf16 output (y, dx) or bf16 dy */
    Scratch ws;          /* weights repacked to KRSC (bf16 in bf16 mode) */
    Scratch dws;         /* weight gradient in KRSC, before unpacking into the arena */
    Scratch partial;     /* per-block partial sums of the bias gradient */
    unsigned generation; /* bumped whenever a scratch buffer moves: graphs must re-record */

    Bounce bounce[CUDA_BOUNCE_SLOTS];
    int next_bounce;

    int graphs_on;
    GraphEntry graphs[CUDA_MAX_GRAPHS];
    GraphEntry *recording;      /* the entry being captured, or NULL */
    int capture_error;          /* an op could not run inside the capture (cuda_grow, a
                                   failed call: cuda_die) */
    char capture_msg[512];      /* the first such failure */
    int fail_next_capture;      /* net_cuda_fail_next_capture (tests) */
    long uses;
    long graphs_recorded, graphs_replayed;
} CudaCtx;

/* capture_guard.cu (cuda_die above, cuda_grow below). cuda_set_capturing names the
 * backend whose graph this thread now captures (NULL: none), so that cuda_die fails
 * that capture instead of ending the process. cuda_fail_capture marks the capture under
 * way as failed (the first message is kept for graph_end). */
void cuda_set_capturing(CudaCtx *c);
void cuda_fail_capture(CudaCtx *c, const char *msg);

/* Makes s at least `bytes` (contents are lost). Outside capture it reallocates and bumps
 * the generation; during capture it cannot, and returns -1 after flagging the capture
 * as failed (the caller then skips its op). */
int cuda_grow(CudaCtx *c, Scratch *s, size_t bytes);

/* conv_plan.cu: a plan's descriptors (cuda_plan_init: float operands in bf16 mode where
 * cuDNN's heuristics have no bf16 kernel) and its algorithm, chosen once on the operands
 * a, b and output out (forward: x, w, y; backward data: w, dy, dx; backward filter: x,
 * dy, dw): 0, 1 when the plan moved to float operands (bf16 mode, no bf16 algorithm ran:
 * make the operands again and ask again), -1 inside a capture. */
void cuda_plan_init(CudaCtx *c, ConvPlan *p, int pass, const ConvShape *s);
void cuda_plan_destroy(ConvPlan *p);
int cuda_plan_choose(CudaCtx *c, ConvPlan *p, const void *a, const void *b, void *out);

/* conv.cu */
void cuda_conv_forward(void *ctx, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y);
void cuda_conv_backward_data(void *ctx, const ConvShape *s, const float *dy, const float *w,
                             const float *mask, float *dx);
void cuda_conv_backward_filter(void *ctx, const ConvShape *s, Layout lay, const float *x,
                               const float *dy, float *dw, float *db);
void cuda_plans_destroy(CudaCtx *c);

/* kernels.cu: the other ops, in NetOps' signatures */
void cuda_relu_backward(void *ctx, size_t n, const float *y, const float *dy, const float *addend,
                        float *dx);
void cuda_maxpool2x2_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                             int32_t *idx);
void cuda_maxpool2x2_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                              const int32_t *idx, float *dx);
void cuda_global_maxpool_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                 int ldy, int32_t *idx);
void cuda_global_maxpool_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                                  int ldy, const int32_t *idx, float *dx);
void cuda_linear_forward(void *ctx, int n, int in, int out, const float *x, const float *w,
                         const float *b, float *y);
void cuda_linear_backward(void *ctx, int n, int in, int out, const float *x, const float *w,
                          const float *dy, float *dx, float *dw, float *db);
void cuda_l1_loss(void *ctx, int n, const float *pred, const float *target, const float *weight,
                  float *loss, float *dpred);
void cuda_bce_logits_loss(void *ctx, int n, const float *logit, const float *target, const float *weight,
                          float *loss, float *dlogit);
void cuda_adam_update(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                      const AdamFactors *k);
void cuda_add_scale(void *ctx, size_t n, const float *x, float *y, float scale);
void cuda_nonfinite_check(void *ctx, size_t n, const float *x, float *out);
void cuda_prep_input(void *ctx, int n, int c, size_t hw, const void *raw, int raw_half,
                     const float *scale, const unsigned char *kind, float threshold, float *x);
void cuda_densify_input(void *ctx, int n, int c, size_t hw, const uint32_t *plane_start, const void *pos,
                        int pos_bytes, const void *value, int value_half, float *x);

/* Blocks for a grid-stride loop over n elements. */
static inline unsigned cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    if (b > 65535u * 8u) b = 65535u * 8u;
    return b ? (unsigned)b : 1u;
}

#endif

/* Shared state of the CPU backend's files. */
#ifndef E2E_NET_CPU_INTERNAL_H
#define E2E_NET_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h"

#define CPU_MAX_THREADS 256

/* The three passes of a convolution. */
typedef enum { CONV_FWD = 0, CONV_BWD_DATA = 1, CONV_BWD_FILTER = 2, CONV_OPS = 3 } ConvOp;

struct ConvEngines;

/* Buffers of the bf16 mode (cpu_buffer): the network's input as bf16 NHWC, and our float
 * engines' widened operands (conv_own_bf16.c). */
enum { BUF_INPUT_BF16, BUF_WIDE_X, BUF_WIDE_Y, BUF_WIDE_RESIDUAL, BUF_WIDE_W, CPU_BUFFERS };

typedef struct {
    int threads;
    int direct;                          /* direct convolutions: 512 (AVX-512), 256 (AVX2), 0 none */
    int bf16;                            /* bf16 mode: activations and gradients are bf16 */
    int bf16_emulated;                   /* ... on a CPU without bf16 instructions (E2E_CPU_BF16) */
    int bf16_dot;                        /* the CPU has AVX512-BF16: conv_direct_bf16.c runs */
    struct ConvEngines *engines;         /* the engine of each convolution (conv_engine.c) */
    float *scratch[CPU_MAX_THREADS];     /* per-thread work space */
    size_t scratch_floats[CPU_MAX_THREADS];
    float *shared;                       /* one buffer for repacked weights and partial sums */
    size_t shared_floats;
    void *buf[CPU_BUFFERS];
    size_t buf_bytes[CPU_BUFFERS];
    const float *input_of;               /* the NCHW input that BUF_INPUT_BF16 holds, */
    ConvShape input_shape;               /* and its convolution */
} CpuCtx;

/* Work space (workspace.c). Per-thread scratch of at least n floats (grown on demand;
 * called by thread tid only). */
float *cpu_scratch(CpuCtx *c, int tid, size_t n);
/* The shared buffer of at least n floats (called outside parallel regions). */
float *cpu_shared(CpuCtx *c, size_t n);
/* Inside a parallel region (an orphaned omp for): out[j] = sum over samples of
 * part[n * per + j], added in sample order, for j < per; j >= split goes to tail[j -
 * split] instead (the bias). Results do not depend on the number of threads. */
void cpu_sum_partials(const float *part, int samples, size_t per, size_t split, float *out,
                      float *tail);
/* Buffer `slot` (BUF_*) of at least `bytes`, kept for the backend's life (called
 * outside parallel regions). */
void *cpu_buffer(CpuCtx *c, int slot, size_t bytes);
/* Aborts with the file and line: host allocation failure inside an op. */
void cpu_die(const char *file, int line, const char *what);

/* Convolutions through im2col + OpenBLAS SGEMM: any shape, any x86-64 or other CPU. */
void conv_gemm_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x, const float *w,
                       const float *b, const float *residual, int relu, float *y);
void conv_gemm_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                             const float *mask, float *dx);
void conv_gemm_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                               const float *dy, float *dw, float *db);

/* Direct convolutions (conv_direct.c) at the vector width c->direct; each returns 0
 * when it has done the work and -1 when the shape is not one it handles
 * (conv_direct_fits says which). conv_direct_supported: the widest width this CPU
 * runs them at (512: AVX-512F, 256: AVX2+FMA, 0: none), capped by ONEDNN_MAX_CPU_ISA. */
int conv_direct_supported(void);
static inline int conv_direct_fits(const ConvShape *s, ConvOp op) {
    if (op == CONV_BWD_DATA)  /* 16-channel tiles of dx; the padded-gradient trick */
        return s->in_c % 16 == 0 && s->pad <= s->k_h - 1 && s->pad <= s->k_w - 1;
    return s->out_c % 16 == 0;
}
int conv_direct_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                        const float *w, const float *b, const float *residual, int relu,
                        float *y);
int conv_direct_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                              const float *mask, float *dx);
int conv_direct_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                                const float *dy, float *dw, float *db);

/* The bf16 direct forward and backward filter (conv_direct_bf16.c, AVX512-BF16): NHWC
 * bf16 x, residual, y and dy, float weights, dw, db; 0, or -1 where c->bf16_dot is 0 or
 * the shape is not one they run (_fits: an even input channel count, output channels a
 * multiple of 16). */
int conv_direct_bf16_fits(const ConvShape *s);
int conv_direct_bf16_forward(CpuCtx *c, const ConvShape *s, const uint16_t *x, const float *w, const float *b,
                             const uint16_t *residual, int relu, uint16_t *y);
int conv_direct_bf16_backward_filter(CpuCtx *c, const ConvShape *s, const uint16_t *x, const uint16_t *dy,
                                     float *dw, float *db);

/* Our engines in the bf16 mode (conv_own_bf16.c): the direct kernels (direct = 1) or
 * gemm (0) on widened bf16 operands and bf16-rounded weights, the output narrowed to
 * bf16 (activations NHWC bf16; weights, bias, dw, db float); 0, or -1 where the direct
 * kernels do not run the shape. */
int conv_own_bf16_forward(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *x, const float *w,
                          const float *b, const uint16_t *residual, int relu, uint16_t *y);
int conv_own_bf16_backward_data(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *dy,
                                const float *w, const uint16_t *mask, uint16_t *dx);
int conv_own_bf16_backward_filter(CpuCtx *c, int direct, const ConvShape *s, const uint16_t *x,
                                  const uint16_t *dy, float *dw, float *db);

/* The other ops (eltwise.c), in NetOps' signatures. */
void cpu_relu_backward(void *ctx, size_t n, const float *y, const float *dy, const float *addend,
                       float *dx);
void cpu_maxpool2x2_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                            int32_t *idx);
void cpu_maxpool2x2_backward(void *ctx, int n, int c, int h, int w, const float *dy,
                             const int32_t *idx, float *dx);
void cpu_global_maxpool_forward(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                int ldy, int32_t *idx);
void cpu_global_maxpool_backward(void *ctx, int n, int c, int h, int w, const float *dy, int ldy,
                                 const int32_t *idx, float *dx);
void cpu_linear_forward(void *ctx, int n, int in, int out, const float *x, const float *w,
                        const float *b, float *y);
void cpu_linear_backward(void *ctx, int n, int in, int out, const float *x, const float *w,
                         const float *dy, float *dx, float *dw, float *db);
void cpu_l1_loss(void *ctx, int n, const float *pred, const float *target, const float *weight,
                 float *loss, float *dpred);
void cpu_bce_logits_loss(void *ctx, int n, const float *logit, const float *target, const float *weight,
                         float *loss, float *dlogit);
void cpu_adam_update(void *ctx, size_t n, float *p, const float *g, float *m, float *v,
                     const AdamFactors *k);
void cpu_add_scale(void *ctx, size_t n, const float *x, float *y, float scale);
void cpu_nonfinite_check(void *ctx, size_t n, const float *x, float *out);
void cpu_copy2d(void *ctx, float *dst, size_t ld_dst, const float *src, size_t ld_src,
                size_t rows, size_t cols);

/* The bf16 mode's element-wise ops (eltwise_bf16.c), in NetOps' signatures: activations
 * and their gradients hold bf16; the global max-pool's y and dy are float. */
void cpu_relu_backward_bf16(void *ctx, size_t n, const float *y, const float *dy, const float *addend,
                            float *dx);
void cpu_maxpool2x2_forward_bf16(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                 int32_t *idx);
void cpu_maxpool2x2_backward_bf16(void *ctx, int n, int c, int h, int w, const float *dy,
                                  const int32_t *idx, float *dx);
void cpu_global_maxpool_forward_bf16(void *ctx, int n, int c, int h, int w, const float *x, float *y,
                                     int ldy, int32_t *idx);
void cpu_global_maxpool_backward_bf16(void *ctx, int n, int c, int h, int w, const float *dy, int ldy,
                                      const int32_t *idx, float *dx);
/* dst[i] = src[i] widened (exact), or narrowed (rounded, bf16.h); with a mask, narrowed
 * to 0 where mask[i] <= 0 (a NaN mask lets the value through). cpu_round_bf16: each value
 * rounded to bf16 and widened again (weights as the bf16 mode multiplies them; serial). */
void cpu_widen_bf16(const CpuCtx *c, const uint16_t *src, float *dst, size_t n);
void cpu_narrow_bf16(const CpuCtx *c, const float *src, uint16_t *dst, size_t n, const uint16_t *mask);
void cpu_round_bf16(const float *src, float *dst, size_t n);
/* dx[i] = 0 where mask[i] <= 0 (bf16 both; a NaN mask lets dx through), on threads */
void cpu_mask_bf16(int threads, size_t n, const uint16_t *mask, uint16_t *dx);
/* The network's NCHW float input of convolution s as bf16 NHWC (in BUF_INPUT_BF16). fresh:
 * converted now (forward); else the conversion of the same pointer and shape is reused
 * when there is one (backward filter after its forward: model.h keeps the input as it is
 * until the backward pass). */
const uint16_t *cpu_input_bf16(CpuCtx *c, const ConvShape *s, const float *x, int fresh);

/* Reads x[n][ch][h][w] of either layout (one sample's base pointer). */
static inline float conv_input_at(const float *x, Layout lay, int ch, int h, int w, int C, int H,
                                  int W) {
    return lay == LAYOUT_NHWC ? x[((size_t)h * W + w) * C + ch] : x[((size_t)ch * H + h) * W + w];
}

#endif

/* Convolutions through oneDNN (conv_onednn.c): the library PyTorch's CPU convolutions
 * run on, JIT-compiled at run time for the machine's widest ISA (AVX2, AVX-512, AMX).
 * In a build without oneDNN (conv_onednn_none.c) onednn_create returns NULL and the
 * backend has only its own engines. */
#ifndef E2E_NET_CPU_CONV_ONEDNN_H
#define E2E_NET_CPU_CONV_ONEDNN_H

#include "cpu_internal.h"

typedef struct Onednn Onednn;

/* One CPU engine running on `threads` OpenMP threads, on float or (bf16 = 1) bf16
 * activations (conv_onednn.c); NULL (and e2e_error()) when oneDNN is not in this build
 * or cannot start. */
Onednn *onednn_create(int threads, int bf16);
void onednn_destroy(Onednn *d);
/* "oneDNN 2.6.3, avx512_core_bf16" (the ISA its kernels are compiled for here), or
 * "none" without oneDNN. */
const char *onednn_describe(void);

/* 1 when oneDNN's kernels run bf16 on this CPU's own instructions (AVX512-BF16, or AMX
 * tiles), as far as ONEDNN_MAX_CPU_ISA lets them; 0 without them or without oneDNN. */
int onednn_has_bf16(void);

/* Each returns 0 when it did the work, -1 when oneDNN has no JIT kernel for the
 * shape (only its slow reference code): the caller then uses another engine. The
 * arguments are NetOps' (ops.h); in the bf16 mode the activations hold bf16 and are
 * NHWC. */
int onednn_forward(Onednn *d, const ConvShape *s, Layout lay, const float *x, const float *w,
                   const float *b, const float *residual, int relu, float *y);
int onednn_backward_data(Onednn *d, const ConvShape *s, const float *dy, const float *w,
                         const float *mask, float *dx);
int onednn_backward_filter(Onednn *d, const ConvShape *s, Layout lay, const float *x,
                           const float *dy, float *dw, float *db);
/* The oneDNN implementation that runs op on the shape ("brgconv:avx512_core"), or
 * NULL when there is none but the reference code. Creates the primitive if needed. */
const char *onednn_kernel(Onednn *d, ConvOp op, const ConvShape *s, Layout lay);

#endif

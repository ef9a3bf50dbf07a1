/* Convolutions through oneDNN (conv_onednn.c): the library PyTorch's CPU convolutions
 * run on, JIT-compiled at run time for the machine's widest ISA (AVX2, AVX-512, AMX).
 * In a build without oneDNN (conv_onednn_none.c) onednn_create returns NULL and the
 * backend has only its own engines. */
#ifndef E2E_NET_CPU_CONV_ONEDNN_H
#define E2E_NET_CPU_CONV_ONEDNN_H

#include "cpu_internal.h"

typedef struct Onednn Onednn;

/* One CPU engine running on `threads` OpenMP threads; NULL (and e2e_error()) when
 * oneDNN is not in this build or cannot start. */
Onednn *onednn_create(int threads);
void onednn_destroy(Onednn *d);
/* "oneDNN 2.6.3, avx512_core_bf16" (the ISA its kernels are compiled for here), or
 * "none" without oneDNN. */
const char *onednn_describe(void);

/* Each returns 0 when it did the work, -1 when oneDNN has no JIT kernel for the
 * shape (only its slow reference code): the caller then uses another engine. The
 * arguments are NetOps' (ops.h). */
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

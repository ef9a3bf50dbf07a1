/* Non-x86 builds: no direct kernels; the GEMM path does every convolution. */
#include "cpu_internal.h"

int conv_direct_supported(void) { return 0; }

int conv_direct_forward(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                        const float *w, const float *b, const float *residual, int relu,
                        float *y) {
    return -1;
}
int conv_direct_backward_data(CpuCtx *c, const ConvShape *s, const float *dy, const float *w,
                              const float *mask, float *dx) {
    return -1;
}
int conv_direct_backward_filter(CpuCtx *c, const ConvShape *s, Layout lay, const float *x,
                                const float *dy, float *dw, float *db) {
    return -1;
}
int conv_direct_bf16_fits(const ConvShape *s) { return 0; }
int conv_direct_bf16_forward(CpuCtx *c, const ConvShape *s, const uint16_t *x, const float *w, const float *b,
                             const uint16_t *residual, int relu, uint16_t *y) {
    return -1;
}
int conv_direct_bf16_backward_filter(CpuCtx *c, const ConvShape *s, const uint16_t *x, const uint16_t *dy,
                                     float *dw, float *db) {
    return -1;
}

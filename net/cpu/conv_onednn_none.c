/* A build without oneDNN (E2E_ONEDNN=OFF, or not found with AUTO): the CPU backend has
 * only its own convolution engines. */
#include "error.h"
#include "conv_onednn.h"

Onednn *onednn_create(int threads, int bf16) {
    e2e_fail("this build has no oneDNN (configure with -DE2E_ONEDNN=ON; Debian: libdnnl-dev)");
    return NULL;
}
void onednn_destroy(Onednn *d) {}
const char *onednn_describe(void) { return "none"; }
int onednn_has_bf16(void) { return 0; }
int onednn_forward(Onednn *d, const ConvShape *s, Layout lay, const float *x, const float *w,
                   const float *b, const float *residual, int relu, float *y) {
    return -1;
}
int onednn_backward_data(Onednn *d, const ConvShape *s, const float *dy, const float *w,
                         const float *mask, float *dx) {
    return -1;
}
int onednn_backward_filter(Onednn *d, const ConvShape *s, Layout lay, const float *x,
                           const float *dy, float *dw, float *db) {
    return -1;
}
const char *onednn_kernel(Onednn *d, ConvOp op, const ConvShape *s, Layout lay) { return NULL; }

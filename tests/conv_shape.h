/* The tests' constructor of a square-kernel convolution's geometry. */
#ifndef E2E_TESTS_CONV_SHAPE_H
#define E2E_TESTS_CONV_SHAPE_H

#include "ops.h"

static inline ConvShape conv_shape(int n, int ic, int h, int w, int oc, int k, int stride, int pad) {
    ConvShape s = {.n = n, .in_c = ic, .in_h = h, .in_w = w, .out_c = oc, .k_h = k, .k_w = k,
                   .stride = stride, .pad = pad};
    s.out_h = (h + 2 * pad - k) / stride + 1;
    s.out_w = (w + 2 * pad - k) / stride + 1;
    return s;
}

#endif

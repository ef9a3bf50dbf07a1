/* The direct convolutions for AVX2 + FMA (conv_direct_impl.h); built with -mavx2 -mfma. */
#define DIRECT_BITS 256
#define DIRECT_NAME(f) f##_avx2
#include "conv_direct_impl.h"

/* The direct convolutions for AVX-512F (conv_direct_impl.h); built with -mavx512f -mfma. */
#define DIRECT_BITS 512
#define DIRECT_NAME(f) f##_avx512
#include "conv_direct_impl.h"

/* The CPU backend: OpenMP threads over the batch, OpenBLAS GEMMs, and direct
 * convolution kernels for AVX2+FMA picked at run time. */
#ifndef E2E_NET_CPU_BACKEND_H
#define E2E_NET_CPU_BACKEND_H

#include "../ops.h"

/* threads <= 0: OpenMP's default (OMP_NUM_THREADS or the cores). The environment
 * variable E2E_CPU_CONV=gemm forces the portable im2col + GEMM convolutions. */
NetOps *net_cpu_create(int threads);

#endif

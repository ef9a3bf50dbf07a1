/* The CPU backend: OpenMP threads over the batch, OpenBLAS GEMMs, and two convolution
 * engines chosen per convolution: direct kernels for AVX2+FMA and oneDNN (net/README.md,
 * "Convolution engines"). */
#ifndef E2E_NET_CPU_BACKEND_H
#define E2E_NET_CPU_BACKEND_H

#include "../ops.h"

#include <stddef.h>

/* threads <= 0: OpenMP's default (OMP_NUM_THREADS or the cores). The environment
 * chooses the convolution engines: E2E_CPU_CONV=auto (default: per geometry and pass,
 * by timing at model build, kept in the plan record E2E_CPU_CONV_PLAN), direct, onednn
 * or gemm (the portable im2col + GEMM). NULL with e2e_error() on a bad value.
 * net_cpu_create computes in fp32. */
NetOps *net_cpu_create(int threads);
/* The same in `precision`: "fp32" (or NULL), or "bf16" (net/README.md, "bf16": float32
 * parameters, gradients, Adam and loss; bf16 activations and convolution operands;
 * the NetOps declares OPS_BF16_ACTIVATIONS). bf16 is refused (NULL, e2e_error()) on a
 * CPU without bf16 instructions, unless E2E_CPU_BF16=emulate (tests: our float engines
 * on bf16 operands, slower than fp32). */
NetOps *net_cpu_create_precision(int threads, const char *precision);
/* 1 when this CPU has bf16 instructions (AVX512-BF16 or AMX-BF16) that oneDNN runs, as
 * far as ONEDNN_MAX_CPU_ISA allows (e.g. AVX512_CORE makes it a CPU without them). */
int net_cpu_has_bf16(void);

/* One line naming the engines in use, for a run's start line: the mode, oneDNN's
 * version and ISA, the plan record, and per convolution geometry the engine of each
 * pass and how it was chosen (timed, recorded, given, forced). NULL when ops is not a
 * CPU backend. Valid until the next call. */
const char *net_cpu_conv_report(NetOps *ops);
/* The plan (one line per geometry) into buf, so that ranks can agree: rank 0's plan
 * given to every rank with net_cpu_conv_use_plan after model_create makes every rank
 * run the same engines. 0, or -1 with e2e_error(). */
int net_cpu_conv_plan(NetOps *ops, char *buf, size_t len);
int net_cpu_conv_use_plan(NetOps *ops, const char *plan);

#endif

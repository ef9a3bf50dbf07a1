/* The CUDA backend: cuDNN convolutions, own kernels for everything else, CUDA graphs
 * for the training pass, asynchronous input staging. C interface (the .cu files are
 * compiled as CUDA C++). See net/cuda/README.md. */
#ifndef E2E_NET_CUDA_BACKEND_H
#define E2E_NET_CUDA_BACKEND_H

#include "../ops.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A backend on GPU `gpu` of this node computing in `precision`: "fp32" (cuDNN restricted
 * to FMA kernels: no TF32), "tf32" (cuDNN may use TF32 tensor cores) or "bf16" (fp32
 * master weights and fp32 interface, convolutions on bf16 copies of their operands with
 * fp32 accumulation; compute capability 8.0 or newer). Returns NULL with a message in
 * e2e_error() when there is no such GPU or the precision is unknown. The environment
 * variable E2E_CUDA_GRAPHS=0 turns graph replay off; E2E_CUDNN_ALGO=heuristic picks
 * convolution algorithms by cuDNN's heuristics instead of timing them. */
NetOps *net_cuda_create(int gpu, const char *precision);

/* GPUs visible to this process; 0 when there is none (no device, or no NVIDIA driver at
 * all); -1 with a message in e2e_error() when the driver cannot serve this build (older
 * than its CUDA runtime: both versions named) or the query fails otherwise. */
int net_cuda_device_count(void);

/* Counters of a CUDA backend (ops made by net_cuda_create), for tests and benchmarks. */
typedef struct {
    long graphs_recorded;    /* graph captures that succeeded */
    long graphs_replayed;    /* launches of a recorded graph (the recording run included) */
    long conv_plans;         /* convolution shapes whose algorithm was chosen */
    long nondeterministic;   /* of those, plans that had to take a non-deterministic algorithm */
    long fp32_fallbacks;     /* bf16 mode: plans run on float operands (no bf16 kernel) */
    long fp32_relaxed;       /* fp32 mode: plans that took an FFT/Winograd or non-FMA algorithm (cuDNN offered
                                no other; a warning lists its candidates) */
    size_t workspace_bytes;  /* cuDNN workspace now allocated */
} CudaStats;

/* 0, or -1 when ops is not a CUDA backend. */
int net_cuda_stats(const NetOps *ops, CudaStats *out);
/* Turns graph replay on (1) or off (0) for later passes; returns the previous setting. */
int net_cuda_set_graphs(NetOps *ops, int on);
/* For tests: the next graph capture fails as a refused call inside it would (the pass
 * then runs directly and graph replay goes off). 0, or -1 when ops is not CUDA. */
int net_cuda_fail_next_capture(NetOps *ops);

#ifdef __cplusplus
}
#endif

#endif

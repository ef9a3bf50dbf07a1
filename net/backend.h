/* Picking a backend: the training loop asks for one by name and never needs to know
 * which kernels stand behind the NetOps it gets. */
#ifndef E2E_NET_BACKEND_H
#define E2E_NET_BACKEND_H

#include <stddef.h>

#include "ops.h"

typedef struct {
    const char *device;     /* "cpu" (default) or "cuda" */
    int threads;            /* cpu: OpenMP threads, 0 = OpenMP's default */
    int gpu;                /* cuda: the node-local rank; the GPU taken is gpu modulo the GPUs
                               this process sees (one each, or all of the node's) */
    const char *precision;  /* "fp32" (default), "bf16" (cpu: with bf16 instructions); cuda
                               also "tf32" */
} BackendOptions;

/* Returns NULL with a message in e2e_error() when the backend cannot start (e.g.
 * "cuda" in a build without CUDA, no GPU, a precision the backend lacks). Free with
 * ops->destroy(ops). opt may be NULL (CPU, defaults). */
NetOps *net_backend_create(const BackendOptions *opt);
/* The kernel choices a backend made while a model was built on it (the CPU's
 * convolution engine per shape and pass), as text that one rank hands to the others so
 * that every rank runs the same kernels: "" when the backend makes no such choice.
 * 0, or -1 with e2e_error() (buf too small). */
int net_backend_plan(NetOps *ops, char *buf, size_t len);
/* Runs the kernels a plan names from now on (a plan of "" changes nothing). */
int net_backend_use_plan(NetOps *ops, const char *plan);
/* One line describing those choices for a run's start line, or NULL when there are none. */
const char *net_backend_report(NetOps *ops);
/* 1 when this build contains the CUDA backend. */
int net_has_cuda(void);

#endif

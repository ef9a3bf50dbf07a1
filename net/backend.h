/* Picking a backend: the training loop asks for one by name and never needs to know
 * which kernels stand behind the NetOps it gets. */
#ifndef E2E_NET_BACKEND_H
#define E2E_NET_BACKEND_H

#include "ops.h"

/* "cpu" (threads: 0 = OpenMP's default) or "cuda" (device: the GPU index on this
 * node). Returns NULL with a message in net_error() when the backend cannot start
 * (e.g. "cuda" in a build without CUDA, or no GPU). Free with ops->destroy(ops). */
NetOps *net_backend_create(const char *name, int threads, int device);
/* 1 when this build contains the CUDA backend. */
int net_has_cuda(void);

#endif

/* FNV-1a (64 bits) over bytes: the project's one hash. It names a training pass for
 * graph replay (net/batch_staging.c), compares replicas across ranks (dist/comm/comm.c)
 * and guards a checkpoint's tensors (dist/run/checkpoint.c). Not cryptographic. */
#ifndef E2E_NET_HASH_H
#define E2E_NET_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_BASIS 0xcbf29ce484222325ull

/* h continued over bytes (start with FNV1A_BASIS): hashing pieces one after the other
 * equals hashing them joined. */
uint64_t fnv1a_more(uint64_t h, const void *p, size_t bytes);
/* fnv1a_more(FNV1A_BASIS, p, bytes) */
uint64_t fnv1a(const void *p, size_t bytes);

#endif

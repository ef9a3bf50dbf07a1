/* The CPU backend's work space: per-thread scratch, one shared buffer and the bf16
 * mode's buffers, grown on demand and kept for the backend's life; and the abort for a
 * failed host allocation inside an op. */
#include <stdio.h>
#include <stdlib.h>

#include "cpu_internal.h"

void cpu_die(const char *file, int line, const char *what) {
    fprintf(stderr, "e2e-ddp: %s:%d: %s\n", file, line, what);
    abort();
}

static float *grow(float *p, size_t *have, size_t need) {
    if (need <= *have) return p;
    free(p);
    size_t bytes = (need * sizeof(float) + 255) / 256 * 256;
    p = aligned_alloc(256, bytes);
    if (!p) cpu_die(__FILE__, __LINE__, "out of host memory for convolution work space");
    *have = bytes / sizeof(float);
    return p;
}

float *cpu_scratch(CpuCtx *c, int tid, size_t n) {
    c->scratch[tid] = grow(c->scratch[tid], &c->scratch_floats[tid], n);
    return c->scratch[tid];
}

float *cpu_shared(CpuCtx *c, size_t n) {
    c->shared = grow(c->shared, &c->shared_floats, n);
    return c->shared;
}

void *cpu_buffer(CpuCtx *c, int slot, size_t bytes) {
    if (bytes <= c->buf_bytes[slot]) return c->buf[slot];
    free(c->buf[slot]);
    size_t rounded = (bytes + 255) / 256 * 256;
    c->buf[slot] = aligned_alloc(256, rounded);
    if (!c->buf[slot]) cpu_die(__FILE__, __LINE__, "out of host memory for a bf16 buffer");
    c->buf_bytes[slot] = rounded;
    if (slot == BUF_INPUT_BF16) c->input_of = NULL;  /* a new buffer holds no conversion */
    return c->buf[slot];
}

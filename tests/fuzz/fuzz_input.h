/* The fuzzer's bytes, taken a few at a time: each take returns 0 (or nothing) once
 * they run out, so every input, however short, is a valid program of edits. */
#ifndef E2E_FUZZ_INPUT_H
#define E2E_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const uint8_t *p;
    size_t n;
} FuzzIn;

static inline uint64_t fi_take(FuzzIn *in, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes && in->n; i++, in->p++, in->n--) v |= (uint64_t)*in->p << (8 * i);
    return v;
}
static inline unsigned fi_u8(FuzzIn *in) { return (unsigned)fi_take(in, 1); }
static inline unsigned fi_u16(FuzzIn *in) { return (unsigned)fi_take(in, 2); }
static inline uint32_t fi_u32(FuzzIn *in) { return (uint32_t)fi_take(in, 4); }
/* up to n bytes into out; returns how many were left to take */
static inline size_t fi_bytes(FuzzIn *in, void *out, size_t n) {
    size_t k = n < in->n ? n : in->n;
    memcpy(out, in->p, k);
    in->p += k;
    in->n -= k;
    return k;
}

#endif

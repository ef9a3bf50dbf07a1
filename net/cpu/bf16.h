/* bf16 (bfloat16: float32's sign, exponent and top 7 mantissa bits) as the CPU backend's
 * bf16 mode stores activations and their gradients: a uint16_t per value. Widening is
 * exact; narrowing rounds to nearest even as the VCVTNEPS2BF16 instruction (and oneDNN's
 * kernels with it) does: a NaN stays a quiet NaN of the same sign, a float32 denormal
 * becomes a signed zero, and what overflows becomes an infinity. */
#ifndef E2E_NET_CPU_BF16_H
#define E2E_NET_CPU_BF16_H

#include <stdint.h>
#include <string.h>

static inline float bf16_to_f32(uint16_t v) {
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Written with masks, not branches, so that loops of it vectorise. */
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
    uint32_t nan = 0u - (uint32_t)((u & 0x7fffffffu) > 0x7f800000u);
    uint32_t denormal = 0u - (uint32_t)((u & 0x7f800000u) == 0);
    rounded = (rounded & ~denormal) | (u & 0x80000000u & denormal);
    rounded = (rounded & ~nan) | ((u | 0x00400000u) & nan);
    return (uint16_t)(rounded >> 16);
}

/* v where keep (a float comparison) holds, else 0, without a branch */
static inline uint16_t bf16_keep(uint16_t v, int keep) { return v & (uint16_t)(0u - (unsigned)(keep != 0)); }

/* f rounded to bf16 and back: the value a bf16 operand has. */
static inline float bf16_round(float f) { return bf16_to_f32(f32_to_bf16(f)); }

#endif

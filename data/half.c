#include "half.h"

#include <string.h>

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Branch-free, so the loop in half_to_float_n vectorises: the exponent is rebiased
 * by one add; subnormals are renormalised by a float subtraction (the "magic number"
 * method); infinities and NaNs get the all-ones exponent. */
float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t em = (uint32_t)(h & 0x7fff) << 13;           /* exponent+mantissa, aligned */
    uint32_t exp = em & 0x0f800000;
    float normal = u2f(em + ((127 - 15) << 23));
    float sub = u2f(em + (113u << 23)) - u2f(113u << 23); /* em * 2^-24 exactly */
    float infnan = u2f(em | 0x7f800000);
    float mag = exp == 0x0f800000 ? infnan : (exp == 0 ? sub : normal);
    return u2f(f2u(mag) | sign);
}

uint16_t float_to_half(float f) {
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffff;
    if (a >= 0x7f800000) /* inf or NaN (keep NaN quiet and non-zero) */
        return sign | (a > 0x7f800000 ? 0x7e00 : 0x7c00);
    if (a >= 0x477ff000) return sign | 0x7c00; /* rounds to >= 65520: overflow */
    if (a < 0x38800000) {                      /* below 2^-14: half subnormal or zero */
        if (a < 0x33000000) return sign;       /* below 2^-25: rounds to zero */
        uint32_t mant = (a & 0x7fffff) | 0x800000;
        int shift = 126 - (int)(a >> 23);      /* 14 .. 24 */
        uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return sign | (uint16_t)q;
    }
    /* normal: rebias the exponent, round the 13 dropped mantissa bits to nearest even */
    uint32_t r = a - ((127 - 15) << 23);
    uint32_t q = r >> 13, rem = r & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (q & 1))) q++;
    return sign | (uint16_t)q;
}

void half_to_float_n(const uint16_t *in, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = half_to_float(in[i]);
}

void float_to_half_n(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_to_half(in[i]);
}

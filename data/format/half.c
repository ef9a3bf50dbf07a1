/* float16 <-> float32 (half.h): scalar and batch conversions (F16C where the CPU has
 * AVX2), and the count of non-finite halves. */
#include "half.h"

#include <string.h>

#include "simd.h"

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

/* Branch-free and in integer lanes, so half_to_float_n vectorises: the exponent is
 * rebiased by one add; subnormals (mantissa * 2^-24) go through an int-to-float
 * conversion; infinities and NaNs get the all-ones exponent. */
static inline uint32_t half_bits_to_float_bits(uint32_t h) {
    uint32_t sign = (h & 0x8000u) << 16;
    uint32_t em = (h & 0x7fffu) << 13; /* exponent and mantissa, aligned */
    uint32_t exp = em & 0x0f800000u;
    float sub = (float)(int32_t)(h & 0x3ffu) * 0x1p-24f;
    uint32_t normal = em + ((127u - 15u) << 23), infnan = em | 0x7f800000u, subbits = f2u(sub);
    uint32_t is_infnan = 0u - (uint32_t)(exp == 0x0f800000u), is_sub = 0u - (uint32_t)(exp == 0); /* masks */
    return (infnan & is_infnan) | (subbits & is_sub) | (normal & ~(is_infnan | is_sub)) | sign;
}

float half_to_float(uint16_t h) { return u2f(half_bits_to_float_bits(h)); }

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

AVX2_CLONES
static void half_to_float_portable(const uint16_t *in, float *out, size_t n) {
    uint32_t *o = (uint32_t *)(void *)out; /* float and uint32_t: same size, bits copied */
    for (size_t i = 0; i < n; i++) o[i] = half_bits_to_float_bits(in[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
/* the F16C instruction converts 8 values at once (every AVX2 CPU has F16C) */
__attribute__((target("avx2,f16c"))) static void half_to_float_f16c(const uint16_t *in, float *out, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(in + i))));
    half_to_float_portable(in + i, out + i, n - i);
}
#endif

void half_to_float_n(const uint16_t *in, float *out, size_t n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx2")) {
        half_to_float_f16c(in, out, n);
        return;
    }
#endif
    half_to_float_portable(in, out, n);
}

void float_to_half_n(const float *in, uint16_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = float_to_half(in[i]);
}

/* 16-bit lane counters (a block of 32768 values cannot overflow them) so the loop
 * vectorises at full width: this check runs over every pixel of a float16 batch */
AVX2_CLONES
long long half_count_nonfinite(const uint16_t *in, size_t n) {
    long long bad = 0;
    for (size_t i = 0; i < n; i += 32768) {
        size_t end = n - i < 32768 ? n : i + 32768;
        uint16_t c = 0;
        for (size_t k = i; k < end; k++) c += (uint16_t)((in[k] & 0x7C00u) == 0x7C00u);
        bad += c;
    }
    return bad;
}

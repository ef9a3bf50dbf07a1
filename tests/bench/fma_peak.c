#include "fma_peak.h"

#include <omp.h>

#define CHAINS 12  /* independent chains: enough to hide 4-cycle FMAs on 2-3 pipes */

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) static float fma_loop_512(long iters) {
    __m512 a[CHAINS], b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    return s;
}

__attribute__((target("avx2,fma"))) static float fma_loop_256(long iters) {
    __m256 a[CHAINS], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    float s = 0, t[8];
    for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(t, a[i]);
        s += t[0];
    }
    return s;
}

static int has_bits(int bits) {
    __builtin_cpu_init();
    if (bits == 512) return __builtin_cpu_supports("avx512f");
    if (bits == 256) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return bits == 128;
}
#else
static float fma_loop_512(long iters) { return 0; }
static float fma_loop_256(long iters) { return 0; }
static int has_bits(int bits) { return bits == 128; }
#endif

static float mul_add_loop(long iters) {  /* portable: 4-wide multiply + add */
    float a[4][4] = {{0}}, s = 0;
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) a[i][j] = a[i][j] * 0.999999f + 1e-6f;
    for (int i = 0; i < 4; i++) s += a[i][0];
    return s;
}

int fma_widest_bits(void) { return has_bits(512) ? 512 : has_bits(256) ? 256 : 128; }

double fma_peak_gflops_bits(int threads, double seconds, int bits) {
    if (!has_bits(bits)) return 0.0;
    double per_iter = bits == 512 ? CHAINS * 32.0 : bits == 256 ? CHAINS * 16.0 : 32.0;
    long iters = 1000000;
    volatile float sink = 0;
    for (;;) {  /* grow the count until one run takes long enough to time */
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
        {
            float r = bits == 512 ? fma_loop_512(iters) : bits == 256 ? fma_loop_256(iters) : mul_add_loop(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = omp_get_wtime() - t0;
        if (dt >= seconds || iters > (1L << 40)) return threads * iters * per_iter / dt / 1e9;
        iters = (long)(iters * (dt > 0.01 ? 1.2 * seconds / dt : 10));
    }
}

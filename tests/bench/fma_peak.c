#include "fma_peak.h"

#include <omp.h>

#if defined(__x86_64__)
#include <immintrin.h>

/* 10 independent chains hide the FMA latency (4 cycles x 2 pipes). */
__attribute__((target("avx2,fma"))) static float fma_loop(long iters) {
    __m256 a[10], b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int i = 0; i < 10; i++) a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 10
        for (int i = 0; i < 10; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    float s = 0, t[8];
    for (int i = 0; i < 10; i++) {
        _mm256_storeu_ps(t, a[i]);
        s += t[0];
    }
    return s;
}
#define FLOPS_PER_ITER (10 * 16.0)
#define HAVE_FMA() (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
#else
static float fma_loop(long iters) { return 0; }
#define FLOPS_PER_ITER 0
#define HAVE_FMA() 0
#endif

static float mul_add_loop(long iters) {  /* portable fallback: 4-wide mul + add */
    float a[4][4] = {{0}}, s = 0;
    for (long k = 0; k < iters; k++)
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) a[i][j] = a[i][j] * 0.999999f + 1e-6f;
    for (int i = 0; i < 4; i++) s += a[i][0];
    return s;
}

double fma_peak_gflops(int threads, double seconds) {
    int fma = HAVE_FMA();
    double per_iter = fma ? FLOPS_PER_ITER : 32.0;
    long iters = 1000000;
    volatile float sink = 0;
    for (;;) {  /* grow the count until one run takes long enough to time */
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
        {
            float r = fma ? fma_loop(iters) : mul_add_loop(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = omp_get_wtime() - t0;
        if (dt >= seconds || iters > (1L << 40)) return threads * iters * per_iter / dt / 1e9;
        iters = (long)(iters * (dt > 0.01 ? 1.2 * seconds / dt : 10));
    }
}

/* The measured float32 FMA and bf16 peaks (fma_peak.h): independent chains of the
 * widest instructions on every thread. */
#include "fma_peak.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

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

/* VDPBF16PS: 16 float lanes, each += two bf16 products: 64 flops */
__attribute__((target("avx512f,avx512bf16"))) static float bf16_dot_loop(long iters) {
    enum { DOT_CHAINS = 16 };  /* latency x throughput of the dot product, with room */
    __m512 a[DOT_CHAINS];
    __m512bh b = (__m512bh)_mm512_set1_epi16(0x3a83), c = (__m512bh)_mm512_set1_epi16(0x3a83);  /* 1e-3 */
    for (int i = 0; i < DOT_CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < iters; k++) {
#pragma GCC unroll 16
        for (int i = 0; i < DOT_CHAINS; i++) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    }
    float s = 0;
    for (int i = 0; i < DOT_CHAINS; i++) s += _mm512_reduce_add_ps(a[i]);
    return s * (DOT_CHAINS == 16);
}
#define BF16_DOT_FLOPS (16 * 64.0)

/* AMX: tiles of 16 rows x 64 bytes; TDPBF16PS C[16x16 float] += A[16x32 bf16] B[16x32
 * bf16 pairs]: 16 x 16 x 32 x 2 flops, four independent accumulators. The kernel must
 * grant the tile state first (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+). Untested on
 * AMX hardware when written (the development machine had AVX512-BF16 only). */
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

/* CPUID leaf 7: AMX-BF16 is EDX bit 22, AMX-TILE bit 24 (Clang 14 has no
 * __builtin_cpu_supports names for them) */
static int amx_granted(void) {
    unsigned a, b, c, d = 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1) || !((d >> 24) & 1)) return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

__attribute__((target("amx-tile,amx-bf16"))) static float amx_loop(long iters) {
    struct __attribute__((aligned(64))) {
        uint8_t palette, start_row, reserved[14];
        uint16_t colsb[16];
        uint8_t rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    _tile_loadconfig(&cfg);
    static __attribute__((aligned(64))) uint16_t src[16 * 32];
    static __attribute__((aligned(64))) float acc[16 * 16];
    for (int i = 0; i < 16 * 32; i++) src[i] = 0x3a83;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, src, 64);
    _tile_loadd(5, src, 64);
    _tile_loadd(6, src, 64);
    _tile_loadd(7, src, 64);
    for (long k = 0; k < iters; k++) {
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, acc, 64);
    _tile_release();
    return acc[0];
}
#define AMX_FLOPS (4 * 16 * 16 * 32 * 2.0)

static int has_bits(int bits) {
    __builtin_cpu_init();
    if (bits == 512) return __builtin_cpu_supports("avx512f");
    if (bits == 256) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return bits == 128;
}
/* AVX512-BF16: CPUID leaf 7 subleaf 1, EAX bit 5, with AVX-512 enabled */
static int has_bf16_dot(void) {
    unsigned a = 0, b, c, d;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1);
}
#else
static float fma_loop_512(long iters) { return 0; }
static float fma_loop_256(long iters) { return 0; }
static float bf16_dot_loop(long iters) { return 0; }
static float amx_loop(long iters) { return 0; }
static int has_bits(int bits) { return bits == 128; }
static int has_bf16_dot(void) { return 0; }
static int amx_granted(void) { return 0; }
#define BF16_DOT_FLOPS 0.0
#define AMX_FLOPS 0.0
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

/* GFLOP/s of loop(iters) on every thread, per_iter flops an iteration, growing the count
 * until one run takes long enough to time */
static double peak_of(float (*loop)(long), double per_iter, int threads, double seconds) {
    long iters = 100000;
    volatile float sink = 0;
    for (;;) {
        double t0 = omp_get_wtime();
#pragma omp parallel num_threads(threads)
        {
            float r = loop(iters);
#pragma omp atomic
            sink += r;
        }
        double dt = omp_get_wtime() - t0;
        if (dt >= seconds || iters > (1L << 40)) return threads * iters * per_iter / dt / 1e9;
        iters = (long)(iters * (dt > 0.01 ? 1.2 * seconds / dt : 10));
    }
}

double fma_peak_gflops_bits(int threads, double seconds, int bits) {
    if (!has_bits(bits)) return 0.0;
    if (bits == 512) return peak_of(fma_loop_512, CHAINS * 32.0, threads, seconds);
    if (bits == 256) return peak_of(fma_loop_256, CHAINS * 16.0, threads, seconds);
    return peak_of(mul_add_loop, 32.0, threads, seconds);
}

double bf16_peak_gflops(int threads, double seconds, const char **kind) {
    if (amx_granted()) {  /* each thread asks for the tiles itself: the grant is per thread */
        int granted = 1;
#pragma omp parallel num_threads(threads) reduction(&& : granted)
        granted = amx_granted();
        if (granted) {
            *kind = "amx";
            return peak_of(amx_loop, AMX_FLOPS, threads, seconds);
        }
    }
    if (has_bf16_dot()) {
        *kind = "avx512_bf16";
        return peak_of(bf16_dot_loop, BF16_DOT_FLOPS, threads, seconds);
    }
    *kind = "none";
    return 0.0;
}

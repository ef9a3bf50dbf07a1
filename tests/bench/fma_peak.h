/* The machine's measured float32 FMA peak: independent FMA chains on every thread, at
 * each vector width the CPU has, so a kernel's speed can be set against the widest. */
#ifndef E2E_BENCH_FMA_PEAK_H
#define E2E_BENCH_FMA_PEAK_H

/* GFLOP/s (an FMA counts 2) over about `seconds` with `threads` OpenMP threads, with
 * vectors of `bits`: 512 (AVX-512F), 256 (AVX2+FMA) or 128 (SSE multiply + add, any
 * x86-64); 0 when the CPU lacks that width. */
double fma_peak_gflops_bits(int threads, double seconds, int bits);
/* The widest of those the CPU has. */
int fma_widest_bits(void);

/* The machine's measured bf16 peak, GFLOP/s (a multiply-add of bf16 pairs into float
 * counts 2): AMX tiles (TDPBF16PS) where the CPU has them and the kernel grants them,
 * else AVX512-BF16 dot products (VDPBF16PS), else 0. *kind names which ("amx",
 * "avx512_bf16" or "none"). */
double bf16_peak_gflops(int threads, double seconds, const char **kind);

#endif

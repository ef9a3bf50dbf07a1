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

#endif

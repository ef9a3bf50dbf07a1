/* The machine's measured float32 FMA peak: independent FMA chains on every thread. */
#ifndef E2E_BENCH_FMA_PEAK_H
#define E2E_BENCH_FMA_PEAK_H

/* GFLOP/s (an FMA counts 2) over about `seconds`, with `threads` OpenMP threads;
 * uses AVX2+FMA when the CPU has them, SSE otherwise. */
double fma_peak_gflops(int threads, double seconds);

#endif

/* AVX2_CLONES: GCC/Clang compile the function twice, for baseline x86-64 and for AVX2,
 * and pick one at load time from the CPU (ifunc), so release binaries stay portable
 * (no -march) and the hot pixel loops still run at AVX2 width where the CPU has it. */
#ifndef E2E_DATA_SIMD_H
#define E2E_DATA_SIMD_H

/* Clang 14 (Debian 12's, which builds the sanitizer and fuzzing configuration) emits
 * clones of a function that other files call under names the linker cannot resolve:
 * there the baseline build only. */
#if defined(__x86_64__) && defined(__has_attribute) && !(defined(__clang__) && __clang_major__ < 15)
#if __has_attribute(target_clones)
#define AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#endif
#ifndef AVX2_CLONES
#define AVX2_CLONES
#endif

#endif

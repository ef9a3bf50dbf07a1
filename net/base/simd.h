/* AVX2_CLONES, AVX512_CLONES: GCC/Clang compile the function twice, for baseline x86-64
 * and for AVX2 (or AVX-512: x86-64-v4), and pick one at load time from the CPU (ifunc),
 * so release binaries stay portable (no -march) and the hot loops still run at the
 * CPU's width. */
#ifndef E2E_BASE_SIMD_H
#define E2E_BASE_SIMD_H

/* No clones where they break: Clang 14 (Debian 12's, which builds the sanitizer and
 * fuzzing configuration) emits clones of a function that other files call under names
 * the linker cannot resolve; and under ThreadSanitizer or AddressSanitizer the ifunc
 * resolver is instrumented but runs during relocation, before the sanitizer's runtime is
 * up, and crashes the program at load (seen: cuda_emu_tsan). There the baseline build
 * only. */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define E2E_NO_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define E2E_NO_CLONES 1
#endif
#endif
#if defined(__clang__) && __clang_major__ < 15
#define E2E_NO_CLONES 1
#endif

#if defined(__x86_64__) && defined(__has_attribute) && !defined(E2E_NO_CLONES)
#if __has_attribute(target_clones)
#define AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#define AVX512_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#endif
#endif
#ifndef AVX2_CLONES
#define AVX2_CLONES
#endif
#ifndef AVX512_CLONES
#define AVX512_CLONES
#endif

#endif

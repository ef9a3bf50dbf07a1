/* Force-included (g++ -include) into the .cu files of net/cuda compiled as host C++ against the
 * emulated CUDA runtime of tests/cuda_emu (README.md there): the CUDA keywords become
 * plain C++, threadIdx and friends are thread-locals the emulator sets, __syncthreads is
 * a barrier of the block's threads, and every kernel launch, which
 * tests/cuda_emu/rewrite_launches.pl has turned from k<<<g, b, s, st>>>(args) into
 * cuda_emu_launch(CudaEmuLaunch(g, b, s, st), "k", k, args), goes to a stream of the
 * emulated device after the launch limits and the arguments are checked. */
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>

#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* A block's shared memory is a function-local static (blocks that use it run one at a
 * time); the call before it tells the emulator that the kernel needs its block's threads
 * to run side by side (__syncthreads), which it must declare first thing. */
#define __shared__ cuda_emu_block_shared(); static

extern thread_local uint3 threadIdx, blockIdx;
extern thread_local dim3 blockDim, gridDim;
void __syncthreads();
void cuda_emu_block_shared();

/* the intrinsics the kernels use: IEEE float arithmetic, rounded to nearest (the emulated
 * sources are built with -ffp-contract=off, so nothing is fused) */
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }

/* <<<grid, block, shared bytes, stream>>> */
struct CudaEmuLaunch {
    dim3 grid, block;
    size_t shared;
    cudaStream_t stream;
    CudaEmuLaunch(dim3 g, dim3 b, size_t s = 0, cudaStream_t st = 0) : grid(g), block(b), shared(s), stream(st) {}
};

/* The launch limits of a real GPU (block <= 1024 threads, z <= 64, grid y and z <= 65535,
 * 48 KB of dynamic shared memory): 0, or the launch does not run and cudaGetLastError
 * says cudaErrorInvalidConfiguration. */
int cuda_emu_launch_check(const CudaEmuLaunch &l, const char *kernel);
/* A kernel's pointer argument must be NULL or point into device or pinned memory (a GPU
 * would fault on a pageable host address); the emulator stops with a message otherwise. */
void cuda_emu_check_pointer(const void *p, int index, const char *kernel);
/* Enqueues the grid on l.stream (or records it into the stream's capture): body runs
 * once per thread of every block, with threadIdx, blockIdx, blockDim, gridDim set. */
void cuda_emu_enqueue_grid(const CudaEmuLaunch &l, const char *kernel, std::function<void()> body);

template <class T>
void cuda_emu_check_argument(const T &v, int index, const char *kernel) {
    if constexpr (std::is_pointer_v<T>) cuda_emu_check_pointer((const void *)v, index, kernel);
}

/* The arguments are converted to the kernel's parameter types and copied now, as a
 * launch copies them into the kernel's parameter buffer. */
template <class... P, class... A>
void cuda_emu_launch(const CudaEmuLaunch &l, const char *kernel, void (*k)(P...), A &&...args) {
    if (cuda_emu_launch_check(l, kernel)) return;
    std::tuple<std::decay_t<P>...> params(std::forward<A>(args)...);
    std::apply([&](const auto &...p) {
        int i = 0;
        (cuda_emu_check_argument(p, i++, kernel), ...);
    }, params);
    cuda_emu_enqueue_grid(l, kernel, [k, params]() { std::apply(k, params); });
}

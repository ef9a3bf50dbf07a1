#!/usr/bin/env bash
# The test command: builds e2e-ddp (Release) and runs every test with ctest.
# Where the CUDA toolkit is installed (/usr/local/cuda/bin/nvcc) it first builds the
# CUDA configuration (-DUSE_CUDA=ON) in build-cuda/ and runs the tests whose behaviour
# depends on it (GPU tests report as skipped on machines without a GPU), and the
# configuration a GPU machine without MPI, HDF5 or OpenBLAS builds (tests/gpu_run.sh:
# net/ only, portable BLAS, in build-gpu/); where the CUDA, cuDNN and NCCL headers and
# libcudnn are, the GPU path emulated on the CPU (build-emu/, build-emu-tsan/:
# tests/cuda_emu/README.md); then the CPU configuration in build/, with the whole suite;
# then the sanitizer configuration in build-sanitize/ (tests/sanitize.sh;
# E2E_SANITIZE_RUN=0 leaves it out).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
nvcc=/usr/local/cuda/bin/nvcc
if [ -x "$nvcc" ]; then
  cuda_build=${CUDA_BUILD_DIR:-$top/build-cuda}
  cmake -S "$top" -B "$cuda_build" -DCMAKE_BUILD_TYPE=Release -DUSE_CUDA=ON \
        -DCMAKE_CUDA_COMPILER="$nvcc"
  cmake --build "$cuda_build" -j"$(nproc)"
  (cd "$cuda_build" && ctest --output-on-failure --timeout 900 -R 'test_gpu_ops|test_model_errors|test_session_feed')
  GPU_RUN_BUILD_ONLY=1 E2E_BLAS=portable GPU_BUILD_DIR="${GPU_BUILD_DIR:-$top/build-gpu}" "$top/tests/gpu_run.sh"
else
  echo "run.sh: no CUDA toolkit at /usr/local/cuda: the CUDA configuration is not built"
fi
# The GPU path on the CPU (tests/cuda_emu/README.md): the .cu sources, the GPU feed, NCCL
# and e2e-train/e2e-eval --device cuda against the emulated runtime, cuDNN and NCCL
# (ctests cuda_emu_*), wherever the CUDA, cuDNN and NCCL headers and libcudnn are there
# (no nvcc or GPU needed); and the emulated backend's small-shape tests under
# ThreadSanitizer (a net/-only build).
cuda=/usr/local/cuda
if [ -f $cuda/include/cuda_runtime.h ] && [ -f $cuda/include/cudnn.h ] && [ -f $cuda/include/nccl.h ] &&
   ls $cuda/lib64/libcudnn.so* $cuda/lib/libcudnn.so* >/dev/null 2>&1; then
  emu=${EMU_BUILD_DIR:-$top/build-emu}
  cmake -S "$top" -B "$emu" -DCMAKE_BUILD_TYPE=Release -DE2E_CUDA_EMULATION=ON
  cmake --build "$emu" -j"$(nproc)" --target test_gpu_ops test_session_feed test_emu_model test_emu_runtime \
        test_emu_algos test_emu_nccl e2e-train e2e-eval e2e-synth e2e-data
  (cd "$emu" && ctest --output-on-failure --timeout 900 -R '^cuda_emu_')
  tsan=${EMU_TSAN_BUILD_DIR:-$top/build-emu-tsan}
  cmake -S "$top" -B "$tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DE2E_CUDA_EMULATION=ON -DE2E_CUDA_EMULATION_TSAN=ON \
        -DE2E_NET_ONLY=ON -DE2E_ONEDNN=OFF -DE2E_BLAS=portable
  cmake --build "$tsan" -j"$(nproc)" --target test_emu_model test_emu_runtime
  (cd "$tsan" && ctest --output-on-failure --timeout 900 -R '^cuda_emu_tsan')
else
  echo "run.sh: no CUDA, cuDNN and NCCL headers or libcudnn in $cuda: the CUDA emulation is not built"
fi
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
(cd "$build" && ctest --output-on-failure --timeout 900)
# The sanitizer configuration (ASan + UBSan, clang) and the fuzz harnesses: the data,
# checkpoint and bad-input tests, the fuzz corpora, 10 s of fuzzing each (tests/sanitize.sh)
if [ "${E2E_SANITIZE_RUN:-1}" != 0 ]; then
  "$top/tests/sanitize.sh"
fi

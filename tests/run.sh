#!/usr/bin/env bash
# The test command: builds e2e-ddp (Release) and runs every test with ctest.
# Where the CUDA toolkit is installed (/usr/local/cuda/bin/nvcc) it first builds the
# CUDA configuration (-DUSE_CUDA=ON) in build-cuda/ and runs the tests whose behaviour
# depends on it (GPU tests report as skipped on machines without a GPU), and the
# configuration a GPU machine without MPI, HDF5 or OpenBLAS builds (tests/gpu_run.sh:
# net/ only, portable BLAS, in build-gpu/); then the CPU configuration in build/, with
# the whole suite; then the sanitizer configuration in build-sanitize/ (tests/sanitize.sh;
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
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
(cd "$build" && ctest --output-on-failure --timeout 900)
# The sanitizer configuration (ASan + UBSan, clang) and the fuzz harnesses: the data,
# checkpoint and bad-input tests, the fuzz corpora, 10 s of fuzzing each (tests/sanitize.sh)
if [ "${E2E_SANITIZE_RUN:-1}" != 0 ]; then
  "$top/tests/sanitize.sh"
fi

#!/usr/bin/env bash
# On a machine with a GPU, from anywhere: builds net/ with the CUDA backend, runs its
# tests (test_gpu_ops: every op and the whole model against the CPU backend) and the
# benchmark against PyTorch. Needs nvcc, cuDNN and CMake; not MPI, HDF5 or OpenBLAS
# (E2E_NET_ONLY=ON, and E2E_BLAS=portable where OpenBLAS is missing). cuDNN is looked
# for by tests/gpu_cuda_env.sh: CUDNN_ROOT, the toolkit, /usr, then python3's
# nvidia-cudnn wheel (which a PyTorch installation brings). Builds for this GPU's
# architecture only. tests/gpu_full.sh is the whole bring-up (trainer, MPI, NCCL).
# Usage: tests/gpu_run.sh [--no-bench]
#   LOG_DIR     where the logs go (default: the build folder, build-gpu/)
#   E2E_BLAS    openblas or portable (default: openblas where it is installed)
#   GPU_RUN_BUILD_ONLY=1  no GPU needed: build (sm_90) and run the tests, GPU tests
#               then report as skipped (CI builds this configuration so)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${GPU_BUILD_DIR:-$top/build-gpu}
logs=${LOG_DIR:-$build}
bench=1
[ "${1:-}" = "--no-bench" ] && bench=0
build_only=${GPU_RUN_BUILD_ONLY:-0}
mkdir -p "$build" "$logs"

# nvcc, cuDNN (and NCCL, unused here): E2E_NVCC, CUDNN_ROOT, E2E_CUDA_CMAKE_ARGS, LD_LIBRARY_PATH
# shellcheck source=tests/gpu_cuda_env.sh
source "$top/tests/gpu_cuda_env.sh" || exit 2
if [ "$build_only" = 1 ]; then
  cc=90
  bench=0
elif nvidia-smi -L; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
else
  echo "gpu_run: no GPU here (nvidia-smi finds none); GPU_RUN_BUILD_ONLY=1 builds without one" >&2
  exit 2
fi
echo "gpu_run: building for sm_$cc"
blas=${E2E_BLAS:-}
if [ -z "$blas" ]; then
  blas=portable
  ldconfig -p 2>/dev/null | grep -q libopenblas && ls /usr/include/cblas.h /usr/include/*/cblas.h >/dev/null 2>&1 && blas=openblas
fi
echo "gpu_run: the CPU reference's BLAS: $blas"

if ! cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release -DUSE_CUDA=ON -DE2E_NET_ONLY=ON \
     -DE2E_BLAS="$blas" $E2E_CUDA_CMAKE_ARGS -DCMAKE_CUDA_ARCHITECTURES="$cc" >"$logs/configure.log" 2>&1; then
  tail -40 "$logs/configure.log"; echo "gpu_run: configure failed ($logs/configure.log)" >&2; exit 1
fi
if ! cmake --build "$build" -j"$(nproc)" >"$logs/build.log" 2>&1; then
  grep -E "error" "$logs/build.log" | head -40; echo "gpu_run: build failed ($logs/build.log)" >&2; exit 1
fi
rc=0
(cd "$build" && ctest -V --timeout 900) >"$logs/tests.log" 2>&1 || rc=1
grep -E "checks passed|Skipped|skipped|FAILED|tests passed" "$logs/tests.log"
if [ "$bench" = 1 ]; then
  "$top/tests/bench/gpu_vs_torch.sh" "$build" 2>&1 | tee "$logs/gpu_vs_torch.log"
  [ "${PIPESTATUS[0]}" = 0 ] || rc=1
fi
echo "gpu_run: logs in $logs; exit $rc"
exit $rc

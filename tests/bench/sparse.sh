#!/usr/bin/env bash
# Benchmark of the sparse layout (data/format/FORMAT.md, format version 2) on synthetic 8 x 125 x 125
# jets, side by side in one run: bytes a jet of the dense float32, dense float16 and sparse
# files; the reader's samples/s per rank on each (page cache, preprocessing on the CPU), on
# the sparse file from memory (--cache memory) and as the GPU feed takes it; the CPU's
# densify + preprocess alone; for 1 and 2 ranks. Then the encoding measurement
# (sparse_encoding.py) when the Python environment is there.
# Usage: tests/bench/sparse.sh [BUILD_DIR] [JETS] [BATCH]
#   (BUILD_DIR: default $E2E_BUILD, else build/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${E2E_BUILD:-$here/../../build}}
jets=${2:-4096}
batch=${3:-32}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=${BENCH_DIR:-/tmp/e2e_bench_sparse_$jets}
mkdir -p "$dir"
d32=$dir/dense_f32.h5 d16=$dir/dense_f16.h5 s32=$dir/sparse_f32.h5 s16=$dir/sparse_f16.h5
[[ -f $d32 ]] || mpirun -np 2 "$build/launch/e2e-synth" --out "$d32" --samples "$jets" --seed 7 >/dev/null
[[ -f $d16 ]] || mpirun -np 2 "$build/launch/e2e-synth" --out "$d16" --samples "$jets" --seed 7 --dtype float16 >/dev/null
[[ -f $s32 ]] || mpirun -np 2 "$build/launch/e2e-data" convert --layout sparse "$d32" "$s32" >/dev/null
[[ -f $s16 ]] || mpirun -np 2 "$build/launch/e2e-data" convert --layout sparse "$d16" "$s16" >/dev/null
cat "$d32" "$d16" "$s32" "$s16" > /dev/null # into the page cache
for np in 1 2; do
  echo
  OMP_NUM_THREADS=1 mpirun --bind-to none -np $np "$build/tests/bench_sparse" "$d32" "$s32" "$d16" "$s16" \
    --batch "$batch"
done
if [[ -x $here/../../.venv/bin/python ]]; then
  echo
  "$here/../../.venv/bin/python" "$here/sparse_encoding.py" "$build" 2000
fi

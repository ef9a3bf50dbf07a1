#!/usr/bin/env bash
# Benchmark: the reader's per-rank throughput beside a raw sequential read of the same
# bytes from the page cache, with the ratio, for 1 and 2 ranks; the statistics pass
# with raw, HDF5 independent and HDF5 collective reads; prefetch hiding the reads.
# Usage: tests/bench/reader.sh [BUILD_DIR] [JETS] [CHANNELS] [DTYPE] [BATCH]
#   (BUILD_DIR: default $E2E_BUILD, else build/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-${E2E_BUILD:-$here/../../build}}
jets=${2:-4096}
channels=${3:-8}
dtype=${4:-float32}
batch=${5:-32}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
file=${BENCH_FILE:-/tmp/e2e_bench_reader_${jets}_${channels}_${dtype}.h5}
if [[ ! -f $file ]]; then
  mpirun -np 2 "$build/launch/e2e-synth" --out "$file" --samples "$jets" --channels "$channels" --dtype "$dtype"
fi
cat "$file" > /dev/null # into the page cache
for np in 1 2; do
  echo
  # --bind-to none: a rank bound to one core would share it with its prefetch thread
  OMP_NUM_THREADS=1 mpirun --bind-to none -np $np "$build/tests/bench_reader" "$file" --batch "$batch" --epochs 5
done

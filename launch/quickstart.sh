#!/usr/bin/env bash
# A real small training run on a generated dataset: 6000 synthetic boosted jets
# (8 channels, 64x64 pixels) written by 2 ranks, 2 ranks training ResNet-15 for 6 epochs,
# plots of the metrics, and the test metrics of the best checkpoint.
# Usage: launch/quickstart.sh [OUTDIR]   (default: runs/quickstart)
# The programs come from the build folder E2E_BUILD (or BUILD_DIR; default: build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${E2E_BUILD:-${BUILD_DIR:-$top/build}}
out=${1:-$top/runs/quickstart}
if [ "$(id -u)" -eq 0 ]; then  # Open MPI refuses root unless told
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$out"
rm -rf "$out/run"
mpirun --oversubscribe -np 2 "$build/launch/e2e-synth" --out "$out/jets.h5" --samples 6000 \
  --size 64 --channels 8 --seed 1
"$build/launch/e2e-data" info "$out/jets.h5" | head -n 12
mpirun --oversubscribe --bind-to none -np 2 "$build/launch/e2e-train" --data "$out/jets.h5" \
  --out "$out/run" --epochs 6 --batch 32 --log-every 30
"$top/launch/plot" "$out/run"
echo "quickstart: metrics in $out/run/metrics.csv, plots in $out/run/*.png, results:"
cat "$out/run/results.json"

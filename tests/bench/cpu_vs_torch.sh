#!/usr/bin/env bash
# Benchmark: our CPU training throughput beside PyTorch's, same model, batch, threads,
# in one run; the ratio, and the fraction of the machine's measured FMA peak each
# reaches. Usage: tests/bench/cpu_vs_torch.sh [BUILD_DIR] [BATCH] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
batch=${2:-32}
threads=${3:-2}
py=${PYTHON:-/usr/bin/python3}

ours=$(OMP_NUM_THREADS=$threads "$build/tests/bench_cpu_train" --batch "$batch" --threads "$threads" --steps 20)
echo "$ours" | sed '$d'
theirs=$(OMP_NUM_THREADS=$threads "$py" "$here/torch_train.py" --batch "$batch" --threads "$threads")
echo "$theirs" | sed '$d'
"$py" - "$(echo "$ours" | tail -n1)" "$(echo "$theirs" | tail -n1)" <<'PY'
import json, sys
o, t = json.loads(sys.argv[1]), json.loads(sys.argv[2])
peak, fl = o["peak_gflops"], o["flop_per_sample"]
print()
print("%-28s %12s %10s %12s" % ("", "samples/s", "GFLOP/s", "% FMA peak"))
for name, sps in (("e2e-ddp (C, direct AVX2)", o["samples_per_s"]),
                  ("PyTorch %s (%s)" % (t["version"], t["format"]), t["samples_per_s"])):
    print("%-28s %12.1f %10.1f %11.1f%%" % (name, sps, sps * fl / 1e9, 100 * sps * fl / 1e9 / peak))
print("ratio e2e-ddp / PyTorch: %.2fx (target >= 1.10x); FMA peak measured: %.1f GFLOP/s, "
      "%.3f GFLOP per training sample" % (o["samples_per_s"] / t["samples_per_s"], peak, fl / 1e9))
PY

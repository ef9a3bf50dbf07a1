#!/usr/bin/env bash
# Benchmark, one run on one GPU: our training throughput (ResNet-15, 125x125x8, batch 256
# and 1024, precisions fp32, tf32, bf16) beside PyTorch's on the same GPU and batch
# (eager fp32, eager AMP bf16 channels_last, torch.compile), the ratios, our fraction
# of the physical floor (convolution FLOPs over the measured bf16 matrix rate, against
# each op's bytes over the measured memory bandwidth), and end-to-end throughput with
# the data path as a fraction of compute only.
# Usage: tests/bench/gpu_vs_torch.sh [BUILD_DIR (default build-cuda)] [SECONDS per measurement]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build-cuda}
seconds=${2:-2}
py=${PYTHON:-python3}
bench=$build/tests/bench_gpu_train

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "gpu_vs_torch: no GPU here (nvidia-smi finds none); this benchmark runs on a GPU machine" >&2
  exit 2
fi
if [ ! -x "$bench" ]; then
  echo "gpu_vs_torch: $bench is missing: configure with -DUSE_CUDA=ON and build first" >&2
  exit 2
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$bench" --peaks | tee "$out/peaks.txt"
for batch in 256 1024; do
  for prec in fp32 tf32 bf16; do
    "$bench" --batch "$batch" --precision "$prec" --seconds "$seconds" | tee "$out/ours_${batch}_${prec}.txt"
  done
done
"$py" "$here/torch_gpu_train.py" --batch 256 --batch 1024 --seconds "$seconds" > "$out/torch.jsonl"

"$py" - "$out" <<'PY'
import glob, json, os, sys
out = sys.argv[1]
last = lambda f: json.loads(open(f).read().strip().splitlines()[-1])
peaks = last(os.path.join(out, "peaks.txt"))
ours = [last(f) for f in sorted(glob.glob(os.path.join(out, "ours_*.txt")))]
theirs = [json.loads(l) for l in open(os.path.join(out, "torch.jsonl")) if l.strip()]
tf, bw = peaks["bf16_tflops"] * 1e12, peaks["bandwidth_gbs"] * 1e9
print()
print("GPU %s: measured bf16 matrix rate %.1f TFLOP/s, copy bandwidth %.1f GB/s"
      % (peaks["gpu"], peaks["bf16_tflops"], peaks["bandwidth_gbs"]))
for batch in (256, 1024):
    t = {r["form"]: r["samples_per_s"] for r in theirs if r["batch"] == batch}
    print("\nbatch %d" % batch)
    print("%-34s %12s %9s %9s %9s %10s %9s"
          % ("", "samples/s", "vs fp32", "vs AMP", "vs comp.", "% floor", "e2e %"))
    order = {"fp32": 0, "tf32": 1, "bf16": 2}
    for r in sorted((r for r in ours if r["batch"] == batch), key=lambda r: order[r["precision"]]):
        floor_s = max(r["flop_per_sample"] / tf, r["bytes_per_sample"] / bw)
        bound = "FLOP" if r["flop_per_sample"] / tf > r["bytes_per_sample"] / bw else "bytes"
        ratio = lambda k: ("%.2fx" % (r["compute_sps"] / t[k])) if t.get(k) else "-"
        print("%-34s %12.1f %9s %9s %9s %9.1f%% %8.1f%%  (floor: %s, %.0f samples/s)"
              % ("e2e-ddp %s" % r["precision"], r["compute_sps"], ratio("eager_fp32"),
                 ratio("eager_amp_bf16_cl"),
                 ratio("compiled_amp_bf16"), 100 * r["compute_sps"] * floor_s,
                 100 * r["e2e_sps"] / r["compute_sps"], bound, 1 / floor_s))
    for form in ("eager_fp32", "eager_amp_bf16_cl", "compiled_amp_bf16"):
        v = t.get(form)
        print("%-34s %12s" % ("PyTorch " + form, "%.1f" % v if v else "failed"))
print("\nratios: our compute-only samples/s over PyTorch's. % floor: the floor's time over ours."
      " e2e %: end to end (pinned binary16 batches, GPU preprocessing) over compute only.")
print("targets: e2e-ddp bf16 >= 2x eager AMP and >= 1.3x torch.compile; e2e >= 90%")
PY

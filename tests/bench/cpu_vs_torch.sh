#!/usr/bin/env bash
# Benchmark: our CPU training throughput beside PyTorch's (same model, batch, threads,
# data), in fp32 and in bf16, in alternating repeats so that other work on a shared
# machine slows every side alike; each side's best repeat counts. Prints our full report
# once per precision (the machine, its vector ISA, the measured FMA and bf16 peaks, the
# engine of every convolution pass and every pass timed on each engine, the per-op
# breakdown), PyTorch's layouts, then a summary per precision: samples/s of each engine
# setting and of PyTorch's layouts (bf16: torch.autocast, NCHW and channels_last), the
# ratio to PyTorch's best layout, the fraction of the measured peak (fp32: FMAs at the
# widest vector; bf16: AMX tiles where the CPU has them, else AVX512-BF16 dot products),
# and our bf16 over our fp32. The machine's load average is printed at each repeat.
# Usage: tests/bench/cpu_vs_torch.sh [--precision fp32,bf16] [--torch-python PY]
#                                    [BUILD_DIR] [BATCH] [THREADS] [REPEATS]
#   (BUILD_DIR: default $E2E_BUILD, else build/)
#   --precision: the precisions to time (default fp32,bf16; bf16 where the CPU has bf16
#     instructions: elsewhere its lines say why not)
#   --torch-python: a second Python whose PyTorch is timed too, in the same repeats (e.g.
#     a venv with PyTorch 2.x from PyPI: python3 -m venv /tmp/torch2 &&
#     /tmp/torch2/bin/pip install torch); the first is $PYTHON, else /usr/bin/python3
#     (Debian's python3-torch, the baseline)
#   STEPS, ROUNDS: each repeat times ROUNDS rounds of STEPS steps per setting and keeps
#   the best (default 10 and 2; on a busy machine e.g. STEPS=2 ROUNDS=8 finds quiet gaps)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
precisions=fp32,bf16
pythons=("${PYTHON:-/usr/bin/python3}")
while [ $# -gt 0 ]; do
  case $1 in
    --precision) precisions=$2; shift 2 ;;
    --torch-python) pythons+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
build=${1:-${E2E_BUILD:-$here/../../build}}
batch=${2:-32}
threads=${3:-2}
repeats=${4:-3}
steps=${STEPS:-10}
rounds=${ROUNDS:-2}

runs=()
for r in $(seq "$repeats"); do
  echo "repeat $r: load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for prec in ${precisions//,/ }; do
    report=$([ "$r" = 1 ] && echo 1 || echo 0)
    if out=$(OMP_NUM_THREADS=$threads "$build/tests/bench_cpu_train" --batch "$batch" --threads "$threads" \
             --steps "$steps" --rounds "$rounds" --report "$report" --precision "$prec" 2>&1); then
      [ "$r" = 1 ] && echo "$out" | sed '$d' && echo
      runs+=("$(echo "$out" | tail -n1)")
    else
      [ "$r" = 1 ] && echo "e2e-ddp $prec: not run: $(echo "$out" | tail -n1)"
      runs+=("{\"impl\": \"e2e-ddp\", \"precision\": \"$prec\", \"failed\": 1}")
    fi
    for py in "${pythons[@]}"; do
      out=$(OMP_NUM_THREADS=$threads "$py" "$here/torch_train.py" --batch "$batch" --threads "$threads" \
            --steps "$steps" --repeats "$rounds" --precision "$prec")
      echo "repeat $r: $(echo "$out" | sed '$d')"
      runs+=("$(echo "$out" | tail -n1)")
    done
  done
done
echo "after the repeats: load average $(cut -d' ' -f1-3 /proc/loadavg)"
"${pythons[0]}" - "${runs[@]}" <<'PY'
import json, sys
runs = [json.loads(a) for a in sys.argv[1:]]
best = lambda key, rs: max(r[key] for r in rs)
fp32_sps = None
for prec in ("fp32", "bf16"):
    ours = [r for r in runs if r["impl"] == "e2e-ddp" and r.get("precision", "fp32") == prec]
    theirs = [r for r in runs if r["impl"] == "pytorch" and r.get("precision", "fp32") == prec]
    if not ours:
        continue
    if any(r.get("failed") for r in ours):
        print("\n%s: e2e-ddp did not run (see above)" % prec)
        continue
    o = ours[0]
    # the peak too is the best measurement: other work only lowers it
    peak, fl = best("peak_gflops", ours), o["flop_per_sample"]
    peak_name = "%d-bit FMA" % o["peak_bits"] if prec == "fp32" else "bf16 (%s)" % o.get("peak_kind", "?")
    rows = [("e2e-ddp %s, engines auto" % prec, best("samples_per_s", ours)),
            ("e2e-ddp %s, engines direct" % prec, best("samples_per_s_direct", ours)),
            ("e2e-ddp %s, engines onednn" % prec, best("samples_per_s_onednn", ours))]
    torch_rows = []
    for version in dict.fromkeys(t["version"] for t in theirs):
        ts = [t for t in theirs if t["version"] == version]
        torch_rows += [("PyTorch %s %s (%s)" % (version, prec, f), max(t["by_format"][f] for t in ts), version)
                       for f in ts[0]["by_format"]]
    print()
    print("summary %s, best of %d repeats (batch %d, %d threads; %.3f GFLOP of convolutions per sample):"
          % (prec, len(ours), o["batch"], o["threads"], fl / 1e9))
    print("  %-42s %10s %9s %14s" % ("", "samples/s", "GFLOP/s", "%% of %s peak" % peak_name))
    for name, sps, *_ in rows + torch_rows:
        if sps > 0:
            print("  %-42s %10.1f %9.1f %13.1f%%" % (name, sps, sps * fl / 1e9, 100 * sps * fl / 1e9 / peak))
    target = "1.10x" if prec == "fp32" else "1.10x with AVX512-BF16, 1.30x with AMX"
    for version in dict.fromkeys(r[2] for r in torch_rows):
        tb = max((r for r in torch_rows if r[2] == version), key=lambda r: r[1])
        print("  ratio e2e-ddp %s (auto) / %s: %.2fx (target >= %s)" % (prec, tb[0], rows[0][1] / tb[1], target))
    if prec == "fp32":
        fp32_sps = rows[0][1]
        narrow = ", %.1f GFLOP/s at 256 bits" % best("peak_gflops_256", ours) if o["peak_bits"] != 256 else ""
        print("  vector ISA: %s; FMA peak measured: %.1f GFLOP/s at %d bits%s"
              % (o["isa"], peak, o["peak_bits"], narrow))
    else:
        print("  bf16 peak measured: %.1f GFLOP/s (%s)" % (peak, o.get("peak_kind", "?")))
        if fp32_sps:
            print("  ratio e2e-ddp bf16 / e2e-ddp fp32 (auto): %.2fx (target >= 2x with AMX)" % (rows[0][1] / fp32_sps))
PY

#!/usr/bin/env bash
# launch/scaling-study on 1 and 2 ranks: weak and strong scaling through mpirun, then
# weak scaling through sbatch on a one-node Slurm. Each writes scaling.csv (time split,
# samples/s, efficiency, the model's prediction beside), the PNG plots and a timeline
# per run (trace.json, one row per rank), and prints
# the performance model's 2-rank prediction beside the 2-rank measurement. Speed itself
# is not asserted (the numbers are printed; a loaded machine must not fail the test).
# Usage: scaling_study.sh E2E_TRAIN E2E_SYNTH E2E_ALLREDUCE_BENCH
. "$(dirname "$0")/lib.sh"
usage_more=" E2E_ALLREDUCE_BENCH"
train_and_synth "$@"
bench=${3:?usage: scaling_study.sh E2E_TRAIN E2E_SYNTH E2E_ALLREDUCE_BENCH}
need gnuplot
study=$E2E_SOURCE/launch/scaling-study

make_jets 2000 4 40
timeout 120 mpirun -np 2 "$bench" --min-time 0.02 --json "$work/net.json" > "$work/bench.out" 2>&1
check "e2e-allreduce-bench measured alpha and beta" test -s "$work/net.json"

png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] && [ "$(stat -c %s "$1")" -gt 5000 ]; }
check_study() {  # check_study DIR MODES...: the CSV, plots and model lines of one study
  local dir=$1 m
  shift
  check "$dir: scaling.csv has one row per mode and count" \
    test "$(tail -n +2 "$dir/scaling.csv" | wc -l)" -eq $((2 * $#))
  for f in throughput efficiency breakdown; do check "$dir/$f.png is a PNG" png "$dir/$f.png"; done
  for t in "$dir"/*-p*/; do
    check "$t: the run's timeline, one row per rank" $PY - "$t" <<'PY'
import json, os, sys
ranks = int(os.path.basename(sys.argv[1].rstrip("/")).split("-p")[1].split("-")[0])
doc = json.load(open(os.path.join(sys.argv[1], "trace.json")))
rows = {e["pid"] for e in doc["traceEvents"] if e["ph"] == "M" and e["name"] == "process_name"}
spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
sys.exit(0 if rows == set(range(ranks)) and {e["pid"] for e in spans} == rows and len(spans) > 20 else 1)
PY
  done
  for m in "$@"; do
    check "$m: the model's 2-rank prediction printed beside the measurement" \
      grep -q "^perf-model: 2 ranks: predicted step .* measured .*efficiency" "$dir/model-$m.txt"
    check "$m: scaling.csv rows are complete and consistent" $PY - "$dir/scaling.csv" "$m" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["mode"] == sys.argv[2]]
ok = [int(r["ranks"]) for r in rows] == [1, 2]
for r in rows:
    f = {k: float(v) for k, v in r.items() if k != "mode"}
    step = f["compute_s"] + f["allreduce_s"] + f["data_s"] + f["sync_s"]
    ok &= abs(step - f["step_s"]) <= 1e-4 * f["step_s"] and f["compute_s"] > 0
    ok &= abs(f["samples_per_s"] - f["global_batch"] / f["step_s"]) <= 1e-3 * f["samples_per_s"]
    ok &= f["pred_step_s"] > 0 and 0 < f["pred_efficiency"] <= 1
one, two = rows
ok &= abs(float(one["efficiency"]) - 1) < 1e-9
# 1 rank: no all-reduce, 0 by definition (not a measured 0; launch/README.md); 2: measured
ok &= float(one["allreduce_s"]) == 0 and float(two["allreduce_s"]) > 0
ok &= abs(float(two["efficiency"]) - float(two["samples_per_s"]) / (2 * float(one["samples_per_s"]))) < 1e-4
print(f"{sys.argv[2]}: 2-rank efficiency {float(two['efficiency']):.3f} measured, {float(two['pred_efficiency']):.3f} predicted")
sys.exit(0 if ok else 1)
PY
  done
}

timeout 400 "$study" --data "$work/jets.h5" --out "$work/mpirun" --ranks 1,2 --mode both --batch 16 \
  --epochs 2 --train "$train" --net "$work/net.json" > "$work/mpirun.out" 2>&1
rc=$?
cat "$work/mpirun.out"
check "scaling-study through mpirun (exit $rc)" test $rc -eq 0
check_study "$work/mpirun" weak strong

start_cluster
timeout 400 "$study" --data "$work/jets.h5" --out "$work/sbatch" --ranks 1,2 --mode weak --batch 16 \
  --epochs 2 --train "$train" --net "$work/net.json" --launcher sbatch > "$work/sbatch.out" 2>&1
rc=$?
tail -n 4 "$work/sbatch.out"
check "scaling-study through sbatch (exit $rc)" test $rc -eq 0
check "its runs were Slurm jobs of the template" grep -q "^e2e-train.sbatch: srun --mpi=pmix" "$work/sbatch/weak-p2/"slurm-*.out
check_study "$work/sbatch" weak

"$study" --data "$work/missing.h5" --out "$work/bad" > "$work/bad.out" 2>&1
check "a missing dataset: exit 2 and its name" bash -c "test $? -eq 2 && grep -q 'missing.h5: no such dataset' '$work/bad.out'"
"$study" --data "$work/jets.h5" --out "$work/bad" --ranks 1,3 --global-batch 32 --train "$train" > "$work/bad.out" 2>&1
check "a global batch that does not split: exit 2" bash -c "test $? -eq 2 && grep -q 'does not split evenly over \[3\]' '$work/bad.out'"
finish

#!/usr/bin/env bash
# The interconnect benchmark and the performance model: e2e-allreduce-bench (2 ranks)
# fits alpha and beta and times the trainer's gradient all-reduce; launch/perf-model
# reads them and predicts 1..1024 ranks by the documented formula; the gradient size the
# model computes equals the C model's arena; bad input gets one clear message.
# Usage: perf_model.sh E2E_ALLREDUCE_BENCH
. "$(dirname "$0")/lib.sh"
bench=${1:?usage: perf_model.sh E2E_ALLREDUCE_BENCH}
model=$E2E_SOURCE/launch/perf-model

timeout 180 mpirun -np 2 "$bench" --min-time 0.02 --json "$work/net.json" > "$work/bench.out" 2>&1
rc=$?
cat "$work/bench.out"
check "e2e-allreduce-bench ran (exit $rc)" test "$rc" -eq 0
check "it wrote alpha > 0, beta > 0, and timed the 90880-float gradient" $PY - "$work/net.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ok = j["ranks"] == 2 and j["alpha_s"] > 0 and j["beta_bytes_per_s"] > 0 and j["grad_floats"] == 90880 \
     and j["grad_allreduce_s"] > 0 and j["allreduce_beta_bytes_per_s"] > 0
sys.exit(0 if ok else 1)
PY

# the model's arena (Python) against the C model's (the benchmark asks net/ for it)
for shape in "8 2 3" "3 0 2" "5 1 1"; do
  set -- $shape
  c_floats=$(timeout 60 mpirun -np 2 "$bench" --channels "$1" --scalars "$2" --blocks "$3" --max-bytes 64 --min-time 0.001 |
             sed -n 's/.*gradient: \([0-9]*\) floats.*/\1/p')
  py_floats=$("$model" --step-time 0.01 --batch 1 --alpha 1e-6 --beta 1e9 --channels "$1" --scalars "$2" --blocks "$3" --max-ranks 1 |
              sed -n 's/.*arena \([0-9]*\) floats.*/\1/p')
  check "arena of C=$1 S=$2 blocks=$3: perf-model $py_floats = net/ ${c_floats:-none}" test -n "$c_floats" -a "$py_floats" = "$c_floats"
done

# the prediction: every p from 1 to 1024, efficiency 1 at p=1 and never rising (weak
# scaling), and the p=2 all-reduce term equal to 2 alpha + n/beta + 2 alpha
"$model" --net "$work/net.json" --step-time 0.05 --batch 16 --csv "$work/pred.csv" | tee "$work/model.out"
check "weak-scaling prediction follows the formula" $PY - "$work/net.json" "$work/pred.csv" <<'PY'
import csv, json, sys
j = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
p = [int(float(r["ranks"])) for r in rows]
eff = [float(r["efficiency"]) for r in rows]
a, b, n = j["allreduce_alpha_s"], j["allreduce_beta_bytes_per_s"], 4 * 90880
t2 = float(rows[1]["allreduce_s"])
expect = 2 * a + n / b + 2 * a
ok = p == [2 ** k for k in range(11)] and abs(eff[0] - 1) < 1e-9 \
     and all(x >= y - 1e-12 for x, y in zip(eff, eff[1:])) and abs(t2 - expect) <= 1e-5 * expect
print(f"p=2 all-reduce term {t2:.6g} s, formula {expect:.6g} s")
sys.exit(0 if ok else 1)
PY
"$model" --alpha 5e-6 --beta 2e10 --step-time 0.05 --batch 16 --mode strong --global-batch 1024 \
  --csv "$work/strong.csv" > "$work/strong.out"
check "strong scaling flags the tiny per-rank batches" grep -q "tiny per-rank batch" "$work/strong.out"

# bad input: one message, non-zero exit
"$model" --alpha 1e-6 --beta 1e9 > "$work/bad1.out" 2>&1
check "no 1-rank measurement: exit 2 and a message" bash -c "test $? -eq 2 && grep -q '^perf-model: no 1-rank measurement' '$work/bad1.out'"
"$model" --net "$work/missing.json" --step-time 0.05 --batch 16 > "$work/bad2.out" 2>&1
check "missing --net file: exit 1 and its name" bash -c "test $? -eq 1 && grep -q 'missing.json' '$work/bad2.out'"
timeout 60 mpirun -np 1 "$bench" > "$work/bad3.out" 2>&1
check "the benchmark on 1 rank: exit 2 and a message" bash -c "test $? -eq 2 && grep -q 'needs at least 2 ranks' '$work/bad3.out'"
finish

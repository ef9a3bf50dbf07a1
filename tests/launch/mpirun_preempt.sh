#!/usr/bin/env bash
# Plain mpirun (launch/e2e-train-mpirun), 2 ranks: SIGTERM to the script during training
# -> the ranks checkpoint and the script exits 75; the same command again resumes and
# finishes with bitwise the same final model and optimizer state, and the same metrics,
# as an uninterrupted run. Bad command lines get one message and exit 2.
# Usage: mpirun_preempt.sh E2E_TRAIN E2E_SYNTH
. "$(dirname "$0")/lib.sh"
train_and_synth "$@"
export E2E_TRAIN=$train
wrapper=$E2E_SOURCE/launch/e2e-train-mpirun

make_jets 1000 11 64
args=(--data "$work/jets.h5" --epochs 3 --batch 16 --seed 3 --log-every 2 --threads 1)

timeout 300 "$wrapper" -np 2 "${args[@]}" --out "$work/ref" > "$work/ref.out" 2>&1
check "uninterrupted run exits 0" test $? -eq 0

"$wrapper" -np 2 "${args[@]}" --out "$work/pre" > "$work/pre1.out" 2>&1 &
pid=$!
if wait_for 120 "a progress line" grep -q "^epoch 1/3  step" "$work/pre1.out"; then
  kill -TERM "$pid"
fi
# bounded: the script is killed if it has not exited 120 s after the signal
wait_for 120 "the script to exit" bash -c "! kill -0 $pid 2>/dev/null" || kill -KILL "$pid"
wait "$pid"
rc=$?
cat "$work/pre1.out" | grep -v "^epoch .*  step"
check "SIGTERM: the script exits 75 (got $rc)" test "$rc" -eq 75
check "the ranks wrote a checkpoint and asked to be requeued" grep -q "stop requested: checkpoint written" "$work/pre1.out"
timeout 300 "$wrapper" -np 2 "${args[@]}" --out "$work/pre" > "$work/pre2.out" 2>&1
check "the same command again finishes (exit 0)" test $? -eq 0
check "and resumed from the checkpoint" grep -q "^e2e-train: resumed from " "$work/pre2.out"

check_same_training "$work/ref" "$work/pre"

"$wrapper" --data x > "$work/bad.out" 2>&1
check "no -np: exit 2 and a message" bash -c "test $? -eq 2 && grep -q 'give the number of ranks' '$work/bad.out'"
"$wrapper" -np 2 --hostfile "$work/nope" --data x > "$work/bad.out" 2>&1
check "unreadable hostfile: exit 2 and its name" bash -c "test $? -eq 2 && grep -q 'nope: cannot read' '$work/bad.out'"
finish

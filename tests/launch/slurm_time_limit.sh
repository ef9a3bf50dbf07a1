#!/usr/bin/env bash
# The time limit, with nobody calling scancel: launch/e2e-train.sbatch submitted with
# --time=1 (minute) and --signal=USR1@55, so that Slurm's own timer sends SIGUSR1 to the
# job step 55 s before the limit. slurmctld looks at time limits every 30 s, so the signal
# comes 5 to 35 s after a start. The number of epochs is measured, not guessed: one
# epoch under mpirun first, then enough epochs for about 70 s of training on this
# machine, so the job needs more than one start whatever the CPU: each start stops with
# a checkpoint before the limit, the template requeues the job, and the job finishes
# without ever being killed by the limit.
# Usage: slurm_time_limit.sh E2E_TRAIN E2E_SYNTH
. "$(dirname "$0")/lib.sh"
train_and_synth "$@"
start_cluster

make_jets 4000 9 64
timeout 300 mpirun -np 2 "$train" --data "$work/jets.h5" --epochs 1 --batch 16 --threads 1 \
  --out "$work/calibrate" > "$work/calibrate.out" 2>&1
epoch_s=$(sed -n 's/^epoch 1\/1 done: .*(\([0-9.]*\) s, .*/\1/p' "$work/calibrate.out")
check "one epoch timed under mpirun (${epoch_s:-none} s)" test -n "$epoch_s"
[ -n "$epoch_s" ] || { cat "$work/calibrate.out"; finish; }
epochs=$(awk -v t="$epoch_s" 'BEGIN { e = int(70 / t) + 1; print (e < 3 ? 3 : e > 150 ? 150 : e) }')
note "an epoch takes $epoch_s s: $epochs epochs"
jid=$(E2E_TRAIN=$train timeout 20 sbatch --parsable --nodes=1 --ntasks-per-node=2 --gpus-per-node=0 \
  --cpus-per-task=1 --time=1 --signal=USR1@55 --output="$work/job.out" \
  "$E2E_SOURCE/launch/e2e-train.sbatch" --data "$work/jets.h5" --epochs $epochs --batch 16 --out "$work/run")
check "sbatch accepted the job" test -n "$jid"
wait_for 400 "the job to end" job_gone "$jid"
grep -v "^epoch .*  step" "$work/job.out"

stops=$(grep -c "stop requested: checkpoint written" "$work/job.out")
note "$stops stop(s) before the time limit"
check "Slurm's timer signal stopped e2e-train with a checkpoint at least once" test "$stops" -ge 1
check "each stop was requeued" test "$(grep -c '^e2e-train.sbatch: requeued$' "$work/job.out")" -eq "$stops"
check "each requeued start resumed" test "$(grep -c '^e2e-train: resumed from ' "$work/job.out")" -eq "$stops"
check "never killed by the time limit" bash -c "! grep -q 'DUE TO TIME LIMIT' '$work/job.out'"
check "the last start finished (exit 0)" grep -q "^e2e-train.sbatch: e2e-train exited with 0" "$work/job.out"
check "Slurm recorded the job as done with 0" test "$(job_exit "$jid")" = 0
check "metrics.csv has $epochs epochs" test "$(tail -n +2 "$work/run/metrics.csv" | wc -l)" -eq $epochs
finish

#!/usr/bin/env bash
# launch/e2e-train.sbatch on a real one-node Slurm (launch/local-slurm.sh), 2 tasks on CPU:
#  1. an uninterrupted job trains on a small generated dataset and writes its metrics;
#     its two e2e-train processes were started by slurmstepd through `srun --mpi=pmix`
#     (seen in /proc while they run: parent slurmstepd, PMIx rank in the environment);
#  2. a job preempted twice: `scancel --signal=USR1` (Slurm signals the job step, as
#     --signal=USR1@120 does before the time limit), and after the requeued start
#     `scancel --batch --signal=USR1` (only the batch shell, as --signal=B:USR1@120 does;
#     the template forwards it). Each time: checkpoint, exit 75, scontrol requeue, resume.
#     The job then finishes with bitwise the same final model and optimizer state as the
#     uninterrupted job, and the same metrics.
# Usage: slurm_train.sh E2E_TRAIN E2E_SYNTH
. "$(dirname "$0")/lib.sh"
train_and_synth "$@"
start_cluster

make_jets 1000 7 64
epochs=4
args=(--data "$work/jets.h5" --epochs $epochs --batch 16 --seed 5 --log-every 2)
submit() {  # submit NAME: the template with 2 tasks on CPU; prints the job id
  E2E_TRAIN=$train timeout 20 sbatch --parsable --job-name="$1" --nodes=1 --ntasks-per-node=2 \
    --gpus-per-node=0 --cpus-per-task=1 --time=10 --output="$work/$1.out" \
    "$E2E_SOURCE/launch/e2e-train.sbatch" "${args[@]}" --out "$work/$1"
}
in_log() { grep -q -- "$2" "$work/$1.out" 2>/dev/null; }
count_in_log() { grep -c -- "$2" "$work/$1.out" 2>/dev/null; }

two_tasks() { [ "$(job_tasks "$1" | wc -l)" -eq 2 ]; }
# "parent-comm PMIX_RANK SLURM_MPI_TYPE SLURM_STEP_ID" of a process
describe_task() {
  local ppid env
  ppid=$(awk '{print $4}' "/proc/$1/stat")
  env=$(tr '\0' '\n' < "/proc/$1/environ")
  echo "$(cat "/proc/$ppid/comm") $(sed -n 's/^PMIX_RANK=//p' <<< "$env") $(sed -n 's/^SLURM_MPI_TYPE=//p' <<< "$env") $(sed -n 's/^SLURM_STEP_ID=//p' <<< "$env")"
}

# ---- 1. uninterrupted
ref=$(submit ref)
check "sbatch accepted the reference job" test -n "$ref"
if wait_for 120 "the reference job's two e2e-train tasks" two_tasks "$ref"; then
  seen=$(for p in $(job_tasks "$ref"); do describe_task "$p"; done | sort)
  note "reference job's tasks (parent, PMIX_RANK, SLURM_MPI_TYPE, step): $(echo $seen)"
  check "both tasks started by slurmstepd with PMIx ranks 0 and 1 (srun --mpi=pmix)" \
    test "$seen" = "slurmstepd 0 pmix 0
slurmstepd 1 pmix 0"
fi
wait_for 300 "the reference job to end" job_gone "$ref"
check "the reference job exited 0" test "$(job_exit "$ref")" = 0
check "the template launched srun --mpi=pmix" in_log ref "^e2e-train.sbatch: srun --mpi=pmix .*e2e-train --resume auto "
check "e2e-train ran 2 ranks" in_log ref "^e2e-train: 2 ranks on cpu"
check "metrics.csv has $epochs epochs" test "$(tail -n +2 "$work/ref/metrics.csv" | wc -l)" -eq $epochs
check "results.json written" test -s "$work/ref/results.json"
check "not preempted" test "$(count_in_log ref "stop requested")" -eq 0

# ---- 2. preempted twice, requeued, finished
pre=$(submit pre)
check "sbatch accepted the job to preempt" test -n "$pre"
if wait_for 120 "the first progress line" in_log pre "^epoch 1/$epochs  step"; then
  note "scancel --signal=USR1 $pre (the job step)"
  timeout 20 scancel --signal=USR1 "$pre"
fi
wait_for 120 "the first stop" in_log pre "stop requested: checkpoint written"
wait_for 120 "the requeued start" in_log pre "start 2 (SLURM_RESTART_COUNT=1)"
if wait_for 120 "a progress line after the first resume" \
     bash -c "sed -n '/resumed from/,\$p' '$work/pre.out' | grep -q '^epoch .*  step'"; then
  note "scancel --batch --signal=USR1 $pre (the batch shell only)"
  timeout 20 scancel --batch --signal=USR1 "$pre"
fi
wait_for 120 "the second stop" bash -c "[ \$(grep -c 'stop requested: checkpoint written' '$work/pre.out') -ge 2 ]"
wait_for 300 "the preempted job to end" job_gone "$pre"
echo "---- $work/pre.out without progress lines"
grep -v "^epoch .*  step" "$work/pre.out"

check "the job step got SIGUSR1 and e2e-train stopped with a checkpoint, exit 75" \
  test "$(count_in_log pre "e2e-train: stop requested: checkpoint written .*exiting with 75")" -eq 2
check "the template requeued the job twice" test "$(count_in_log pre "^e2e-train.sbatch: requeued$")" -eq 2
check "the batch shell forwarded its SIGUSR1" in_log pre "this shell got SIGUSR1"
check "three starts, the same job id" bash -c "grep -q '^e2e-train.sbatch: job $pre, start 3 (SLURM_RESTART_COUNT=2)' '$work/pre.out'"
check "both restarts resumed from a checkpoint" test "$(count_in_log pre "^e2e-train: resumed from ")" -eq 2
check "the last start finished (exit 0)" in_log pre "^e2e-train.sbatch: e2e-train exited with 0"
check "Slurm recorded the job as done with 0" test "$(job_exit "$pre")" = 0
check "results.json written" test -s "$work/pre/results.json"

check_same_training "$work/ref" "$work/pre"
finish

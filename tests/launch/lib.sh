# Shared by the launch tests (sourced): checks with a tally, bounded waits, a private
# one-node Slurm cluster that is always stopped on exit, and the paths of the build.
#   E2E_SOURCE  the source tree (set by CMake; default: two folders up)
#   E2E_BUILD   the build tree (set by CMake; default: $E2E_SOURCE/build); exported, so
#               the launch scripts a test runs (scaling-study, e2e-train-mpirun,
#               e2e-train.sbatch) take their programs from the same build
# Exit 77 (ctest: skipped) only where a needed program is not installed at all.

set -uo pipefail
test_name=$(basename "$0" .sh)
E2E_SOURCE=${E2E_SOURCE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export E2E_BUILD=${E2E_BUILD:-$E2E_SOURCE/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# h5py and numpy of Debian's python3 (not a python3 found first on PATH)
PY=/usr/bin/python3

passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/$test_name.XXXXXX")
cluster=""

note() { echo "$test_name: $*"; }

check() {  # check DESCRIPTION COMMAND...: passes when COMMAND succeeds
  local what=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "$test_name: FAILED: $what" >&2
  fi
}

finish() {
  echo "$test_name: $passed checks passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
  exit $?
}

skip() { echo "$test_name: skipped: $*"; exit 77; }

need() {  # need PROGRAM...: skip when one is not installed
  local p
  for p in "$@"; do command -v "$p" >/dev/null 2>&1 || skip "$p not installed (launch/install-deps.sh)"; done
}

cleanup() {
  local rc=$?
  if [ -n "$cluster" ]; then
    if [ "$failed" -gt 0 ] || [ "$rc" -ne 0 ]; then
      for f in "$cluster"/log/*.log; do
        [ -f "$f" ] && { echo "---- $f (last 15 lines)"; tail -n 15 "$f"; }
      done
    fi
    "$E2E_SOURCE/launch/local-slurm.sh" stop "$cluster" >/dev/null || true
  fi
  if [ "$failed" -eq 0 ] && { [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; }; then rm -rf "$work"; else echo "$test_name: files kept in $work"; fi
}
trap cleanup EXIT
trap 'echo "$test_name: interrupted"; exit 1' INT TERM

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s until it succeeds;
# on timeout, count a failure and return 1
wait_for() {
  local limit=$1 what=$2 t0=$SECONDS
  shift 2
  while ! "$@"; do
    if [ $((SECONDS - t0)) -ge "$limit" ]; then
      failed=$((failed + 1))
      echo "$test_name: FAILED: timed out after ${limit} s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}

# start_cluster [--nodes N]: a private Slurm for this test (launch/local-slurm.sh start
# with these options); sets SLURM_CONF. With --nodes, the test is skipped where this
# machine cannot host namespaced nodes (not root, no ip/unshare, namespaces refused).
start_cluster() {
  need munged slurmctld slurmd sbatch srun
  local t0 t1 envs why
  if [ "${1:-}" = --nodes ]; then
    why=$("$E2E_SOURCE/launch/local-slurm.sh" check-nodes 2>&1) || skip "${why#local-slurm: }"
  fi
  t0=$(date +%s.%N)
  # --owner: the cluster stops itself if this test is killed before its cleanup runs
  envs=$(timeout 60 "$E2E_SOURCE/launch/local-slurm.sh" start "$@" --owner $$ "$work/slurm") ||
    { cluster=$work/slurm; echo "$test_name: FAILED: the local Slurm did not start" >&2; failed=$((failed + 1)); finish; }
  t1=$(date +%s.%N)
  eval "$envs"
  cluster=$E2E_SLURM_DIR
  note "local Slurm ($*) up in $(awk "BEGIN {printf \"%.2f\", $t1 - $t0}") s ($SLURM_CONF)"
}

# stop_cluster: stops it now (cleanup would at exit); the seconds it took in $stop_s
stop_cluster() {
  local t0=$SECONDS
  "$E2E_SOURCE/launch/local-slurm.sh" stop "$cluster" >/dev/null
  cluster=""
  stop_s=$((SECONDS - t0))
}

# the e2e-train processes of job $1 of this test's cluster
job_tasks() {
  local p env
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = e2e-train ] || continue
    env=$(tr '\0' '\n' 2>/dev/null < "$p/environ")
    grep -qx "SLURM_JOB_ID=$1" <<< "$env" && grep -qx "SLURM_CONF=$SLURM_CONF" <<< "$env" && echo "${p#/proc/}"
  done
  return 0
}
# task_env PID NAME: a variable of a process's environment
task_env() { tr '\0' '\n' 2>/dev/null < "/proc/$1/environ" | sed -n "s/^$2=//p"; }

job_state() { timeout 10 squeue -h -j "$1" -o %T 2>/dev/null; }
job_gone() { [ -z "$(job_state "$1")" ]; }
# the job's final state from slurmctld's log ("done" with its exit status)
job_exit() { grep -o "_job_complete: JobId=$1 WEXITSTATUS [0-9]*" "$cluster/log/slurmctld.log" | tail -n 1 | awk '{print $NF}'; }

# make_jets SAMPLES SEED SIZE: $work/jets.h5 from e2e-synth ($synth), 8 channels; a
# failure ends the test
make_jets() {
  timeout 120 mpirun -np 2 "$synth" --out "$work/jets.h5" --samples "$1" --seed "$2" --size "$3" --channels 8 ||
    { check "e2e-synth wrote the dataset" false; finish; }
}

# check_same_training REF RUN: the newest checkpoint of run folder RUN holds bitwise the
# model and optimizer state of REF's, and both wrote the same metrics (epoch, lr, losses,
# MAE, MRE; times differ), each epoch once
check_same_training() {
  local ref=$1 run=$2 final
  final=$(ls "$ref/checkpoints" | grep '^ckpt-' | sort | tail -n 1)
  check "the same final checkpoint name (${final:-none})" test -n "$final" -a -f "$run/checkpoints/$final"
  if [ -n "$final" ] && [ -f "$run/checkpoints/$final" ]; then
    check "final model and optimizer bitwise equal to the uninterrupted run's" \
      $PY "$E2E_SOURCE/tests/launch/compare_ckpt.py" "$ref/checkpoints/$final" "$run/checkpoints/$final"
  fi
  check "the same metrics per epoch, once each" \
    test "$(cut -d, -f1-6 "$ref/metrics.csv")" = "$(cut -d, -f1-6 "$run/metrics.csv")"
}

# train_and_synth "$@": the arguments of the training tests (E2E_TRAIN E2E_SYNTH ...)
# into $train and $synth
train_and_synth() {
  [ $# -ge 2 ] || { echo "usage: $test_name.sh E2E_TRAIN E2E_SYNTH${usage_more:-}" >&2; exit 2; }
  train=$1
  synth=$2
  need mpirun
}

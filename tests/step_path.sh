#!/usr/bin/env bash
# The path of the trainer's set-up and of one training batch through the source files of
# a tree, measured from its own calls at run time, and its lines of code per folder: to
# state a change of layout as "before: N stops in M files, R returns, K climbs; after".
#
# usage: tests/step_path.sh SRC OUT      e.g. tests/step_path.sh /tmp/base /tmp/sp-before
#
# 1. builds SRC (any revision of e2e-ddp) in OUT/build with -finstrument-functions
#    (-DE2E_BUILD_TESTS=OFF; only e2e-train and e2e-synth), and tests/step_trace.c of
#    this checkout as OUT/step_trace.so, an LD_PRELOAD tracer of the calls;
# 2. trains 1 rank on OUT/jets.h5 (e2e-synth: 600 jets, 3 x 32 x 32, seed 1) with
#    --epochs 1 --batch 8 --prefetch 0 --threads 1 (the batch is read in the step's own
#    thread) and E2E_CPU_CONV=direct E2E_CPU_CONV_PLAN=none (no timing of engines that
#    could pick another path), twice: once tracing the set-up window, from the entry of
#    START_FN to the entry of the first call of STEP_FN; once the batch window, the whole
#    STEP_N-th call of STEP_FN (read of the batch, forward, backward, all-reduce, update);
# 3. prints, for each window, tests/step_path.py's counts and path (definitions of stop,
#    return, climb, round trip: its header), then the lines of code of SRC. Everything
#    also goes to OUT/report.txt; the raw traces are OUT/setup.trace, OUT/batch.trace.
#
# Environment: STEP_FN (train_step), START_FN (trainer_run): the functions' names in
# SRC, for a layout that renames them; STEP_N (3); STEP_PATH_LEAVES (net/cpu net/cuda):
# folders whose files' calls to each other are folded (step_path.py). Lines of code
# alone: tests/step_path.py loc SRC.
set -euo pipefail
[ $# = 2 ] || { grep -m1 '^# usage:' "$0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
step_fn=${STEP_FN:-train_step} start_fn=${START_FN:-trainer_run} step_n=${STEP_N:-3}
[ "$(id -u)" != 0 ] || export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

build() {
  cc -shared -fPIC -O2 -Wall -o "$out/step_trace.so" "$here/step_trace.c" -ldl
  cmake -S "$src" -B "$out/build" -DCMAKE_BUILD_TYPE=Release -DE2E_BUILD_TESTS=OFF \
    -DCMAKE_C_FLAGS="-g -finstrument-functions -finstrument-functions-exclude-file-list=/usr/" \
    > "$out/configure.log"
  cmake --build "$out/build" -j2 --target e2e-train e2e-synth > "$out/build.log"
}

# offset of a function of e2e-train (hex), from its symbol table: exactly one
offset() {
  local at
  at=$(nm --defined-only "$out/build/launch/e2e-train" | awk -v f="$1" '$3 == f { print $1 }')
  [ "$(printf '%s\n' "$at" | grep -c .)" = 1 ] || {
    echo "step_path.sh: no single function '$1' in $src's e2e-train (set STEP_FN/START_FN)" >&2
    exit 1
  }
  echo "$at"
}

trace() {  # trace MODE: OUT/MODE.trace
  local run="$out/run-$1"
  rm -rf "$run"
  env STEP_TRACE_OUT="$out/$1.trace" STEP_TRACE_MODE="$1" STEP_TRACE_N="$step_n" \
    STEP_TRACE_START="$start_at" STEP_TRACE_STEP="$step_at" \
    E2E_CPU_CONV=${E2E_CPU_CONV:-direct} E2E_CPU_CONV_PLAN=none \
    mpirun --oversubscribe -np 1 -x LD_PRELOAD="$out/step_trace.so" \
    -x STEP_TRACE_OUT -x STEP_TRACE_MODE -x STEP_TRACE_N -x STEP_TRACE_START \
    -x STEP_TRACE_STEP -x E2E_CPU_CONV -x E2E_CPU_CONV_PLAN \
    "$out/build/launch/e2e-train" --data "$out/jets.h5" --out "$run" --epochs 1 --batch 8 \
    --prefetch 0 --threads 1 > "$out/train-$1.log" 2>&1 ||
    { echo "step_path.sh: e2e-train failed, see $out/train-$1.log" >&2; exit 1; }
}

echo "step_path.sh: building $src in $out/build" >&2
build
start_at=$(offset "$start_fn")
step_at=$(offset "$step_fn")
rm -f "$out/jets.h5"
"$out/build/launch/e2e-synth" --out "$out/jets.h5" --samples 600 --size 32 --channels 3 \
  --seed 1 > "$out/synth.log"
trace setup
trace batch
exe="$out/build/launch/e2e-train"
{
  echo "tree: $src ($(git -C "$src" log -1 --format='%h %s' 2>/dev/null | cut -c1-70))"
  echo
  python3 "$here/step_path.py" path "$exe" "$src" "$out/setup.trace" \
    "set-up: $start_fn entry to the first $step_fn entry"
  python3 "$here/step_path.py" path "$exe" "$src" "$out/batch.trace" \
    "one batch: call $step_n of $step_fn, entry to exit"
  python3 "$here/step_path.py" loc "$src"
} | tee "$out/report.txt"

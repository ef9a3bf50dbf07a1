#!/usr/bin/env bash
# A longer fuzzing session than CI's (tests/sanitize.sh fuzzes each harness for 10 s):
#   tests/fuzz/run.sh [SECONDS] [HARNESS...]
# fuzzes each harness (dense_reader sparse_reader file_list checkpoint; default all) for
# SECONDS (default 600) in the sanitizer build (build-sanitize/, made here when missing),
# one after the other. The corpus grows in build-sanitize/tests/fuzz-corpus/HARNESS
# (kept between sessions); an input that crashes or draws a sanitizer report is written
# to build-sanitize/tests/fuzz-findings/HARNESS-crash-*: fix the cause, then copy the
# input to tests/fuzz/regress/HARNESS/ under a name saying what it found (the
# fuzz_*_corpus tests replay it in every build from then on).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${SANITIZE_BUILD_DIR:-$top/build-sanitize}
seconds=${1:-600}
shift || true
harnesses=${*:-dense_reader sparse_reader file_list checkpoint}
if [ ! -x "$build/tests/fuzz_checkpoint" ]; then
  CC=${SANITIZE_CC:-clang} cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DE2E_SANITIZE=address,undefined -DE2E_FUZZ=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target sanitize_targets >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for h in $harnesses; do
  corpus=$build/tests/fuzz-corpus/$h
  mkdir -p "$corpus" "$build/tests/fuzz-findings"
  echo "fuzz/run.sh: $h for $seconds s"
  if ! "$build/tests/fuzz_$h" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2560 -print_final_stats=1 \
       -artifact_prefix="$build/tests/fuzz-findings/$h-" "$corpus" "$top/tests/fuzz/corpus/$h" \
       "$top/tests/fuzz/regress/$h" 2>"$build/tests/fuzz-findings/$h.log"; then
    echo "fuzz/run.sh: $h found something: $build/tests/fuzz-findings/$h.log" >&2
    status=1
  fi
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb|cov:" "$build/tests/fuzz-findings/$h.log" | tail -3
done
exit $status

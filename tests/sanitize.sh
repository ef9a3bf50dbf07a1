#!/usr/bin/env bash
# The sanitizer configuration: e2e-ddp built by clang with AddressSanitizer and
# UndefinedBehaviorSanitizer (-DE2E_SANITIZE=address,undefined) and the libFuzzer
# harnesses of tests/fuzz/ (-DE2E_FUZZ=ON) in build-sanitize/, then the tests labelled
# "sanitize": the data tests (format, reader, bad input, sparse files, the tools), the
# checkpoint tests, the trainer's bad-data and bad-checkpoint tests, the fuzz corpora and
# a bounded fuzzing run of each harness (FUZZ_SECONDS each, default 10). Any sanitizer
# report fails its test. tests/run.sh runs this after the main suite; CI installs clang
# and libclang-rt-14-dev (launch/install-deps.sh). Longer fuzzing: tests/fuzz/run.sh.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${SANITIZE_BUILD_DIR:-$top/build-sanitize}
cc=${SANITIZE_CC:-clang}
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
     "$cc" -fsanitize=fuzzer,address,undefined -x c - -o /dev/null 2>/dev/null; then
  echo "sanitize.sh: $cc cannot build libFuzzer programs (Debian: apt-get install clang libclang-rt-14-dev," \
       "as launch/install-deps.sh does)" >&2
  exit 1
fi
CC=$cc cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DE2E_SANITIZE=address,undefined \
      -DE2E_FUZZ=ON -DE2E_FUZZ_SECONDS="${FUZZ_SECONDS:-10}" >/dev/null
cmake --build "$build" -j"$(nproc)" --target sanitize_targets
# Leaks: Open MPI, HDF5 and the other libraries keep memory to the end (suppressed by
# tests/sanitize/lsan.supp, which needs the slow unwinder to see their frames, and their
# plugins kept loaded to name them); ours are reported. Allocations too large to make
# return NULL, as malloc does, so a file asking for terabytes meets our own message.
export ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0:allocator_may_return_null=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$top/tests/sanitize/lsan.supp:print_suppressions=0
export OMPI_MCA_mca_base_component_disable_dlclose=1 PMIX_MCA_mca_base_component_disable_dlclose=1
cd "$build"
ctest --output-on-failure --timeout 900 -L sanitize

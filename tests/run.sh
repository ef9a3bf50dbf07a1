#!/usr/bin/env bash
# The test command: builds e2e-ddp (Release) and runs every test with ctest. GPU tests
# report as skipped on machines without a GPU.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure --timeout 900

#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install the dependencies, build e2e-ddp
# (Release, CPU), and run a real small training run on a generated dataset
# (launch/quickstart.sh: 2 ranks, a few minutes on 2 cores). The build folder is
# E2E_BUILD (default: build/).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
export E2E_BUILD=${E2E_BUILD:-$top/build}
"$top/launch/install-deps.sh"
cmake -S "$top" -B "$E2E_BUILD" -DCMAKE_BUILD_TYPE=Release
cmake --build "$E2E_BUILD" -j"$(nproc)"
"$top/launch/quickstart.sh"

#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install the dependencies, build e2e-ddp
# (Release, CPU), and run a real small training run on a generated dataset
# (launch/quickstart.sh: 2 ranks, a few minutes on 2 cores).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/launch/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$top/build" -j"$(nproc)"
"$top/launch/quickstart.sh"

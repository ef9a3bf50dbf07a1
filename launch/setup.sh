#!/usr/bin/env bash
# One command for a fresh Debian 12 machine: install the dependencies, build e2e-ddp
# (Release, CPU; also CUDA when the toolkit is in /usr/local/cuda), and run a short
# training demo that shows the loss falling.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/launch/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$top/build" -j"$(nproc)"
"$top/build/launch/e2e-demo"

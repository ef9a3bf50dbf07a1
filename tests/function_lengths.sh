#!/usr/bin/env bash
# Lists C/CUDA functions longer than N lines (default 80), longest first.
# usage: tests/function_lengths.sh [N] [DIR...]   (default: net data dist launch tests)
set -euo pipefail
limit=${1:-80}; shift || true
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dirs=("$@"); [ ${#dirs[@]} -gt 0 ] || dirs=(net data dist launch tests)
find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) | sort |
  xargs ctags --langmap=C:+.cu --c-kinds=f --fields=+ne -o - |
  awk -F'\t' -v limit="$limit" '{
    line = 0; end = 0
    for (i = 4; i <= NF; i++) {
      if ($i ~ /^line:/) line = substr($i, 6)
      if ($i ~ /^end:/) end = substr($i, 5)
    }
    n = end - line + 1
    if (end && n > limit) printf "%5d  %s:%d  %s\n", n, $2, line, $1
  }' | sort -rn

#!/usr/bin/env bash
# Lists C/CUDA functions longer than N lines (default 80), longest first; with --check
# it fails when there is one (ctest function_lengths: net data dist launch, 80 lines).
# usage: tests/function_lengths.sh [--check] [N] [DIR...]   (default: net data dist launch tests)
set -euo pipefail
check=0
[ "${1:-}" = --check ] && { check=1; shift; }
limit=${1:-80}; shift || true
command -v ctags >/dev/null || { echo "function_lengths.sh: needs ctags (universal-ctags)" >&2; exit 1; }
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
dirs=("$@"); [ ${#dirs[@]} -gt 0 ] || dirs=(net data dist launch tests)
long=$(find "${dirs[@]}" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' \) | sort |
  xargs ctags --langmap=C:+.cu --c-kinds=f --fields=+ne -o - |
  awk -F'\t' -v limit="$limit" '{
    line = 0; end = 0
    for (i = 4; i <= NF; i++) {
      if ($i ~ /^line:/) line = substr($i, 6)
      if ($i ~ /^end:/) end = substr($i, 5)
    }
    n = end - line + 1
    if (end && n > limit) printf "%5d  %s:%d  %s\n", n, $2, line, $1
  }' | sort -rn)
[ -z "$long" ] || echo "$long"
if [ $check = 1 ] && [ -n "$long" ]; then
  echo "function_lengths.sh: $(echo "$long" | wc -l) function(s) over $limit lines in ${dirs[*]}: split them" >&2
  exit 1
fi
[ $check = 0 ] || echo "function_lengths.sh: no function over $limit lines in ${dirs[*]}"

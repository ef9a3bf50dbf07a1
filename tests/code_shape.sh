#!/usr/bin/env bash
# The shape of the C/CUDA code, four rules, each violation listed as file:line:
#   functions     no function longer than 60 lines (--max-function N)
#   files         no source file (.c .h .cu) longer than 600 lines (--max-file N)
#   mutual_calls  no two files of one folder that call each other's functions: A calls
#                 a non-static function defined in B and B one defined in A (X.c, X.cu
#                 and X.h are one unit X; headers only declare)
#   file_comments every source file opens with a comment saying what it is for
# With --check it exits 1 when a rule is broken (ctest code_shape_*: net data dist launch;
# tests/code_shape_selftest.sh shows that each rule can fail). Needs universal-ctags.
# usage: tests/code_shape.sh [--check] [--max-function N] [--max-file N]
#                            [functions|files|mutual_calls|file_comments|all] [DIR...]
#   (default: all, in net data dist launch; DIRs relative to the source tree or absolute)
set -euo pipefail
me=code_shape.sh
check=0 max_function=60 max_file=600 rule=all

sources() {  # sources EXT...: the files with those extensions under the DIRs, sorted
  local args=() e
  for e in "$@"; do args+=(${args[0]+-o} -name "*.$e"); done
  find "${dirs[@]}" -type f \( "${args[@]}" \) | LC_ALL=C sort
}

# functions longer than max_function lines, longest first: "file:line: NAME is N lines"
long_functions() {
  sources c h cu | xargs -r ctags --langmap=C:+.cu --kinds-C=f --fields=+ne -o - |
    awk -F'\t' -v limit="$max_function" '{
      line = 0; end = 0
      for (i = 4; i <= NF; i++) {
        if ($i ~ /^line:/) line = substr($i, 6)
        if ($i ~ /^end:/) end = substr($i, 5)
      }
      n = end - line + 1
      if (end && n > limit) printf "%d\t%s:%d: %s is %d lines (limit %d)\n", n, $2, line, $1, n, limit
    }' | sort -t"$(printf '\t')" -k1,1rn -k2 | cut -f2-
}

# source files longer than max_file lines: "file:N+1: N lines (limit N)", the line
# given being the first one past the limit
long_files() {
  sources c h cu | while IFS= read -r f; do
    n=$(wc -l < "$f")
    [ "$n" -le "$max_file" ] || echo "$f:$((max_file + 1)): $n lines (limit $max_file)"
  done
}

# "name<TAB>file<TAB>line" of every non-static function defined in a .c or .cu file
definitions() {
  sources c cu | xargs -r ctags --langmap=C:+.cu --kinds-C=f --fields=+neS -o - |
    awk -F'\t' '{
      line = 0; static = 0
      for (i = 4; i <= NF; i++) {
        if ($i == "file:") static = 1
        if ($i ~ /^line:/) line = substr($i, 6)
      }
      if (!static) printf "%s\t%s\t%s\n", $1, $2, line
    }'
}

# "file<TAB>line<TAB>name" of every word followed by '(' in a .c or .cu file, comments
# and string and character literals left out (calls, and also declarations and macros)
references() {
  sources c cu | xargs -r perl -e '
    for my $f (@ARGV) {
      open my $in, "<", $f or die "$f: $!"; local $/; my $s = <$in>; close $in;
      $s =~ s{(/\*.*?\*/)|//[^\n]*|"(?:\\.|[^"\\\n])*"|\x27(?:\\.|[^\x27\\\n])*\x27}
             {defined $1 ? $1 =~ s/[^\n]//gr : ""}gse;
      my $n = 0;
      for my $line (split /\n/, $s, -1) {
        $n++;
        print "$f\t$n\t$1\n" while $line =~ /\b([A-Za-z_]\w*)\s*\(/g;
      }
    }'
}

# pairs of units of one folder that call each other, each with the calls either way (the
# first call of each function):
#   DIR: A <-> B
#     file:line: uses NAME (defined at file:line)
mutual_calls() {
  { definitions | sed 's/^/D\t/'; references | sed 's/^/R\t/'; } | awk -F'\t' '
    function unit(f) { sub(/\.(c|cu|h)$/, "", f); return f }
    function dir(u) { sub(/\/[^\/]*$/, "", u); return u }
    function base(u) { sub(/^.*\//, "", u); return u }
    $1 == "D" { u = unit($3); key = $2 SUBSEP u
                if (!(key in def)) { def[key] = $3 ":" $4; units[$2] = units[$2] " " u }
                next }
    # a reference (all definitions came first): an edge to each other unit of its folder
    # that defines the name, unless its own unit defines it too (alternative files)
    { f = $2; name = $4; u = unit(f)
      if (!(name in units) || ((name SUBSEP u) in def)) next
      k = split(units[name], us, " ")
      for (i = 1; i <= k; i++) {
        d = us[i]
        if (dir(d) != dir(u) || ((u, d, name) in seen)) continue
        seen[u, d, name] = 1
        calls[u, d] = calls[u, d] "\t    " f ":" $3 ": uses " name " (defined at " def[name, d] ")"
      } }
    END {
      for (e in calls) {
        split(e, p, SUBSEP)
        if (p[1] < p[2] && ((p[2], p[1]) in calls))
          printf "%s: %s <-> %s%s%s\n", dir(p[1]), base(p[1]), base(p[2]), calls[e], calls[p[2], p[1]]
      }
    }' | LC_ALL=C sort | tr '\t' '\n'  # one line per pair (its calls after tabs), sorted
}

# source files whose first line is not a comment: "file:1: does not open with a comment"
missing_file_comments() {
  local f
  sources c h cu | while read -r f; do
    head -n 1 "$f" | grep -Eq '^[[:space:]]*(/\*|//)' || echo "$f:1: does not open with a comment"
  done
}

# run_rule RULE: lists its violations; returns 1 when there is one
run_rule() {
  local out what
  case $1 in
    functions) out=$(long_functions); what="function(s) over $max_function lines: split them" ;;
    files) out=$(long_files); what="file(s) over $max_file lines: split them" ;;
    mutual_calls) out=$(mutual_calls); what="pair(s) of files in one folder that call each other: \
make the calls go one way (move the shared part into its own file)"; ;;
    file_comments) out=$(missing_file_comments); what="file(s) without a first comment saying what they are for" ;;
  esac
  if [ -z "$out" ]; then
    echo "$me: $1: none in ${dirs[*]}"
    return 0
  fi
  echo "$out"
  local n
  if [ "$1" = mutual_calls ]; then n=$(grep -c '^[^ ]' <<< "$out"); else n=$(wc -l <<< "$out"); fi
  echo "$me: $1: $n $what" >&2
  return 1
}

while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1 ;;
    --max-function) max_function=$2; shift ;;
    --max-file) max_file=$2; shift ;;
    functions | files | mutual_calls | file_comments | all) rule=$1 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "$me: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
command -v ctags >/dev/null || { echo "$me: needs ctags (universal-ctags)" >&2; exit 2; }
cd "$(dirname "$0")/.."
dirs=("$@")
[ ${#dirs[@]} -gt 0 ] || dirs=(net data dist launch)
for d in "${dirs[@]}"; do [ -d "$d" ] || { echo "$me: $d: no such folder" >&2; exit 2; }; done

broken=0
rules=("$rule")
[ "$rule" != all ] || rules=(functions files mutual_calls file_comments)
for r in "${rules[@]}"; do run_rule "$r" || broken=1; done
[ $check = 0 ] || exit $broken

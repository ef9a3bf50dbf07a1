#!/usr/bin/env bash
# Shows that each rule of tests/code_shape.sh can fail (ctest code_shape_selftest): in a
# temporary tree, a 61-line function, a 601-line file and two files calling each other
# (one pair .c with .c, one .c with .cu and .h) are caught, each named by file:line, and
# what keeps within the rules is not: a 60-line function, a 600-line file, calls one way,
# two alternative files defining the same functions, static functions of the same name,
# and a call mentioned only in a comment or a string.
# usage: tests/code_shape_selftest.sh [tests/code_shape.sh]
set -uo pipefail
shape=${1:-$(dirname "$0")/code_shape.sh}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/code_shape_selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

expect() {  # expect WHAT RC PATTERN RULE DIR: code_shape.sh --check RULE DIR exits RC, output has PATTERN
  local what=$1 rc=$2 pattern=$3 out got
  shift 3
  out=$(bash "$shape" --check "$@" 2>&1)
  got=$?
  if [ "$got" = "$rc" ] && grep -q -- "$pattern" <<< "$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "code_shape_selftest: FAILED: $what (exit $got, expected $rc and '$pattern'):" >&2
    sed 's/^/  | /' <<< "$out" >&2
  fi
}

function_of() {  # function_of NAME LINES: a C function of exactly LINES lines
  echo "int $1(int x) {"
  for ((i = 0; i < $2 - 2; i++)); do echo "    x += $i;"; done
  echo "    return x; }"
}

lines_of() { for ((i = 0; i < $1; i++)); do echo "/* line $((i + 1)) */"; done; }

mkdir -p "$tmp/long" "$tmp/short" "$tmp/mutual/sub" "$tmp/oneway"
{ echo "/* too long */"; function_of too_long 61; } > "$tmp/long/f.c"
lines_of 601 > "$tmp/long/big.h"
{ echo "/* just fits */"; function_of just_fits 60; } > "$tmp/short/f.c"
lines_of 600 > "$tmp/short/big.h"
expect "a 61-line function is caught" 1 "long/f.c:2: too_long is 61 lines" functions "$tmp/long"
expect "a 60-line function passes" 0 "functions: none" functions "$tmp/short"
expect "a 601-line file is caught" 1 "long/big.h:601: 601 lines" files "$tmp/long"
expect "a 600-line file passes" 0 "files: none" files "$tmp/short"

# a.c and b.c call each other; in sub/, x.c calls y's function (y.cu, declared in y.h)
# and y.cu calls x's
printf '%s\n' '#include "b.h"' 'int a_fn(void) { return b_fn(); }' > "$tmp/mutual/a.c"
printf '%s\n' '/* b: a_fn() in a comment does not count */' '' 'int b_fn(void) {' '    return a_fn() + 1;' '}' > "$tmp/mutual/b.c"
printf '%s\n' 'int y_fn(void);' > "$tmp/mutual/sub/y.h"
printf '%s\n' '#include "y.h"' 'int x_fn(void) { return y_fn(); }' > "$tmp/mutual/sub/x.c"
printf '%s\n' 'int x_fn(void);' '__global__ void k(void) {}' 'int y_fn(void) { return x_fn(); }' > "$tmp/mutual/sub/y.cu"
expect "a.c and b.c calling each other are caught" 1 "mutual: a <-> b" mutual_calls "$tmp/mutual"
expect "... with the line of each call" 1 "mutual/b.c:4: uses a_fn (defined at .*mutual/a.c:2)" mutual_calls "$tmp/mutual"
expect "x.c and y.cu (with y.h) calling each other are caught" 1 "sub: x <-> y" mutual_calls "$tmp/mutual"

# within the rule: p calls q one way; alt.c and alt_none.c define the same function (one
# is built) and p calls it; q and alt call p only in a comment and a string; p and q
# both have a static helper of the same name
printf '%s\n' 'static int helper(void) { return 1; }' 'int p_fn(void) { return q_fn() + alt_fn() + helper(); }' > "$tmp/oneway/p.c"
printf '%s\n' 'static int helper(void) { return 2; }' '/* p_fn() is the caller */' 'int q_fn(void) { return helper(); }' > "$tmp/oneway/q.c"
printf '%s\n' 'int alt_fn(void) { return 1; }' > "$tmp/oneway/alt.c"
printf '%s\n' 'const char *s = "p_fn()";' 'int alt_fn(void) { return 0; }' > "$tmp/oneway/alt_none.c"
expect "calls one way, alternatives, statics and comments pass" 0 "mutual_calls: none" mutual_calls "$tmp/oneway"

# file_comments: a file opening with code is caught, ones opening with /* or // pass
mkdir -p "$tmp/comments"
printf '%s\n' '#include <stdio.h>' '/* too late */' > "$tmp/comments/bare.c"
printf '%s\n' '/* what it is for */' 'int c_fn(void);' > "$tmp/comments/good.h"
printf '%s\n' '// what it is for' 'int d_fn(void) { return 0; }' > "$tmp/comments/good.c"
expect "a file that does not open with a comment is caught" 1 "comments/bare.c:1: does not open with a comment" file_comments "$tmp/comments"
rm "$tmp/comments/bare.c"
expect "files opening with /* or // pass" 0 "file_comments: none" file_comments "$tmp/comments"

echo "code_shape_selftest: $passed checks passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Two builds of e2e-ddp (e.g. before and after a refactoring) train the same 2-rank CPU
# runs and must end in bitwise the same checkpoints: a dense file, 3 epochs; its sparse
# copy, stopped at step 40 (exit 75) and resumed to the end of 2 epochs; e2e-eval of the
# dense run's best checkpoint. Compares every tensor (model and Adam's moments) with
# tests/launch/compare_ckpt.py and the evaluation's numbers. Exit 0 when all are equal.
# usage: tests/compare_builds.sh OLD_BUILD NEW_BUILD [WORK_DIR]
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
old=$1 new=$2 work=${3:-$(mktemp -d /tmp/compare-builds.XXXXXX)}
top=$(cd "$(dirname "$0")/.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
mpi=(mpirun --oversubscribe --bind-to none -np 2)

runs() {  # runs BUILD OUT: the same runs, same seeds, in OUT
  local b=$1 o=$2
  rm -rf "$o"; mkdir -p "$o"
  "${mpi[@]}" "$b/launch/e2e-synth" --out "$o/jets.h5" --samples 3000 --size 40 --channels 4 --seed 3 >/dev/null
  "${mpi[@]}" "$b/launch/e2e-synth" --out "$o/sp.h5" --samples 3000 --size 40 --channels 4 --seed 3 \
    --layout sparse >/dev/null
  "${mpi[@]}" "$b/launch/e2e-train" --data "$o/jets.h5" --out "$o/dense" --epochs 3 --batch 16 >"$o/dense.log"
  local rc=0
  "${mpi[@]}" "$b/launch/e2e-train" --data "$o/sp.h5" --out "$o/sparse" --epochs 2 --batch 16 \
    --stop-after-steps 40 >"$o/sparse1.log" || rc=$?
  [ $rc = 75 ] || { echo "compare_builds: $b: the stopped run exited $rc, not 75" >&2; exit 1; }
  "${mpi[@]}" "$b/launch/e2e-train" --data "$o/sp.h5" --out "$o/sparse" --epochs 2 --batch 16 \
    --resume auto >"$o/sparse2.log"
  "${mpi[@]}" "$b/launch/e2e-eval" --checkpoint "$o/dense/checkpoints/best.h5" --data "$o/jets.h5" \
    --split test >"$o/eval.log"
}

runs "$old" "$work/old"
runs "$new" "$work/new"
same=0
for c in dense/checkpoints/ckpt-0000000252.h5 dense/checkpoints/best.h5 sparse/checkpoints/ckpt-0000000040.h5 \
         sparse/checkpoints/ckpt-0000000168.h5; do
  echo "$c: $(/usr/bin/python3 "$top/tests/launch/compare_ckpt.py" "$work/old/$c" "$work/new/$c" | tail -n 1)" || same=1
  /usr/bin/python3 "$top/tests/launch/compare_ckpt.py" "$work/old/$c" "$work/new/$c" >/dev/null || same=1
done
metrics() { tail -n 1 "$1" | sed 's/"checkpoint": "[^"]*", //'; }
if [ "$(metrics "$work/old/eval.log")" = "$(metrics "$work/new/eval.log")" ]; then
  echo "e2e-eval: the same test metrics: $(metrics "$work/new/eval.log")"
else
  echo "e2e-eval: the test metrics differ"; same=1
fi
[ $same = 0 ] && echo "compare_builds: bitwise the same ($work)" || echo "compare_builds: DIFFERENT ($work)"
exit $same

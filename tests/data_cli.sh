#!/usr/bin/env bash
# e2e-synth and e2e-data from the command line: options and --help; the same seed gives
# byte-identical datasets from 1, 2 and 3 ranks (float32 and float16, dense and sparse),
# another seed does not; a failure under mpirun gives one message and a non-zero exit,
# no hang; e2e-data info prints what a physicist looks at (and the layout);
# e2e-data convert: dense -> sparse -> dense under mpirun gives the same bytes, its
# options and refusals.
# Usage: data_cli.sh E2E_SYNTH E2E_DATA MPIEXEC
set -uo pipefail
synth=$1 data=$2 mpiexec=$3
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
dir=$(mktemp -d /tmp/e2e_data_cli_XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAILED: $*" >&2; }
run() { timeout 60 "$@"; } # a hang fails instead of blocking

# options
out=$(run "$synth" --help) && [[ $out == *"--samples N"* && $out == *"--dtype TYPE"* ]] && ok || bad "--help"
for args in "--samples 0 --out $dir/x.h5" "--dtype float64 --out $dir/x.h5" "--size 4 --out $dir/x.h5" \
            "--channels 9 --out $dir/x.h5" "--samples 12abc --out $dir/x.h5" "--samples 10" "--bogus" "--out"; do
  err=$(run "$synth" $args 2>&1 >/dev/null); rc=$?
  [[ $rc == 2 && $err == e2e-synth:* ]] && ok || bad "e2e-synth $args: exit $rc, '$err'"
done

# the same data from 1, 2 and 3 ranks
sets="X_jet m pt ieta iphi"
sparse_sets="X_jet/offsets X_jet/counts X_jet/pos X_jet/value m pt ieta iphi"
dump() { # dataset bytes as stored in the file ($2: the datasets, default the dense ones)
  for d in ${2:-$sets}; do
    h5dump -d "/$d" -b FILE -o "$1.${d//\//_}.bin" "$1" >/dev/null || return 1
  done
}
same() {
  for d in ${3:-$sets}; do cmp -s "$1.${d//\//_}.bin" "$2.${d//\//_}.bin" || return 1; done
}
for dtype in float32 float16; do
  common="--samples 300 --size 24 --channels 8 --chunk 7 --dtype $dtype --seed 11"
  for np in 1 2 3; do
    run "$mpiexec" -np $np "$synth" $common --out "$dir/$dtype.np$np.h5" >/dev/null || bad "synth np $np $dtype"
    dump "$dir/$dtype.np$np.h5" || bad "h5dump $dtype np $np"
  done
  [[ $(stat -c %s "$dir/$dtype.np1.h5.X_jet.bin") == $((300 * 8 * 24 * 24 * ${dtype#float} / 8)) ]] && ok \
    || bad "$dtype: X_jet holds $(stat -c %s "$dir/$dtype.np1.h5.X_jet.bin") bytes"
  same "$dir/$dtype.np1.h5" "$dir/$dtype.np2.h5" && ok || bad "$dtype: 1 and 2 ranks differ"
  same "$dir/$dtype.np1.h5" "$dir/$dtype.np3.h5" && ok || bad "$dtype: 1 and 3 ranks differ"
done
for np in 1 2 3; do # the sparse layout: the same entries whatever the ranks
  run "$mpiexec" -np $np "$synth" --samples 300 --size 24 --seed 11 --layout sparse --out "$dir/sparse.np$np.h5" \
    >/dev/null || bad "synth sparse np $np"
  dump "$dir/sparse.np$np.h5" "$sparse_sets" || bad "h5dump sparse np $np"
done
same "$dir/sparse.np1.h5" "$dir/sparse.np2.h5" "$sparse_sets" && ok || bad "sparse: 1 and 2 ranks differ"
same "$dir/sparse.np1.h5" "$dir/sparse.np3.h5" "$sparse_sets" && ok || bad "sparse: 1 and 3 ranks differ"
err=$(run "$synth" --layout csr --out "$dir/x.h5" 2>&1 >/dev/null); rc=$?
[[ $rc == 2 && $err == *"--layout expects dense or sparse"* ]] && ok || bad "--layout csr: $rc '$err'"
run "$mpiexec" -np 2 "$synth" --samples 300 --size 24 --channels 8 --chunk 7 --seed 12 --out "$dir/seed12.h5" >/dev/null
dump "$dir/seed12.h5"
same "$dir/float32.np1.h5" "$dir/seed12.h5" && bad "seeds 11 and 12 give the same data" || ok

# a failure under mpirun: one message naming the file, non-zero exit
err=$(run "$mpiexec" -np 2 "$synth" --samples 10 --out "$dir/no/such/dir/x.h5" 2>&1 >/dev/null); rc=$?
[[ $rc != 0 && $rc != 124 ]] && ok || bad "unwritable output: exit $rc"
[[ $(grep -c "^e2e-synth: $dir/no/such/dir/x.h5: cannot write --out: the folder $dir/no/such/dir does not exist" <<<"$err") == 1 ]] && ok \
  || bad "unwritable output: expected one message, got: $err"

# e2e-data convert: dense -> sparse -> dense, 2 then 3 ranks, the same bytes
run "$mpiexec" -np 2 "$data" convert "$dir/float16.np1.h5" "$dir/c16.sparse.h5" >/dev/null || bad "convert to sparse"
run "$mpiexec" -np 3 "$data" convert --layout dense --chunk 7 "$dir/c16.sparse.h5" "$dir/c16.back.h5" >/dev/null \
  || bad "convert back"
dump "$dir/c16.back.h5" && same "$dir/float16.np1.h5" "$dir/c16.back.h5" && ok || bad "dense -> sparse -> dense differs"
dump "$dir/c16.sparse.h5" "$sparse_sets" || bad "h5dump converted"
run "$mpiexec" -np 2 "$data" convert --dtype float32 "$dir/float16.np1.h5" "$dir/c32.sparse.h5" >/dev/null || bad "to float32"
run "$data" convert --layout dense --dtype float16 "$dir/c32.sparse.h5" "$dir/c16.again.h5" >/dev/null || bad "to float16"
dump "$dir/c16.again.h5" && same "$dir/float16.np1.h5" "$dir/c16.again.h5" && ok \
  || bad "float16 -> float32 sparse -> float16 dense differs"
run "$data" convert --rows 100:250 "$dir/float16.np1.h5" "$dir/part.h5" >/dev/null || bad "convert --rows"
[[ $(h5dump -d /X_jet/offsets -H "$dir/part.h5" | grep -c "( 151 )") == 1 ]] && ok || bad "--rows 100:250: not 150 jets"
err=$(run "$data" convert "$dir/c16.sparse.h5" "$dir/c16.sparse.h5" 2>&1); rc=$?
[[ $rc == 1 && $err == *"refusing to write OUT over an input"* ]] && ok || bad "convert IN IN: $rc '$err'"
ln "$dir/c16.sparse.h5" "$dir/c16.hardlink.h5"
sum=$(md5sum <"$dir/c16.sparse.h5")
err=$(run "$data" convert --layout dense "$dir/c16.sparse.h5" "$dir/c16.hardlink.h5" 2>&1); rc=$?
[[ $rc == 1 && $err == *"refusing to write OUT over an input"* && $(md5sum <"$dir/c16.sparse.h5") == "$sum" ]] \
  && ok || bad "convert IN over a hard link of IN: $rc '$err'"
err=$(run "$mpiexec" -np 2 "$data" convert "$dir/missing.h5" "$dir/out.h5" 2>&1); rc=$?
[[ $rc != 0 && $rc != 124 && $(grep -c "^e2e-data: $dir/missing.h5: no such file" <<<"$err") == 1 && ! -e $dir/out.h5 ]] \
  && ok || bad "convert of a missing file: $rc '$err'"
for args in "--layout csr a b" "--dtype float64 a b" "--rows 5:2 a b" "--rows x a b" "a" "a b c"; do
  err=$(run "$data" convert $args 2>&1 >/dev/null); rc=$?
  [[ $rc == 2 && $err == e2e-data:* ]] && ok || bad "e2e-data convert $args: exit $rc, '$err'"
done
out=$(run "$data" --help) && [[ $out == *"convert [--layout L]"* ]] && ok || bad "e2e-data --help"
out=$(run "$data" info "$dir/c16.sparse.h5" --rows 20); rc=$?
for want in "layout sparse (format version 2)" "non-zero pixels per channel (all jets): track_pt" "bytes a jet" \
            "format_version   2" "e2e-data convert"; do
  [[ $rc == 0 && $out == *"$want"* ]] && ok || bad "info of a sparse file lacks '$want'"
done

# e2e-data info
out=$(run "$data" info "$dir/float16.np2.h5" --rows 50); rc=$?
[[ $rc == 0 ]] && ok || bad "info: exit $rc"
for want in "300 jets in 1 file, X_jet 8 x 24 x 24" "dtype float16, layout dense, chunks of 7 x 8 x 24 x 24" \
            "channels         track_pt, dz, d0, ecal, hcal, bpix1, bpix2, bpix3" "seed             11" \
            "generator        e2e-synth" "mass histogram" "  160-180 " "pixels over 50 of 300 jets" "  hcal  " \
            "model inputs (the file declares none: the format's default)" "  scalars  iphi / 360, ieta / 170" \
            "  channels track_pt energy, dz energy, d0 energy, ecal energy"; do
  [[ $out == *"$want"* ]] && ok || bad "info lacks '$want'"
done
hist_total=$(awk '/mass histogram/ {on = 1; next} /^pixels/ {on = 0} on && /\|/ {s += $2} END {print s}' <<<"$out")
[[ $hist_total == 300 ]] && ok || bad "the mass histogram counts $hist_total jets, not 300"
err=$(run "$data" info "$dir/missing.h5" 2>&1); rc=$?
[[ $rc == 1 && $err == "e2e-data: $dir/missing.h5: no such file" ]] && ok || bad "info on a missing file: $rc '$err'"
err=$(run "$data" 2>&1); rc=$?
[[ $rc == 2 ]] && ok || bad "e2e-data without arguments: exit $rc"

echo "test_data_cli: $passed checks passed, $failed failed"
[[ $failed == 0 ]]

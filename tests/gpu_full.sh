#!/usr/bin/env bash
# The GPU bring-up in one command, on a machine with a GPU, the CUDA toolkit, cuDNN and
# NCCL (the toolkit's, the system's or python3's PyTorch wheels), CMake, and the carry
# bundle (.gpu-bundle/, from tests/gpu_bundle.sh: Open MPI, parallel HDF5, h5diff).
# Steps, most important first, each under its own `timeout` and inside one overall
# budget of 470 s (the device tool's slot is 15 minutes with the machine's start, one
# command at most 10: this one stays under 8), each one's exit code recorded in
# summary.txt (written as the steps end, so it is there even when one times out), and
# every later step still run after a failure:
#    1 machine      nvidia-smi, nvcc, where cuDNN and NCCL were found, their versions,
#                   PyTorch's, the CPU
#    2 build        the full CUDA configuration for sm_90 (never `native`; plus the GPU's
#                   own compute capability if it is not 9.0), all targets; without the
#                   bundle (or if that fails) net/ alone (E2E_NET_ONLY), as gpu_run.sh
#    3 test_gpu_ops every op and the model against the CPU backend, fp32/tf32/bf16,
#                   with each comparison's measured error printed (E2E_TEST_PRINT_ERRORS)
#    4 ctest        test_session_feed (GPU feed against the CPU's loss), test_model_errors,
#                   test_model_staging, test_comm, test_checkpoint
#    5 data         e2e-synth: 3000 jets, 8x32x32, float16 (a short training)
#    6 train        mpirun -np 1 e2e-train, same data, seed, batch and epochs (2):
#                   --device cuda fp32, bf16, tf32, fp32 with another seed (the
#                   run-to-run spread), and --device cpu (the reference)
#    7 eval         e2e-eval --device cuda and --device cpu on the GPU fp32 run's best.h5
#    8 resume       GPU fp32 with cuDNN's heuristic algorithm choice (the same algorithms
#                   in every run), 2 epochs: uninterrupted twice (bitwise determinism) and
#                   stopped in the first epoch + --resume auto; final checkpoints by h5diff
#    9 sanitize     compute-sanitizer memcheck, racecheck and synccheck on test_gpu_ops
#                   (fp32: every kernel runs in it), where the toolkit has compute-sanitizer
#   10 bench        tests/bench/gpu_vs_torch.sh (1 s a measurement): our samples/s at batch
#                   256 and 1024 beside PyTorch eager fp32, eager AMP bf16 and torch.compile
# Without a GPU the GPU steps report SKIP and the rest runs (a dry run of the driver).
# Usage: tests/gpu_full.sh [OUTDIR]          (default: $OUT, else build-full/out)
#   OUTDIR gets few files (the device tool brings back at most 8): summary.txt,
#   1-machine-build.log, 2-tests.log, 3-train.log, 4-bench.log, runs.tar.gz (each run's
#   config, metrics and results). Read summary.txt first; it is also printed last.
#   GPU_FULL_BUDGET_S   overall time limit in seconds (470: under 8 minutes)
#   GPU_FULL_SAMPLES, GPU_FULL_EPOCHS, GPU_FULL_SIZE   the training data (3000, 2, 32)
#   GPU_FULL_SKIP       steps to leave out, by name or first word, e.g. "ctest train resume"
#   GPU_FULL_BENCH_SECONDS  seconds per benchmark measurement (1)
#   GPU_FULL_BUILD, GPU_FULL_WORK   build folder (build-full), run folder (/tmp/e2e-gpu-full)
#   GPU_FULL_KEEP_BUILD=1   build on in the existing build folder (a second call on a
#                       machine that is still warm) instead of configuring afresh
#   GPU_FULL_DEVICE_AS=cpu  tests this script without a GPU: the GPU trainer steps run on
#                       the CPU (fp32); the dry run: GPU_FULL_DEVICE_AS=cpu
#                       GPU_FULL_SAMPLES=800 GPU_FULL_EPOCHS=1 GPU_FULL_SIZE=32 tests/gpu_full.sh
#   GPU_FULL_EMULATED=1 tests this script without a GPU another way: it builds the CUDA
#                       emulation (tests/cuda_emu: no nvcc run, the system's MPI and HDF5
#                       where there is no bundle) and every GPU step runs on the emulated
#                       GPU (compute-sanitizer and the benchmark report SKIP)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${OUT:-$top/build-full/out}}
build=${GPU_FULL_BUILD:-$top/build-full}
work=${GPU_FULL_WORK:-/tmp/e2e-gpu-full}
budget=${GPU_FULL_BUDGET_S:-470}
samples=${GPU_FULL_SAMPLES:-3000}
epochs=${GPU_FULL_EPOCHS:-2}
size=${GPU_FULL_SIZE:-32}
emulated=${GPU_FULL_EMULATED:-}
skip_steps=" ${GPU_FULL_SKIP:-} "
start=$(date +%s)
cores=$(nproc)
rm -rf "${work:?}"   # nothing of an earlier run may be read as this one's
mkdir -p "$out" "$work"
summary=$out/summary.txt
log1=$out/1-machine-build.log log2=$out/2-tests.log log3=$out/3-train.log log4=$out/4-bench.log
: >"$summary"; : >"$log1"; : >"$log2"; : >"$log3"; : >"$log4"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$cores}
export OMPI_MCA_rmaps_base_oversubscribe=1
[ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # as gpu_env.sh does

say() { echo "$*" | tee -a "$summary"; }
left() { echo $((budget - ($(date +%s) - start))); }

# step NAME LOG TIMEOUT COMMAND...: runs COMMAND (a program or an exported function)
# under `timeout` (its own limit or what is left of the budget, the smaller), appends
# its output to LOG, and records PASS/FAIL/TIMEOUT/SKIP (77) with its seconds. Returns
# the command's exit code (124 on timeout).
step() {
  local name=$1 log=$2 limit=$3 t0 rc status secs
  shift 3
  case "$skip_steps" in *" $name "*|*" ${name%% *} "*) say "$(printf 'SKIP     %-22s %s' "$name" "GPU_FULL_SKIP")"; return 77;; esac
  local avail=$(( $(left) - 5 ))
  if [ "$avail" -lt 10 ]; then say "$(printf 'NOTRUN   %-22s %s' "$name" "out of time")"; return 124; fi
  [ "$limit" -gt "$avail" ] && limit=$avail
  local cmd="$*"
  cmd=${cmd//$'\n'/ }
  { echo; echo "======== $name (limit ${limit}s): ${cmd:0:240}"; } >>"$log"
  t0=$(date +%s)
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - t0 ))
  case $rc in 0) status=PASS;; 77) status=SKIP;; 124|137) status=TIMEOUT;; *) status="FAIL($rc)";; esac
  echo "======== $name: $status in ${secs}s" >>"$log"
  say "$(printf '%-8s %-22s %4ss' "$status" "$name" "$secs")"
  return $rc
}
no_gpu() { say "$(printf 'SKIP     %-22s %s' "$1" "$([ -n "$emulated" ] && echo "the GPU is emulated" || echo "no GPU")")"; }

# ---- 1: the machine ----
gpu=0
nvidia-smi -L >/dev/null 2>&1 && gpu=1
# GPU_FULL_DEVICE_AS=cpu (a test of this script, no GPU needed): the trainer's GPU steps
# run, with --device cpu and fp32
[ -n "${GPU_FULL_DEVICE_AS:-}" ] && gpu=1 && export GPU_FULL_DEVICE_AS
# GPU_FULL_EMULATED=1: the GPU steps run on the emulated GPU of tests/cuda_emu
[ -n "$emulated" ] && gpu=1 && export E2E_EMU_GPUS=1
machine() {
  echo "date: $(date -u +%FT%TZ)   host: $(uname -srm)   $(grep PRETTY_NAME /etc/os-release 2>/dev/null)"
  echo "glibc: $(getconf GNU_LIBC_VERSION)   cores: $cores   memory: $(free -g | awk '/Mem/{print $2}') GiB"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
  nvidia-smi || echo "nvidia-smi: no GPU"
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap,clocks.max.sm,power.limit --format=csv || true
  "${E2E_NVCC:-nvcc}" --version || true
  cmake --version | head -1; command -v ninja && ninja --version; gcc --version | head -1
  python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda,
    "cudnn", torch.backends.cudnn.version(), "nccl", torch.cuda.nccl.version() if torch.cuda.is_available() else "-")' || true
  command -v ncu compute-sanitizer cuobjdump nsys || true
}
# shellcheck source=tests/gpu_cuda_env.sh
source "$top/tests/gpu_cuda_env.sh" >"$work/cuda_env.txt" 2>&1; cuda_ok=$?
step machine "$log1" 60 bash -c "$(declare -f machine); cores=$cores; E2E_NVCC=${E2E_NVCC:-nvcc}; machine"
cat "$work/cuda_env.txt" >>"$log1"
sed 's/^/  /' "$work/cuda_env.txt" | tee -a "$summary"
header_version() {  # FILE MAJOR MINOR PATCH: "9.19.0" from the #defines
  awk -v a="$2" -v b="$3" -v c="$4" '$1=="#define" && $2==a{x=$3} $1=="#define" && $2==b{y=$3}
    $1=="#define" && $2==c{z=$3} END{if (x!="") print x "." y "." z}' "$1" 2>/dev/null
}
gpu_name=$(nvidia-smi --query-gpu=name,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)
say "  gpu: ${gpu_name:-none}   cuda: $("${E2E_NVCC:-nvcc}" --version 2>/dev/null | grep -o 'release [0-9.]*')   cudnn: $(header_version "${CUDNN_ROOT:-/x}/include/cudnn_version.h" CUDNN_MAJOR CUDNN_MINOR CUDNN_PATCHLEVEL)   nccl: $(header_version "${NCCL_ROOT:-/x}/include/nccl.h" NCCL_MAJOR NCCL_MINOR NCCL_PATCH)"
say "  torch: $(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null || echo none)"

# ---- 2: the bundle and the build ----
bundle_ok=0
# shellcheck source=tests/gpu_env.sh
if source "$top/tests/gpu_env.sh" "${GPU_BUNDLE:-$top/.gpu-bundle}" >>"$log1" 2>&1; then bundle_ok=1; fi
say "  bundle: $([ $bundle_ok = 1 ] && tail -1 "$log1" || { [ -n "$emulated" ] && echo "none: the system's MPI and HDF5 (emulated GPU)"; } || echo "none: the trainer steps are skipped (tests/gpu_bundle.sh)")"
archs=90
if [ $gpu = 1 ]; then
  cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d ' .')
  [ -n "$cc" ] && [ "$cc" != 90 ] && archs="90;$cc"
fi
blas=portable
ldconfig -p 2>/dev/null | grep -q libopenblas && ls /usr/include/cblas.h /usr/include/*/cblas.h >/dev/null 2>&1 && blas=openblas
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
configure_and_build() {  # BUILD_DIR [extra cmake args...]
  local dir=$1
  shift
  [ "${GPU_FULL_KEEP_BUILD:-0}" = 1 ] || rm -rf "$dir"
  local cuda=-DUSE_CUDA=ON
  [ -n "${GPU_FULL_EMULATED:-}" ] && cuda=-DE2E_CUDA_EMULATION=ON
  # shellcheck disable=SC2086
  cmake -S "$top" -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release $cuda -DE2E_BLAS=$blas -DE2E_ONEDNN=AUTO \
    $E2E_CUDA_CMAKE_ARGS "-DCMAKE_CUDA_ARCHITECTURES=$archs" "$@" &&
  cmake --build "$dir" -j"$cores"
}
export -f configure_and_build
export top blas archs E2E_CUDA_CMAKE_ARGS cores GPU_FULL_KEEP_BUILD GPU_FULL_EMULATED
full_build=0
if [ $cuda_ok != 0 ]; then
  say "FAIL     build                  no nvcc or cuDNN (above)"
elif { [ $bundle_ok = 1 ] || [ -n "$emulated" ]; } && step build "$log1" 240 bash -c "generator=(${generator[*]}); $(declare -f configure_and_build); configure_and_build '$build'"; then
  full_build=1
else
  step build-net-only "$log1" 180 bash -c "generator=(${generator[*]}); $(declare -f configure_and_build); configure_and_build '$build' -DE2E_NET_ONLY=ON"
fi
say "  built $([ -n "$emulated" ] && echo "for the CUDA emulation (tests/cuda_emu)" || echo "for sm_$archs"), BLAS $blas, $([ $full_build = 1 ] && echo "full (MPI, HDF5, NCCL)" || echo "net/ only")"
(cd "$build" 2>/dev/null && ctest -N | tail -1 | sed 's/^/  ctest: /') | tee -a "$summary"

# ---- 3, 4: tests ----
if [ -x "$build/tests/test_gpu_ops" ]; then
  export E2E_TEST_PRINT_ERRORS=1
  step test_gpu_ops "$log2" 120 "$build/tests/test_gpu_ops"
  grep -E 'checks passed|SKIPPED|FAILED|\] (done|not run|convolution plans|adam bitwise)' "$log2" | sed 's/^/  /' | tee -a "$summary"
fi
if [ -f "$build/CTestTestfile.cmake" ]; then
  step ctest "$log2" 90 ctest --test-dir "$build" --output-on-failure --timeout 80 -j4 \
    -R '^(test_session_feed|test_model_errors|test_model_staging|test_comm|test_checkpoint)$'
  grep -E 'tests passed|\*\*\*|Failed|Not Run|gpu feed|gpu loss' "$log2" | grep -v '^=' | sed 's/^/  /' | tee -a "$summary"
fi

# ---- 5-8: the trainer ----
launch=$build/launch
mpi1=(mpirun --bind-to none -np 1)
train() {  # NAME DEVICE PRECISION SEED [extra e2e-train args...]; TRAIN_EPOCHS overrides
  local name=$1 device=$2 prec=$3 seed=$4
  shift 4
  if [ -n "${GPU_FULL_DEVICE_AS:-}" ] && [ "$device" = cuda ]; then device=$GPU_FULL_DEVICE_AS prec=fp32; fi
  [ "${1:-}" = --resume ] || rm -rf "${work:?}/$name"
  "${mpi1[@]}" "$launch/e2e-train" --data "$work/jets.h5" --out "$work/$name" --epochs "${TRAIN_EPOCHS:-$epochs}" \
    --batch 32 --seed "$seed" --device "$device" --precision "$prec" --threads "$cores" "$@"
}
# the val MAE of each epoch, the best, and the last epoch's samples/s, from metrics.csv
run_numbers() {
  awk -F, 'NR>1{m=m sprintf("%.2f ", $5); if(best==""||$5<best)best=$5; sps=$8}
    END{if (m=="") print "no metrics"; else printf "val MAE per epoch %sbest %.2f GeV, %.0f samples/s\n", m, best, sps}' \
    "$work/$1/metrics.csv" 2>/dev/null || echo "no metrics"
}
trainer_ready=0
[ $full_build = 1 ] && [ -x "$launch/e2e-train" ] && trainer_ready=1
export -f train
export launch work epochs
if [ $trainer_ready = 1 ]; then
  if step data "$log3" 60 env OMP_NUM_THREADS=4 mpirun -np 4 "$launch/e2e-synth" --out "$work/jets.h5" --samples "$samples" \
       --size "$size" --channels 8 --seed 1 --dtype float16; then
    say "  $samples jets, 8x${size}x${size}, float16; every run: 1 rank, batch 32, $epochs epochs"
    for spec in "gpu_fp32 cuda fp32 1" "gpu_bf16 cuda bf16 1" "cpu_fp32 cpu fp32 1" \
                "gpu_fp32_seed2 cuda fp32 2" "gpu_tf32 cuda tf32 1"; do
      read -r name device prec seed <<<"$spec"
      if [ "$device" = cuda ] && [ $gpu = 0 ]; then no_gpu "train $name"; continue; fi
      limit=60; [ "$device" = cpu ] && limit=90
      step "train $name" "$log3" $limit bash -c "mpi1=(${mpi1[*]}); $(declare -f train); train $name $device $prec $seed"
      say "  $name: $(run_numbers "$name")"
    done
    python3 - "$work" <<'PY' 2>&1 | tee -a "$summary"
import csv, os, sys
def last(name):  # the last epoch's validation MAE
    try:
        return float(list(csv.DictReader(open(os.path.join(sys.argv[1], name, "metrics.csv"))))[-1]["val_mae_gev"])
    except Exception:
        return None
r = {n: last(n) for n in ("gpu_fp32", "gpu_bf16", "gpu_tf32", "cpu_fp32", "gpu_fp32_seed2")}
if r["cpu_fp32"] is not None:
    for n in ("gpu_fp32", "gpu_tf32", "gpu_bf16"):
        if r[n] is not None:
            print("  last-epoch val MAE %s - cpu_fp32: %+.2f GeV" % (n, r[n] - r["cpu_fp32"]))
if r["gpu_fp32"] is not None and r["gpu_fp32_seed2"] is not None:
    print("  run-to-run spread (gpu_fp32 seed 1 - seed 2): %+.2f GeV" % (r["gpu_fp32"] - r["gpu_fp32_seed2"]))
PY
  fi
  best=$work/gpu_fp32/checkpoints/best.h5
  if [ $gpu = 1 ] && [ -f "$best" ]; then
    for device in cuda cpu; do
      step "eval $device" "$log3" 45 "${mpi1[@]}" "$launch/e2e-eval" --checkpoint "$best" --data "$work/jets.h5" \
        --split val --device "$( [ $device = cuda ] && echo "${GPU_FULL_DEVICE_AS:-cuda}" || echo cpu)" \
        --threads "$cores" --metrics "$work/eval_$device.json"
    done
    python3 - "$work" <<'PY' 2>&1 | tee -a "$summary"
import json, sys
try:
    g, c = (json.load(open("%s/eval_%s.json" % (sys.argv[1], d))) for d in ("cuda", "cpu"))
    print("  eval on gpu_fp32/best.h5: MAE cuda %.5f, cpu %.5f GeV, relative difference %.2e; loss %.7g vs %.7g"
          % (g["mae_gev"], c["mae_gev"], abs(g["mae_gev"] - c["mae_gev"]) / c["mae_gev"], g["loss"], c["loss"]))
except Exception as e:
    print("  eval comparison: not available (%s)" % e)
PY
  elif [ $gpu = 0 ]; then no_gpu eval; fi
  if [ $gpu = 1 ] && [ ! -f "$work/jets.h5" ]; then
    say "$(printf 'NOTRUN   %-22s %s' resume "no data")"
  elif [ $gpu = 1 ]; then
    resume_check() {
      export E2E_CUDNN_ALGO=heuristic TRAIN_EPOCHS=2
      local a b c rc=0
      for r in det_a det_b; do
        train "$r" cuda fp32 1 >/dev/null || { echo "resume: run $r failed"; return 1; }
      done
      train det_stop cuda fp32 1 --stop-after-steps "$stop" >/dev/null 2>&1 || rc=$?
      [ $rc = 75 ] || { echo "resume: the stopped run exited $rc, not 75"; return 1; }
      train det_stop cuda fp32 1 --resume auto | grep resumed || { echo "resume: no resume"; return 1; }
      a=$(ls "$work"/det_a/checkpoints/ckpt-*.h5 | tail -1)
      b=$(ls "$work"/det_b/checkpoints/ckpt-*.h5 | tail -1)
      c=$(ls "$work"/det_stop/checkpoints/ckpt-*.h5 | tail -1)
      local det=0 res=0
      h5diff -q "$a" "$b" /model && h5diff -q "$a" "$b" /optimizer && det=1
      h5diff -q "$a" "$c" /model && h5diff -q "$a" "$c" /optimizer && res=1
      echo "RESULT: two uninterrupted runs bitwise equal: $([ $det = 1 ] && echo yes || echo NO)"
      echo "RESULT: stop after $stop steps + resume equals the uninterrupted run: $([ $res = 1 ] && echo yes || echo NO)"
      [ $res = 1 ] || h5diff -r "$a" "$c" /model | tail -5
      [ $det = 1 ] && [ $res = 1 ]
    }
    stop=$(( samples * 9 / 10 / 32 / 2 ))  # half of the first epoch (90% of the jets train)
    step resume "$log3" 90 bash -c "mpi1=(${mpi1[*]}); stop=$stop; $(declare -f train resume_check); resume_check"
    grep '^RESULT: ' "$log3" | sed 's/^RESULT: /  /' | tee -a "$summary"
  else
    no_gpu resume
  fi
else
  say "SKIP     trainer steps          $([ $full_build = 1 ] && echo "no e2e-train" || echo "no full build (bundle?)")"
fi

# ---- 9: compute-sanitizer on test_gpu_ops (fp32; the bf16 and tf32 paths run the same
# kernels but for cuDNN's); each tool under its own limit ----
sanitizer=$(command -v compute-sanitizer || true)
for d in "$(dirname "${E2E_NVCC:-/nonexistent/nvcc}")" /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$d/compute-sanitizer" ] && sanitizer=$d/compute-sanitizer
done
if [ $gpu = 1 ] && [ -z "${GPU_FULL_DEVICE_AS:-}" ] && [ -z "$emulated" ] && [ -n "$sanitizer" ] &&
   [ -x "$build/tests/test_gpu_ops" ]; then
  for tool in memcheck racecheck synccheck; do
    step "sanitize $tool" "$log2" 60 env E2E_TEST_PRECISIONS=fp32 "$sanitizer" --tool "$tool" --error-exitcode 86 \
      --print-limit 20 "$build/tests/test_gpu_ops"
  done
  grep -E '^========= (ERROR|RACECHECK) SUMMARY' "$log2" | sed 's/^/  /' | tee -a "$summary"
elif [ $gpu = 0 ] || [ -n "${GPU_FULL_DEVICE_AS:-}" ] || [ -n "$emulated" ]; then
  no_gpu sanitize
else
  say "$(printf 'SKIP     %-22s %s' sanitize "no compute-sanitizer in the toolkit")"
fi

# ---- 10: benchmarks ----
if [ $gpu = 1 ] && [ -z "${GPU_FULL_DEVICE_AS:-}" ] && [ -z "$emulated" ] && [ -x "$build/tests/bench_gpu_train" ]; then
  step bench "$log4" 150 "$top/tests/bench/gpu_vs_torch.sh" "$build" "${GPU_FULL_BENCH_SECONDS:-1}"
  sed -n '/^GPU /,$p' "$log4" | grep -v '^========' | tee -a "$summary"
else
  no_gpu bench
fi

# ---- what comes back ----
(cd "$work" && find . -maxdepth 2 \( -name '*.json' -o -name '*.csv' -o -name '*.jsonl' \) -print0 |
  tar czf "$out/runs.tar.gz" --null -T -) 2>/dev/null
say "total $(( $(date +%s) - start ))s of a ${budget}s budget; logs in $out: $(cd "$out" && ls | paste -sd' ')"
echo
echo "================ summary ($summary) ================"
cat "$summary"
grep -q -E '^(FAIL|TIMEOUT|NOTRUN)' "$summary" && exit 1
exit 0

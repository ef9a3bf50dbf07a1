#!/usr/bin/env bash
# Checks the carry bundle (tests/gpu_bundle.sh) the way a GPU machine with only the CUDA
# toolkit will use it, on this machine, without the system's Open MPI or HDF5:
#   1. a minimal Debian 12 (debootstrap --variant=minbase, plus gcc, g++, make, cmake
#      and python3, as the GPU machine has; no MPI, HDF5, PMIx, hwloc, libevent,
#      OpenBLAS, oneDNN, ssh) in build-bundle/chroot, made once and reused;
#   2. in a private mount namespace: the repository at /src, /proc, /dev, /sys, and the
#      CUDA toolkit at /usr/local/cuda when this machine has one; chroot there with an
#      environment that holds nothing but PATH and HOME (LD_LIBRARY_PATH empty);
#   3. there: source tests/gpu_env.sh; configure and build the CPU configuration (MPI
#      and parallel HDF5 must be found in the bundle); `ldd` of e2e-synth, e2e-train and
#      e2e-eval: every library but glibc's and GCC's resolves into the bundle (its deps/
#      too: GPU_ENV_DEPS=all), none is missing;
#      mpirun -np 2 e2e-synth, mpirun -np 1 e2e-train --device cpu (1 epoch), e2e-eval,
#      a stop after 5 steps + --resume auto against the uninterrupted run (h5diff of the
#      final checkpoints); then the CUDA configuration (sm_90, cuDNN and NCCL found by
#      tests/gpu_cuda_env.sh) and `ldd` of its e2e-train; then tests/gpu_full.sh itself,
#      as the GPU machine runs it, with its trainer steps on the CPU (GPU_FULL_DEVICE_AS=
#      cpu, 800 jets, 1 epoch): every step but the GPU-only ones must pass;
#   4. outside the chroot, on this machine, where Debian's own Open MPI, PMIx, hwloc and
#      HDF5 ARE installed: a 2-rank e2e-synth and a 1-epoch e2e-train under strace, which
#      must open no file of theirs (relocation: OPAL_PREFIX, PMIX_*, HWLOC_PLUGINS_PATH).
# Needs root (chroot, mounts), debootstrap and network the first time, strace for step 4.
# Not a ctest (root, minutes); run it after changing the bundle or tests/gpu_env.sh.
# Usage: tests/gpu_bundle_check.sh [BUNDLE_DIR]      logs: build-bundle/check/
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=$(cd "${1:-$top/.gpu-bundle}" && pwd)
chroot_dir=${GPU_CHECK_CHROOT:-$top/build-bundle/chroot}
logs=$top/build-bundle/check
die() { echo "gpu_bundle_check: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (chroot and mount namespaces)"
[ -f "$bundle/MANIFEST" ] || die "no bundle at $bundle: run tests/gpu_bundle.sh first"
mkdir -p "$logs"

if [ ! -x "$chroot_dir/usr/bin/cmake" ] || [ ! -x "$chroot_dir/usr/bin/python3" ]; then
  command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"
  echo "gpu_bundle_check: making a minimal Debian 12 in $chroot_dir (once)"
  rm -rf "$chroot_dir"
  debootstrap --variant=minbase --include=gcc,g++,make,cmake,libc6-dev,python3 bookworm "$chroot_dir" \
    http://deb.debian.org/debian >"$logs/debootstrap.log" 2>&1 || die "debootstrap failed ($logs/debootstrap.log)"
fi
cuda=
[ -x /usr/local/cuda/bin/nvcc ] && cuda=$(readlink -f /usr/local/cuda)

# --- steps 2 and 3: the bare system ---
inner=$(cat <<'INNER'
set -euo pipefail
echo "== the system has no MPI, HDF5, PMIx, hwloc, libevent, ssh"
found=$(ls /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu 2>/dev/null |
        grep -E '^lib(mpi|open-pal|open-rte|hdf5|pmix|hwloc|event|openblas)' || true)
[ -z "$found" ] || { echo "FAIL: the system has $found"; exit 1; }
for p in mpirun mpicc h5pcc h5diff ssh; do
  if command -v "$p"; then echo "FAIL: the system has $p"; exit 1; fi
done
echo "LD_LIBRARY_PATH='${LD_LIBRARY_PATH:-}'"
GPU_ENV_DEPS=all source /src/tests/gpu_env.sh   # deps/ too: this system has some of them (cmake's)
echo "libraries taken from deps/: $(ls "$GPU_BUNDLE/lib-missing" | tr '\n' ' ')"
export OMP_NUM_THREADS=1
B=/tmp/check-cpu
rm -rf "$B"
echo "== configure + build (CPU, E2E_BLAS=portable)"
cmake -S /src -B "$B" -DCMAKE_BUILD_TYPE=Release -DE2E_BLAS=portable -DE2E_ONEDNN=AUTO >"$B.configure.log" 2>&1 ||
  { tail -30 "$B.configure.log"; exit 1; }
grep -E 'Found (MPI_C|HDF5)' "$B.configure.log"
grep -E 'Found (MPI_C|HDF5).*/src/\.gpu-bundle/' "$B.configure.log" | wc -l | grep -qx 2 ||
  { echo "FAIL: MPI or HDF5 not found in the bundle"; exit 1; }
cmake --build "$B" -j"$(nproc)" --target e2e-synth e2e-train e2e-eval >"$B.build.log" 2>&1 ||
  { grep -E 'error|Error' "$B.build.log" | head -30; exit 1; }
echo "== ldd: every library but glibc and GCC runtime resolves into the bundle, none is missing"
for x in e2e-synth e2e-train e2e-eval; do
  ldd "$B/launch/$x" >"$B.ldd.$x"
  if grep -q 'not found' "$B.ldd.$x"; then grep 'not found' "$B.ldd.$x"; echo "FAIL: $x"; exit 1; fi
  grep '=>' "$B.ldd.$x" | grep -v -E '/src/\.gpu-bundle/|/lib(c|m|gcc_s|gomp|stdc\+\+|resolv)\.so' &&
    { echo "FAIL: $x takes a library other than glibc's or GCC's from outside the bundle"; exit 1; }
done
grep -E 'lib(mpi|open-pal|open-rte|hdf5)' "$B.ldd.e2e-train"
echo "== run under the bundle's mpirun"
D=/tmp/check-run
rm -rf "$D"; mkdir -p "$D"
mpirun --oversubscribe -np 2 "$B/launch/e2e-synth" --out "$D/jets.h5" --samples 800 --size 32 \
  --channels 3 --seed 3
T="mpirun --oversubscribe --bind-to none -np 1 $B/launch/e2e-train --data $D/jets.h5 --device cpu --epochs 1 --batch 32 --seed 5"
$T --out "$D/a" | tail -2
mpirun --oversubscribe -np 1 "$B/launch/e2e-eval" --checkpoint "$D/a/checkpoints/best.h5" \
  --data "$D/jets.h5" --split val --metrics "$D/eval.json"
rc=0; $T --out "$D/b" --stop-after-steps 5 >/dev/null 2>&1 || rc=$?
[ "$rc" = 75 ] || { echo "FAIL: the stopped run exited $rc, not 75"; exit 1; }
$T --out "$D/b" --resume auto | grep -E 'resumed' || { echo "FAIL: no resume"; exit 1; }
last() { ls "$1"/checkpoints/ckpt-*.h5 | tail -1; }
h5diff "$(last "$D/a")" "$(last "$D/b")" /model && h5diff "$(last "$D/a")" "$(last "$D/b")" /optimizer &&
  echo "h5diff: stop + resume == uninterrupted (model and optimizer)"
if [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "== the CUDA configuration (sm_90)"
  source /src/tests/gpu_cuda_env.sh
  C=/tmp/check-cuda
  rm -rf "$C"
  cmake -S /src -B "$C" -DCMAKE_BUILD_TYPE=Release -DE2E_BLAS=portable -DE2E_ONEDNN=AUTO -DUSE_CUDA=ON \
    $E2E_CUDA_CMAKE_ARGS -DCMAKE_CUDA_ARCHITECTURES=90 >"$C.configure.log" 2>&1 ||
    { tail -30 "$C.configure.log"; exit 1; }
  cmake --build "$C" -j"$(nproc)" --target e2e-train >"$C.build.log" 2>&1 ||
    { grep -E 'error|Error' "$C.build.log" | head -30; exit 1; }
  ldd "$C/launch/e2e-train" | grep -E 'lib(mpi|hdf5|cudnn|nccl|cudart)' | tee "$C.ldd"
  ldd "$C/launch/e2e-train" | grep -q 'not found' && { echo "FAIL: CUDA e2e-train has a missing library"; exit 1; }
  grep -q 'libmpi.so.40 => /src/.gpu-bundle/' "$C.ldd" || { echo "FAIL: CUDA build's MPI is not the bundle's"; exit 1; }
  if command -v cuobjdump >/dev/null; then
    cuobjdump --list-elf "$C/launch/e2e-train" | grep -o 'sm_[0-9]*' | sort -u | paste -sd' '
  fi
  echo "== tests/gpu_full.sh as on the GPU machine, its trainer steps on the CPU (GPU_FULL_DEVICE_AS=cpu)"
  rc=0
  GPU_FULL_DEVICE_AS=cpu GPU_FULL_SAMPLES=800 GPU_FULL_EPOCHS=1 GPU_FULL_SIZE=32 GPU_FULL_BUDGET_S=1500 \
    GPU_FULL_BUILD=/tmp/check-full GPU_FULL_WORK=/tmp/check-full-work bash /src/tests/gpu_full.sh /tmp/check-full-out \
    >/tmp/check-full.log 2>&1 || rc=$?
  sed -n '/= summary (/,$p' /tmp/check-full.log
  [ $rc = 0 ] || { echo "FAIL: tests/gpu_full.sh exited $rc (its logs: /tmp/check-full-out)"; exit 1; }
fi
echo "CHROOT CHECK PASSED"
INNER
)
echo "gpu_bundle_check: building and running in the bare Debian 12 ($chroot_dir); log $logs/chroot.log"
rc=0
unshare -m bash -euc '
  c=$1 top=$2 cuda=$3 inner=$4
  mount --make-rprivate /
  mkdir -p "$c/src" "$c/usr/local/cuda"
  mount --bind "$top" "$c/src"
  mount -t proc proc "$c/proc"
  mount --rbind /dev "$c/dev"
  mount --rbind /sys "$c/sys"
  [ -z "$cuda" ] || mount --bind -o ro "$cuda" "$c/usr/local/cuda"
  exec chroot "$c" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "$inner"
' _ "$chroot_dir" "$top" "$cuda" "$inner" 2>&1 | tee "$logs/chroot.log" || rc=$?
[ "$rc" = 0 ] || die "the check in the bare system failed ($logs/chroot.log)"

# --- step 4: relocation, on this machine with Debian's own packages installed ---
if ! command -v strace >/dev/null; then
  echo "gpu_bundle_check: no strace: the relocation check (step 4) is skipped"; exit 0
fi
echo "gpu_bundle_check: relocation on this machine (system Open MPI/HDF5 present), under strace"
(
  set -euo pipefail
  unset LD_LIBRARY_PATH
  # shellcheck source=tests/gpu_env.sh
  source "$top/tests/gpu_env.sh" "$bundle" >/dev/null
  export OMP_NUM_THREADS=1
  B=$logs/host-build D=$logs/host-run
  rm -rf "$B" "$D"; mkdir -p "$D"
  cmake -S "$top" -B "$B" -DCMAKE_BUILD_TYPE=Release -DE2E_BLAS=portable -DE2E_ONEDNN=AUTO >"$B.configure.log" 2>&1
  cmake --build "$B" -j"$(nproc)" --target e2e-synth e2e-train >"$B.build.log" 2>&1
  strace -f -qq -e trace=openat,execve -o "$logs/strace.log" \
    mpirun --oversubscribe -np 2 "$B/launch/e2e-synth" --out "$D/jets.h5" --samples 400 --size 32 --channels 3
  strace -f -qq -e trace=openat,execve -o "$logs/strace-train.log" \
    mpirun --oversubscribe --bind-to none -np 1 "$B/launch/e2e-train" --data "$D/jets.h5" --out "$D/r" \
      --epochs 1 --batch 32 >/dev/null
  # every file opened or executed: none of the system's MPI/PMIx/hwloc/HDF5 files
  opened=$(cat "$logs/strace.log" "$logs/strace-train.log" | grep -v -E 'ENOENT|ENOTDIR' |
           grep -o -E '"/[^"]*"' | tr -d '"' | sort -u)
  # (installed files only: session folders in /tmp are named after PMIx and hwloc too)
  bad=$(grep -v "^$bundle/" <<<"$opened" | grep -E '^/(usr|etc|lib|lib64|opt)/' |
        grep -E 'openmpi|pmix|hwloc|hdf5|libmpi|libopen-(pal|rte)|libevent|libsz|libaec' || true)
  echo "files opened: $(wc -l <<<"$opened"), from the bundle: $(grep -c "^$bundle/" <<<"$opened")"
  if [ -n "$bad" ]; then echo "FAIL: system files used:"; echo "$bad"; exit 1; fi
  echo "no file of the system's Open MPI, PMIx, hwloc or HDF5 was opened"
) 2>&1 | tee "$logs/host.log" || die "the relocation check failed ($logs/host.log)"
echo "gpu_bundle_check: PASSED (logs in $logs)"

#!/usr/bin/env bash
# Installs what e2e-ddp needs on Debian 12 (idempotent): compiler and CMake, OpenBLAS
# (OpenMP build), oneDNN (libdnnl-dev 2.6.3: the CPU backend's second convolution
# engine, the library PyTorch's CPU convolutions run on), Open MPI, parallel HDF5,
# PyTorch (the numerical reference and the baseline of the benchmarks), h5py,
# scikit-learn (the reference of a classifier's metrics: ROC AUC, rejection), gnuplot,
# universal-ctags (ctest code_shape_*); clang with its sanitizer and libFuzzer runtimes
# (libclang-rt-14-dev) and llvm-symbolizer (llvm-14) for the sanitizer configuration and the
# fuzz harnesses (tests/sanitize.sh);
# Slurm and munge for the Slurm tests and the local cluster (launch/local-slurm.sh;
# libpmix-dev holds the libpmix.so that Slurm's mpi/pmix plugin loads for `srun
# --mpi=pmix`; iproute2 and util-linux give ip, ss, unshare and nsenter for its nodes in
# network namespaces); and the Python environment of data/e2e-convert, the importer of
# E2E parquet and HDF5 files (pyarrow, h5py, numpy from PyPI, pinned in
# data/requirements.txt; its tests, ctest convert_* and e2e_convert_*, and benchmarks run
# in it too), with TensorBoard, whose event reader ctest train_tensorboard uses (pinned
# in tests/requirements.txt), and onnx and onnxruntime for launch/e2e-export (pinned in
# launch/requirements.txt), in .venv, or the folder E2E_VENV names. The CUDA toolkit is not installed
# here: the CUDA backend is built when /usr/local/cuda is present.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config git
      libopenblas-openmp-dev libdnnl-dev
      openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      python3 python3-numpy python3-torch python3-h5py python3-sklearn python3-venv
      gnuplot-nox procps universal-ctags
      clang libclang-rt-14-dev llvm-14
      slurmctld slurmd slurm-client munge libpmix-dev iproute2 util-linux)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The importer's environment: a virtual environment of Debian's Python 3 (Debian 12's
# own pip refuses to install into the system, PEP 668, and Debian has no pyarrow). It is
# (re)made only when data/requirements.txt differs from the copy kept in it, or when its
# packages do not import; otherwise this step takes well under a second.
top=$(cd "$(dirname "$0")/.." && pwd)
venv=${E2E_VENV:-$top/.venv}
req=$top/data/requirements.txt
treq=$top/tests/requirements.txt
lreq=$top/launch/requirements.txt
if ! cmp -s "$req" "$venv/e2e-requirements.txt" 2>/dev/null ||
   ! cmp -s "$treq" "$venv/e2e-test-requirements.txt" 2>/dev/null ||
   ! cmp -s "$lreq" "$venv/e2e-launch-requirements.txt" 2>/dev/null ||
   ! "$venv/bin/python" -c "import numpy, pyarrow, h5py, tensorboard, onnx, onnxruntime" 2>/dev/null; then
  echo "install-deps: Python environment $venv: $(grep -hv '^#' "$req" "$treq" "$lreq" | tr '\n' ' ')"
  rm -f "$venv/e2e-requirements.txt" "$venv/e2e-test-requirements.txt" "$venv/e2e-launch-requirements.txt"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: -r "$req" -r "$treq" \
    -r "$lreq"
  cp "$req" "$venv/e2e-requirements.txt"
  cp "$treq" "$venv/e2e-test-requirements.txt"
  cp "$lreq" "$venv/e2e-launch-requirements.txt"
fi

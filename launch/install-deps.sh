#!/usr/bin/env bash
# Installs what e2e-ddp needs on Debian 12 (idempotent): compiler and CMake, OpenBLAS
# (OpenMP build), Open MPI, parallel HDF5, PyTorch (the numerical reference and the
# baseline of the benchmarks), h5py, gnuplot; Slurm and munge for the Slurm tests and the
# local one-node cluster (launch/local-slurm.sh; libpmix-dev holds the libpmix.so that
# Slurm's mpi/pmix plugin loads for `srun --mpi=pmix`). The CUDA toolkit is not installed here:
# the CUDA backend is built when /usr/local/cuda is present.
set -euo pipefail
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
pkgs=(build-essential cmake pkg-config git
      libopenblas-openmp-dev
      openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      python3 python3-numpy python3-torch python3-h5py
      gnuplot-nox procps
      slurmctld slurmd slurm-client munge libpmix-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

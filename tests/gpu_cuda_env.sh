# shellcheck shell=bash
# Sourced, not run: finds nvcc, cuDNN and NCCL for a CUDA build of e2e-ddp and exports
#   E2E_NVCC               nvcc (PATH, else /usr/local/cuda/bin/nvcc); empty when none
#   CUDNN_ROOT, NCCL_ROOT  the folders holding include/cudnn.h and include/nccl.h
#   E2E_CUDA_CMAKE_ARGS    -DCMAKE_CUDA_COMPILER, -DCUDNN_LIBRARY/-DCUDNN_INCLUDE_DIR and
#                          -DNCCL_LIBRARY/-DNCCL_INCLUDE_DIR (CMake's find_library looks
#                          for libnccl.so, which a Python wheel does not have)
#   LD_LIBRARY_PATH        with both library folders first (cuDNN 9 loads its parts at
#                          run time by name)
# Each is looked for in its *_ROOT variable, the toolkit (nvcc/..), /usr, /usr/local,
# then python3's nvidia-cudnn-cu13 / nvidia-nccl-cu13 wheel (which PyTorch brings).
# Prints where each was found; returns non-zero when nvcc or cuDNN is missing (NCCL is
# only needed by the full build: its absence is reported, not an error).
#   source tests/gpu_cuda_env.sh

# The folder of one library: PREFIX HEADER LIBNAME... -> "dir header-dir library-file"
_gpu_find_lib() {
  local d=$1 header=$2 sub name
  shift 2
  [ -n "$d" ] && [ -f "$d/include/$header" ] || return 1
  for sub in lib lib64 lib/x86_64-linux-gnu; do
    for name in "$@"; do
      if [ -e "$d/$sub/$name" ]; then echo "$d/include $d/$sub/$name"; return 0; fi
    done
  done
  return 1
}

# the first of the usual places (and the Python wheel's) that holds HEADER and a LIBNAME
_gpu_find_any() {
  local root=$1 module=$2 header=$3 d wheel name
  shift 3
  for d in "$root" "$(dirname "$(dirname "$E2E_NVCC")")" /usr /usr/local; do
    _gpu_find_lib "$d" "$header" "$@" && return 0
  done
  # Debian/Ubuntu packages: the header in /usr/include, the library in the multiarch folder
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64; do
    for name in "$@"; do
      if [ -f "/usr/include/$header" ] && [ -e "$d/$name" ]; then echo "/usr/include $d/$name"; return 0; fi
    done
  done
  wheel=$(python3 -c "import $module as m; print(list(m.__path__)[0])" 2>/dev/null) || return 1
  _gpu_find_lib "$wheel" "$header" "$@"
}

_gpu_cuda_env() {
  local found inc lib
  E2E_NVCC=$(command -v nvcc || true)
  [ -n "$E2E_NVCC" ] || { [ -x /usr/local/cuda/bin/nvcc ] && E2E_NVCC=/usr/local/cuda/bin/nvcc; }
  export E2E_NVCC
  if [ -z "$E2E_NVCC" ]; then
    echo "gpu_cuda_env: no nvcc on PATH or in /usr/local/cuda/bin" >&2
    return 1
  fi
  echo "gpu_cuda_env: nvcc $E2E_NVCC ($("$E2E_NVCC" --version | grep -o 'release [0-9.]*'))"
  E2E_CUDA_CMAKE_ARGS="-DCMAKE_CUDA_COMPILER=$E2E_NVCC"

  if ! found=$(_gpu_find_any "${CUDNN_ROOT:-}" nvidia.cudnn cudnn.h libcudnn.so libcudnn.so.9); then
    echo "gpu_cuda_env: cuDNN not found (CUDNN_ROOT, the toolkit, /usr, python3's nvidia.cudnn)" >&2
    return 1
  fi
  read -r inc lib <<<"$found"
  export CUDNN_ROOT=${inc%/include}
  E2E_CUDA_CMAKE_ARGS+=" -DCUDNN_LIBRARY=$lib -DCUDNN_INCLUDE_DIR=$inc"
  LD_LIBRARY_PATH=$(dirname "$lib")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export LD_LIBRARY_PATH
  echo "gpu_cuda_env: cuDNN $lib"

  if found=$(_gpu_find_any "${NCCL_ROOT:-}" nvidia.nccl nccl.h libnccl.so libnccl.so.2); then
    read -r inc lib <<<"$found"
    export NCCL_ROOT=${inc%/include}
    E2E_CUDA_CMAKE_ARGS+=" -DNCCL_LIBRARY=$lib -DNCCL_INCLUDE_DIR=$inc"
    case ":$LD_LIBRARY_PATH:" in *":$(dirname "$lib"):"*) ;;
      *) LD_LIBRARY_PATH=$(dirname "$lib"):$LD_LIBRARY_PATH; export LD_LIBRARY_PATH;; esac
    echo "gpu_cuda_env: NCCL $lib"
  else
    echo "gpu_cuda_env: NCCL not found (NCCL_ROOT, the toolkit, /usr, python3's nvidia.nccl): only net/ can be built"
  fi
  export E2E_CUDA_CMAKE_ARGS
}
_gpu_cuda_env

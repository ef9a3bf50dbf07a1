# shellcheck shell=bash
# Sourced, not run: points this shell at the carry bundle that tests/gpu_bundle.sh made
# (Open MPI, parallel HDF5 and their libraries from Debian 12), so that CMake finds MPI
# and parallel HDF5 there and mpirun, e2e-synth, e2e-train, e2e-eval and h5diff run on a
# machine that has none of them installed.
#   source tests/gpu_env.sh [BUNDLE_DIR]     (default: $GPU_BUNDLE, else .gpu-bundle)
# (a script that sources it without an argument passes its own $1: name the folder)
# Sets PATH, LD_LIBRARY_PATH, OPAL_PREFIX/OPAL_SYSCONFDIR (Open MPI was built for /usr:
# its install directories are relative to the prefix, except sysconfdir /etc/openmpi),
# PMIX_* (PMIx's plugins and help files), HWLOC_PLUGINS_PATH, MPI_HOME, HDF5_ROOT (FindHDF5 then
# searches only the bundle and uses its h5pcc), CMAKE_PREFIX_PATH, OMPI_MCA_plm=isolated
# where there is no ssh (one node), and, as root, OMPI_ALLOW_RUN_AS_ROOT. The bundle's deps/ libraries (zlib, OpenSSL, libcurl, ...)
# are used only where the system lacks their soname: gpu_env links those into
# BUNDLE/lib-missing, so the system's own programs (python3, cmake) keep the system's
# (GPU_ENV_DEPS=all: every one of them, as tests/gpu_bundle_check.sh does to test them).
# Returns non-zero, with a message, when the bundle is missing or this glibc is older
# than the bundle needs.

_gpu_env() {
  local here bundle root ml f name missing=0 need have
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  bundle=${1:-${GPU_BUNDLE:-$here/../.gpu-bundle}}
  if [ ! -f "$bundle/MANIFEST" ]; then
    echo "gpu_env: no bundle at $bundle (make it with tests/gpu_bundle.sh on Debian 12)" >&2
    return 1
  fi
  bundle=$(cd "$bundle" && pwd)
  root=$bundle/root
  ml=$root/usr/lib/x86_64-linux-gnu
  need=$(sed -n 's/^glibc_needed=//p' "$bundle/MANIFEST")
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  if [ -n "$need" ] && [ -n "$have" ] &&
     [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1)" != "$need" ]; then
    echo "gpu_env: the bundle needs glibc $need, this system has $have" >&2
    return 1
  fi

  # deps/: link in each library whose soname the system does not resolve
  # (deps.sonames: "soname path-in-bundle", written by gpu_bundle.sh)
  rm -rf "$bundle/lib-missing"
  mkdir -p "$bundle/lib-missing"
  local cache
  cache=$( (ldconfig -p || /sbin/ldconfig -p) 2>/dev/null)
  while read -r name f; do
    if [ "${GPU_ENV_DEPS:-}" = all ] || ! grep -q "^[[:space:]]*$name " <<<"$cache"; then
      ln -s "$bundle/$f" "$bundle/lib-missing/$name"
      missing=$((missing + 1))
    fi
  done <"$bundle/deps.sonames"

  export GPU_BUNDLE=$bundle
  export OPAL_PREFIX=$root/usr OPAL_SYSCONFDIR=$root/etc/openmpi
  # PMIx (Debian: prefix /usr/lib/x86_64-linux-gnu/pmix2, libdir and sysconfdir
  # absolute, so each is set) and its plugin search path (else it also scans the
  # built-in one); hwloc: no plugins (its path points where there are none)
  local px=$ml/pmix2
  export PMIX_PREFIX=$px PMIX_EXEC_PREFIX=$px PMIX_LIBDIR=$px/lib PMIX_PKGLIBDIR=$px/lib/pmix
  export PMIX_DATAROOTDIR=$px/share PMIX_DATADIR=$px/share PMIX_PKGDATADIR=$px/share/pmix
  export PMIX_SYSCONFDIR=$px/share PMIX_MCA_mca_base_component_path=$px/lib/pmix
  export HWLOC_PLUGINS_PATH=$ml/hwloc
  export MPI_HOME=$root/usr HDF5_ROOT=$root/usr
  export PATH=$root/usr/bin:$PATH
  export LD_LIBRARY_PATH=$ml:$ml/openmpi/lib:$ml/pmix2/lib:$bundle/lib-missing${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  export CMAKE_PREFIX_PATH=$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
  # without ssh or rsh, Open MPI's default launcher refuses to start even one node's
  # ranks: the isolated launcher starts them on this node only
  if ! command -v ssh >/dev/null && ! command -v rsh >/dev/null && [ -z "${OMPI_MCA_plm:-}" ]; then
    export OMPI_MCA_plm=isolated
  fi
  # shared-memory transport without the single-copy path (process_vm_readv, which
  # containers and some VMs refuse); one node's ranks of a GPU machine need no speed here
  export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
  if [ "$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  echo "gpu_env: Open MPI and HDF5 from $bundle ($missing system libraries taken from its deps/)"
}
_gpu_env "$@"

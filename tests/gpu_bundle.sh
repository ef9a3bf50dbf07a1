#!/usr/bin/env bash
# Makes the carry bundle: Debian 12's Open MPI, parallel HDF5 (with h5diff) and every
# library they need beyond glibc and the GCC runtime, unpacked with `dpkg -x` into one
# ignored folder (.gpu-bundle/) that travels with the working tree to a GPU machine that
# has only the CUDA toolkit. `source tests/gpu_env.sh` there points PATH,
# LD_LIBRARY_PATH, OPAL_PREFIX, PMIX_PREFIX and CMake at it; tests/gpu_full.sh uses it.
#
#   root/   Open MPI, PMIx, hwloc, libevent, HDF5 (parallel, plus serial for h5diff):
#           always taken from the bundle
#   deps/   libraries a system usually has (zlib, OpenSSL, libcurl and its closure,
#           libudev): gpu_env.sh uses one only where the system lacks its soname, so
#           the system's own programs keep their own libraries
#
# Docs, man pages, static libraries, Fortran/C++/Java/OpenSHMEM parts and every Open MPI
# plugin whose libraries are not in the bundle (InfiniBand, OFI, UCX, PSM) are removed;
# the script then checks that every ELF file's needed libraries are in the bundle or in
# glibc/libgcc/libstdc++, and that the bundle plus the tracked tree stay under the
# device tool's 64 MiB. No OpenBLAS: it alone is 36 MB, and on an AVX2 machine the CPU
# backend's convolutions do not use BLAS (the driver builds with E2E_BLAS=portable).
# Usage: tests/gpu_bundle.sh [BUNDLE_DIR]   (default: .gpu-bundle in the repository)
#   GPU_BUNDLE_DEBS  where the .deb files are downloaded (default build-bundle/debs)
# Needs Debian 12 amd64 with apt-get and its package lists (runs `apt-get update` if a
# package is unknown) and dpkg, objdump.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bundle=${1:-$top/.gpu-bundle}
debs=${GPU_BUNDLE_DEBS:-$top/build-bundle/debs}
limit_mib=64

CORE_PKGS="openmpi-bin openmpi-common libopenmpi3 libopenmpi-dev libpmix2 libmunge2
  libhwloc15 libevent-core-2.1-7 libevent-pthreads-2.1-7
  libhdf5-openmpi-103-1 libhdf5-openmpi-dev libsz2 libaec0
  hdf5-tools libhdf5-103-1 libhdf5-hl-100"
DEP_PKGS="zlib1g libudev1 libssl3 libcurl4 libnghttp2-14 libidn2-0 libunistring2 librtmp1
  libgnutls30 libhogweed6 libnettle8 libgmp10 libp11-kit0 libffi8 libtasn1-6 libssh2-1
  libpsl5 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0 libkeyutils1
  libcom-err2 libldap-2.5-0 libsasl2-2 libzstd1 libbrotli1"
# what every Linux with a C compiler has: never bundled, never checked
BASE_LIBS="libc.so.6 libm.so.6 libpthread.so.0 libdl.so.2 librt.so.1 libresolv.so.2
  libutil.so.1 ld-linux-x86-64.so.2 libgcc_s.so.1 libstdc++.so.6"
# files the trainer cannot do without: the pruning must leave each of them
ESSENTIAL="usr/bin/orterun usr/bin/opal_wrapper usr/bin/h5diff usr/bin/h5pcc.openmpi
  usr/lib/x86_64-linux-gnu/libmpi.so.40 usr/lib/x86_64-linux-gnu/libhdf5_openmpi.so.103
  usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_pmix_ext3x.so
  usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_btl_vader.so
  usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_btl_self.so
  usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_pml_ob1.so
  usr/lib/x86_64-linux-gnu/openmpi/lib/openmpi3/mca_io_ompio.so
  usr/include/hdf5/openmpi/hdf5.h usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h"

die() { echo "gpu_bundle: $*" >&2; exit 1; }

[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] || die "needs Debian 12 on amd64 (dpkg)"
case "$(cat /etc/debian_version 2>/dev/null)" in 12*) ;; *) die "needs Debian 12 (bookworm): the bundle holds its packages";; esac
command -v objdump >/dev/null || die "needs objdump (binutils)"

fetch() {  # download every package of the two lists into $debs (a fresh copy each run)
  local apt="apt-get -q -o APT::Sandbox::User=root"
  # shellcheck disable=SC2086
  if ! apt-cache show $CORE_PKGS $DEP_PKGS >/dev/null 2>&1; then $apt update; fi
  rm -rf "$debs"; mkdir -p "$debs"
  # shellcheck disable=SC2086
  (cd "$debs" && $apt download $CORE_PKGS $DEP_PKGS) >"$debs/../download.log" 2>&1 ||
    { tail -20 "$debs/../download.log"; die "apt-get download failed"; }
}

unpack() {  # root/ from the core packages, deps/ from the others
  local p f
  rm -rf "$bundle"; mkdir -p "$bundle/root" "$bundle/deps"
  for p in $CORE_PKGS; do for f in "$debs/${p}_"*.deb; do dpkg -x "$f" "$bundle/root"; done; done
  for p in $DEP_PKGS; do for f in "$debs/${p}_"*.deb; do dpkg -x "$f" "$bundle/deps"; done; done
}

prune() {  # everything the trainer's build and run do not read
  local r=$bundle/root/usr ml=$bundle/root/usr/lib/x86_64-linux-gnu
  rm -rf "$bundle"/{root,deps}/usr/share/{doc,man,info,lintian,bug} "$r/share/openmpi/"*.supp
  rm -rf "$ml/fortran" "$bundle/deps/usr/lib/x86_64-linux-gnu/"{engines-3,ossl-modules,sasl2}
  find "$bundle" -name '*.a' -delete
  rm -f "$ml"/lib{mpi_mpifh,mpi_usempi,mpi_java,mpi_cxx,oshmem,ompitrace}*
  rm -f "$ml"/openmpi/lib/lib{mpi_mpifh,mpi_usempi,mpi_java,mpi_cxx,oshmem,ompitrace}*
  # Open MPI's own internals (for building its plugins) and the Fortran/OpenSHMEM headers
  (cd "$ml/openmpi/include" && rm -rf openmpi/{opal,orte,oshmem} openshmem mpp mpif* shmem* pshmem*)
  rm -f "$ml"/libhdf5_openmpi{_cpp,_fortran,_hl_cpp,hl_fortran}* "$ml"/libhdf5_serial{_cpp,_fortran,hl_fortran}*
  (cd "$r/bin" && rm -f osh* shmem* mpif* mpiCC* mpic++* mpicxx* mpijavac* h5pfc* h5c++* \
     profile2mat aggregate_profile orte-server ompi-server oshmem_info gif2h5 h52gif h5perf_serial \
     h5import h5jam h5unjam h5repart h5redeploy h5debug h5clear h5mkgrp opalc++ ortec*)
  drop_unresolved
  find "$bundle" -xtype l -delete          # links into what was removed
  find "$bundle" -depth -type d -empty -delete
}

needed() { objdump -p "$1" 2>/dev/null | awk '/^ *NEEDED/{print $2}'; }
is_elf() { [ -f "$1" ] && [ ! -L "$1" ] && [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = "177ELF" ]; }
sonames() {  # every library file name in the bundle, and glibc's
  { find "$bundle" \( -type f -o -type l \) -name 'lib*.so*' -printf '%f\n'; echo "$BASE_LIBS" | tr -s ' \n' '\n'; } | sort -u
}

# Removes each ELF file of root/ (plugins, mostly) that needs a library the bundle lacks,
# until none is left: e.g. mca_btl_openib needs libibverbs, which a GPU node of this kind
# has no use for.
drop_unresolved() {
  local changed=1 f n have
  while [ "$changed" = 1 ]; do
    changed=0; have=$(sonames)
    while IFS= read -r f; do
      is_elf "$f" || continue
      for n in $(needed "$f"); do
        if ! grep -qxF "$n" <<<"$have"; then
          echo "gpu_bundle: dropped ${f#"$bundle"/} (needs $n)" >>"$bundle/pruned.txt"
          rm -f "$f"; changed=1; break
        fi
      done
    done < <(find "$bundle/root" -type f)
  done
}

links() {  # what Debian's alternatives would make, and a relocatable h5pcc
  local b=$bundle/root/usr/bin
  ln -sf mpirun.openmpi "$b/mpirun"; ln -sf mpiexec.openmpi "$b/mpiexec"; ln -sf mpicc.openmpi "$b/mpicc"
  ln -sf h5pcc.openmpi "$b/h5pcc"
  # Debian's h5pcc (which CMake's FindHDF5 runs) says prefix="/usr" and links the static
  # libraries with the high-level one and their dependencies: take the prefix from the
  # script's own place, and link the shared libhdf5 alone (it names its own dependencies;
  # the bundle has no static or high-level library)
  sed -i -e 's|^prefix="/usr"$|prefix="$(cd "$(dirname "$0")/.." \&\& pwd)"|' \
         -e 's|^STATIC_AVAILABLE="yes"$|STATIC_AVAILABLE="no"|' -e 's|^HL="hl"$|HL=""|' \
         -e 's|^H5BLD_LIBS=.*$|H5BLD_LIBS="-lm"|' "$b/h5pcc.openmpi"
  [ "$(grep -c -E '^(prefix="\$\(cd|STATIC_AVAILABLE="no"|HL=""|H5BLD_LIBS="-lm")' "$b/h5pcc.openmpi")" = 4 ] ||
    die "h5pcc.openmpi: not every line to change was found (another HDF5 version?)"
}

check() {  # every library each ELF file needs is in the bundle or glibc; the essentials are there
  local f n have bad=0
  have=$(sonames)
  for f in $ESSENTIAL; do [ -e "$bundle/root/$f" ] || { echo "missing: $f" >&2; bad=1; }; done
  while IFS= read -r f; do
    is_elf "$f" || continue
    for n in $(needed "$f"); do
      grep -qxF "$n" <<<"$have" || { echo "unresolved: ${f#"$bundle"/} needs $n" >&2; bad=1; }
    done
  done < <(find "$bundle" -type f)
  [ "$bad" = 0 ] || die "the bundle is incomplete (above)"
}

glibc_needed() {  # the newest GLIBC_x.y symbol version any bundled file asks for
  find "$bundle" -type f -name '*.so*' -o -type f -path '*/bin/*' | while IFS= read -r f; do
    is_elf "$f" && objdump -T "$f" 2>/dev/null | grep -o 'GLIBC_[0-9.]*'
  done | sort -u -V | tail -1
}

manifest() {
  local p f tree total glibc
  glibc=$(glibc_needed)
  # deps.sonames: for tests/gpu_env.sh, which has no objdump to ask
  find "$bundle/deps" -type f -name 'lib*.so*' | sort | while IFS= read -r f; do
    echo "$(objdump -p "$f" | awk '/SONAME/{print $2}') ${f#"$bundle"/}"
  done >"$bundle/deps.sonames"
  {
    echo "# e2e-ddp GPU carry bundle, made $(date -u +%Y-%m-%dT%H:%MZ) by tests/gpu_bundle.sh"
    echo "# Debian $(cat /etc/debian_version) amd64; needs ${glibc} or newer"
    echo "glibc_needed=${glibc#GLIBC_}"
    for p in $CORE_PKGS; do echo "core $(dpkg-deb -W --showformat='${Package} ${Version}' "$debs/${p}_"*.deb)"; done
    for p in $DEP_PKGS; do echo "dep  $(dpkg-deb -W --showformat='${Package} ${Version}' "$debs/${p}_"*.deb)"; done
  } >"$bundle/MANIFEST"
  tree=$(cd "$top" && git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
  total=$(( tree + $(du -sb "$bundle" | cut -f1) ))
  echo "gpu_bundle: $bundle: $(du -sh "$bundle" | cut -f1) (root $(du -sh "$bundle/root" | cut -f1), deps $(du -sh "$bundle/deps" | cut -f1)); with the working tree $((total / 1048576)) MiB of $limit_mib"
  [ "$total" -lt $((limit_mib * 1048576)) ] || die "bundle plus working tree is over $limit_mib MiB"
}

fetch
unpack
prune
links
check
manifest
echo "gpu_bundle: done; carry it with the device tool as \"$(basename "$bundle")\" (tests/GPU.md)"

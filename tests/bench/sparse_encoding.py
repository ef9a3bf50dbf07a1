"""Measures the candidate encodings of the sparse layout (data/format/FORMAT.md, format version 2)
on synthetic jets from e2e-synth: bytes per jet on disk and the time to read every array
of the file back (from the page cache, through h5py: the filters' decoding cost), for

  flat32      offsets (N+1) int64, one uint32 flat index c*H*W + y*W + x a pixel, values
  flat32-pix  the same, pixel-major: index (y*W + x)*C + c, so one pixel's channels are
              neighbours
  plane16     offsets (N+1) int64, counts (N, C) uint32 (entries per channel plane), a
              uint16 position y*W + x inside the plane, values (channel-major)
  ... +gzip1/+gzip4/+lzf: the same arrays with HDF5's shuffle filter and that compressor,
              in chunks of 2^20 entries

values are float32 (from a float32 file) or float16 (from a float16 file): the stored
dtype, so every encoding is bit-exact. Dense float32 and float16 files are the reference.
Usage: tests/bench/sparse_encoding.py [BUILD_DIR] [JETS]   (runs itself in .venv: h5py; BUILD_DIR
defaults to $E2E_BUILD, else build/)"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from project_venv import use_project_venv  # noqa: E402

use_project_venv(__file__)
import h5py  # noqa: E402
import numpy as np  # noqa: E402

CHUNK = 1 << 20
FILTERS = {"": {}, "+gzip1": dict(compression="gzip", compression_opts=1, shuffle=True),
           "+gzip4": dict(compression="gzip", compression_opts=4, shuffle=True),
           "+lzf": dict(compression="lzf", shuffle=True)}


def synth(build, path, jets, dtype):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    subprocess.run(["mpirun", "-np", "2", os.path.join(build, "launch", "e2e-synth"), "--out", path,
                    "--samples", str(jets), "--dtype", dtype, "--seed", "7"], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def nonzero(x):
    """the stored values whose bit pattern is not all zeros (-0.0 counts as a value)"""
    bits = x.view(np.uint32 if x.dtype == np.float32 else np.uint16)
    return bits != 0


def encodings(x):
    """name -> {dataset: array} for one dense block x (N, C, H, W)"""
    N, C, H, W = x.shape
    nz = nonzero(x)
    per_jet = nz.reshape(N, -1).sum(1)
    offsets = np.concatenate([[0], np.cumsum(per_jet)]).astype(np.int64)
    flat = x.reshape(N, -1)
    jet, idx = np.nonzero(nz.reshape(N, -1))
    out = {"flat32": {"offsets": offsets, "index": idx.astype(np.uint32), "value": flat[jet, idx]}}
    pix = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(N, -1)  # (y, x, c) order
    jp, ip = np.nonzero(nonzero(pix))
    out["flat32-pix"] = {"offsets": offsets, "index": ip.astype(np.uint32), "value": pix[jp, ip]}
    counts = nz.reshape(N, C, -1).sum(2).astype(np.uint32)
    out["plane16"] = {"offsets": offsets, "counts": counts, "pos": (idx % (H * W)).astype(np.uint16),
                      "value": flat[jet, idx]}
    return out


def write(path, arrays, filt):
    with h5py.File(path, "w", libver=("earliest", "v110")) as f:
        for name, a in arrays.items():
            big = a.ndim == 1 and len(a) > CHUNK and name not in ("offsets",)
            if filt and big:
                f.create_dataset(name, data=a, chunks=(CHUNK,), **filt)
            else:
                f.create_dataset(name, data=a)


def read_seconds(path, repeat=3):
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        with h5py.File(path, "r") as f:
            for name in f:
                f[name][()]
        best = min(best, time.perf_counter() - t)
    return best


def measure(build, jets, dtype, tmp):
    dense = os.path.join(tmp, "dense_%s.h5" % dtype)
    synth(build, dense, jets, dtype)
    with h5py.File(dense, "r") as f:
        x = f["X_jet"][()]
    N = x.shape[0]
    rows = [("dense " + dtype, os.path.getsize(dense), read_seconds(dense), None)]
    for name, arrays in encodings(x).items():
        for fname, filt in FILTERS.items():
            p = os.path.join(tmp, "%s%s_%s.h5" % (name, fname, dtype))
            write(p, arrays, filt)
            rows.append((name + fname, os.path.getsize(p), read_seconds(p), arrays))
    nnz = len(encodings(x)["plane16"]["pos"])
    print("\n%d jets of %s, %s: %.0f non-zero values a jet (%.2f%% of the pixels)"
          % (N, " x ".join(map(str, x.shape[1:])), dtype, nnz / N, 100.0 * nnz / x[0].size / N))
    print("%-20s %12s %10s %12s %14s" % ("encoding", "bytes/jet", "vs dense32", "read jets/s", "read MB/s (file)"))
    ref = None
    for name, size, sec, _ in rows:
        ref = ref or (size if dtype == "float32" else size * 2)
        print("%-20s %12.0f %9.1fx %12.0f %14.0f" % (name, size / N, ref / size, N / sec, size / 1e6 / sec))


def main():
    if "-h" in sys.argv[1:] or "--help" in sys.argv[1:]:
        print(__doc__)
        return
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    build = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("E2E_BUILD") or os.path.join(top, "build")
    jets = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory(prefix="e2e_sparse_enc_") as tmp:
        for dtype in ("float32", "float16"):
            measure(build, jets, dtype, tmp)


if __name__ == "__main__":
    main()

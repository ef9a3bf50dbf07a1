#!/usr/bin/env python3
"""Benchmark: data/e2e-convert's throughput (jets/s, MB/s) on a generated source file: parquet
in the Top Gun schema (X_jet channel-first list<list<list<double>>>, m, pt, ieta, iphi), or
with --source hdf5 an HDF5 file as the quark-gluon one (X_jets (N, S, S, C) channel-last
float32, lzf, chunks of 32 jets; m0, pt, y).

The jets are e2e-synth's (physics-shaped, as sparse as real jet images): DISTINCT jets are
generated once and repeated to make JETS rows, stored as in the Top Gun files (one jet a
row group by default, snappy compression). Each configuration converts the same file,
once, after a read of it into the page cache; the output goes to the same folder and is
deleted after each run. Memory: the largest sampled sum of the resident sizes of all the
converter's processes (the main one, the decoding ones, multiprocessing's helper), and the
largest single process. --baseline PROGRAM runs another converter with the same options
beside (e.g. an earlier version, for a comparison in one run); --repeat runs every
configuration again, in turn (on a shared machine the first runs often differ).

usage: tests/bench/convert_parquet.py [--build DIR] [--jets N] [--distinct N]
         [--channels C] [--size S] [--row-group R] [--values float64|float32]
         [--source parquet|hdf5] [--jobs 1,2] [--dtypes float32,float16] [--dir DIR]
         [--baseline PROGRAM] [--repeat N] [--keep] [--stores dense,sparse]

--stores: the output layouts to write (e2e-convert --store; default dense); the sparse
output's size a jet is printed beside.
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


sys.path.insert(0, HERE)
from proc_memory import Sampled  # noqa: E402


def nested(x):
    """(n, a, b, c) array -> list<list<list<value>>> without a Python loop"""
    n, a, b, c = x.shape
    v = pa.array(x.reshape(-1))
    l3 = pa.ListArray.from_arrays(pa.array(np.arange(0, n * a * b * c + 1, c, dtype=np.int32)), v)
    l2 = pa.ListArray.from_arrays(pa.array(np.arange(0, n * a * b + 1, b, dtype=np.int32)), l3)
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * a + 1, a, dtype=np.int32)), l2)


def make_source(a, path):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    synth = os.path.join(a.dir, "bench_synth_%d_%d_%d.h5" % (a.distinct, a.channels, a.size))
    if not os.path.exists(synth):
        subprocess.run(["mpirun", "--bind-to", "none", "-np", "2", os.path.join(a.build, "launch", "e2e-synth"),
                        "--out", synth, "--samples", str(a.distinct), "--channels", str(a.channels),
                        "--size", str(a.size), "--seed", "7"], check=True, env=env)
    vt = np.float64 if a.values == "float64" else np.float32
    with h5py.File(synth) as f:
        x = f["X_jet"][:]
        cols = {c: f[c][:].astype(np.float64) for c in ("m", "pt", "ieta", "iphi")}
    t0 = time.time()
    if a.source == "hdf5":
        with h5py.File(path + ".tmp", "w") as f:
            d = f.create_dataset("X_jets", shape=(a.jets, a.size, a.size, a.channels), dtype=np.float32,
                                 compression="lzf", chunks=(32, a.size, a.size, a.channels))
            for s in range(0, a.jets, 256):
                idx = np.arange(s, min(s + 256, a.jets)) % a.distinct
                d[s:s + len(idx)] = x[idx].transpose(0, 2, 3, 1)
            idx = np.arange(a.jets) % a.distinct
            f["m0"], f["pt"], f["y"] = cols["m"][idx], cols["pt"][idx], (cols["m"][idx] > 120).astype(np.float32)
        os.replace(path + ".tmp", path)
        sys.stderr.write("wrote %s (%.0f s)\n" % (path, time.time() - t0))
        return
    schema = pa.schema([("X_jet", pa.list_(pa.list_(pa.list_(pa.from_numpy_dtype(vt))))),
                        ("m", pa.float64()), ("pt", pa.float64()), ("ieta", pa.float64()), ("iphi", pa.float64())])
    block = max(a.row_group, 256 // a.row_group * a.row_group)
    with pq.ParquetWriter(path + ".tmp", schema, compression="snappy") as w:
        for s in range(0, a.jets, block):
            idx = np.arange(s, min(s + block, a.jets)) % a.distinct
            t = pa.table({"X_jet": nested(x[idx].astype(vt)), **{c: pa.array(v[idx]) for c, v in cols.items()}},
                         schema=schema)
            w.write_table(t, row_group_size=a.row_group)
            sys.stderr.write("\rwriting %s: %d/%d jets" % (path, min(s + block, a.jets), a.jets))
    os.replace(path + ".tmp", path)
    sys.stderr.write("  (%.0f s)\n" % (time.time() - t0))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.environ.get("E2E_BUILD") or os.path.join(TOP, "build"),
                   help="the build folder (default: $E2E_BUILD, else build/)")
    p.add_argument("--jets", type=int, default=20000)
    p.add_argument("--distinct", type=int, default=2048)
    p.add_argument("--channels", type=int, default=8)
    p.add_argument("--size", type=int, default=125)
    p.add_argument("--row-group", type=int, default=1)
    p.add_argument("--values", choices=("float64", "float32"), default="float64")
    p.add_argument("--jobs", default="1,2")
    p.add_argument("--dtypes", default="float32,float16")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--dir", default="/tmp")
    p.add_argument("--source", choices=("parquet", "hdf5"), default="parquet")
    p.add_argument("--baseline", metavar="PROGRAM", help="another converter run beside, with the same options")
    p.add_argument("--repeat", type=int, default=1, help="run every configuration this many times, in turn")
    p.add_argument("--keep", action="store_true", help="keep the source file for the next run")
    p.add_argument("--stores", default="dense", help="output layouts, comma-separated (dense, sparse)")
    a = p.parse_args()
    a.build = os.path.abspath(a.build)
    os.makedirs(a.dir, exist_ok=True)
    src = os.path.join(a.dir, "bench_%d_%dx%dx%d_%s.%s" % (
        a.jets, a.channels, a.size, a.size, "rg%d_%s" % (a.row_group, a.values) if a.source == "parquet" else "lzf",
        "parquet" if a.source == "parquet" else "hdf5"))
    if not os.path.exists(src):
        make_source(a, src)
    size = os.path.getsize(src)
    what = ("%d row groups, X_jet %s values" % (pq.ParquetFile(src).metadata.num_row_groups, a.values)
            if a.source == "parquet" else "X_jets float32 channel-last, lzf, chunks of 32 jets")
    print("input: %s: %d jets, %s, %.0f MB (%.1f KB a jet), %d x %d x %d"
          % (src, a.jets, what, size / 1e6, size / 1e3 / a.jets, a.channels, a.size, a.size))
    print("machine: %d CPUs (%s)" % (os.cpu_count(), cpu_name()))
    print()
    print("| converter | dtype | jobs | seconds | jets/s | MB/s written | MB/s read | peak MB, all processes | "
          "largest process MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    programs = [("e2e-convert", os.path.join(TOP, "data", "e2e-convert"))]
    if a.baseline:
        programs.append(("baseline", a.baseline))
    summary = []
    for _ in range(a.repeat):
        for dtype in a.dtypes.split(","):
            for jobs in (int(j) for j in a.jobs.split(",")):
                for store in a.stores.split(","):
                    for name, prog in programs:
                        summary.append(run_one(a, name, prog, src, size, dtype, jobs, store))
    print()
    print("the converters' own lines (their clock starts after Python starts):")
    for line in summary:
        print("  " + line)
    if not a.keep:
        os.unlink(src)


def run_one(a, name, prog, src, size, dtype, jobs, store="dense"):
    subprocess.run(["cat", src], stdout=subprocess.DEVNULL, check=True)  # page cache
    os.sync()  # no run starts behind the previous one's writes
    out = os.path.join(a.dir, "bench_convert_out.h5")
    if os.path.exists(out):
        os.unlink(out)
    r = Sampled([prog, "-q", "--dtype", dtype, "--jobs", str(jobs), "--batch", str(a.batch), "-o", out, src]
                + (["--store", store] if store != "dense" else []))
    if r.rc != 0:
        sys.exit("%s failed: %s" % (prog, r.stdout + r.stderr))
    n = a.jets
    row_bytes = a.channels * a.size * a.size * (4 if dtype == "float32" else 2)
    with h5py.File(out) as f:
        x = f["X_jet"]
        assert (x.shape[0] if hasattr(x, "shape") else int(x.attrs["shape"][0])) == n
    out_bytes = os.path.getsize(out)
    os.unlink(out)
    if store != "dense":
        name = "%s --store %s (%.0f bytes a jet)" % (name, store, out_bytes / n)
    el = r.seconds
    print("| %s | %s | %d | %.1f | %.0f | %.0f | %.1f | %.0f | %.0f |" % (
        name, dtype, jobs, el, n / el, n * row_bytes / 1e6 / el, size / 1e6 / el, r.peak_mb, max(r.hwm_mb.values())))
    sys.stdout.flush()
    return r.stdout.strip()


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()

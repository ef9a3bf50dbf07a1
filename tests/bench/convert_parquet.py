#!/usr/bin/env python3
"""Benchmark: data/convert-parquet's throughput (jets/s, MB/s) on a generated parquet file
in the E2E schema (X_jet channel-first list<list<list<double>>>, m, pt, ieta, iphi).

The jets are e2e-synth's (physics-shaped, as sparse as real jet images): DISTINCT jets are
generated once and repeated to make JETS rows, stored as in the Top Gun files (one jet a
row group by default, snappy compression). Each configuration converts the same parquet
file, once, after a read of it into the page cache; the output goes to the same folder
and is deleted after each run. Peak RSS is the largest resident size among the converter's
processes (the main one and the decoding ones).

usage: tests/bench/convert_parquet.py [--build DIR] [--jets N] [--distinct N]
         [--channels C] [--size S] [--row-group R] [--values float64|float32]
         [--jobs 1,2] [--dtypes float32,float16] [--dir DIR] [--keep]
"""
import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
VENV = os.environ.get("E2E_VENV", os.path.join(TOP, ".venv"))
if os.path.realpath(sys.prefix) != os.path.realpath(VENV):  # pyarrow lives in the project's environment
    py = os.path.join(VENV, "bin", "python")
    if not os.access(py, os.X_OK):
        sys.exit("convert_parquet.py: no Python environment at %s: run launch/install-deps.sh" % VENV)
    os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402


# runs argv[1:] and prints the peak RSS (KB) of it and its descendants on stderr
RSS_RUNNER = """import os, subprocess, sys
p = subprocess.Popen(sys.argv[1:])
_, status, ru = os.wait4(p.pid, 0)
sys.stderr.write("%d\\n" % ru.ru_maxrss)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def nested(x):
    """(n, a, b, c) array -> list<list<list<value>>> without a Python loop"""
    n, a, b, c = x.shape
    v = pa.array(x.reshape(-1))
    l3 = pa.ListArray.from_arrays(pa.array(np.arange(0, n * a * b * c + 1, c, dtype=np.int32)), v)
    l2 = pa.ListArray.from_arrays(pa.array(np.arange(0, n * a * b + 1, b, dtype=np.int32)), l3)
    return pa.ListArray.from_arrays(pa.array(np.arange(0, n * a + 1, a, dtype=np.int32)), l2)


def make_parquet(a, path):
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
    p.add_argument("--build", default=os.path.join(TOP, "build"))
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
    p.add_argument("--keep", action="store_true", help="keep the parquet file for the next run")
    a = p.parse_args()
    a.build = os.path.abspath(a.build)
    os.makedirs(a.dir, exist_ok=True)
    pqf = os.path.join(a.dir, "bench_%d_%dx%dx%d_rg%d_%s.parquet" % (a.jets, a.channels, a.size, a.size,
                                                                     a.row_group, a.values))
    if not os.path.exists(pqf):
        make_parquet(a, pqf)
    md = pq.ParquetFile(pqf).metadata
    psize = os.path.getsize(pqf)
    print("input: %s: %d jets, %d row groups, %.0f MB (%.1f KB a jet), X_jet %s values, %d x %d x %d"
          % (pqf, md.num_rows, md.num_row_groups, psize / 1e6, psize / 1e3 / md.num_rows, a.values,
             a.channels, a.size, a.size))
    print("machine: %d CPUs (%s)" % (os.cpu_count(), cpu_name()))
    print()
    print("| dtype | jobs | seconds | jets/s | MB/s written | MB/s parquet read | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    conv = os.path.join(TOP, "data", "convert-parquet")
    summary = []
    for dtype in a.dtypes.split(","):
        for jobs in (int(j) for j in a.jobs.split(",")):
            subprocess.run(["cat", pqf], stdout=subprocess.DEVNULL, check=True)  # page cache
            out = os.path.join(a.dir, "bench_convert_out.h5")
            if os.path.exists(out):
                os.unlink(out)
            t0 = time.time()
            # through a small Python process: a child's peak RSS starts at its parent's (Linux
            # carries it over fork and exec), and this one holds the generated jets
            p = subprocess.run([sys.executable, "-c", RSS_RUNNER, conv, "-q", "--dtype", dtype, "--jobs", str(jobs),
                                "--batch", str(a.batch), "-o", out, pqf], capture_output=True, text=True)
            el = time.time() - t0
            if p.returncode != 0:
                sys.exit("convert-parquet failed: %s" % p.stdout + p.stderr)
            summary.append(p.stdout.strip())
            rss_kb = int(p.stderr.strip().splitlines()[-1])
            n = md.num_rows
            row_bytes = a.channels * a.size * a.size * (4 if dtype == "float32" else 2)
            with h5py.File(out) as f:  # spot check: the last jet is synthetic jet (n-1) % distinct
                assert f["X_jet"].shape[0] == n
            os.unlink(out)
            print("| %s | %d | %.1f | %.0f | %.0f | %.1f | %.0f |" % (
                dtype, jobs, el, n / el, n * row_bytes / 1e6 / el, psize / 1e6 / el, rss_kb / 1024))
            sys.stdout.flush()
    print()
    print("the converter's own lines (its clock starts after Python starts):")
    for line in summary:
        print("  " + line)
    if not a.keep:
        os.unlink(pqf)


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

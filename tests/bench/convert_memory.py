#!/usr/bin/env python3
"""Benchmark: the peak memory of a whole data/e2e-convert run (the main process and its
decoding processes together) on parquet files whose footers are as large as a real Top
Gun file's: one row group per jet, ROW_GROUPS row groups a file. The images are tiny
(8 x 2 x 2 float64 values, X_jet as list<list<list<double>>>, plus m, pt, ieta, iphi as
double; snappy; pyarrow's default statistics), so the footer, not the pixels, is what
costs memory: at 150 000 row groups a file's footer is about 91 MB, and pyarrow's
FileMetaData of it about 0.8 GB in every process that opens the file whole.

The first file is written with pyarrow, the others are hard links to it under other
names (the converter treats them as distinct files; the page cache holds one copy).
Memory is sampled every 20 ms over the converter's process tree: the largest sum of the
processes' resident sizes, and the sum of each process's own peak (VmHWM, an upper bound
that no sampling can miss). Beside it, for comparison in the same run: the peak resident
size of a process that only opens one of the files with pyarrow.parquet.ParquetFile.

usage: tests/bench/convert_memory.py [--files 6] [--row-groups 150000] [--jobs 2] [--dir /tmp] [--keep]
"""
import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

sys.path.insert(0, HERE)
from proc_memory import Sampled, pyarrow_open_mb  # noqa: E402


def nested(values, n, a, b, c):
    arr = pa.array(values)
    for k, ln in ((n * a * b, c), (n * a, b), (n, a)):
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, k * ln + 1, ln, dtype=np.int32)), arr)
    return arr


def make_file(path, n):
    rng = np.random.default_rng(1)
    t = pa.table({"X_jet": nested(rng.random(n * 8 * 2 * 2), n, 8, 2, 2), "m": rng.uniform(85, 500, n),
                  "pt": rng.uniform(400, 1200, n), "ieta": rng.integers(0, 170, n).astype(np.float64),
                  "iphi": rng.integers(0, 360, n).astype(np.float64)})
    t0 = time.time()
    pq.write_table(t, path + ".tmp", row_group_size=1, compression="snappy")
    os.replace(path + ".tmp", path)
    sys.stderr.write("wrote %s (%d row groups) in %.0f s\n" % (path, n, time.time() - t0))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=6)
    ap.add_argument("--row-groups", type=int, default=150000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--keep", action="store_true", help="keep the parquet file for the next run")
    a = ap.parse_args()
    first = os.path.join(a.dir, "footer_%d.parquet" % a.row_groups)
    if not os.path.exists(first):
        make_file(first, a.row_groups)
    files = [first]
    for k in range(1, a.files):
        link = os.path.join(a.dir, "footer_%d_%d.parquet" % (a.row_groups, k))
        if not os.path.exists(link):
            os.link(first, link)
        files.append(link)
    with open(first, "rb") as f:
        f.seek(-8, os.SEEK_END)
        footer = int.from_bytes(f.read(4), "little")
    print("input: %d files like %s: %d row groups, %.0f MB, footer %.1f MB"
          % (a.files, first, a.row_groups, os.path.getsize(first) / 1e6, footer / 1e6))
    bare, whole = pyarrow_open_mb(sys.executable), pyarrow_open_mb(sys.executable, first)
    print("for comparison: a Python process that imports pyarrow and h5py peaks at %.0f MB; with "
          "pyarrow.parquet.ParquetFile(one file) opened, at %.0f MB" % (bare, whole))
    out = os.path.join(a.dir, "footer_bench_out.h5")
    if os.path.exists(out):
        os.unlink(out)
    r = Sampled([os.path.join(TOP, "data", "e2e-convert"), "-q", "-j", str(a.jobs), "-o", out] + files)
    if r.rc:
        sys.exit("e2e-convert failed:\n" + r.stdout + r.stderr)
    os.unlink(out)
    print("e2e-convert -j %d, %d files: %.1f s; whole import peak %.0f MB (largest sampled sum of resident sizes "
          "of its %d processes); sum of the processes' own peaks %.0f MB; largest process %.0f MB"
          % (a.jobs, a.files, r.seconds, r.peak_mb, len(r.hwm_mb), sum(r.hwm_mb.values()), max(r.hwm_mb.values())))
    print("  " + r.stdout.strip())
    if not a.keep:
        for f in files:
            os.unlink(f)


if __name__ == "__main__":
    main()

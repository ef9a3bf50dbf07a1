#!/usr/bin/env python3
"""Tests of data/e2e-convert on parquet files written here with pyarrow in the Top Gun
schema (X_jet nested lists, m, pt, ieta, iphi). One test per subcommand (ctest runs each
separately):

  roundtrip  channel-first and channel-last files (float64 and float32 values, row groups
             of 1 to 37 jets) converted together with 2 decoding processes and in the main
             process, float32 and float16: every value equals the source's; attributes,
             chunking along N; a 125 x 125 file; --layout, --column, --channels; progress
  append     rows added to a converted file equal the source's, attributes extended; a
             failed append (bad row, other shape, other dtype, a file already in it, a
             fixed-size file, SIGTERM mid-way) leaves the file byte-identical, no partial
             files, no decoding process
  train      converted files (float32, float16, a file list of two) pass e2e-data info, and
             mpirun -np 2 e2e-train runs an epoch on them
  bad_input  missing column, wrong image shape (a row group, a second file, an ambiguous
             one), ragged nested list, null image, NaN in m, NaN pixel, float16 overflow,
             truncated file, damaged row group, not parquet: exit 1, one message naming the
             file (and the row group and row where there is one), no output left behind
  cli        --help, --version, bad options (exit 2), an existing output, --force, a
             missing Python environment

usage: test_convert_parquet.py TEST BUILD_DIR
"""
import glob
import hashlib
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from test_e2e_convert import Env as TmpEnv, run_test  # noqa: E402 - a temporary folder, the build's programs
from test_train_e2e import ENV, MPIRUN, Failure, check, run  # noqa: E402 - the e2e tests' helpers

CONVERT = os.path.join(TOP, "data", "e2e-convert")
ALIAS = os.path.join(TOP, "data", "convert-parquet")
TOP_GUN = ["track_pt", "dz", "d0", "ecal", "hcal", "bpix1", "bpix2", "bpix3"]


def convert(*args, expect=0, timeout=120):
    """e2e-convert storing X_jet dense (these tests check the dense dataset's chunks and
    growth; the sparse store, the default, is tests/test_convert_sparse.py's)"""
    return run([CONVERT, "--store", "dense"] + [str(a) for a in args], expect=expect, timeout=timeout)


# ---------------------------------------------------------------- parquet files in the E2E schema

def nested(x, lengths=None):
    """(n, a, b, c) array -> list<list<list<value>>>; lengths=(l1, l2, l3) per-list
    lengths (for ragged or odd lists) with x the flat values"""
    if lengths is None:
        n, a, b, c = x.shape
        lengths = (np.full(n, a), np.full(n * a, b), np.full(n * a * b, c))
    arr = pa.array(np.ascontiguousarray(x).reshape(-1))
    for ls in reversed(lengths):
        arr = pa.ListArray.from_arrays(pa.array(np.concatenate([[0], np.cumsum(ls)]).astype(np.int32)), arr)
    return arr


class Jets:
    """n jets of images (C, H, W) with sparse positive pixels, and the scalar columns"""

    def __init__(self, n, chw, seed, value_type=np.float64):
        rng = np.random.default_rng(seed)
        C, H, W = chw
        x = np.where(rng.random((n, C, H, W)) < 0.08, rng.exponential(3.0, (n, C, H, W)), 0.0)
        # values whose float32 and float16 roundings are not trivial
        x[:, :, 0, 0] = rng.uniform(1e-3, 600.0, (n, C))
        self.x = x.astype(value_type)
        self.m = rng.uniform(85.0, 500.0, n)
        self.pt = rng.uniform(400.0, 1200.0, n)
        self.ieta = rng.integers(0, 170, n).astype(np.float64)
        self.iphi = rng.integers(0, 360, n).astype(np.float64)
        self.n = n

    def table(self, layout="chw", lo=0, hi=None, drop=(), rename=None, int_index=False, x_array=None):
        hi = self.n if hi is None else hi
        x = self.x[lo:hi]
        if layout == "hwc":
            x = x.transpose(0, 2, 3, 1)
        cols = {"X_jet": x_array if x_array is not None else nested(x), "m": pa.array(self.m[lo:hi]),
                "pt": pa.array(self.pt[lo:hi]),
                "ieta": pa.array(self.ieta[lo:hi].astype(np.int64) if int_index else self.ieta[lo:hi]),
                "iphi": pa.array(self.iphi[lo:hi].astype(np.int64) if int_index else self.iphi[lo:hi])}
        for d in drop:
            del cols[d]
        for a, b in (rename or {}).items():
            cols[b] = cols.pop(a)
        return pa.table(cols)

    def expect_x(self, dtype):
        return self.x.astype(np.float32 if dtype == "float32" else np.float16)


def write(path, tables_and_groups, **kw):
    """tables written in order, each split into row groups of the given size"""
    w = None
    for t, rg in tables_and_groups:
        if w is None:
            w = pq.ParquetWriter(path, t.schema, **kw)
        w.write_table(t, row_group_size=rg)
    w.close()
    return path


def row_groups(path):
    md = pq.ParquetFile(path).metadata
    return [md.row_group(i).num_rows for i in range(md.num_row_groups)]


class Env(TmpEnv):
    def __init__(self, build):
        TmpEnv.__init__(self, build)
        # the two layouts of the issue, several row groups, as in the E2E files
        self.a = Jets(170, (8, 32, 32), seed=1)  # channel-first, float64 values
        self.b = Jets(130, (8, 32, 32), seed=2, value_type=np.float32)  # channel-last, float32 values
        self.pa = write(self.path("topgun_a.parquet"), [(self.a.table("chw"), 37)])
        self.pb = write(self.path("topgun_b.parquet"), [(self.b.table("hwc", 0, 40, int_index=True), 1),
                                                        (self.b.table("hwc", 40, 130, int_index=True), 30)])


def check_file(path, parts, dtype, channels=TOP_GUN):
    """X_jet and the columns of path equal the Jets parts [(jets, lo, hi)], exactly"""
    with h5py.File(path, "r") as f:
        x = f["X_jet"]
        want_x = np.concatenate([j.expect_x(dtype)[lo:hi] for j, lo, hi in parts])
        check(x.shape == want_x.shape, "%s: X_jet shape %s" % (os.path.basename(path), x.shape))
        check(x.dtype == np.dtype(dtype), "X_jet dtype %s" % x.dtype)
        got = x[()]
        # bitwise: float16 and float32 roundings of every source value
        same = np.array_equal(got.view(np.uint16 if dtype == "float16" else np.uint32),
                              want_x.view(np.uint16 if dtype == "float16" else np.uint32))
        if not same:
            bad = np.argwhere(got != want_x)[:3]
            raise Failure("X_jet differs from the source at %s: %s vs %s"
                          % (bad.tolist(), got[tuple(bad[0])], want_x[tuple(bad[0])]))
        check(True, "every X_jet value equals the source's %s rounding (%d values)" % (dtype, got.size))
        check(x.chunks is not None and x.chunks[1:] == x.shape[1:] and x.maxshape[0] is None,
              "X_jet chunked along N (chunks %s), extendible" % (x.chunks,))
        for c in ("m", "pt", "ieta", "iphi"):
            want = np.concatenate([getattr(j, c)[lo:hi] for j, lo, hi in parts]).astype(np.float32)
            v = f[c][()]
            check(f[c].dtype == np.float32 and np.array_equal(v, want), "%s: float32, every value equals the source's" % c)
        check(f.attrs["format"] == "e2e-jet-images" and f.attrs["format_version"] == 1, "format attributes")
        check(list(f.attrs["channels"]) == channels, "channels %s" % list(f.attrs["channels"]))
        check(f["m"].attrs["unit"] == "GeV", "m carries unit GeV")
        return dict(f.attrs)


def same_bytes(path, digest):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest() == digest


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def no_leftovers(e, before, pid=None, what=""):
    after = e.listing()
    check(after == before, "%sno partial or temporary file left (%s)" % (what, ", ".join(sorted(set(after) - set(before))) or "none"))
    if pid is not None:
        check(not glob.glob("/dev/shm/.e2e-convert-%d-*" % pid) and not glob.glob(e.path(".e2e-convert-%d-*" % pid)),
              "%sno batch memory file left" % what)


# ---------------------------------------------------------------- tests

def t_roundtrip(e):
    out = e.path("ab.h5")
    p = convert("--jobs", 2, "--batch", 16, "-o", out, e.pa, e.pb)
    check("jets/s" in p.stderr and "ETA" in p.stderr, "progress with jets/s and ETA: %s"
          % p.stderr.strip().splitlines()[1 if len(p.stderr.strip().splitlines()) > 1 else 0])
    check("wrote 300 jets" in p.stdout, "summary: %s" % p.stdout.strip())
    attrs = check_file(out, [(e.a, 0, 170), (e.b, 0, 130)], "float32")
    check(list(attrs["source_files"]) == ["topgun_a.parquet", "topgun_b.parquet"]
          and list(attrs["source_rows"]) == [170, 130], "source_files and source_rows name the files")
    check("topgun_a.parquet" in attrs["source"] and attrs["generator"].startswith("e2e-convert"),
          "source: %s" % attrs["source"])
    check(row_groups(e.pa) == [37, 37, 37, 37, 22] and row_groups(e.pb)[:3] == [1, 1, 1],
          "the inputs had several row groups (%d and %d)" % (len(row_groups(e.pa)), len(row_groups(e.pb))))

    # the same in the main process, float16
    out16 = e.path("ab16.h5")
    convert("--jobs", 0, "--dtype", "float16", "-q", "-o", out16, e.pa, e.pb)
    check_file(out16, [(e.a, 0, 170), (e.b, 0, 130)], "float16")
    with h5py.File(out16, "r") as f:
        t = f["X_jet"].id.get_type()
        check(t.get_size() == 2 and t.get_fields() == (15, 10, 5, 0, 10), "float16 stored as IEEE binary16")

    # the real geometry, 125 x 125 x 8, channel-first, odd row groups
    g = Jets(12, (8, 125, 125), seed=3)
    pg = write(e.path("real_size.parquet"), [(g.table("chw"), 5)], compression="snappy")
    convert("-q", "-o", e.path("real_size.h5"), pg)
    check_file(e.path("real_size.h5"), [(g, 0, 12)], "float32")

    # a shape auto cannot decide (C = H = W): --layout says; another column name; names
    k = Jets(20, (4, 4, 4), seed=4)
    pk = write(e.path("cube.parquet"), [(k.table("hwc", rename={"m": "mass"}), 6)])
    p = convert("--column", "m=mass", "-o", e.path("cube_auto.h5"), pk, expect=1)
    check("--layout" in p.stderr and "4 x 4 x 4" in p.stderr, "4 x 4 x 4 is ambiguous: %s" % p.stderr.strip().splitlines()[-1])
    convert("-q", "--layout", "hwc", "--column", "m=mass", "--channels", "a,b,c,d", "-o", e.path("cube.h5"), pk)
    check_file(e.path("cube.h5"), [(k, 0, 20)], "float32", channels=["a", "b", "c", "d"])


def t_append(e):
    out = e.path("a.h5")
    convert("-q", "--jobs", 0, "-o", out, e.pa)
    p = convert("--append", "--jobs", 2, "--batch", 8, "-o", out, e.pb)
    check("now holds 300 jets" in p.stdout, "append summary: %s" % p.stdout.strip().splitlines()[-1])
    attrs = check_file(out, [(e.a, 0, 170), (e.b, 0, 130)], "float32")
    check(list(attrs["source_files"]) == ["topgun_a.parquet", "topgun_b.parquet"]
          and list(attrs["source_rows"]) == [170, 130], "source_files and source_rows extended")
    check(attrs["command"].count("\n") == 1, "command keeps both runs")
    p = run([e.exe("e2e-data"), "info", out], expect=0)
    check("300 jets in 1 file" in p.stdout and "raw reads" in p.stdout, "e2e-data info reads the grown file")
    digest = sha(out)
    before = e.listing()

    # a NaN mass in the third row group of a third file: refused, the file byte-identical
    c = Jets(90, (8, 32, 32), seed=5)
    c.m[77] = np.nan
    pc = write(e.path("topgun_c.parquet"), [(c.table("chw"), 25)])
    before = e.listing()
    for jobs in (0, 2):
        p = convert("--append", "--jobs", jobs, "-o", out, pc, expect=1)
        check("topgun_c.parquet: row group 3 of 4 (rows 75 to 89), row 77: m is nan" in p.stderr,
              "--jobs %d: NaN mass while appending: %s" % (jobs, p.stderr.strip().splitlines()[-1]))
        check(same_bytes(out, digest), "the file is byte-identical after the failed append")
        no_leftovers(e, before)

    # another image size, another dtype, a file it already holds
    d = Jets(10, (8, 16, 16), seed=6)
    pd = write(e.path("small.parquet"), [(d.table("chw"), 10)])
    before = e.listing()
    p = convert("--append", "-o", out, pd, expect=1)
    check("8 x 16 x 16" in p.stderr and "8 x 32 x 32" in p.stderr, "other image size refused: %s" % p.stderr.strip())
    p = convert("--append", "--dtype", "float16", "-o", out, pc, expect=1)
    check("float32" in p.stderr and "float16" in p.stderr, "other dtype refused: %s" % p.stderr.strip())
    p = convert("--append", "-o", out, e.pb, expect=1)
    check("already holds the rows of a file named topgun_b.parquet" in p.stderr,
          "a file already appended is refused: %s" % p.stderr.strip())
    check(same_bytes(out, digest), "the file is byte-identical after the refusals")
    no_leftovers(e, before)

    # a fixed-size file (e2e-synth) cannot grow
    syn = e.path("synth.h5")
    run(MPIRUN + ["-np", "1", e.exe("e2e-synth"), "--out", syn, "--samples", "20", "--size", "32"], expect=0)
    before = e.listing()
    p = convert("--append", "-o", syn, pd, expect=1)
    check("fixed number of rows" in p.stderr and "file list" in p.stderr, "e2e-synth file: %s" % p.stderr.strip())
    no_leftovers(e, before)

    # SIGTERM in the middle of an append: the original stays, nothing is left, the
    # decoding processes end
    big = Jets(64, (8, 32, 32), seed=7)
    pbig = write(e.path("big.parquet"), [(big.table("chw"), 1)] * 100)  # 6400 jets, one a row group
    out2 = e.path("b.h5")
    convert("-q", "-o", out2, e.pb)
    digest2 = sha(out2)
    before = e.listing()
    proc = subprocess.Popen([CONVERT, "--append", "--jobs", "2", "--batch", "4", "-o", out2, pbig],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    partial = e.path(".b.h5.partial-%d" % proc.pid)
    t0 = time.time()
    workers = []
    grown = 0
    while (len(workers) < 2 or grown < (2 << 20)) and proc.poll() is None and time.time() - t0 < 60:
        workers = [k for k in children(proc.pid) if "spawn_main" in cmdline(k)]
        grown = os.path.getsize(partial) - os.path.getsize(out2) if os.path.exists(partial) else 0
        time.sleep(0.01)
    if proc.poll() is not None:
        raise Failure("the append ended before the signal: exit %d, %s" % (proc.returncode, proc.communicate()))
    kids = children(proc.pid)
    check(len(workers) == 2 and grown >= (2 << 20), "the append is under way: %s has grown by %.1f MB, 2 decoding "
          "processes" % (os.path.basename(partial), grown / 1e6))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    check(proc.returncode == 143 and "interrupted" in err, "SIGTERM: exit %d, %s"
          % (proc.returncode, err.strip().splitlines()[-1]))
    check(same_bytes(out2, digest2), "the original is byte-identical after SIGTERM")
    no_leftovers(e, before, proc.pid)
    time.sleep(1.0)
    check(not [k for k in kids if os.path.exists("/proc/%d" % k) and zombie_or_alive(k)],
          "the decoding processes (and multiprocessing's helper) ended")


def children(pid):
    return [int(d) for d in os.listdir("/proc") if d.isdigit() and parent_of(int(d)) == pid]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def zombie_or_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def t_train(e):
    out = e.path("ab.h5")
    out16 = e.path("ab16.h5")
    convert("-q", "-o", out, e.pa, e.pb)
    convert("-q", "--dtype", "float16", "-o", out16, e.pa, e.pb)
    for path, dtype in ((out, "float32"), (out16, "float16")):
        p = run([e.exe("e2e-data"), "info", path], expect=0)
        check("300 jets in 1 file, X_jet 8 x 32 x 32" in p.stdout and "dtype %s" % dtype in p.stdout
              and "track_pt, dz, d0, ecal, hcal, bpix1, bpix2, bpix3" in p.stdout and "raw reads" in p.stdout,
              "e2e-data info reads the %s file (raw reads)" % dtype)
    # a file list of two converted files
    c = Jets(60, (8, 32, 32), seed=8)
    pc = write(e.path("topgun_c.parquet"), [(c.table("hwc"), 20)])
    convert("-q", "-o", e.path("c.h5"), pc)
    with open(e.path("list.txt"), "w") as f:
        f.write("# two converted files\nab.h5\nc.h5\n")
    p = run([e.exe("e2e-data"), "info", e.path("list.txt")], expect=0)
    check("360 jets in 2 files" in p.stdout, "e2e-data info reads a list of two converted files")
    for path in (out, out16):
        rd = e.path("run_" + os.path.basename(path))
        p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", path, "--out", rd, "--epochs", "1",
                          "--batch", "8", "--seed", "3"], expect=0, timeout=240)
        check(os.path.exists(os.path.join(rd, "results.json")) and "epoch 1/1 done" in p.stdout,
              "mpirun -np 2 e2e-train: one epoch on %s" % os.path.basename(path))


def t_bad_input(e):
    before = e.listing()
    cases = []
    a = e.a

    # a missing column
    cases.append(("no_m", [write(e.path("no_m.parquet"), [(a.table("chw", 0, 20, drop=("m",)), 10)])],
                  ["no column for the jet mass", "it has: X_jet (3-level list of double), pt (double), ieta (double)"]))
    # a row group whose images have another shape
    j2 = Jets(10, (8, 30, 30), seed=9)
    sch = a.table("chw", 0, 1).schema
    cases.append(("shape_rg", [write(e.path("shape_rg.parquet"), [(a.table("chw", 0, 50), 25), (j2.table("chw").cast(sch), 10)])],
                  ["row group 2 of 3 (rows 50 to 59), row 50", "shape 8 x 30 x 30", "expected 8 x 32 x 32"]))
    # a second file with another image size
    cases.append(("shape_file", [e.pa, write(e.path("shape_file.parquet"), [(j2.table("chw"), 5)])],
                  ["shape_file.parquet", "8 x 30 x 30", "topgun_a.parquet has images of 8 x 32 x 32", "one output file"]))
    # images that are not square in either layout
    j3 = Jets(6, (8, 30, 31), seed=10)
    cases.append(("shape_odd", [write(e.path("shape_odd.parquet"), [(j3.table("chw"), 3)])],
                  ["cannot tell the layout", "8 x 30 x 31", "--layout"]))
    # X_jet with two levels (images without channels)
    one_level = pa.ListArray.from_arrays(pa.array(np.arange(0, 8 * 32 * 32 + 1, 32 * 32, dtype=np.int32)),
                                         pa.array(a.x[:8, 0].reshape(-1)))
    flat = pa.table({"X_jet": one_level, "m": a.m[:8], "pt": a.pt[:8], "ieta": a.ieta[:8], "iphi": a.iphi[:8]})
    cases.append(("two_levels", [write(e.path("two_levels.parquet"), [(flat, 8)])],
                  ["-level list of double; expected 3 axes", "3-level nested list"]))
    # a ragged nested list: row 33 (row group 1) has one image row of 31 values
    n = 60
    l1, l2, l3 = np.full(n, 8), np.full(n * 8, 32), np.full(n * 8 * 32, 32)
    vals = a.x[:n].reshape(-1)
    k = (33 * 8 + 2) * 32 + 7  # jet 33, channel 2, row 7
    l3[k] = 31
    vals = np.delete(vals, k * 32)
    cases.append(("ragged", [write(e.path("ragged.parquet"), [(a.table("chw", 0, n, x_array=nested(vals, (l1, l2, l3))), 20)])],
                  ["row group 1 of 3 (rows 20 to 39), row 33", "ragged", "lengths 31, 32"]))
    # a null image
    xs = a.table("chw", 0, 30)["X_jet"].combine_chunks()
    mask = np.zeros(30, bool)
    mask[12] = True
    xnull = pa.ListArray.from_arrays(xs.offsets, xs.values, mask=pa.array(mask))
    cases.append(("null_image", [write(e.path("null_image.parquet"), [(a.table("chw", 0, 30, x_array=xnull), 10)])],
                  ["row group 1 of 3 (rows 10 to 19), row 12", "X_jet is null"]))
    # NaN in m
    jn = Jets(40, (8, 32, 32), seed=11)
    jn.m[31] = np.nan
    cases.append(("nan_m", [write(e.path("nan_m.parquet"), [(jn.table("chw"), 15)])],
                  ["row group 2 of 3 (rows 30 to 39), row 31", "m is nan"]))
    # NaN in a pixel, and a value beyond float16
    jp = Jets(40, (8, 32, 32), seed=12)
    jp.x[22, 5, 3, 4] = np.nan
    cases.append(("nan_pixel", [write(e.path("nan_pixel.parquet"), [(jp.table("hwc"), 15)])],
                  ["row group 1 of 3 (rows 15 to 29), row 22", "nan (channel 5, pixel 3, 4)"]))
    jh = Jets(40, (8, 32, 32), seed=13)
    jh.x[3, 1, 2, 2] = 1e6
    cases.append(("f16_overflow", [write(e.path("f16_overflow.parquet"), [(jh.table("chw"), 15)])],
                  ["row group 0 of 3 (rows 0 to 14), row 3", "1e+06", "does not fit in float16"], ["--dtype", "float16"]))
    # a truncated file
    with open(e.pa, "rb") as f:
        data = f.read()
    trunc = e.path("truncated.parquet")
    with open(trunc, "wb") as f:
        f.write(data[:len(data) * 6 // 10])
    cases.append(("truncated", [trunc], ["truncated.parquet", "truncated or incomplete parquet file", "footer"]))
    # a damaged row group (page checksums on, as pyarrow can write them): bytes of row group 2's X_jet pages
    dmg = write(e.path("damaged.parquet"), [(a.table("chw", 0, 100), 25)], write_page_checksum=True, compression="none")
    md = pq.ParquetFile(dmg).metadata.row_group(2).column(0)
    with open(dmg, "r+b") as f:
        f.seek(md.data_page_offset + md.total_compressed_size // 2)
        f.write(b"\x55" * 64)
    cases.append(("damaged", [dmg], ["damaged.parquet: row group 2 of 4 (rows 50 to 74)", "cannot be decoded"]))
    # not parquet at all
    notpq = e.path("notes.parquet")
    with open(notpq, "w") as f:
        f.write("jet images, honest\n")
    cases.append(("not_parquet", [notpq], ["notes.parquet", "neither a parquet file"]))
    cases.append(("absent", [e.path("absent.parquet")], ["absent.parquet: no such file"]))

    # these fail after the output was started (rows before them were written)
    late = {"shape_rg", "ragged", "null_image", "nan_m", "nan_pixel", "f16_overflow", "damaged"}
    before = e.listing()
    for case in cases:
        name, inputs, wants = case[:3]
        extra = case[3] if len(case) > 3 else []
        for jobs in (0, 2):
            out = e.path("bad_%s.h5" % name)
            proc = subprocess.Popen([CONVERT, "--jobs", str(jobs), "--batch", "8"] + extra + ["-o", out] + inputs,
                                    env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            _, err = proc.communicate(timeout=120)
            lines = [l for l in err.splitlines() if l.startswith("e2e-convert: ") and "jets/s" not in l
                     and " jets from " not in l and not l.startswith("e2e-convert:   ")]
            msg = lines[-1] if lines else "(no message)"
            check(proc.returncode == 1 and len(lines) == 1 and all(w in msg for w in wants),
                  "%s (--jobs %d): exit %d, %s" % (name, jobs, proc.returncode, msg))
            if name in late:
                check(" jets from " in err, "%s: the failure came after the output was started" % name)
            no_leftovers(e, before, proc.pid, "%s: " % name)


def t_cli(e):
    p = convert("--help")
    for w in ("--out FILE", "--append", "--dtype TYPE", "--layout L", "--jobs N", "--channels", "chw", "hwc"):
        check(w in p.stdout, "--help mentions %s" % w)
    p = convert("--version")
    check(p.stdout.startswith("e2e-convert 2"), "--version")
    p = run([ALIAS, "--version"], expect=0)
    check(p.stdout.startswith("e2e-convert 2"), "data/convert-parquet is an alias of data/e2e-convert")
    out = e.path("x.h5")
    for args in (["--dtype", "float64", "-o", out, e.pa], ["--jobs", "-1", "-o", out, e.pa],
                 ["--batch", "0", "-o", out, e.pa], ["-o", out], [e.pa], ["--append", "--force", "-o", out, e.pa],
                 ["--column", "mass", "-o", out, e.pa], ["--bogus", "-o", out, e.pa], ["--layout", "nchw", "-o", out, e.pa]):
        p = convert(*args, expect=2)
        check(p.stderr.strip().splitlines()[-1].startswith("e2e-convert: error:"), "%s: exit 2, %s"
              % (" ".join(a.replace(e.tmp + "/", "") for a in args), p.stderr.strip().splitlines()[-1]))
    convert("-q", "-o", out, e.pa)
    digest = sha(out)
    p = convert("-o", out, e.pb, expect=1)
    check("exists" in p.stderr and "--force" in p.stderr and same_bytes(out, digest),
          "an existing output is kept: %s" % p.stderr.strip())
    convert("-q", "--force", "-o", out, e.pb)
    check_file(out, [(e.b, 0, 130)], "float32")
    digest = sha(out)
    c = Jets(30, (8, 32, 32), seed=14)
    c.pt[20] = np.inf
    pc = write(e.path("inf_pt.parquet"), [(c.table("chw"), 10)])
    p = convert("--force", "-o", out, pc, expect=1)
    check("row group 2 of 3 (rows 20 to 29), row 20: pt is inf" in p.stderr and same_bytes(out, digest),
          "a failed --force keeps the old file: %s" % p.stderr.strip().splitlines()[-1])
    p = convert("-o", e.path("no/such/dir/x.h5"), e.pa, expect=1)
    check("does not exist" in p.stderr, "a missing output folder: %s" % p.stderr.strip())
    p = subprocess.run([CONVERT, "-o", out, e.pa], env=dict(ENV, E2E_VENV=e.path("no_venv")), capture_output=True,
                       text=True, timeout=60)
    check(p.returncode == 2 and "install-deps.sh" in p.stderr, "no Python environment: exit %d, %s"
          % (p.returncode, p.stderr.strip()))


TESTS = {"roundtrip": t_roundtrip, "append": t_append, "train": t_train, "bad_input": t_bad_input, "cli": t_cli}


if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

#!/usr/bin/env python3
"""data/e2e-convert writing the sparse layout (--store sparse, format version 2), on files in
the E2E producers' layouts (tests/e2e_sources.py):

  - Top Gun parquet (float32 and float16) and run-2 parquet (13 channels, signed impact
    parameters): the sparse file densified here equals the dense conversion bit for bit,
    its group attributes say layout sparse and the shape, the file says format version 2,
    the columns and attributes equal the dense file's;
  - the C side reads it: e2e-data convert --layout dense of it equals the dense conversion
    (h5py compares), e2e-data info describes it;
  - --append: a file converted in two runs equals one conversion of both sources;
  - a sparse file whose entry arrays are compressed (shuffle + gzip, as h5py users may
    write it) is read through HDF5: its dense copy equals the dense conversion.

usage: test_convert_sparse.py BUILD_DIR   (runs itself in .venv: pyarrow, h5py)"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import e2e_sources as src  # noqa: E402

CONVERT = os.path.join(TOP, "data", "e2e-convert")
from test_train_e2e import Failure, check, jet_images, run  # noqa: E402 - the e2e tests' helpers


def densify(path):
    """a sparse file's X_jet as a dense array, from its four datasets"""
    with h5py.File(path, "r") as f:
        return jet_images(f)


def same_bits(a, b):
    u = np.uint32 if a.dtype == np.float32 else np.uint16
    return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a.view(u), b.view(u))


def columns_and_attrs(path):
    with h5py.File(path, "r") as f:
        cols = {k: f[k][()].tobytes() for k in f if k != "X_jet"}
        attrs = {k: str(f.attrs[k]) for k in f.attrs if k not in ("format_version", "command")}
    return cols, attrs


def t_sources(tmp, build):
    sources = {"topgun": src.topgun_parquet(os.path.join(tmp, "tg.parquet"), 60, S=40, seed=7),
               "run2": src.run2_parquet(os.path.join(tmp, "r2.parquet"), 40, S=40, seed=8)}
    for name, truth in sources.items():
        inp = os.path.join(tmp, "tg.parquet" if name == "topgun" else "r2.parquet")
        for dtype in ("float32", "float16"):
            dense, sparse = (os.path.join(tmp, "%s_%s_%s.h5" % (name, dtype, k)) for k in ("dense", "sparse"))
            run([CONVERT, "-q", "-j", "1", "--dtype", dtype, "--store", "dense", "-o", dense, inp], expect=0)
            run([CONVERT, "-q", "-j", "1", "--dtype", dtype, "--store", "sparse", "-o", sparse, inp], expect=0)
            with h5py.File(dense, "r") as f:
                want = f["X_jet"][()]
            got = densify(sparse)
            check(same_bits(got, want), "%s %s: the sparse file densified equals the dense conversion, bit for bit "
                  "(%d negative values)" % (name, dtype, int(np.count_nonzero(want < 0))))
            with h5py.File(sparse, "r") as f:
                g = f["X_jet"]
                check(str(g.attrs["layout"]) == "sparse" and list(g.attrs["shape"]) == list(want.shape)
                      and int(f.attrs["format_version"]) == 2 and g["pos"].dtype == np.uint16
                      and g["value"].dtype == want.dtype,
                      "%s %s: layout sparse, shape %s, format version 2, uint16 positions" % (name, dtype, want.shape))
                nnz = len(g["pos"])
            check(columns_and_attrs(sparse) == columns_and_attrs(dense),
                  "%s %s: the columns and attributes equal the dense file's" % (name, dtype))
            back = os.path.join(tmp, "%s_%s_back.h5" % (name, dtype))
            run(["mpirun", "-np", "2", os.path.join(build, "launch", "e2e-data"), "convert", "--layout", "dense",
                 sparse, back], expect=0)
            with h5py.File(back, "r") as f:
                check(same_bits(f["X_jet"][()], want), "%s %s: e2e-data reads it: its dense copy equals the dense "
                      "conversion" % (name, dtype))
            if name == "topgun" and dtype == "float32":
                compressed_copy_reads(tmp, build, sparse, want)
            if name == "topgun":
                info = run([os.path.join(build, "launch", "e2e-data"), "info", sparse], expect=0).stdout
                check("layout sparse (format version 2): %d entries" % nnz in info, "%s %s: e2e-data info: %d entries"
                      % (name, dtype, nnz))
            print("    %s %s: %d bytes a jet dense, %d sparse" % (name, dtype, os.path.getsize(dense) // truth.n,
                                                                  os.path.getsize(sparse) // truth.n))


def compressed_copy_reads(tmp, build, sparse, want):
    """the sparse file with gzip-compressed pos and value, densified by e2e-data"""
    gz, back = os.path.join(tmp, "gzip.h5"), os.path.join(tmp, "gzip_back.h5")
    shutil.copyfile(sparse, gz)
    with h5py.File(gz, "r+") as f:
        g = f["X_jet"]
        for name in ("pos", "value"):
            a = g[name][()]
            del g[name]
            g.create_dataset(name, data=a, chunks=(4096,), compression="gzip", shuffle=True)
    info = run([os.path.join(build, "launch", "e2e-data"), "info", gz], expect=0).stdout
    run(["mpirun", "-np", "2", os.path.join(build, "launch", "e2e-data"), "convert", "--layout", "dense", gz, back],
        expect=0)
    with h5py.File(back, "r") as f:
        check("filters, read through HDF5" in info and same_bits(f["X_jet"][()], want),
              "compressed entry arrays are read through HDF5: the dense copy equals the dense conversion")


def t_append(tmp):
    a, b = os.path.join(tmp, "a.parquet"), os.path.join(tmp, "b.parquet")
    src.topgun_parquet(a, 30, S=24, seed=11)
    src.topgun_parquet(b, 25, S=24, seed=12)
    both, grown = os.path.join(tmp, "both.h5"), os.path.join(tmp, "grown.h5")
    run([CONVERT, "-q", "-j", "1", "--store", "sparse", "-o", both, a, b], expect=0)
    run([CONVERT, "-q", "-j", "1", "--store", "sparse", "-o", grown, a], expect=0)
    run([CONVERT, "-q", "-j", "1", "--append", "-o", grown, b], expect=0)
    with h5py.File(both, "r") as f, h5py.File(grown, "r") as g:
        same = all(np.array_equal(f["X_jet"][k][()], g["X_jet"][k][()]) for k in ("offsets", "counts", "pos", "value"))
        same &= all(np.array_equal(f[k][()], g[k][()]) for k in ("m", "pt", "ieta", "iphi"))
        shape = list(g["X_jet"].attrs["shape"])
    check(same and shape[0] == 55, "--append to a sparse file equals one conversion of both sources (shape %s)" % shape)


def main():
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="e2e-convert-sparse-")
    try:
        t_sources(tmp, build)
        t_append(tmp)
    except Failure as f:
        print("FAILED:", f)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("test_convert_sparse: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Tests of data/e2e-convert on files in each layout the public E2E producers write
(tests/e2e_sources.py: Top Gun parquet, quark-gluon parquet and HDF5, run-2 parquet, am/apt
parquet). One test per subcommand (ctest runs each separately):

  layouts        each layout at 125 x 125, a few hundred jets, converted (2 decoding
                 processes and the main process): every pixel and column equals the
                 source's float32 rounding, extras copied in their own dtype; channels,
                 channel_kinds, scalars and scalar_scale attributes; e2e-data info reads every
                 file (those without ieta and iphi too) and shows its scalars and channel kinds
  names          known names mapped by default; ambiguous sources (two mass columns, two
                 image columns), a missing image: refused with the columns listed; --column;
                 the kind read from the content, not the name; --extra
  scalars        --scalars and --scalar-scale recorded; none; refusals (m, unknown, no scale)
  kinds          channel kinds from the names, --channel-kinds; negative pixels in an
                 energy-like channel: a warning naming the file and the count
  plausible      MeV masses refused (and --mass-unit MeV), negative masses and all-zero
                 images counted in a warning, a file of zero images refused, an ambiguous
                 channel axis (3 x 3 x 3 parquet, 5 x 5 x 5 HDF5) refused
  hdf5_bad       HDF5 bad inputs: NaN pixel, a column of another length, truncated file,
                 no image dataset, an empty file: exit 1, one message, nothing left behind
  append         an HDF5 source appended to a parquet one (the same columns); other columns
                 refused; the scalars attribute kept
  footer         the parquet footer index: row-group spans read through small footers give
                 exactly pyarrow's rows (dictionary pages, page index, no statistics, 1 to
                 40 groups a span); a damaged footer is named; the converter's processes stay
                 far below what a whole footer of 60 000 row groups costs one process
  train          mpirun -np 2 e2e-train runs an epoch on converted Top Gun, run-2 and am/apt
                 files
  train_scalars  a converted file without ieta/iphi (quark-gluon) and one with three
                 scalars train one epoch (2 ranks); the checkpoints record none and the three
                 scalars' names and scales
  labels         --label-value stamps a class on every row (uint8 y: top files 1, QCD files
                 0), --append stamps the rows it adds; a list of both trains a classifier (2
                 ranks, --task classification) and e2e-data info counts its classes; the
                 quark-gluon file keeps its own y (float32), which trains a classifier too;
                 stamping over a source's y, or appending to a file without one: refused

usage: test_e2e_convert.py TEST BUILD_DIR
"""
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

sys.path.insert(0, os.path.join(HERE, "bench"))
sys.path.insert(0, os.path.join(TOP, "data"))
import e2e_sources as src  # noqa: E402
from proc_memory import Sampled, pyarrow_open_mb  # noqa: E402
from test_train_e2e import ENV, MPIRUN, Failure, check, jet_images, run, run_test  # noqa: E402 - the e2e tests' helpers

CONVERT = os.path.join(TOP, "data", "e2e-convert")

class Env:
    """a temporary folder for a test's files, and the build's programs"""

    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-convert-test-")

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def listing(self):
        return sorted(os.listdir(self.tmp))


def convert(*args, expect=0, timeout=300):
    return run([CONVERT] + [str(a) for a in args], expect=expect, timeout=timeout)


def message(p):
    """the failure line of a refused run (one, after the header lines)"""
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("e2e-convert: ") and not ln.startswith("e2e-convert:   ")
             and " jets from " not in ln and "jets/s" not in ln and "warning:" not in ln]
    return lines


def refused(e, args, wants, what):
    """a run that must fail with exit 1, one message holding every string of wants, and
    leave nothing behind"""
    before = e.listing()
    p = convert(*args, expect=1)
    lines = message(p)
    msg = lines[-1] if lines else "(no message)"
    check(len(lines) == 1 and all(w in msg for w in wants), "%s: exit 1, %s" % (what, msg))
    check(e.listing() == before, "%s: nothing left behind" % what)
    return msg


def warnings(p):
    return [ln for ln in p.stderr.splitlines() if "warning:" in ln]


def strings(v):
    return [s.decode() if isinstance(s, bytes) else str(s) for s in np.atleast_1d(v)]


def check_output(path, truth, dtype="float32", channels=None, kinds=None, scalars=None, scales=None, extras=None):
    """every value of path equals truth's, bit for bit after the stored dtype's rounding;
    the attributes as given (None: not checked)"""
    name = os.path.basename(path)
    with h5py.File(path, "r") as f:
        want = truth.x.astype(np.float32 if dtype == "float32" else np.float16)
        got = jet_images(f)
        check(got.shape == want.shape and got.dtype == want.dtype, "%s: X_jet %s %s" % (name, got.dtype, got.shape))
        u = np.uint32 if dtype == "float32" else np.uint16
        if not np.array_equal(got.view(u), want.view(u)):
            bad = np.argwhere(got != want)[:3]
            raise Failure("%s: X_jet differs at %s: %s vs %s" % (name, bad.tolist(), got[tuple(bad[0])], want[tuple(bad[0])]))
        check(True, "%s: every X_jet value equals the source's %s rounding (%d values, %d negative)"
              % (name, dtype, got.size, int(np.count_nonzero(got < 0))))
        for c in ("m", "pt", "ieta", "iphi"):
            v = truth.column(c)
            if v is None:
                check(c not in f, "%s: no %s dataset (the source has none)" % (name, c))
                continue
            d = f[c]
            check(d.dtype == np.float32 and np.array_equal(d[()], np.asarray(v).astype(np.float32)),
                  "%s: %s float32, every value the source's" % (name, c))
        for c, v in (extras if extras is not None else truth.extras).items():
            d = f[c]
            check(d.dtype == np.asarray(v).dtype and np.array_equal(d[()], v),
                  "%s: %s copied as %s, every value the source's" % (name, c, d.dtype))
        a = f.attrs
        version = 2 if isinstance(f["X_jet"], h5py.Group) else 1  # data/format/FORMAT.md: sparse is version 2
        check(a["format"] == "e2e-jet-images" and a["format_version"] == version,
              "%s: format version %d (%s)" % (name, version, "sparse" if version == 2 else "dense"))
        if channels is not None:
            check(strings(a["channels"]) == channels, "%s: channels %s" % (name, ",".join(channels)))
        if kinds is not None:
            check(strings(a["channel_kinds"]) == kinds, "%s: channel_kinds %s" % (name, ",".join(kinds)))
        if scalars is not None:
            got_s = strings(a["scalars"]) if a["scalars"].size else []
            check(got_s == scalars and a["scalars"].shape == (len(scalars),), "%s: scalars [%s]" % (name, ",".join(scalars)))
            check(a["scalar_scale"].dtype == np.float64 and list(a["scalar_scale"]) == scales,
                  "%s: scalar_scale %s" % (name, scales))
        return dict(a)


TOPGUN = ["track_pt", "dz", "d0", "ecal", "hcal", "bpix1", "bpix2", "bpix3"]
TOPGUN_KINDS = ["energy", "signed", "signed", "energy", "energy", "energy", "energy", "energy"]
QG = ["track_pt", "ecal", "hcal"]
RUN2 = ["ch%d" % i for i in range(13)]


# ---------------------------------------------------------------- tests

def t_layouts(e):
    n = 240
    cases = [
        ("topgun.parquet", src.topgun_parquet, [], TOPGUN, TOPGUN_KINDS, ["iphi", "ieta"], [360.0, 170.0]),
        ("qg.parquet", src.qg_parquet, [], QG, ["energy"] * 3, [], []),
        ("qg.hdf5", src.qg_hdf5, [], QG, ["energy"] * 3, [], []),
        ("run2.parquet", src.run2_parquet, ["--channels", ",".join(["pt", "dz", "d0"] + RUN2[3:])],
         ["pt", "dz", "d0"] + RUN2[3:], ["energy", "signed", "signed"] + ["energy"] * 10, ["iphi", "ieta"], [360.0, 170.0]),
        ("amapt.parquet", src.amapt_parquet, [], TOPGUN, TOPGUN_KINDS, ["iphi", "ieta"], [360.0, 170.0]),
    ]
    truths = {}
    for k, (name, make, extra, channels, kinds, scalars, scales) in enumerate(cases):
        path = e.path(name)
        truth = truths[name] = make(path, n)
        out = e.path(name + ".h5")
        jobs = (2, 0)[k % 2]
        p = convert("--jobs", jobs, "--batch", 24, *extra, "-o", out, path)
        check(not warnings(p), "%s (--jobs %d): no warning (%s)" % (name, jobs, "; ".join(warnings(p)) or "none"))
        check_output(out, truth, channels=channels, kinds=kinds, scalars=scalars, scales=scales)
        with h5py.File(out, "r") as f:
            check(isinstance(f["X_jet"], h5py.Group), "%s: stored sparse, the default" % os.path.basename(out))
        p = run([e.exe("e2e-data"), "info", out], expect=0)
        want_scalars = ", ".join("%s / %g" % (s, c) for s, c in zip(scalars, scales)) or "none"
        want_kinds = ", ".join("%s %s" % (c, k) for c, k in zip(channels, kinds))
        check("%d jets in 1 file, X_jet %d x 125 x 125" % (n, len(channels)) in p.stdout and
              "  scalars  %s\n" % want_scalars in p.stdout and "  channels %s\n" % want_kinds in p.stdout,
              "e2e-data info reads %s: scalars %s; kinds %s" % (os.path.basename(out), want_scalars, want_kinds))
    with h5py.File(e.path("qg.hdf5"), "r") as f:
        check(f["X_jets"].compression == "lzf" and f["X_jets"].shape == (n, 125, 125, 3),
              "the quark-gluon HDF5 source was channel-last and lzf-compressed")
    with h5py.File(e.path("run2.parquet.h5"), "r") as f:
        x = jet_images(f)
        check(x[:, 1].min() < 0 and x[:, 2].min() < 0, "run-2 impact parameters keep their sign")
    # float16, the HDF5 source in the main process
    out16 = e.path("qg16.h5")
    convert("-q", "--jobs", 0, "--dtype", "float16", "-o", out16, e.path("qg.hdf5"))
    check_output(out16, truths["qg.hdf5"], dtype="float16")


def t_names(e):
    t = src.run2_parquet(e.path("both.parquet"), 40, S=16, gen_mass=True)
    refused(e, ["-o", e.path("both.h5"), e.path("both.parquet")],
            ["both.parquet: ambiguous: jetM and genM could be the jet mass (m)", "X_jet (3-level list of float)",
             "jetPt (float)", "ieta (int32)", "--column m=NAME"], "two mass columns")
    # --column m=genM: genM is the mass, jetM is copied as it is
    convert("-q", "--column", "m=genM", "-o", e.path("both.h5"), e.path("both.parquet"))
    check_output(e.path("both.h5"), src.Truth(t.x, t.extras["genM"], t.pt, t.ieta, t.iphi),
                 extras={"jetM": t.m})

    x = src.images(np.random.default_rng(0), 10, 3, 8)
    cols = {"X_jet": src.nested(x), "X_jets": src.nested(x), "m": np.full(10, 100.0), "pt": np.full(10, 500.0)}
    src.write_parquet(e.path("two_images.parquet"), cols, 5)
    refused(e, ["-o", e.path("x.h5"), e.path("two_images.parquet")],
            ["ambiguous: X_jet and X_jets could be the jet images", "--column X_jet=NAME"], "two image columns")
    del cols["X_jets"]
    cols["image"] = cols.pop("X_jet")
    src.write_parquet(e.path("no_image.parquet"), cols, 5)
    refused(e, ["-o", e.path("x.h5"), e.path("no_image.parquet")],
            ["no column for the jet images (X_jet: one of X_jet, X_jets, X)", "it has: m (double), pt (double), "
             "image (3-level list of double)", "--column X_jet=NAME"], "no image column")
    convert("-q", "--column", "X_jet=image", "-o", e.path("renamed.h5"), e.path("no_image.parquet"))
    check_output(e.path("renamed.h5"), src.Truth(x, cols["m"], cols["pt"]))
    refused(e, ["--column", "X_jet=image", "--column", "m=mass", "-o", e.path("x.h5"), e.path("no_image.parquet")],
            ["no column 'mass' (given for m by --column)"], "--column naming a missing column")

    # the kind comes from the content: parquet named .h5, HDF5 named .parquet
    t1 = src.qg_parquet(e.path("really_parquet.h5"), 30, S=12)
    t2 = src.qg_hdf5(e.path("really_hdf5.parquet"), 20, S=12)
    p = convert("-o", e.path("content.h5"), e.path("really_parquet.h5"), e.path("really_hdf5.parquet"))
    check("really_parquet.h5 (parquet)" in p.stderr and "really_hdf5.parquet (hdf5)" in p.stderr,
          "the source kind is read from the content, not the name")
    both = src.Truth(np.concatenate([t1.x, t2.x]), np.concatenate([t1.m, t2.m]), np.concatenate([t1.pt, t2.pt]),
                     extras={"y": np.concatenate([t1.extras["y"], t2.extras["y"]])})
    check_output(e.path("content.h5"), both)
    with h5py.File(e.path("content.h5"), "r") as f:
        check(f.attrs["source"] == "parquet: really_parquet.h5; hdf5: really_hdf5.parquet", "source: %s" % f.attrs["source"])
    with open(e.path("notes.txt"), "w") as f:
        f.write("jet images, honest\n")
    refused(e, ["-o", e.path("x.h5"), e.path("notes.txt")], ["notes.txt: neither a parquet file", "nor an HDF5 file"],
            "a text file")

    # --extra
    convert("-q", "--extra", "none", "-o", e.path("no_y.h5"), e.path("really_parquet.h5"))
    with h5py.File(e.path("no_y.h5"), "r") as f:
        check("y" not in f and "m" in f, "--extra none copies no other column")
    refused(e, ["--extra", "z", "-o", e.path("x.h5"), e.path("really_parquet.h5")], ["no column 'z' (given by --extra)"],
            "--extra naming a missing column")
    refused(e, ["-o", e.path("x.h5"), e.path("really_parquet.h5"), e.path("both.parquet")],
            ["both.parquet", "ambiguous"], "a second file that is ambiguous")
    src.topgun_parquet(e.path("tg.parquet"), 10, S=12)
    refused(e, ["-o", e.path("x.h5"), e.path("really_parquet.h5"), e.path("tg.parquet")],
            ["tg.parquet: has no column 'y' like", "--extra all, the default"], "a second file without the first's extra")


def t_scalars(e):
    t = src.topgun_parquet(e.path("tg.parquet"), 50, S=16)
    out = e.path("s3.h5")
    convert("-q", "--scalars", "iphi,ieta,pt", "--scalar-scale", "pt=800", "-o", out, e.path("tg.parquet"))
    check_output(out, t, scalars=["iphi", "ieta", "pt"], scales=[360.0, 170.0, 800.0])
    convert("-q", "--scalars", "pt", "-o", e.path("s1.h5"), e.path("tg.parquet"))
    check_output(e.path("s1.h5"), t, scalars=["pt"], scales=[1000.0])
    convert("-q", "--scalars", "none", "-o", e.path("s0.h5"), e.path("tg.parquet"))
    check_output(e.path("s0.h5"), t, scalars=[], scales=[])
    q = src.qg_parquet(e.path("qg.parquet"), 30, S=12)
    out = e.path("qy.h5")
    convert("-q", "--scalars", "pt,y", "--scalar-scale", "y=1", "-o", out, e.path("qg.parquet"))
    check_output(out, q, scalars=["pt", "y"], scales=[1000.0, 1.0], extras={"y": q.extras["y"].astype(np.float32)})
    refused(e, ["--scalars", "y", "-o", e.path("x.h5"), e.path("qg.parquet")], ["--scalars y: no default scale",
            "--scalar-scale y=X"], "a scalar without a scale")
    refused(e, ["--scalars", "m", "-o", e.path("x.h5"), e.path("qg.parquet")], ["m is the target"], "the mass as a scalar")
    refused(e, ["--scalars", "iphi", "-o", e.path("x.h5"), e.path("qg.parquet")],
            ["--scalars: no per-jet column 'iphi'", "it will hold: pt, y"], "a scalar the file lacks")
    refused(e, ["--scalar-scale", "pt=2", "-o", e.path("x.h5"), e.path("qg.parquet")],
            ["--scalar-scale pt: not one of the scalars (none)"], "a scale for no scalar")
    p = convert("--scalar-scale", "pt=-1", "-o", e.path("x.h5"), e.path("qg.parquet"), expect=2)
    check("positive number" in p.stderr, "--scalar-scale pt=-1: exit 2")


def t_kinds(e):
    t = src.run2_parquet(e.path("run2.parquet"), 60, S=16)
    p = convert("-o", e.path("r.h5"), e.path("run2.parquet"))
    neg = [int(np.count_nonzero(t.x[:, c] < 0)) for c in range(13)]
    w = warnings(p)
    check(len(w) == 2 and all(("run2.parquet: channel %d (ch%d) is marked energy-like but has %d negative pixels"
                                % (c, c, neg[c])) in " ".join(w) for c in (1, 2)),
          "negative pixels in energy-like channels: a warning naming the file and the count: %s" % " | ".join(w))
    check_output(e.path("r.h5"), t, channels=RUN2, kinds=["energy"] * 13)
    kinds = ["energy", "signed", "signed"] + ["energy"] * 10
    p = convert("--channel-kinds", ",".join(kinds), "-o", e.path("r2.h5"), e.path("run2.parquet"))
    check(not warnings(p), "--channel-kinds marking them signed: no warning")
    check_output(e.path("r2.h5"), t, channels=RUN2, kinds=kinds)
    refused(e, ["--channel-kinds", "energy,signed", "-o", e.path("x.h5"), e.path("run2.parquet")],
            ["--channel-kinds gives 2 kinds but the images have 13 channels"], "too few kinds")
    refused(e, ["--channel-kinds", ",".join(["energy"] * 12 + ["charge"]), "-o", e.path("x.h5"), e.path("run2.parquet")],
            ["'charge' is not a channel kind"], "an unknown kind")
    g = src.topgun_parquet(e.path("tg.parquet"), 20, S=12)
    p = convert("--channels", "pt,dz_sig,D0,ecal,hcal,dxy,b2,b3", "-o", e.path("tg.h5"), e.path("tg.parquet"))
    check_output(e.path("tg.h5"), g, kinds=["energy", "signed", "signed", "energy", "energy", "signed", "energy", "energy"])


def t_plausible(e):
    t = src.topgun_parquet(e.path("mev.parquet"), 40, S=12)
    tb = pa.table({"X_jet": src.nested(t.x), "m": t.m * 1000, "pt": t.pt * 1000, "ieta": t.ieta, "iphi": t.iphi})
    pq.write_table(tb, e.path("mev.parquet"), row_group_size=7)
    refused(e, ["-o", e.path("x.h5"), e.path("mev.parquet")],
            ["mev.parquet: the median mass of its first 40 jets is", "look like MeV", "--mass-unit MeV"], "masses in MeV")
    convert("-q", "--mass-unit", "MeV", "-o", e.path("mev.h5"), e.path("mev.parquet"))
    check_output(e.path("mev.h5"), src.Truth(t.x, (t.m * 1000) / 1000.0, (t.pt * 1000) / 1000.0, t.ieta, t.iphi))

    u = src.topgun_parquet(e.path("odd.parquet"), 100, S=12, seed=9)
    u.m[[3, 50, 97]] = [-1.5, -0.25, -30.0]
    u.x[[10, 11, 60, 99]] = 0.0
    tb = pa.table({"X_jet": src.nested(u.x), "m": u.m, "pt": u.pt, "ieta": u.ieta, "iphi": u.iphi})
    pq.write_table(tb, e.path("odd.parquet"), row_group_size=9)
    for jobs in (0, 2):
        out = e.path("odd%d.h5" % jobs)
        p = convert("--jobs", jobs, "-o", out, e.path("odd.parquet"))
        w = " | ".join(warnings(p))
        check("odd.parquet: 3 of 100 jets have a negative mass (the smallest -30 GeV)" in w
              and "odd.parquet: 4 of 100 jets have an image that is all zeros" in w,
              "--jobs %d: negative masses and empty images counted in warnings: %s" % (jobs, w))
        check_output(out, u)
    z = src.qg_hdf5(e.path("zero.hdf5"), 30, S=8)
    with h5py.File(e.path("zero.hdf5"), "r+") as f:
        f["X_jets"][...] = 0
    refused(e, ["-o", e.path("x.h5"), e.path("zero.hdf5")], ["zero.hdf5: every one of its 30 images is all zeros"],
            "a file of empty images")
    del z

    cube = np.abs(src.images(np.random.default_rng(3), 12, 3, 3))
    src.write_parquet(e.path("cube.parquet"), {"X_jet": src.nested(cube), "m": np.full(12, 90.0), "pt": np.full(12, 600.0)}, 4)
    refused(e, ["-o", e.path("x.h5"), e.path("cube.parquet")],
            ["cube.parquet: cannot tell the layout of X_jet from its shape 3 x 3 x 3", "channel axis is ambiguous",
             "--layout chw"], "a 3 x 3 x 3 parquet image")
    convert("-q", "--layout", "chw", "-o", e.path("cube.h5"), e.path("cube.parquet"))
    check_output(e.path("cube.h5"), src.Truth(cube, np.full(12, 90.0), np.full(12, 600.0)))
    with h5py.File(e.path("cube5.hdf5"), "w") as f:
        f["X_jets"] = np.ones((6, 5, 5, 5), np.float32)
        f["m0"], f["pt"] = np.full(6, 90.0), np.full(6, 600.0)
    refused(e, ["-o", e.path("x.h5"), e.path("cube5.hdf5")], ["cube5.hdf5: cannot tell the layout of X_jets from its "
            "shape 5 x 5 x 5", "channel axis is ambiguous"], "a 5 x 5 x 5 HDF5 image")


def t_hdf5_bad(e):
    def make(name, edit=None, n=40):
        p = e.path(name)
        src.qg_hdf5(p, n, S=10)
        if edit:
            with h5py.File(p, "r+") as f:
                edit(f)
        return p

    def nan_pixel(f):
        x = f["X_jets"][()]
        x[27, 4, 5, 1] = np.nan
        f["X_jets"][...] = x

    def short_m(f):
        del f["m0"]
        f["m0"] = np.full(39, 100.0, np.float32)

    def flat_image(f):
        del f["X_jets"]
        f["X_jets"] = np.zeros((40, 300), np.float32)

    cases = [("nan_pixel.hdf5", nan_pixel, ["nan_pixel.hdf5: row 27: X_jets holds nan (channel 1, pixel 4, 5)"]),
             ("short_m.hdf5", short_m, ["short_m.hdf5: m0 has 39 rows but X_jets has 40"]),
             ("flat.hdf5", flat_image, ["flat.hdf5: column 'X_jets' (for X_jet) has type float32 (N, 300)", "expected 3 axes"])]
    for name, edit, wants in cases:
        path = make(name, edit)
        for jobs in (0, 2):
            refused(e, ["--jobs", jobs, "--batch", 8, "-o", e.path("x.h5"), path], wants, "%s --jobs %d" % (name, jobs))
    # a filter this h5py lacks: lzf's id in the pipeline message changed to 32099
    data = bytearray(open(make("lzf.hdf5"), "rb").read())
    at = data.find(b"lzf\x00")
    check(data[at - 8:at - 6] == b"\x00\x7d", "the lzf filter's id found in the file")
    data[at - 8:at - 6] = b"\x63\x7d"
    with open(e.path("unknown_filter.hdf5"), "wb") as f:
        f.write(data)
    for jobs in (0, 2):
        refused(e, ["--jobs", jobs, "-o", e.path("x.h5"), e.path("unknown_filter.hdf5")],
                ["unknown_filter.hdf5: X_jets is compressed with lzf (filter 32099), which this h5py cannot decode"],
                "an unknown compression filter, --jobs %d" % jobs)
    good = make("good.hdf5", n=200)
    with open(good, "rb") as f:
        data = f.read()
    with open(e.path("truncated.hdf5"), "wb") as f:
        f.write(data[:len(data) // 2])
    refused(e, ["-o", e.path("x.h5"), e.path("truncated.hdf5")], ["truncated.hdf5: damaged or truncated HDF5 file"],
            "a truncated HDF5 file")
    with h5py.File(e.path("empty.hdf5"), "w"):
        pass
    refused(e, ["-o", e.path("x.h5"), e.path("empty.hdf5")], ["empty.hdf5: no column for the jet images", "no columns"],
            "an HDF5 file without datasets")


def t_append(e):
    a = src.qg_parquet(e.path("qg.parquet"), 50, S=12)
    b = src.qg_hdf5(e.path("qg.hdf5"), 30, S=12)
    out = e.path("qg.h5")
    convert("-q", "--scalars", "pt", "-o", out, e.path("qg.parquet"))
    p = convert("--append", "-o", out, e.path("qg.hdf5"))
    check("now holds 80 jets" in p.stdout, "an HDF5 source appended to a file from parquet")
    both = src.Truth(np.concatenate([a.x, b.x]), np.concatenate([a.m, b.m]), np.concatenate([a.pt, b.pt]),
                     extras={"y": np.concatenate([a.extras["y"], b.extras["y"].astype(np.float64)])})
    attrs = check_output(out, both, scalars=["pt"], scales=[1000.0])
    check(strings(attrs["source_files"]) == ["qg.parquet", "qg.hdf5"] and list(attrs["source_rows"]) == [50, 30]
          and attrs["source"] == "parquet: qg.parquet; hdf5: qg.hdf5", "source_files, source_rows, source extended")
    src.qg_parquet(e.path("qg2.parquet"), 10, S=12)
    refused(e, ["--append", "--extra", "none", "-o", out, e.path("qg2.parquet")],
            ["holds the columns m, pt, y; the files give m, pt"], "other columns")
    refused(e, ["--append", "--scalars", "none", "-o", out, e.path("qg2.parquet")], ["its scalars are pt; --scalars gives none"],
            "other scalars")


def t_footer(e):
    from e2e_convert.errors import Bad
    from e2e_convert.parquet_footer import FooterIndex

    rng = np.random.default_rng(5)
    n = 700
    x = rng.random((n, 2, 3, 3))
    tb = pa.table({"X_jet": src.nested(x), "m": rng.uniform(85, 500, n), "label": pa.array(rng.integers(0, 3, n)),
                   "name": pa.array(["jet%d" % (i % 5) for i in range(n)]).dictionary_encode()})
    variants = {"plain": {}, "no_stats": {"write_statistics": False}, "page_index": {"write_page_index": True},
                "dictionary": {"use_dictionary": True, "compression": "zstd"}}
    for vname, kw in variants.items():
        path = e.path("f_%s.parquet" % vname)
        with pq.ParquetWriter(path, tb.schema, **kw) as w:  # row groups of 1 to 37 rows
            at = 0
            for size in [1, 37, 5, 14, 15, 16] * 40:
                if at >= n:
                    break
                w.write_table(tb.slice(at, size), row_group_size=size)
                at += size
        pf = pq.ParquetFile(path)
        full = pf.metadata
        ix = FooterIndex(path, os.path.getsize(path))
        check(ix.num_rows == n and list(ix.rg_rows) == [full.row_group(g).num_rows for g in range(full.num_row_groups)],
              "%s: %d row groups, rows of each as pyarrow reads them" % (vname, full.num_row_groups))
        for g0, g1 in ((0, 1), (0, 14), (3, 18), (7, 47), (full.num_row_groups - 15, full.num_row_groups)):
            part = ix.part(g0, g1)
            md = part.metadata()
            got = pq.ParquetFile(path, metadata=md).read()
            check(md.num_row_groups == g1 - g0 and got.equals(pf.read_row_groups(list(range(g0, g1)))),
                  "%s: row groups %d to %d through a small footer (%d of %d bytes): the same rows"
                  % (vname, g0, g1 - 1, md.serialized_size, full.serialized_size))
    path = e.path("f_plain.parquet")
    data = bytearray(open(path, "rb").read())
    flen = int.from_bytes(data[-8:-4], "little")
    data[len(data) - 8 - flen // 2: len(data) - 8 - flen // 2 + 40] = b"\xff" * 40
    with open(e.path("damaged_footer.parquet"), "wb") as f:
        f.write(data)
    try:
        FooterIndex(e.path("damaged_footer.parquet"), len(data))
        raise Failure("a damaged footer was read")
    except Bad as b:
        check("damaged_footer.parquet: damaged parquet file: its footer cannot be read" in str(b), "a damaged footer: %s" % b)
    refused(e, ["-o", e.path("x.h5"), e.path("damaged_footer.parquet")], ["damaged_footer.parquet: damaged parquet file"],
            "the converter on a damaged footer")

    # memory: 60 000 row groups (one jet each): a whole footer costs a process a few
    # hundred MB; the converter's processes each stay far below that
    big = e.path("rg60k.parquet")
    k = 60000
    tb = pa.table({"X_jet": src.nested(rng.random((k, 8, 2, 2))), "m": rng.uniform(85, 500, k),
                   "pt": rng.uniform(400, 1200, k), "ieta": rng.integers(0, 170, k).astype(float),
                   "iphi": rng.integers(0, 360, k).astype(float)})
    pq.write_table(tb, big, row_group_size=1)
    bare, whole = pyarrow_open_mb(sys.executable), pyarrow_open_mb(sys.executable, big)
    r = Sampled([CONVERT, "-q", "-j", "2", "-o", e.path("rg60k.h5"), big], env=ENV, every=0.01)
    check(r.rc == 0, "60 000 row groups converted: %s" % (r.stdout.strip() or r.stderr.strip()))
    most = max(r.hwm_mb.values())
    check(len(r.hwm_mb) >= 3 and most < bare + 0.3 * (whole - bare),
          "the largest of the converter's %d processes peaked at %.0f MB; a process that imports pyarrow and h5py "
          "peaks at %.0f MB, %.0f MB with this file's whole footer opened" % (len(r.hwm_mb), most, bare, whole))
    with h5py.File(e.path("rg60k.h5"), "r") as f:
        check(np.array_equal(f["m"][()], tb["m"].to_numpy().astype(np.float32)), "and every mass is the source's")


def train_one(e, data, name):
    rd = e.path("run_" + name)
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", data, "--out", rd, "--epochs", "1",
                      "--batch", "8", "--seed", "3"], timeout=300)
    return p, rd


def t_train(e):
    for name, make in (("topgun", src.topgun_parquet), ("run2", src.run2_parquet), ("amapt", src.amapt_parquet)):
        make(e.path(name + ".parquet"), 160, S=32)
        out = e.path(name + ".h5")
        convert("-q", "-o", out, e.path(name + ".parquet"))
        p, rd = train_one(e, out, name)
        check(p.returncode == 0 and os.path.exists(os.path.join(rd, "results.json")) and "epoch 1/1 done" in p.stdout,
              "mpirun -np 2 e2e-train: one epoch on the converted %s file%s" % (name, "" if p.returncode == 0 else
                                                                               ": " + p.stderr.strip()[-300:]))
    # what a physicist does next: the test split's predictions, plotted
    pred = e.path("topgun_pred.h5")
    run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", os.path.join(e.path("run_topgun"), "checkpoints",
                  "best.h5"), "--data", e.path("topgun.h5"), "--split", "test", "--batch", "8", "--predictions", pred], expect=0)
    p = run([os.path.join(TOP, "launch", "plot"), "--predictions", pred, "--bins", "4"], expect=0)
    with h5py.File(pred, "r") as f:
        n = len(f["m_true"])
    with open(e.path("topgun_pred_response.csv")) as f:
        jets = sum(int(line.split(",")[2]) for line in f.readlines()[1:])
    check(os.path.getsize(e.path("topgun_pred_mass_2d.png")) > 1000 and os.path.getsize(e.path("topgun_pred_response.png"))
          > 1000 and jets == n, "launch/plot --predictions on e2e-eval's %d test predictions: both PNGs, every jet binned" % n)


def t_train_scalars(e):
    src.qg_hdf5(e.path("qg.hdf5"), 160, S=32)
    src.topgun_parquet(e.path("tg.parquet"), 160, S=32)
    convert("-q", "-o", e.path("qg.h5"), e.path("qg.hdf5"))
    convert("-q", "--scalars", "iphi,ieta,pt", "-o", e.path("tg3.h5"), e.path("tg.parquet"))
    p, rd = train_one(e, e.path("qg.h5"), "qg")
    check(p.returncode == 0 and os.path.exists(os.path.join(rd, "results.json")),
          "one epoch on a file without scalars (quark-gluon)%s" % ("" if p.returncode == 0 else ": " + p.stderr[-300:]))
    with h5py.File(os.path.join(rd, "checkpoints", "best.h5"), "r") as f:
        check(int(f.attrs["n_scalars"]) == 0 and len(f["data"].attrs["scalars"]) == 0,
              "its checkpoint: a model without scalars, none recorded")
    p, rd = train_one(e, e.path("tg3.h5"), "tg3")
    check(p.returncode == 0 and os.path.exists(os.path.join(rd, "results.json")),
          "one epoch on a file with three scalars (iphi, ieta, pt)%s" % ("" if p.returncode == 0 else ": " + p.stderr[-300:]))
    with h5py.File(os.path.join(rd, "checkpoints", "best.h5"), "r") as f:
        names, scales = strings(f["data"].attrs["scalars"]), list(f["data"].attrs["scalar_scale"])
        kinds = strings(f["data"].attrs["channel_kinds"])
        check(int(f.attrs["n_scalars"]) == 3 and names == ["iphi", "ieta", "pt"] and scales == [360.0, 170.0, 1000.0]
              and f["model/fc.weight"].shape == (1, 35) and kinds == TOPGUN_KINDS,
              "its checkpoint records the three scalars %s with their scales %s, and the kinds" % (names, scales))


def classify_one(e, data, name):
    rd = e.path("run_" + name)
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", data, "--out", rd, "--epochs", "1", "--batch", "8",
                      "--seed", "3", "--task", "classification"], timeout=300)
    ok = p.returncode == 0 and os.path.exists(os.path.join(rd, "results.json"))
    return ok, (p.stdout + p.stderr)[-400:]


def t_labels(e):
    src.topgun_parquet(e.path("top.parquet"), 160, S=32, seed=1)
    src.topgun_parquet(e.path("qcd.parquet"), 160, S=32, seed=7)
    src.topgun_parquet(e.path("qcd_more.parquet"), 48, S=32, seed=8)
    convert("-q", "--label-value", "1", "-o", e.path("top.h5"), e.path("top.parquet"))
    p = convert("--label-value", "0", "-o", e.path("qcd.h5"), e.path("qcd.parquet"))
    check("y = 0 (stamped)" in p.stderr, "the run's description names the stamped label")
    for name, want in (("top.h5", 1), ("qcd.h5", 0)):
        with h5py.File(e.path(name), "r") as f:
            y = f["y"][()]
            check(y.dtype == np.uint8 and len(y) == 160 and np.all(y == want), "%s: y uint8, every row %d" % (name, want))
    convert("-q", "--append", "--label-value", "0", "-o", e.path("top.h5"), e.path("qcd_more.parquet"))
    with h5py.File(e.path("top.h5"), "r") as f:
        y = f["y"][()]
        check(len(y) == 208 and np.all(y[:160] == 1) and np.all(y[160:] == 0), "--append stamps the rows it adds")
    with open(e.path("both.txt"), "w") as f:
        f.write("top.h5\nqcd.h5\n")
    p = run([e.exe("e2e-data"), "info", e.path("both.txt"), "--rows", "4"], expect=0)
    check("classes (label y): 160 signal (1), 208 background (0)" in p.stdout, "e2e-data info counts the classes: %s"
          % [ln for ln in p.stdout.splitlines() if "classes" in ln])
    # top and QCD files of 8 jets each, alternating in a list: the split takes runs of
    # consecutive rows, and the validation and test splits of these 320 jets are 16 each
    names = []
    for k in range(20):
        for name in ("top", "qcd"):
            names.append("%s_%d.h5" % (name, k))
            run([e.exe("e2e-data"), "convert", "--rows", "%d:%d" % (8 * k, 8 * k + 8), e.path(name + ".h5"),
                 e.path(names[-1])], expect=0)
    with open(e.path("mixed.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    ok, tail = classify_one(e, e.path("mixed.txt"), "mixed")
    check(ok, "a list of stamped top files and stamped QCD files trains a classifier%s" % ("" if ok else ": " + tail))
    src.qg_hdf5(e.path("qg.hdf5"), 160, S=32)
    convert("-q", "-o", e.path("qg.h5"), e.path("qg.hdf5"))
    with h5py.File(e.path("qg.h5"), "r") as f:
        check(f["y"].dtype == np.float32, "the quark-gluon file keeps its own y (float32)")
    ok, tail = classify_one(e, e.path("qg.h5"), "qg")
    check(ok, "the quark-gluon file trains a classifier on its y%s" % ("" if ok else ": " + tail))
    refused(e, ["--label-value", "1", "-o", e.path("qg1.h5"), e.path("qg.hdf5")], ["qg.hdf5", "has a column 'y' already"],
            "stamping over a source's own labels")
    convert("-q", "--extra", "none", "--label-value", "1", "-o", e.path("qg1.h5"), e.path("qg.hdf5"))
    convert("-q", "-o", e.path("plain.h5"), e.path("qcd.parquet"))
    refused(e, ["--append", "--label-value", "0", "-o", e.path("plain.h5"), e.path("qcd_more.parquet")],
            ["plain.h5", "no label column 'y' for the appended rows"], "stamping appended rows of a file without labels")


TESTS = {"labels": t_labels, "layouts": t_layouts, "names": t_names, "scalars": t_scalars, "kinds": t_kinds, "plausible": t_plausible,
         "hdf5_bad": t_hdf5_bad, "append": t_append, "footer": t_footer, "train": t_train,
         "train_scalars": t_train_scalars}


if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

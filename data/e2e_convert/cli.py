"""e2e-convert's command line: options, exit statuses (0 done, 1 bad input or a failed
step, 2 a bad command line, 130/143 after SIGINT/SIGTERM), one message a failure."""
import argparse
import os
import signal
import sys

from . import GENERATOR, PROG
from .columns import KNOWN, ROLES
from .errors import Bad
from .writers import WRITERS

PIXEL_SIZE = 0.0174  # one ECAL crystal

HELP_EPILOG = """\
sources (the kind is read from the file's first bytes, not its name):
  parquet  images as 3-level nested lists a row, one number a row for the other columns
  HDF5     images as a (N, a, b, c) dataset, (N,) datasets for the others (root group)

columns (the E2E producers' names are known; --column NAME=COLUMN for others):
  X_jet  %s       m  %s
  pt     %s             ieta, iphi (optional)
  Other per-jet number columns (e.g. y) are copied as they are (--extra).

layouts (--layout auto decides from the first jet of each file):
  chw  C x H x W (channel-first, as the Top Gun files)
  hwc  H x W x C (channel-last, as the quark-gluon HDF5 files)
  auto: chw when the last two lengths are equal and the first differs, hwc when the first
  two are equal and the last differs; anything else (a cube such as 3 x 3 x 3) needs --layout.

Every row is checked: nested lengths, finite pixels, finite m, pt, ieta, iphi and model
scalars. Plausibility: masses that look like MeV are refused (--mass-unit MeV), negative
masses, all-zero images and negative pixels in energy-like channels are counted and warned
about. A failure names the file (and row group, row), exits 1, and leaves no output file
(with --append or --force: FILE exactly as it was).

examples:
  data/e2e-convert -o topgun.h5 top_gun_opendata_0.parquet top_gun_opendata_1.parquet
  data/e2e-convert -o qg.h5 quark-gluon_data-set_n139306.hdf5
  data/e2e-convert --append -o topgun.h5 top_gun_opendata_2.parquet
  data/e2e-convert --scalars iphi,ieta,pt --scalar-scale pt=800 -o run2.h5 run2_*.parquet
  data/e2e-convert --label-value 1 -o top.h5 top_*.parquet     # a classifier's files of one class,
  data/e2e-convert --label-value 0 -o qcd.h5 qcd_*.parquet     # listed together for e2e-train --task classification
""" % ("/".join(KNOWN["X_jet"]), "/".join(KNOWN["m"]), "/".join(KNOWN["pt"]))


def split_list(text):
    return [s.strip() for s in text.split(",")]


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP_EPILOG,
        description="Converts E2E jet datasets (parquet or HDF5) into one HDF5 file of the e2e jet-image\n"
                    "format (data/format/FORMAT.md), which e2e-train reads. See data/CONVERT.md.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="parquet or HDF5 files, converted in this order")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the HDF5 file to write")
    p.add_argument("-a", "--append", action="store_true",
                   help="add the rows to FILE (made by e2e-convert): the same image shape, channels, columns")
    p.add_argument("-f", "--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--dtype", choices=("float32", "float16"), metavar="TYPE",
                   help="float32 (default) or float16 for X_jet; with --append, the file's")
    p.add_argument("--store", choices=sorted(WRITERS), default="sparse", metavar="LAYOUT",
                   help="how the images are stored: %s (default sparse: the non-zero pixels, a few KB a jet; dense for tools that read X_jet as one array)" % ", ".join(sorted(WRITERS)))
    p.add_argument("--layout", choices=("auto", "chw", "hwc"), default="auto", metavar="L",
                   help="auto (default), chw or hwc: the source's image axes (see below)")
    p.add_argument("--channels", metavar="A,B,...",
                   help="channel names (default: the Top Gun names for 8 channels, track_pt,ecal,hcal for 3, "
                        "ch0,ch1,... otherwise; with --append, the file's)")
    p.add_argument("--channel-kinds", metavar="K,K,...",
                   help="energy or signed, one a channel (default: signed for channels named dz, d0, dxy, "
                        "energy for the rest)")
    p.add_argument("--column", action="append", default=[], metavar="NAME=COLUMN",
                   help="read NAME (X_jet, m, pt, ieta or iphi) from the source column COLUMN (repeatable)")
    p.add_argument("--extra", default="all", metavar="all|none|A,B",
                   help="other per-jet number columns to copy as they are (default all)")
    p.add_argument("--scalars", metavar="A,B|none",
                   help="the 1-D columns that are the model's per-jet inputs, in order (default: iphi,ieta "
                        "where the files have them, else none)")
    p.add_argument("--scalar-scale", action="append", default=[], metavar="NAME=X",
                   help="the model input is value / X (defaults: iphi 360, ieta 170, pt 1000)")
    p.add_argument("--label-value", type=int, choices=(0, 1), metavar="0|1",
                   help="stamp this class label on every row of the run, in the column --label (uint8): the E2E "
                        "top-tagging data ships top (1) and QCD (0) jets in separate files")
    p.add_argument("--label", default="y", metavar="NAME",
                   help="the label column --label-value writes (default y, e2e-train's default --label); a source "
                        "with a column of that name (the electron/photon files' y) is a classifier's, which needs "
                        "no mass nor pT")
    p.add_argument("--mass-unit", choices=("GeV", "MeV"), default="GeV",
                   help="the unit of the mass and pt columns (MeV: divided by 1000; default GeV)")
    p.add_argument("--pixel-size", type=float, default=PIXEL_SIZE, metavar="X",
                   help="eta-phi size of a pixel, stored as an attribute (default %(default)g)")
    p.add_argument("--chunk", type=int, metavar="K",
                   help="rows per X_jet chunk (default: about 4 MiB, at least 64 chunks)")
    p.add_argument("--batch", type=int, default=32, metavar="N",
                   help="jets decoded at a time by each process (default %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=min(os.cpu_count() or 1, 8), metavar="N",
                   help="decoding processes (default: the CPU count, at most 8); 0 decodes in the main process")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=GENERATOR)
    a = p.parse_args(argv)
    check_args(p, a)
    return a


def check_args(p, a):
    if a.append and a.force:
        p.error("--append and --force exclude each other")
    if not a.label or a.label in ROLES:
        p.error("--label: the label column needs a name other than %s (got '%s')" % (", ".join(ROLES), a.label))
    if a.batch < 1:
        p.error("--batch must be at least 1 (got %d)" % a.batch)
    if a.jobs < 0:
        p.error("--jobs must be 0 or more (got %d)" % a.jobs)
    if a.chunk is not None and a.chunk < 1:
        p.error("--chunk must be at least 1 (got %d)" % a.chunk)
    if not a.pixel_size > 0:
        p.error("--pixel-size must be positive (got %g)" % a.pixel_size)
    a.colmap = {}
    for m in a.column:
        k, sep, v = m.partition("=")
        if not sep or k not in ROLES or not v:
            p.error("--column takes NAME=COLUMN with NAME one of %s (got '%s')" % (", ".join(ROLES), m))
        a.colmap[k] = v
    if a.channels is not None:
        a.channels = split_list(a.channels)
        if any(not s for s in a.channels):
            p.error("--channels: empty channel name in '%s'" % ",".join(a.channels))
    if a.extra not in ("all", "none"):
        a.extra = split_list(a.extra)
        if any(not s for s in a.extra):
            p.error("--extra: empty column name")
    if a.scalars is not None:
        a.scalars = [] if a.scalars in ("none", "") else split_list(a.scalars)
        if any(not s for s in a.scalars):
            p.error("--scalars: empty name")
    scales = {}
    for m in a.scalar_scale:
        k, sep, v = m.partition("=")
        try:
            x = float(v)
        except ValueError:
            x = float("nan")
        if not sep or not k or not x > 0 or x == float("inf"):
            p.error("--scalar-scale takes NAME=X with X a positive number (got '%s')" % m)
        scales[k] = x
    a.scalar_scale = scales


def main(argv=None):
    from .convert import convert

    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)
    got = []

    def on_term(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        convert(a, argv)
    except Bad as e:
        sys.stderr.write("\n" if sys.stderr.isatty() and not a.quiet else "")
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n%s: interrupted; no output written (%s is as it was)\n" % (PROG, a.out))
        return 143 if got else 130
    except (OSError, RuntimeError) as e:
        from .output import is_disk_full

        if isinstance(e, RuntimeError) and not is_disk_full(e):
            raise  # HDF5's flush reports a full disk as a RuntimeError; anything else is a bug
        if is_disk_full(e):
            sys.stderr.write("%s: %s: no space left on the file system of %s (or the quota is full); nothing was "
                             "written%s\n" % (PROG, a.out, os.path.dirname(os.path.abspath(a.out)),
                                              " (%s is as it was)" % a.out if a.append or a.force else ""))
        else:
            sys.stderr.write("%s: %s: %s\n" % (PROG, e.filename or a.out, e.strerror or e))
        return 1
    return 0

#!/usr/bin/env python3
"""What physicists look at after training, from `e2e-eval --predictions PRED.h5` (datasets
index, m_true, m_pred in GeV): run by `launch/plot --predictions PRED.h5`.

Writes, beside PRED.h5 (or in --out DIR), named after it (PRED = the file name without .h5):
  PRED_mass_2d.png        predicted against true mass, a 2-D histogram, with the diagonal
  PRED_mass_2d.csv        its counts: true_lo, true_hi, pred_lo, pred_hi, jets
  PRED_response.png       the mass response (median of m_pred / m_true, with its quartiles)
                          and resolution (interquartile width of m_pred / m_true) in bins
                          of true mass
  PRED_response.csv       the numbers behind it: lo, hi, jets, median, q25, q75, iqr

Quantiles are numpy's (linear interpolation between order statistics). Jets with
m_true <= 0 have no response; they are counted in the 2-D histogram only, and their
number is printed. Empty bins have jets 0 and nan statistics.
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np

PROG = "launch/plot"


class Bad(Exception):
    pass


def read_predictions(path):
    try:
        import h5py
    except ImportError:
        raise Bad("h5py not found: run launch/install-deps.sh")
    if not os.path.exists(path):
        raise Bad("%s: no such file" % path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise Bad("%s: cannot open as HDF5 (%s)" % (path, e))
    with f:
        for name in ("m_true", "m_pred"):
            if name not in f or f[name].ndim != 1:
                raise Bad("%s: no 1-D dataset '%s'; expected e2e-eval --predictions output (index, m_true, m_pred)"
                          % (path, name))
        t, p = f["m_true"][()].astype(np.float64), f["m_pred"][()].astype(np.float64)
    if len(t) != len(p):
        raise Bad("%s: m_true has %d rows, m_pred %d" % (path, len(t), len(p)))
    if len(t) == 0:
        raise Bad("%s: no predictions" % path)
    bad = np.flatnonzero(~(np.isfinite(t) & np.isfinite(p)))
    if bad.size:
        raise Bad("%s: row %d is not finite (m_true %g, m_pred %g)" % (path, bad[0], t[bad[0]], p[bad[0]]))
    return t, p


def response_table(t, p, edges):
    """rows (lo, hi, jets, median, q25, q75, iqr) of m_pred / m_true in bins of m_true"""
    ok = t > 0
    r, tt = p[ok] / t[ok], t[ok]
    rows = []
    last = len(edges) - 2
    for k in range(len(edges) - 1):
        lo, hi = edges[k], edges[k + 1]
        sel = (tt >= lo) & ((tt < hi) if k < last else (tt <= hi))
        v = r[sel]
        if v.size:
            q25, med, q75 = np.percentile(v, [25, 50, 75])
            rows.append((lo, hi, int(v.size), med, q25, q75, q75 - q25))
        else:
            rows.append((lo, hi, 0, np.nan, np.nan, np.nan, np.nan))
    return rows


def write_csv(path, header, rows, fmt):
    with open(path, "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(",".join(fmt[i] % v if not (isinstance(v, float) and np.isnan(v)) else "nan"
                             for i, v in enumerate(r)) + "\n")


GNUPLOT = """set datafile separator ","
set terminal pngcairo size 900,800 enhanced font "sans,11"
set output "{png2d}"
set title "Predicted vs true mass ({n} jets)"
set xlabel "true mass (GeV)"
set ylabel "predicted mass (GeV)"
set xrange [{lo}:{hi}]
set yrange [{lo}:{hi}]
set size square
set palette defined (0 "white", 1 "#c6dbef", 2 "#6baed6", 3 "#2171b5", 4 "#08306b")
set cblabel "jets"
set key top left
plot "{csv2d}" skip 1 using (($1+$2)/2):(($3+$4)/2):5 with image notitle, x with lines lc "red" dt 2 title "m_{{pred}} = m_{{true}}"

set terminal pngcairo size 900,800 enhanced font "sans,11"
set output "{pngr}"
set size nosquare
unset title
set key top right
set autoscale
set xrange [{lo}:{hi}]
set multiplot layout 2,1 title "Mass response and resolution in bins of true mass"
set ylabel "median m_{{pred}} / m_{{true}}"
unset xlabel
set grid
plot "{csvr}" skip 1 using (($1+$2)/2):4:5:6 with yerrorbars pt 7 title "median (bars: 25%-75%)", 1 with lines lc "grey" notitle
set xlabel "true mass (GeV)"
set ylabel "IQR of m_{{pred}} / m_{{true}}"
plot "{csvr}" skip 1 using (($1+$2)/2):7 with linespoints pt 7 title "interquartile width"
unset multiplot
"""


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG + " --predictions", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", required=True, metavar="PRED.h5")
    ap.add_argument("--out", metavar="DIR", help="where to write (default: PRED.h5's folder)")
    ap.add_argument("--bins", type=int, default=20, help="bins of true mass for the response (default 20)")
    ap.add_argument("--bins-2d", type=int, default=50, help="bins a side of the 2-D histogram (default 50)")
    ap.add_argument("--range", metavar="LO,HI", help="the true-mass range in GeV (default: the data's)")
    a = ap.parse_args(argv)
    if a.bins < 1 or a.bins_2d < 1:
        ap.error("--bins and --bins-2d must be at least 1")
    t, p = read_predictions(a.predictions)
    if a.range:
        try:
            lo, hi = (float(v) for v in a.range.split(","))
        except ValueError:
            ap.error("--range takes LO,HI in GeV (got '%s')" % a.range)
        if not hi > lo:
            ap.error("--range: HI must be above LO")
    else:
        lo, hi = float(t.min()), float(t.max())
        if hi <= lo:
            hi = lo + 1.0
    out = a.out or os.path.dirname(os.path.abspath(a.predictions))
    if not os.path.isdir(out):
        raise Bad("%s: no such folder" % out)
    stem = os.path.join(out, os.path.splitext(os.path.basename(a.predictions))[0])
    rows = response_table(t, p, np.linspace(lo, hi, a.bins + 1))
    write_csv(stem + "_response.csv", "lo,hi,jets,median,q25,q75,iqr", rows,
              ["%.6g", "%.6g", "%d", "%.6f", "%.6f", "%.6f", "%.6f"])
    e2 = np.linspace(lo, hi, a.bins_2d + 1)
    h, _, _ = np.histogram2d(t, p, bins=[e2, e2])
    write_csv(stem + "_mass_2d.csv", "true_lo,true_hi,pred_lo,pred_hi,jets",
              [(e2[i], e2[i + 1], e2[j], e2[j + 1], int(h[i, j])) for i in range(a.bins_2d) for j in range(a.bins_2d)],
              ["%.6g", "%.6g", "%.6g", "%.6g", "%d"])
    nonpos = int(np.count_nonzero(t <= 0))
    print("%s: %d jets%s; wrote %s_response.csv and %s_mass_2d.csv"
          % (PROG, len(t), " (%d with m_true <= 0 have no response)" % nonpos if nonpos else "", stem, stem))
    if not shutil.which("gnuplot"):
        raise Bad("gnuplot not found (apt-get install gnuplot-nox): the CSV files are written, no plots")
    script = GNUPLOT.format(png2d=stem + "_mass_2d.png", csv2d=stem + "_mass_2d.csv", pngr=stem + "_response.png",
                            csvr=stem + "_response.csv", lo=lo, hi=hi, n=len(t))
    g = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
    if g.returncode != 0:
        raise Bad("gnuplot failed: %s" % g.stderr.decode(errors="replace").strip())
    print("%s: wrote %s_mass_2d.png and %s_response.png" % (PROG, stem, stem))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Bad as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        sys.exit(1)

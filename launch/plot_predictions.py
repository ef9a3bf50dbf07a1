#!/usr/bin/env python3
"""What physicists look at after training, from `e2e-eval --predictions PRED.h5`: run by
`launch/plot --predictions PRED.h5`. A mass regression's file (datasets index, m_true,
m_pred in GeV):

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

A classifier's file (datasets index, label, score, logit, m):
  PRED_roc.png            the ROC curve as HEP draws it: background rejection 1/eps_b (log
                          scale) against signal efficiency eps_s, the AUC in the legend,
                          beside a random classifier's 1/eps_s
  PRED_roc.csv            its points, one a distinct logit from the highest: logit, eps_s,
                          eps_b, rejection (inf where eps_b is 0): the curve e2e-eval's AUC
                          and rejections are computed on (dist/class_metrics.c)
  PRED_scores.png         the score (sigmoid of the logit) of each class, normalised
  PRED_scores.csv         its numbers: lo, hi, signal, background (jets), signal_frac,
                          background_frac (of each class's jets)
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


def read_classifier(path):
    """(label 0/1, logit) of a classifier's prediction file; the logit from its score where
    the file has no logit column"""
    import h5py
    with h5py.File(path, "r") as f:
        if "label" not in f or ("logit" not in f and "score" not in f):
            raise Bad("%s: a classifier's predictions need the datasets label and logit (or score)" % path)
        y = f["label"][()].astype(np.float64)
        if "logit" in f:
            x = f["logit"][()].astype(np.float64)
        else:
            s = f["score"][()].astype(np.float64)
            with np.errstate(divide="ignore"):
                x = np.log(s) - np.log1p(-s)
    if len(x) != len(y) or len(x) == 0:
        raise Bad("%s: label has %d rows, the scores %d" % (path, len(y), len(x)))
    bad = np.flatnonzero(~((y == 0) | (y == 1)) | np.isnan(x))
    if bad.size:
        raise Bad("%s: row %d: label %g, logit %g: labels must be 0 or 1, logits not NaN" % (path, bad[0], y[bad[0]], x[bad[0]]))
    return y, x


def roc_curve(y, x):
    """(logit threshold, eps_s, eps_b) after each distinct logit, from the highest, the first
    point (inf, 0, 0): tied logits are one step (a diagonal one across the classes)"""
    order = np.argsort(-x, kind="mergesort")
    xs, ys = x[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(xs) != 0), len(xs) - 1]
    tp, fp = np.cumsum(ys)[last], np.cumsum(1 - ys)[last]
    return np.r_[np.inf, xs[last]], np.r_[0.0, tp / tp[-1]], np.r_[0.0, fp / fp[-1]]


def rejection_at(eps_s, eps_b, eff):
    """1 / eps_b where the curve first reaches eps_s = eff, linear in the segment that crosses it"""
    k = int(np.argmax(eps_s >= eff))
    eb = eps_b[k - 1] + (eff - eps_s[k - 1]) * (eps_b[k] - eps_b[k - 1]) / (eps_s[k] - eps_s[k - 1])
    return np.inf if eb == 0 else 1.0 / eb


ROC_GNUPLOT = """set datafile separator ","
set terminal pngcairo size 900,700 enhanced font "sans,11"
set output "{pngroc}"
set title "ROC curve ({n} jets, {ns} signal)"
set xlabel "signal efficiency {{/Symbol e}}_s"
set ylabel "background rejection 1/{{/Symbol e}}_b"
set logscale y
set xrange [0:1]
set grid
set key top right
plot "{csvroc}" skip 1 using 2:(($3 > 0) ? $4 : 1/0) with lines lw 2 title "AUC = {auc:.4f}", \\
     (x > 0 ? 1/x : 1/0) with lines dt 2 lc "grey" title "random (1/{{/Symbol e}}_s)"
"""

SCORES_GNUPLOT = """set datafile separator ","
set terminal pngcairo size 900,700 enhanced font "sans,11"
set grid
set output "{pngs}"
set title "Score per class"
set xlabel "score (sigmoid of the logit)"
set ylabel "fraction of the class's jets"
set logscale y
set xrange [0:1]
set key top center
plot {curves}
"""
SCORE_CURVE = '"{csvs}" skip 1 using (($1+$2)/2):(${col} > 0 ? ${col} : 1/0) with histeps lw 2 lc "{color}" title "{title}"'



def score_plot(a, stem, y, x):
    """the score's distribution per class: PRED_scores.csv and .png (a class with no jet
    is left out)"""
    edges = np.linspace(0.0, 1.0, (a.bins or 50) + 1)
    score = 1.0 / (1.0 + np.exp(-np.clip(x, -700, 700)))
    hs, _ = np.histogram(score[y == 1], edges)
    hb, _ = np.histogram(score[y == 0], edges)
    fs, fb = hs / max(hs.sum(), 1), hb / max(hb.sum(), 1)
    write_csv(stem + "_scores.csv", "lo,hi,signal,background,signal_frac,background_frac",
              [(edges[k], edges[k + 1], int(hs[k]), int(hb[k]), fs[k], fb[k]) for k in range(len(hs))],
              ["%.6g", "%.6g", "%d", "%d", "%.9g", "%.9g"])
    curves = [SCORE_CURVE.format(csvs=stem + "_scores.csv", col=col, color=color, title=title)
              for col, color, title, h in ((6, "blue", "background (0)", hb), (5, "red", "signal (1)", hs)) if h.sum()]
    gnuplot(SCORES_GNUPLOT.format(pngs=stem + "_scores.png", curves=", \\\n     ".join(curves)))


def classifier_plots(a, stem):
    """the ROC curve and the score distributions of a classifier's prediction file; a file
    of one class (a single-class sample evaluated alone) gets the score plot only"""
    y, x = read_classifier(a.predictions)
    score_plot(a, stem, y, x)
    n, ns = len(y), int(y.sum())
    if y.min() == y.max():
        print("%s: warning: %s: every jet is of class %d: no ROC curve (it needs both classes); wrote "
              "%s_scores.csv and %s_scores.png" % (PROG, a.predictions, int(y[0]), stem, stem), file=sys.stderr)
        return
    thr, es, eb = roc_curve(y, x)
    auc = float(np.sum((eb[1:] - eb[:-1]) * (es[1:] + es[:-1]) / 2))  # the trapezoids, ties as diagonals
    with np.errstate(divide="ignore"):
        rej = np.where(eb > 0, 1.0 / np.where(eb > 0, eb, 1.0), np.inf)
    write_csv(stem + "_roc.csv", "logit,eps_s,eps_b,rejection", list(zip(thr, es, eb, rej)),
              ["%.9g", "%.9g", "%.9g", "%.9g"])
    print("%s: %d jets (%d signal): AUC %.6f, 1/eps_b %.4g at eps_s 0.3, %.4g at 0.5; wrote %s_roc.csv and %s_scores.csv"
          % (PROG, n, ns, auc, rejection_at(es, eb, 0.3), rejection_at(es, eb, 0.5), stem, stem))
    gnuplot(ROC_GNUPLOT.format(pngroc=stem + "_roc.png", csvroc=stem + "_roc.csv", n=n, ns=ns, auc=auc))
    print("%s: wrote %s_roc.png and %s_scores.png" % (PROG, stem, stem))


def gnuplot(script):
    if not shutil.which("gnuplot"):
        raise Bad("gnuplot not found (apt-get install gnuplot-nox): the CSV files are written, no plots")
    g = subprocess.run(["gnuplot"], input=script.encode(), capture_output=True)
    if g.returncode != 0:
        raise Bad("gnuplot failed: %s" % g.stderr.decode(errors="replace").strip())


def is_classifier(path):
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return "label" in f and "m_pred" not in f
    except (OSError, ImportError):
        return False


def main(argv):
    ap = argparse.ArgumentParser(prog=PROG + " --predictions", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--predictions", required=True, metavar="PRED.h5")
    ap.add_argument("--out", metavar="DIR", help="where to write (default: PRED.h5's folder)")
    ap.add_argument("--bins", type=int, help="bins of true mass for the response (default 20), or of a "
                    "classifier's score (default 50)")
    ap.add_argument("--bins-2d", type=int, default=50, help="bins a side of the 2-D histogram (default 50)")
    ap.add_argument("--range", metavar="LO,HI", help="the true-mass range in GeV (default: the data's)")
    a = ap.parse_args(argv)
    if (a.bins is not None and a.bins < 1) or a.bins_2d < 1:
        ap.error("--bins and --bins-2d must be at least 1")
    out = a.out or os.path.dirname(os.path.abspath(a.predictions))
    if not os.path.isdir(out):
        raise Bad("%s: no such folder" % out)
    stem = os.path.join(out, os.path.splitext(os.path.basename(a.predictions))[0])
    if is_classifier(a.predictions):
        return classifier_plots(a, stem)
    a.bins = a.bins or 20
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
    gnuplot(GNUPLOT.format(png2d=stem + "_mass_2d.png", csv2d=stem + "_mass_2d.csv", pngr=stem + "_response.png",
                           csvr=stem + "_response.csv", lo=lo, hi=hi, n=len(t)))
    print("%s: wrote %s_mass_2d.png and %s_response.png" % (PROG, stem, stem))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Bad as e:
        sys.stderr.write("%s: %s\n" % (PROG, e))
        sys.exit(1)

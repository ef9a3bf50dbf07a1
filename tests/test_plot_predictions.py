#!/usr/bin/env python3
"""Test of `launch/plot --predictions` on a predictions file built here (the datasets
e2e-eval --predictions writes: index int64, m_true and m_pred float32, GeV) whose
binned response is known by hand:

  10 bins of true mass over [100, 200] GeV; bin i holds 5 jets at m_true = 105 + 10 i with
  m_pred / m_true = s_i x (0.8, 0.9, 1.0, 1.1, 1.2), s_i = 1 + 0.05 i, so the median is s_i,
  the quartiles 0.9 s_i and 1.1 s_i (exactly the 2nd and 4th values), the IQR 0.2 s_i; bin 7
  is left empty; one jet at m_true = 0 has no response; one jet at m_true = 200 (the upper
  edge) falls in the last bin.

Checks: the PNGs exist (PNG signature, drawn by gnuplot), the response CSV equals those
numbers, the 2-D histogram CSV's counts sum to the jets and sit in the expected cells;
bad inputs (no such file, a file without m_pred, NaN) exit 1 with one message.

usage: test_plot_predictions.py
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from project_venv import use_project_venv  # noqa: E402 - standard library only

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from test_train_e2e import Failure, check  # noqa: E402

PLOT = os.path.join(TOP, "launch", "plot")
RATIOS = np.array([0.8, 0.9, 1.0, 1.1, 1.2])
EMPTY = 7


def write_predictions(path, t, p):
    with h5py.File(path, "w") as f:
        f["index"] = np.arange(len(t), dtype=np.int64)
        f["m_true"] = np.asarray(t, np.float32)
        f["m_pred"] = np.asarray(p, np.float32)


def constructed():
    t, p = [], []
    for i in range(10):
        if i == EMPTY:
            continue
        m = 105.0 + 10 * i
        s = 1 + 0.05 * i
        t += [m] * 5
        p += list(m * s * RATIOS)
    t += [0.0, 200.0]
    p += [50.0, 200.0 * 1.45]  # the edge jet: ratio 1.45 in bin 9
    return np.array(t), np.array(p)


def plot(*args):
    return subprocess.run([PLOT] + [str(a) for a in args], capture_output=True, text=True, timeout=120)


def t_plot(tmp):
    t, p = constructed()
    pred = os.path.join(tmp, "test_pred.h5")
    write_predictions(pred, t, p)
    r = plot("--predictions", pred, "--range", "100,200", "--bins", 10, "--bins-2d", 20)
    check(r.returncode == 0, "launch/plot --predictions: exit %d %s" % (r.returncode, r.stderr.strip()))
    check("(1 with m_true <= 0 have no response)" in r.stdout, "the jet without a response is counted")
    for png in ("test_pred_mass_2d.png", "test_pred_response.png"):
        with open(os.path.join(tmp, png), "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "%s written" % png)
    with open(os.path.join(tmp, "test_pred_response.csv")) as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == 10, "10 bins of true mass")
    for i, row in enumerate(rows):
        lo, hi = 100 + 10 * i, 110 + 10 * i
        check(abs(float(row["lo"]) - lo) < 1e-9 and abs(float(row["hi"]) - hi) < 1e-9, "bin %d: %s to %s GeV" % (i, lo, hi))
        if i == EMPTY:
            check(row["jets"] == "0" and row["median"] == "nan", "bin %d: empty (jets 0, median nan)" % i)
            continue
        r_i = (1 + 0.05 * i) * RATIOS
        if i == 9:  # the jet at the upper edge joins the last bin: 6 ratios
            r_i = np.sort(np.append(r_i, 1.45))
        n = len(r_i)
        # quantiles by hand: linear interpolation at positions (n - 1) q
        def q(x):
            pos = (n - 1) * x
            k = int(pos)
            return r_i[k] + (pos - k) * (r_i[min(k + 1, n - 1)] - r_i[k])
        want = {"jets": n, "median": q(0.5), "q25": q(0.25), "q75": q(0.75)}
        want["iqr"] = want["q75"] - want["q25"]
        got = {k: float(row[k]) for k in want}
        check(all(abs(got[k] - want[k]) < 2e-6 for k in want),
              "bin %d: %d jets, median %.4f, q25 %.4f, q75 %.4f, iqr %.4f (by hand)"
              % (i, n, want["median"], want["q25"], want["q75"], want["iqr"]))
    with open(os.path.join(tmp, "test_pred_mass_2d.csv")) as f:
        cells = list(csv.DictReader(f))
    counts = {(float(c["true_lo"]), float(c["pred_lo"])): int(c["jets"]) for c in cells}
    inside = int(np.count_nonzero((t >= 100) & (t <= 200) & (p >= 100) & (p <= 200)))
    check(len(cells) == 400 and sum(counts.values()) == inside, "2-D histogram: 20 x 20 cells holding the %d jets "
          "inside the range" % inside)
    # bin 0's jets: m_true 105, m_pred 84 and 94.5 (outside), 105, 115.5, 126: cells of 5 GeV from 100
    row = [counts[(105.0, 100.0 + 5 * k)] for k in range(20)]
    check(row == [0, 1, 0, 1, 0, 1] + [0] * 14, "2-D histogram: the jets at m_true 105 GeV in the cells their "
          "predictions give: %s" % row)

    # bad inputs
    r = plot("--predictions", os.path.join(tmp, "absent.h5"))
    check(r.returncode == 1 and "absent.h5: no such file" in r.stderr, "a missing file: %s" % r.stderr.strip())
    bad = os.path.join(tmp, "no_pred.h5")
    with h5py.File(bad, "w") as f:
        f["m_true"] = np.ones(3, np.float32)
    r = plot("--predictions", bad)
    check(r.returncode == 1 and "no 1-D dataset 'm_pred'" in r.stderr and r.stderr.count("\n") == 1,
          "a file without m_pred: %s" % r.stderr.strip())
    nan = os.path.join(tmp, "nan.h5")
    write_predictions(nan, [100.0, 120.0], [np.nan, 118.0])
    r = plot("--predictions", nan)
    check(r.returncode == 1 and "row 0 is not finite" in r.stderr, "a NaN prediction: %s" % r.stderr.strip())
    r = plot("--predictions", pred, "--range", "200,100")
    check(r.returncode == 2 and "HI must be above LO" in r.stderr, "a bad --range: exit 2")


def main():
    tmp = tempfile.mkdtemp(prefix="e2e-plot-test-")
    try:
        t_plot(tmp)
    except Failure as f:
        print("FAILED:", f)
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("plot_predictions: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""A classifier's metrics (dist/class_metrics.c, through tests/class_metrics_probe.c) against
scikit-learn and numpy on arrays with ties (logits rounded to a few values, ties across the
classes included), without ties, all tied, perfectly separated, with huge logits, and on
200 000 jets:

  auc          sklearn.metrics.roc_auc_score (ties count one half), to 1e-9
  accuracy     sklearn.metrics.accuracy_score of (logit > 0), exactly
  loss         the mean of max(x, 0) - x y + log1p(exp(-|x|)) (PyTorch's BCEWithLogitsLoss),
               and sklearn.metrics.log_loss of the sigmoid where it is finite, to 1e-9
  rejection    1 / eps_b at eps_s = 0.3 and 0.5 on sklearn.metrics.roc_curve's points
               (drop_intermediate=False): the first point at or above eps_s, linear in the
               segment before it; to 1e-9 (inf where eps_b is 0)
  ROC curve    --roc's points equal roc_curve's (fpr, tpr) with its (0, 0) start
  one class    all signal or all background: loss and accuracy as above, AUC and rejections NaN
  refusal      a NaN logit: exit 1 with the message

usage: test_class_metrics.py PROBE
"""
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
from sklearn import metrics

FAILED = []


def check(cond, msg):
    print(("ok: " if cond else "FAILED: ") + msg)
    if not cond:
        FAILED.append(msg)


def probe(exe, logit, label, roc=False):
    with tempfile.NamedTemporaryFile(suffix=".bin", delete=False) as f:
        f.write(struct.pack("<q", len(logit)))
        f.write(np.asarray(logit, "<f4").tobytes() + np.asarray(label, "<f4").tobytes())
        path = f.name
    p = subprocess.run([exe] + (["--roc"] if roc else []) + [path], capture_output=True, text=True)
    os.unlink(path)
    return p


def roc(y, x):
    """scikit-learn's ROC curve, every threshold, from its (0, 0)"""
    fpr, tpr, _ = metrics.roc_curve(y, x, drop_intermediate=False)
    assert fpr[0] == 0 and tpr[0] == 0
    return fpr, tpr


def rejection(y, x, eff):
    fpr, tpr = roc(y, x)
    k = int(np.argmax(tpr >= eff))
    eb = fpr[k - 1] + (eff - tpr[k - 1]) * (fpr[k] - fpr[k - 1]) / (tpr[k] - tpr[k - 1])
    return math.inf if eb == 0 else 1.0 / eb


def close(a, b, tol=1e-9):
    return (math.isinf(a) and math.isinf(b)) or abs(a - b) <= tol * max(1.0, abs(b))


def compare(exe, name, x, y):
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float32)
    p = probe(exe, x, y)
    if p.returncode != 0:
        check(False, "%s: the probe failed: %s" % (name, p.stderr.strip()))
        return
    loss, acc, auc, r30, r50 = [float(v) for v in p.stdout.split()]
    xd = x.astype(np.float64)
    want_loss = float(np.mean(np.maximum(xd, 0) - xd * y + np.log1p(np.exp(-np.abs(xd)))))
    want = {"auc": metrics.roc_auc_score(y, x), "accuracy": metrics.accuracy_score(y, x > 0),
            "loss": want_loss, "rejection_30": rejection(y, x, 0.3), "rejection_50": rejection(y, x, 0.5)}
    got = {"auc": auc, "accuracy": acc, "loss": loss, "rejection_30": r30, "rejection_50": r50}
    for k in want:
        check(close(got[k], want[k]), "%s: %s %.12g, scikit-learn %.12g" % (name, k, got[k], want[k]))
    with np.errstate(over="ignore"):
        sig = 1 / (1 + np.exp(-xd))
    if np.all((sig > 1e-12) & (sig < 1 - 1e-12)):
        check(close(loss, metrics.log_loss(y, sig)), "%s: loss = sklearn's log_loss of the sigmoid" % name)
    r = probe(exe, x, y, roc=True)
    pts = np.array([[float(v) for v in line.split()] for line in r.stdout.splitlines()])
    fpr, tpr = roc(y, x)
    check(pts.shape == (len(fpr), 2) and np.allclose(pts[:, 0], tpr, 0, 1e-12) and np.allclose(pts[:, 1], fpr, 0, 1e-12),
          "%s: the ROC curve's %d points are roc_curve's" % (name, len(fpr)))


def one_class(exe, x, y):
    """jets of one class: no ROC curve (AUC and rejections NaN), loss and accuracy computed"""
    p = probe(exe, np.asarray(x, np.float32), y)
    got = [float(v) for v in p.stdout.split()] if p.returncode == 0 else []
    xd = np.asarray(x, np.float32).astype(np.float64)
    want_loss = float(np.mean(np.maximum(xd, 0) - xd * y + np.log1p(np.exp(-np.abs(xd)))))
    check(len(got) == 5 and all(math.isnan(v) for v in got[2:]) and close(got[0], want_loss)
          and close(got[1], metrics.accuracy_score(y, xd > 0)),
          "one class (%d): loss and accuracy, AUC and rejections NaN: %s" % (y[0], p.stdout.strip() or p.stderr.strip()))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    exe = sys.argv[1]
    rng = np.random.default_rng(24)
    n = 3000
    y = (rng.random(n) < 0.4).astype(np.float32)
    x = rng.normal(1.2 * y - 0.5, 1.0).astype(np.float32)
    compare(exe, "no ties", x, y)
    compare(exe, "ties (logits rounded to 0.5)", np.round(x * 2) / 2, y)
    compare(exe, "heavy ties (5 values)", np.clip(np.round(x), -2, 2), y)
    compare(exe, "every logit tied", np.zeros(n), y)
    compare(exe, "perfectly separated", np.where(y > 0, 3.0, -3.0) + rng.normal(0, 0.1, n), y)
    compare(exe, "perfectly inverted", np.where(y > 0, -3.0, 3.0), y)
    compare(exe, "huge logits", np.where(rng.random(n) < 0.5, 1e4, -1e4) * np.sign(x + 0.01), y)
    compare(exe, "logit exactly 0 (score 0.5, class 0)", np.r_[np.zeros(10), x[10:]], y)
    big = 200000
    yb = (rng.random(big) < 0.5).astype(np.float32)
    compare(exe, "200 000 jets, rounded", np.round(rng.normal(yb, 1.0) * 20) / 20, yb)
    for cls in (0.0, 1.0):
        one_class(exe, x, np.full(n, cls, np.float32))
    p = probe(exe, np.r_[np.nan, x[1:]], y)
    check(p.returncode == 1 and "NaN logit" in p.stderr, "a NaN logit refused: %s" % p.stderr.strip())
    print("FAILED: %d checks" % len(FAILED) if FAILED else "test_class_metrics: passed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Electron against photon, as the E2E group's files hold them (SinglePhotonPt50_IMGCROPS_
n249k_RHv1.hdf5, SingleElectronPt50_...: datasets X (N, 32, 32, 2) float32 channel-last,
energy and time, and y (N,) float, photon 0, electron 1; no mass, no pT), files of that
exact shape written here with h5py, through the same commands as every classifier, under
real mpirun (2 ranks, CPU). One test per subcommand (ctest runs each as egamma_<test>):

  convert     e2e-convert imports them: X_jet (N, 2, 32, 32) equal to X transposed, y copied,
              no m, pt or scalars; --label-value stamps a constant on a file with X alone;
              such a file without labels is refused (it could train nothing), naming the
              file and what is missing
  train       both files listed together: e2e-train --task classification learns (validation
              AUC well above 0.5), e2e-eval writes predictions (index, label, score, logit,
              no m) and metrics equal to results.json's test metrics, launch/plot --predictions
              draws the ROC curve and the scores (PNG); a regression on the same data is
              refused naming the file and the missing column 'm', and so is the mass
              unbiasing of a classifier (--unbias weights); nothing written
  one_class   e2e-eval on the photons alone: predictions and loss, accuracy written, AUC and
              rejections null, one warning naming the file; training on it is still refused
              (the training split holds one class only)
  relabel     a run stopped mid-epoch (exit 75) refuses to resume on the same jets relabelled
              (the labels are in the dataset fingerprint: "other labels"), resumes on the
              same labels, and e2e-eval notes relabelled data as not the training data

usage: test_classify_egamma.py TEST BUILD_DIR
"""
import csv
import json
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

from test_export_onnx import predict, relative  # noqa: E402
from test_train_e2e import MPIRUN, check, err_line, run, run_test  # noqa: E402

CONVERT = os.path.join(TOP, "data", "e2e-convert")
N = 4000  # jets a class: the split takes blocks of 64 rows, and each split needs both files' jets


def egamma_file(path, label, n, seed, with_y=True):
    """n jets of one class in the E2E electron/photon layout: X (n, 32, 32, 2) float32
    (energy, time), y (n,) float32. A photon deposits in one compact cluster; an electron's
    deposit is smeared along phi (bremsstrahlung), which a classifier can learn."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 32, 32, 2), np.float32)
    jet, eta, phi = np.arange(n), rng.integers(12, 20, n), rng.integers(12, 20, n)
    width = 1 if label == 0 else 4
    for k in range(-width, width + 1):
        x[jet, eta, phi + k, 0] = rng.uniform(0.5, 1.0, n) * (1.0 if k == 0 else 0.4)
        x[jet, eta, phi + k, 1] = rng.normal(0.0, 0.05, n)
    x[jet, eta + rng.integers(-1, 2, n), phi, 0] += rng.uniform(0.0, 0.3, n)
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=x, chunks=(32, 32, 32, 2))
        if with_y:
            f.create_dataset("y", data=np.full(n, float(label), np.float32))


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-egamma-test-")
        egamma_file(self.path("SinglePhotonPt50_IMGCROPS_test.hdf5"), 0, N, 1)
        egamma_file(self.path("SingleElectronPt50_IMGCROPS_test.hdf5"), 1, N, 2)
        self.photons, self.electrons = self.path("photons.h5"), self.path("electrons.h5")
        for src, out in (("SinglePhotonPt50_IMGCROPS_test.hdf5", self.photons),
                         ("SingleElectronPt50_IMGCROPS_test.hdf5", self.electrons)):
            convert("-q", "--channels", "energy,time", "--channel-kinds", "energy,signed", "-o", out, self.path(src))
        self.data = self.path("egamma.txt")
        with open(self.data, "w") as f:
            f.write("photons.h5\nelectrons.h5\n")

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def train(self, out, *extra, expect=0, epochs=2, data=None, task=True):
        return run(MPIRUN + ["-np", "2", self.exe("e2e-train"), "--data", data or self.data, "--out", out,
                             "--epochs", str(epochs), "--batch", "32", "--seed", "5"]
                   + (["--task", "classification"] if task else []) + list(extra), timeout=300, expect=expect)

    def eval(self, ckpt, *extra, expect=0, data=None):
        return run(MPIRUN + ["-np", "2", self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data or self.data]
                   + list(extra), expect=expect)


def convert(*args, expect=0):
    return run([CONVERT] + [str(a) for a in args], expect=expect, timeout=300)


def png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 2000


def refused(p, needles, what):
    msg = err_line(p)
    check(all(n in p.stderr for n in needles) and p.stderr.count("error:") == 1, "%s: %s" % (what, msg))


def t_convert(e):
    with h5py.File(e.path("SingleElectronPt50_IMGCROPS_test.hdf5"), "r") as src, h5py.File(e.electrons, "r") as out:
        x = out["X_jet"]
        dense = x[()] if isinstance(x, h5py.Dataset) else None
        check(dense is None or dense.shape == (N, 2, 32, 32), "X_jet is (N, 2, 32, 32)")
        check(sorted(k for k in out.keys()) == ["X_jet", "y"], "the output holds X_jet and y only: %s" % list(out.keys()))
        check(np.array_equal(out["y"][()], src["y"][()]), "y copied as the label")
        scalars = list(out.attrs.get("scalars", ["?"]))
        check(scalars == [], "no scalars declared (the files have no ieta, iphi): %s" % scalars)
    # the image itself: read back through e2e-data (the C reader), against X transposed
    p = run([e.exe("e2e-data"), "info", e.electrons], expect=0)
    check("classes (label y): %d signal (1), 0 background (0)" % N in p.stdout, "e2e-data info counts the electrons")
    dense_out = e.path("electrons_dense.h5")
    convert("-q", "--store", "dense", "--channels", "energy,time", "--channel-kinds", "energy,signed", "-o", dense_out,
            e.path("SingleElectronPt50_IMGCROPS_test.hdf5"))
    with h5py.File(e.path("SingleElectronPt50_IMGCROPS_test.hdf5"), "r") as src, h5py.File(dense_out, "r") as out:
        check(np.array_equal(out["X_jet"][()], src["X"][()].transpose(0, 3, 1, 2)),
              "X_jet (dense) equals X transposed to channel-first, bit for bit")
    # X alone: --label-value stamps the class; without it the file could train nothing
    egamma_file(e.path("bare.hdf5"), 0, 64, 3, with_y=False)
    convert("-q", "--label-value", "0", "-o", e.path("bare_stamped.h5"), e.path("bare.hdf5"))
    with h5py.File(e.path("bare_stamped.h5"), "r") as f:
        check(f["y"].dtype == np.uint8 and not f["y"][()].any() and "m" not in f,
              "--label-value 0 stamps y = 0 on a file of X alone (no m)")
    p = convert("-o", e.path("bare_out.h5"), e.path("bare.hdf5"), expect=1)
    lines = [ln for ln in p.stderr.splitlines() if "bare.hdf5" in ln and "warning" not in ln]
    check(len(lines) == 1 and "no column for the jet mass" in lines[0] and "--label-value" in lines[0],
          "X without labels nor mass refused: %s" % (lines[-1] if lines else p.stderr[-300:]))
    check(not os.path.exists(e.path("bare_out.h5")), "nothing written")
    p = convert("--label-value", "1", "-o", e.path("twice.h5"), e.path("SingleElectronPt50_IMGCROPS_test.hdf5"),
                expect=1)
    check("has a column 'y' already" in p.stderr, "--label-value over the file's own y refused")


def t_train(e):
    out = e.path("run")
    e.train(out)
    with open(os.path.join(out, "results.json")) as f:
        res = json.load(f)
    check(res["task"] == "classification" and res["best_val_auc"] > 0.8,
          "electron vs photon learns: best val AUC %.3f, test AUC %.3f" % (res["best_val_auc"], res["test_auc"]))
    ck = os.path.join(out, "checkpoints", "best.h5")
    pred, met = e.path("test_pred.h5"), e.path("test_metrics.json")
    e.eval(ck, "--predictions", pred, "--metrics", met)
    with open(met) as f:
        m = json.load(f)
    check(m["auc"] == res["test_auc"] or abs(m["auc"] - res["test_auc"]) < 1e-9,
          "e2e-eval's test AUC %.6f is the run's %.6f" % (m["auc"], res["test_auc"]))
    with h5py.File(pred, "r") as f:
        check(sorted(f.keys()) == ["index", "label", "logit", "score"] and len(f["index"]) == m["jets"],
              "predictions: index, label, score, logit (no m: the files have none), %d jets" % m["jets"])
        check(0 < f["label"][()].sum() < len(f["label"]), "both classes in the test split")
    p = run([os.path.join(TOP, "launch", "plot"), "--predictions", pred], expect=0)
    check(all(png(e.path("test_pred_%s.png" % k)) for k in ("roc", "scores")),
          "launch/plot --predictions: test_pred_roc.png and test_pred_scores.png")
    check("AUC %.6f" % m["auc"] in p.stdout, "the plot's AUC is e2e-eval's")
    # exported for ONNX Runtime (a classifier without masses, --nhwc): its scores on the
    # source file's own channel-last X are e2e-eval's
    epred, onnx_path = e.path("electron_pred.h5"), e.path("egamma.onnx")
    e.eval(ck, "--split", "test", "--predictions", epred, data=e.electrons)
    with h5py.File(epred, "r") as f:
        idx, want = f["index"][()], f["score"][()].astype(np.float64)
    run([os.path.join(TOP, "launch", "e2e-export"), ck, "-o", onnx_path, "--nhwc"], expect=0)
    with h5py.File(e.path("SingleElectronPt50_IMGCROPS_test.hdf5"), "r") as f:
        x = f["X"][()][idx]  # (n, 32, 32, 2) as the E2E file holds it; electrons.h5 keeps its order
    r = relative(predict(onnx_path, x.transpose(0, 3, 1, 2), None, 256, True), want)
    check(r <= 1e-5, "e2e-export --nhwc: ONNX Runtime's scores of %d electrons from the source file's X = "
          "e2e-eval's within %.1e relative" % (len(idx), r))
    for extra, task, needles, what in (
            ([], False, ["photons.h5", "no mass column 'm'", "classifier only"], "a regression without masses"),
            (["--unbias", "weights"], True, ["no mass column 'm'", "--unbias none", "--balance"],
             "mass unbiasing without masses")):
        bad = e.path("bad_%d" % len(extra))
        p = e.train(bad, *extra, task=task, expect=1, epochs=1)
        refused(p, needles, what)
        left = [n for n in ("config.json", "metrics.csv", "results.json", "checkpoints") if os.path.exists(os.path.join(bad, n))
                and (n != "checkpoints" or os.listdir(os.path.join(bad, n)))]
        check(not left, "%s: nothing written (%s)" % (what, left))
    p = e.train(e.path("balanced"), "--balance", epochs=1)
    check(p.returncode == 0, "--balance (class weights) trains without masses")


def t_one_class(e):
    out = e.path("run")
    e.train(out, epochs=1)
    ck = os.path.join(out, "checkpoints", "best.h5")
    pred, met = e.path("photon_pred.h5"), e.path("photon_metrics.json")
    p = e.eval(ck, "--split", "train", "--predictions", pred, "--metrics", met, data=e.photons)
    with open(met) as f:
        m = json.load(f)
    check(m["auc"] is None and m["rejection_30"] is None and m["rejection_50"] is None and m["signal_jets"] == 0,
          "photons alone: AUC and rejections null, 0 signal jets")
    with h5py.File(pred, "r") as f:
        y, x = f["label"][()], f["logit"][()].astype(np.float64)
        check(len(y) == m["jets"] and not y.any(), "the predictions of the %d photons written" % len(y))
    loss = np.mean(np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))))  # BCE of label 0
    check(abs(m["loss"] - loss) < 1e-5 and abs(m["accuracy"] - np.mean(x <= 0)) < 1e-6,
          "loss %.6f and accuracy %.4f are those of the written logits (%.6f, %.4f)" % (m["loss"], m["accuracy"], loss,
                                                                                       np.mean(x <= 0)))
    warns = [ln for ln in p.stderr.splitlines() if "warning:" in ln]
    check(len(warns) == 1 and "photons.h5" in warns[0] and "one class only" in warns[0] and "null" in warns[0],
          "one warning naming the file: %s" % (warns[0] if warns else "(none)"))
    p = run([os.path.join(TOP, "launch", "plot"), "--predictions", pred], expect=0)
    stem = pred[:-3]
    check(os.path.getsize(stem + "_scores.png") > 0 and not os.path.exists(stem + "_roc.png"),
          "launch/plot --predictions on one class: the score plot, no ROC curve")
    with open(stem + "_scores.csv") as f:
        rows = list(csv.DictReader(f))
    check(sum(int(r["background"]) for r in rows) == len(y) and not any(int(r["signal"]) for r in rows),
          "the score histogram holds the %d photons" % len(y))
    check("no ROC curve" in p.stderr and pred in p.stderr, "the plot says why there is no ROC curve")
    p = e.train(e.path("photons_only"), data=e.photons, expect=1, epochs=1)
    refused(p, ["photons.h5", "the training split holds one class only"], "training on photons alone")


def relabelled(e, name, flip):
    """a copy of the electrons with the labels of rows flip set to 0, and the list of both"""
    path = e.path(name + ".h5")
    shutil.copy(e.electrons, path)
    with h5py.File(path, "r+") as f:
        y = f["y"][()]
        y[flip] = 0
        f["y"][...] = y
    lst = e.path(name + ".txt")
    with open(lst, "w") as f:
        f.write("photons.h5\n%s.h5\n" % name)
    return lst


def t_relabel(e):
    out = e.path("run")
    e.train(out, "--stop-after-steps", "5", epochs=2, expect=75)
    other = relabelled(e, "relabelled", [7, 300])
    p = e.train(out, "--resume", "auto", data=other, expect=1, epochs=2)
    refused(p, ["relabelled.txt", "other labels"], "resume on relabelled jets")
    p = e.train(out, "--resume", "auto", epochs=2)
    check("resum" in p.stdout.lower() and os.path.exists(os.path.join(out, "results.json")),
          "resume on the same labels runs to the end")
    ck = os.path.join(out, "checkpoints", "best.h5")
    p = e.eval(ck, data=other)
    check("is not the data" in p.stdout and "other labels" in p.stdout, "e2e-eval notes relabelled data")
    p = e.eval(ck)
    check("is not the data" not in p.stdout and '"training_data": true' in p.stdout, "and not the run's own data")


TESTS = {"convert": t_convert, "train": t_train, "one_class": t_one_class, "relabel": t_relabel}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

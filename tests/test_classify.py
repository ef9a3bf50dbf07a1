#!/usr/bin/env python3
"""End-to-end tests of a classifier (e2e-train --task classification) under real mpirun (2
ranks, CPU), on labelled synthetic jets (e2e-synth --task classification: top against QCD,
3 x 32 x 32). One test per subcommand (ctest runs each separately as classify_<test>):

  learns      the validation AUC rises well above 0.5; the progress line shows it; the run's
              files hold a classifier's columns (metrics.csv/jsonl, results.json, config.json,
              the checkpoint's task); e2e-eval on the test split reproduces results.json's
              test metrics, with 2 ranks and with 1 (exact over the sharded split), and its
              prediction file (index, label, score, logit, m) gives the same AUC, accuracy
              and rejections through scikit-learn; launch/plot draws the run and the ROC
              curve (PNG files written, not empty)
  resume      stopped after 30 steps (exit 75) and resumed == uninterrupted, bitwise, with
              --balance (class weights) and --monitor loss; the resume report names the task
  torch_load  best.h5 loads into the PyTorch reference (tests/reference/resnet15.py) and
              gives e2e-eval's scores (sigmoid of the logit)
  bad_input   labels outside {0, 1} (2, NaN), one class in a split, a missing label column,
              a regression checkpoint evaluated or resumed as a classifier and the reverse:
              exit 1, one message naming the file and the problem, nothing written
  cli         --help, bad values (exit 2), options that need --task classification, a plateau
              mode against --monitor, e2e-synth's and e2e-eval's --task

usage: test_classify.py TEST BUILD_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from test_train_e2e import (MPIRUN, Failure, check, err_line, final_ckpt, run, run_test,  # noqa: E402
                            same_weights)

EPOCH_STEPS = 28  # 1800 training jets / (2 ranks x batch 32)


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-classify-test-")
        self.data = self.path("jets.h5")
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", self.data, "--samples", "2000", "--size", "32",
                      "--channels", "3", "--seed", "11", "--task", "classification"], expect=0)

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def train(self, out, *extra, np_=2, expect=0, epochs=3, data=None, task=True):
        cmd = MPIRUN + ["-np", str(np_), self.exe("e2e-train"), "--data", data or self.data, "--out", out,
                        "--epochs", str(epochs), "--batch", "32", "--seed", "5"] + (["--task", "classification"]
                                                                                  if task else []) + list(extra)
        return run(cmd, timeout=300, expect=expect)

    def eval(self, ckpt, *extra, np_=2, expect=0, data=None):
        return run(MPIRUN + ["-np", str(np_), self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data or self.data]
                   + list(extra), expect=expect)


def rejection(y, x, eff):
    """1/eps_b at eps_s = eff on scikit-learn's ROC curve (dist/class_metrics.h's definition)"""
    from sklearn import metrics
    fpr, tpr, _ = metrics.roc_curve(y, x, drop_intermediate=False)
    k = int(np.argmax(tpr >= eff))
    eb = fpr[k - 1] + (eff - tpr[k - 1]) * (fpr[k] - fpr[k - 1]) / (tpr[k] - tpr[k - 1])
    return float("inf") if eb == 0 else 1.0 / eb


def png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n" and os.path.getsize(path) > 2000


# ---- tests ----

def t_learns(e):
    from sklearn import metrics
    out = e.path("learns")
    p = e.train(out, "--log-every", "10", epochs=6)
    check("classes of the label 'y' (signal 1 / background 0): train" in p.stdout, "the start line counts the classes")
    progress = [ln for ln in p.stdout.splitlines() if "step 10/28" in ln]
    check("val AUC" not in progress[0] and all("val AUC 0." in ln for ln in progress[1:]),
          "the progress line shows the last validation AUC from the second epoch on: %s" % progress[1])
    check("val AUC" in p.stdout and "accuracy" in p.stdout and "rejection" in p.stdout, "each epoch's line: AUC, accuracy, rejection")
    rows = open(os.path.join(out, "metrics.csv")).read().splitlines()
    head = rows[0].split(",")
    check(head[:8] == ["epoch", "lr", "train_loss", "val_loss", "val_auc", "val_accuracy", "val_rejection_30",
                       "val_rejection_50"] and len(rows) == 7, "metrics.csv: a classifier's columns, 6 epochs")
    auc = [float(r.split(",")[4]) for r in rows[1:]]
    print("validation AUC per epoch:", auc)
    check(max(auc) > 0.75, "the classifier learns: best validation AUC %.4f > 0.75 (chance: 0.5 +- 0.06 on these 100 jets)" % max(auc))
    jl = [json.loads(ln) for ln in open(os.path.join(out, "metrics.jsonl"))]
    check([round(j["val_auc"], 6) for j in jl] == auc, "metrics.jsonl holds the same val_auc")
    res = json.load(open(os.path.join(out, "results.json")))
    best = int(np.argmax(auc)) + 1
    check(res["task"] == "classification" and res["best_epoch"] == best and abs(res["best_val_auc"] - max(auc)) < 1e-6,
          "results.json: the best epoch (%d) by validation AUC" % best)
    cfg = json.load(open(os.path.join(out, "config.json")))
    check(cfg["task"] == "classification" and cfg["label"] == "y" and cfg["monitor"] == "auc" and
          cfg["plateau"]["mode"] == "max", "config.json records the task, its label and monitor (plateau mode max)")
    ck = os.path.join(out, "checkpoints", "best.h5")
    with h5py.File(ck, "r") as f:
        a = f.attrs
        check(int(a["version"]) == 4 and a["task"] == b"classification" and a["task_label"] == b"y",
              "the checkpoint records the task and its label")
    pred, mj = e.path("test_pred.h5"), e.path("test_metrics.json")
    p = e.eval(ck, "--split", "test", "--predictions", pred, "--metrics", mj)
    m = json.load(open(mj))
    for k in ("loss", "accuracy", "auc"):
        check(abs(m[k] - res["test_" + k]) < 2e-6, "e2e-eval's test %s %.6f = results.json's" % (k, m[k]))
    m1 = json.loads(e.eval(ck, "--split", "test", np_=1).stdout.strip().splitlines()[-1])
    check(all(m1[k] == m[k] for k in ("loss", "accuracy", "auc", "rejection_30", "rejection_50", "jets")),
          "1 rank gives exactly the 2 ranks' metrics: exact over the sharded split")
    with h5py.File(pred, "r") as f:
        check(sorted(f) == ["index", "label", "logit", "m", "score"] and f.attrs["task"] == b"classification",
              "the prediction file: index, label, score, logit, m")
        y, s, x, ix = f["label"][()], f["score"][()], f["logit"][()], f["index"][()]
    check(len(y) == m["jets"] == 100 and np.all(np.diff(ix) > 0) and y.dtype == np.uint8, "100 test jets by index")
    check(np.allclose(s, 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6), "score = sigmoid(logit)")
    want = {"auc": metrics.roc_auc_score(y, x), "auc of the score": metrics.roc_auc_score(y, s),
            "accuracy": metrics.accuracy_score(y, s > 0.5), "rejection_30": rejection(y, x, 0.3),
            "rejection_50": rejection(y, x, 0.5)}
    for k, v in want.items():
        got = m[k.split(" ")[0]]
        check(abs(got - v) < (1e-9 if "auc" in k else 1e-4 * max(1, v)), "%s %.10g = scikit-learn's %.10g on the "
              "prediction file" % (k, got, v))
    run([os.path.join(TOP, "launch", "plot"), out], expect=0)
    check(png(os.path.join(out, "loss.png")) and png(os.path.join(out, "val_metrics.png")),
          "launch/plot RUNDIR: loss.png, val_metrics.png")
    p = run([os.path.join(TOP, "launch", "plot"), "--predictions", pred], expect=0)
    check(all(png(e.path("test_pred_%s.png" % k)) for k in ("roc", "scores")), "launch/plot --predictions: the ROC "
          "curve and the scores per class")
    check("AUC %.6f" % m["auc"] in p.stdout, "the plot's AUC is e2e-eval's: %s" % p.stdout.splitlines()[0])
    roc = np.loadtxt(e.path("test_pred_roc.csv"), delimiter=",", skiprows=1)
    fpr, tpr, _ = metrics.roc_curve(y, x, drop_intermediate=False)
    check(roc.shape[0] == len(fpr) and np.allclose(roc[:, 1], tpr) and np.allclose(roc[:, 2], fpr),
          "test_pred_roc.csv holds scikit-learn's ROC curve")
    sc = np.loadtxt(e.path("test_pred_scores.csv"), delimiter=",", skiprows=1)
    check(sc[:, 2].sum() == y.sum() and sc[:, 3].sum() == len(y) - y.sum(), "test_pred_scores.csv bins every jet")


def t_resume(e):
    a, b = e.path("uninterrupted"), e.path("stopped")
    opts = ["--balance", "--monitor", "loss"]
    p = e.train(a, *opts)
    check("loss weights" in p.stdout, "--balance: the start line gives the class weights")
    p = e.train(b, "--stop-after-steps", "30", *opts, expect=75)
    check(os.path.exists(os.path.join(b, "checkpoints", "ckpt-0000000030.h5")), "checkpoint at step 30")
    p = e.train(b, "--resume", "auto", *opts)
    check("resumed from" in p.stdout and "the task (classification of the label 'y')" in p.stdout,
          "resumed at epoch 2, step 2; the report names the task")
    same_weights(final_ckpt(a), final_ckpt(b))
    cut = lambda d: [",".join(r.split(",")[:8]) for r in open(os.path.join(d, "metrics.csv")).read().splitlines()]
    check(cut(a) == cut(b), "the same losses, AUC, accuracy and rejections per epoch")
    with h5py.File(os.path.join(a, "checkpoints", "best.h5"), "r") as f:
        check(int(f["data"].attrs["unbias"]) == 2 and f.attrs["task_monitor"] == b"loss",
              "the checkpoint records the class weights and the monitored loss")
    p = e.train(b, "--resume", "auto", epochs=4, task=False)
    check(os.path.exists(os.path.join(b, "results.json")) and "val AUC" in p.stdout,
          "resumed without --task: the checkpoint's task goes on")


def t_torch_load(e):
    import torch
    sys.path.insert(0, os.path.join(HERE, "reference"))
    from resnet15 import ResNet15
    out = e.path("torch")
    e.train(out, epochs=2)
    ck = os.path.join(out, "checkpoints", "best.h5")
    pred = e.path("torch_pred.h5")
    e.eval(ck, "--split", "test", "--predictions", pred)
    with h5py.File(pred, "r") as f:
        index, score = f["index"][()], f["score"][()]
    with h5py.File(ck, "r") as f:
        state = {k: torch.from_numpy(f["model"][k][()]) for k in f["model"]}
        scales = f["data/scales"][()]
        names = [str(s.decode() if isinstance(s, bytes) else s) for s in f["data"].attrs["scalars"]]
        sscale = f["data"].attrs["scalar_scale"][()]
    model = ResNet15(in_channels=3, n_scalars=len(names))
    missing, unexpected = model.load_state_dict(state, strict=False)
    check(not unexpected and all(".shortcut." in k for k in missing), "load_state_dict(strict=False) takes it")
    with h5py.File(e.data, "r") as f:
        x = f["X_jet"][()][index].astype(np.float32) / scales[None, :, None, None]
        sc = np.stack([f[n][()][index] / s for n, s in zip(names, sscale)], 1).astype(np.float32)
    x[x < 1e-5] = 0.0
    x = np.clip(x, 0.0, 1.0).astype(np.float32)
    with torch.no_grad():
        logit = model(torch.from_numpy(x), torch.from_numpy(sc))[:, 0].double()
    ts = torch.sigmoid(logit).numpy()
    err = float(np.max(np.abs(ts - score)))
    check(err < 1e-5, "PyTorch's sigmoid(logit) reproduces e2e-eval's %d test scores (max diff %.2g)" % (len(index), err))


def refused(p, needles, what):
    msg = err_line(p)
    check(all(n in p.stderr for n in needles) and p.stderr.count("error:") == 1, "%s: %s" % (what, msg))


def labelled_copy(e, name, change):
    path = e.path(name)
    shutil.copy(e.data, path)
    with h5py.File(path, "r+") as f:
        change(f)
    return path


def t_bad_input(e):
    def bad_value(v):
        def change(f):
            y = f["y"][()].astype(np.float32)
            del f["y"]
            y[1234] = v
            f["y"] = y
        return change
    cases = [("label 2", labelled_copy(e, "two.h5", bad_value(2)), [], ["two.h5", "row 1234 is 2", "must be 0 or 1"]),
             ("a NaN label", labelled_copy(e, "nan.h5", bad_value(np.nan)), [], ["nan.h5", "row 1234 is nan"]),
             ("one class", labelled_copy(e, "one.h5", lambda f: f["y"].write_direct(np.ones(2000, np.uint8))), [],
              ["one.h5", "the training split holds one class only"]),
             ("a missing label column", e.data, ["--label", "is_top"], ["jets.h5", "no label column 'is_top'"])]
    for what, data, extra, needles in cases:
        out = e.path("bad_" + what.replace(" ", "_"))
        p = e.train(out, *extra, data=data, expect=1, epochs=1)
        refused(p, needles, what)
        left = [n for n in ("config.json", "metrics.csv", "results.json") if os.path.exists(os.path.join(out, n))]
        ck = os.listdir(os.path.join(out, "checkpoints")) if os.path.isdir(os.path.join(out, "checkpoints")) else []
        check(not left and not ck, "%s: nothing written (%s)" % (what, left + ck))
    cls, reg = e.path("cls"), e.path("reg")
    e.train(cls, epochs=1)
    e.train(reg, "--stop-after-steps", "5", task=False, epochs=1, expect=75)
    cls_ck, reg_ck = os.path.join(cls, "checkpoints", "best.h5"), final_ckpt(reg)
    pred = e.path("never.h5")
    p = e.eval(reg_ck, "--task", "classification", "--predictions", pred, expect=1)
    refused(p, [reg_ck, "trained for regression of the jet mass", "not for classification"],
            "a regression checkpoint evaluated as a classifier")
    p = e.eval(cls_ck, "--task", "regression", "--predictions", pred, expect=1)
    refused(p, [cls_ck, "trained for classification of the label 'y', not for regression"],
            "a classifier evaluated as a regression")
    check(not os.path.exists(pred), "nothing written by the refused evaluations")
    p = e.eval(cls_ck, "--predictions", pred, data=labelled_copy(e, "nolabel.h5", lambda f: f.__delitem__("y")), expect=1)
    refused(p, ["nolabel.h5", "no label column 'y'"], "a classifier evaluated on data without labels")
    check(not os.path.exists(pred), "nothing written")
    p = e.train(reg, "--resume", "auto", expect=1, epochs=1)
    refused(p, [reg_ck, "regression of the jet mass", "asks for classification"], "a regression resumed as a classifier")
    p = e.train(cls, "--resume", "auto", "--task", "regression", task=False, expect=1, epochs=2)
    refused(p, ["classification of the label 'y'", "asks for regression"], "a classifier resumed as a regression")
    p = e.train(cls, "--resume", "auto", "--label", "other", expect=1, epochs=2)
    refused(p, ["classification of the label 'y'", "classification of the label 'other'"], "another label on resume")


def t_cli(e):
    p = run([e.exe("e2e-train"), "--help"], expect=0)
    check(all(o in p.stdout for o in ("--task regression|classification", "--label COLUMN", "--balance", "--monitor")),
          "e2e-train --help lists --task, --label, --balance, --monitor")
    for args, needle in ((["--task", "ranking"], "unknown task 'ranking'"), (["--monitor", "f1"], "unknown monitored metric"),
                         (["--balance", "--unbias", "none"], "--balance and --unbias exclude each other")):
        p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", e.path("x")] + args, expect=2)
        check(needle in p.stderr and p.stderr.count(needle) == 1, "%s: exit 2, %s" % (" ".join(args), needle))
    for args, needle in ((["--balance"], "--balance weighs the classes of a classifier"),
                         (["--monitor", "loss"], "--monitor is for --task classification"),
                         (["--task", "classification", "--plateau-mode", "min"], "--plateau-mode min contradicts --monitor auc")):
        p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", e.path("y")] + args, expect=1)
        check(needle in p.stderr, "%s refused: %s" % (" ".join(args), err_line(p)))
    p = run([e.exe("e2e-synth"), "--help"], expect=0)
    check("--task T" in p.stdout and "--overlap F" in p.stdout, "e2e-synth --help: --task, --signal-fraction, --overlap")
    p = run([e.exe("e2e-synth"), "--out", e.path("z.h5"), "--task", "ranking"], expect=2)
    check("--task expects regression or classification" in p.stderr, "e2e-synth --task ranking: exit 2")
    p = run([e.exe("e2e-eval"), "--checkpoint", "a.h5", "--data", e.data, "--task", "ranking"], expect=2)
    check("--task expects regression or classification" in p.stderr, "e2e-eval --task ranking: exit 2")
    with h5py.File(e.data, "r") as f:
        y = f["y"][()]
        check(y.dtype == np.uint8 and 0.4 < y.mean() < 0.6, "e2e-synth --task classification: a uint8 y, about half signal")
    p = run([e.exe("e2e-data"), "info", e.data, "--rows", "10"], expect=0)
    check("classes (label y): %d signal (1), %d background (0)" % (y.sum(), len(y) - y.sum()) in p.stdout,
          "e2e-data info counts the classes")


TESTS = {"learns": t_learns, "resume": t_resume, "torch_load": t_torch_load, "bad_input": t_bad_input, "cli": t_cli}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

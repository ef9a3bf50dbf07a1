#!/usr/bin/env python3
"""Accuracy of e2e-train's classifier against an independent PyTorch run of the same recipe,
over several seeds: does ours reach the same test ROC AUC within run-to-run noise?

The data: labelled synthetic jets (e2e-synth --task classification: top against QCD, a
share --overlap of the QCD jets drawn as top jets, so the best AUC is 1 - overlap / 2).
For each seed s, on the same split (e2e-train's for seed s; PyTorch takes its rows from
e2e-eval's prediction files of each split):

  ours     mpirun -np RANKS e2e-train --task classification --seed s (Adam 1e-3, BCE with
           logits, ReduceLROnPlateau max on the validation AUC, factor 0.5, patience 2,
           global batch RANKS x 32), best.h5 (best validation AUC) on the test split
  PyTorch  tests/reference/resnet15.py with PyTorch's own initialisation (torch.manual_seed(s)),
           its own preprocessing in numpy (scales: the 0.999 quantile of each channel's
           positive pixels over the training split; zero suppression 1e-5; clip to [0, 1];
           scalars iphi / 360, ieta / 170), torch.optim.Adam(lr 1e-3), BCEWithLogitsLoss,
           ReduceLROnPlateau('max', 0.5, 2) on scikit-learn's validation AUC, batch
           RANKS x 32 shuffled each epoch (drop_last), the best epoch's model on the test split

It prints each seed's test AUC on both sides, then the mean and standard deviation of each
and of the paired differences, and whether the means agree within two standard errors of
their difference. Exit 0 when they do (or with --quick, which only checks that both learn:
one seed of a small run is all noise, see the numbers in dist/README.md).

  tests/classify_vs_torch.py --build build                  # 5 seeds, 4000 jets, 10 epochs
  tests/classify_vs_torch.py --build build --quick          # 1 seed, 2000 jets, 6 epochs (ctest)

Needs Debian's python3-torch, python3-sklearn, python3-h5py (launch/install-deps.sh).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]


def sh(cmd, timeout=3600):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (" ".join(cmd[:8]), p.returncode, (p.stdout + p.stderr)[-3000:]))
    return p.stdout


def ours(a, exe, data, seed, work):
    """our test AUC, and the rows of each split (from e2e-eval's prediction files)"""
    run = os.path.join(work, "run_%d" % seed)
    t0 = time.time()
    sh(MPIRUN + ["-np", str(a.ranks), exe("e2e-train"), "--data", data, "--out", run, "--epochs", str(a.epochs),
                 "--batch", "32", "--seed", str(seed), "--task", "classification", "--log-every", "1000"])
    took = time.time() - t0
    res = json.load(open(os.path.join(run, "results.json")))
    if a.verbose:
        for line in open(os.path.join(run, "metrics.csv")).read().splitlines()[1:]:
            v = line.split(",")
            print("    ours  epoch %s: val AUC %.4f, lr %s" % (v[0], float(v[4]), v[1]), flush=True)
    rows = {}
    for split in ("train", "val", "test"):
        pred = os.path.join(work, "pred_%d_%s.h5" % (seed, split))
        sh(MPIRUN + ["-np", str(a.ranks), exe("e2e-eval"), "--checkpoint", os.path.join(run, "checkpoints", "best.h5"),
                     "--data", data, "--split", split, "--predictions", pred])
        with h5py.File(pred, "r") as f:
            rows[split] = f["index"][()]
    return res["test_auc"], res["best_epoch"], rows, took


def preprocess(x, scales):
    x = x / scales[None, :, None, None]
    x[x < 1e-5] = 0.0
    return np.clip(x, 0.0, 1.0).astype(np.float32)


def torch_run(a, data, seed, rows):
    """the same recipe in PyTorch: the test AUC of the best validation epoch"""
    import torch
    from sklearn.metrics import roc_auc_score
    sys.path.insert(0, os.path.join(HERE, "reference"))
    from resnet15 import ResNet15
    torch.set_num_threads(a.threads)
    with h5py.File(data, "r") as f:
        x_all, y_all = f["X_jet"][()].astype(np.float32), f["y"][()].astype(np.float32)
        sc_all = np.stack([f["iphi"][()] / 360.0, f["ieta"][()] / 170.0], 1).astype(np.float32)
    train = x_all[rows["train"]]
    scales = np.array([np.quantile(c[c > 0], 0.999) if np.any(c > 0) else 1.0
                       for c in (train[:, k].ravel() for k in range(train.shape[1]))], np.float32)
    split = {k: (torch.from_numpy(preprocess(x_all[r], scales)), torch.from_numpy(sc_all[r]), torch.from_numpy(y_all[r]))
             for k, r in rows.items()}
    torch.manual_seed(seed)
    model = ResNet15(in_channels=x_all.shape[1], n_scalars=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=0.5, patience=2)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    batch = 32 * a.ranks

    def scores(k):
        model.eval()
        with torch.no_grad():
            out = torch.cat([model(split[k][0][i:i + 256], split[k][1][i:i + 256])[:, 0] for i in range(0, len(split[k][2]), 256)])
        model.train()
        return roc_auc_score(split[k][2].numpy(), out.numpy())

    best, best_test, best_epoch, t0 = -1.0, None, 0, time.time()
    xt, st, yt = split["train"]
    for epoch in range(a.epochs):
        order = torch.randperm(len(yt))
        for i in range(0, len(yt) - batch + 1, batch):
            j = order[i:i + batch]
            opt.zero_grad()
            loss = loss_fn(model(xt[j], st[j])[:, 0], yt[j])
            loss.backward()
            opt.step()
        val = scores("val")
        if a.verbose:
            print("    torch epoch %d: val AUC %.4f, lr %g" % (epoch + 1, val, opt.param_groups[0]["lr"]), flush=True)
        sched.step(val)
        if val > best:
            best, best_test, best_epoch = val, scores("test"), epoch + 1
    return best_test, best_epoch, time.time() - t0, scales


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="the build folder (default build)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--jets", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--overlap", type=float, default=0.2)
    ap.add_argument("--ranks", type=int, default=2, help="e2e-train's ranks (global batch ranks x 32)")
    ap.add_argument("--threads", type=int, default=2, help="PyTorch's threads")
    ap.add_argument("--verbose", action="store_true", help="each epoch's validation AUC on both sides")
    ap.add_argument("--quick", action="store_true", help="1 seed, 2000 jets, 6 epochs: both must learn (ctest)")
    a = ap.parse_args()
    if a.quick:
        a.seeds, a.jets, a.epochs = 1, 2000, 6
    exe = lambda name: os.path.join(os.path.abspath(a.build), "launch", name)  # noqa: E731
    work = tempfile.mkdtemp(prefix="e2e-classify-vs-torch-")
    try:
        data = os.path.join(work, "jets.h5")
        sh(MPIRUN + ["-np", "2", exe("e2e-synth"), "--out", data, "--samples", str(a.jets), "--size", str(a.size),
                     "--channels", str(a.channels), "--seed", "2024", "--task", "classification", "--overlap",
                     str(a.overlap)])
        print("data: %d labelled jets of %d x %d x %d, overlap %g (the best AUC is %.2f); %d epochs, global batch %d"
              % (a.jets, a.channels, a.size, a.size, a.overlap, 1 - a.overlap / 2, a.epochs, 32 * a.ranks))
        print("%6s %12s %12s %10s %10s" % ("seed", "ours AUC", "torch AUC", "ours s", "torch s"))
        got = []
        for seed in range(1, a.seeds + 1):
            o_auc, o_ep, rows, o_s = ours(a, exe, data, seed, work)
            t_auc, t_ep, t_s, _ = torch_run(a, data, seed, rows)
            got.append((o_auc, t_auc))
            print("%6d %8.4f (e%d) %8.4f (e%d) %10.1f %10.1f" % (seed, o_auc, o_ep, t_auc, t_ep, o_s, t_s), flush=True)
        return report(a, np.array(got))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def report(a, got):
    o, t = got[:, 0], got[:, 1]
    d = o - t
    sd = lambda v: float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")  # noqa: E731
    print("test AUC over %d seed%s: ours %.4f +- %.4f, PyTorch %.4f +- %.4f (mean +- standard deviation)"
          % (len(o), "s" if len(o) > 1 else "", o.mean(), sd(o), t.mean(), sd(t)))
    if a.quick:
        ok = o.min() > 0.65 and t.min() > 0.65  # chance: 0.5 +- 0.06 on these 100 test jets
        print("quick: both learn (test AUC > 0.65): %s" % ("yes" if ok else "NO"))
        return 0 if ok else 1
    se = float(np.sqrt(sd(o) ** 2 / len(o) + sd(t) ** 2 / len(t)))
    print("paired difference ours - PyTorch: %.4f +- %.4f; |mean difference| %.4f vs 2 standard errors %.4f: %s"
          % (d.mean(), sd(d), abs(o.mean() - t.mean()), 2 * se,
             "the same within run-to-run noise" if abs(o.mean() - t.mean()) <= 2 * se else "DIFFERENT"))
    return 0 if abs(o.mean() - t.mean()) <= 2 * se else 1


if __name__ == "__main__":
    sys.exit(main())

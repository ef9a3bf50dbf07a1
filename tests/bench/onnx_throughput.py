#!/usr/bin/env python3
"""Benchmark: inference throughput of an exported ResNet-15 in ONNX Runtime (CPU) beside
e2e-eval's, on the quickstart's shape (8 x 125 x 125 jets, 2 scalars), in one run, with
the same number of threads on each side (1 by default).

- the model: e2e-train, 1 rank, 1 epoch on 200 jets (the weights do not change the speed),
  exported with launch/e2e-export (raw inputs: the preprocessing runs in the graph);
- ONNX Runtime: InferenceSession (CPUExecutionProvider, all graph optimisations,
  intra_op_num_threads = THREADS) on raw float32 images held in memory, batch 1 and 256;
  the best of ROUNDS passes over the jets;
- e2e-eval: its whole pipeline (reading the HDF5 file, preprocessing, the forward pass),
  --batch 1 and 256, 1 rank; start-up taken out by timing the training split (90 % of the
  jets) and the test split (5 %) and dividing the difference in jets by the difference
  in time; the best of ROUNDS.

Prints the machine, the exported file's size and a table of jets/s. Runs in the
project's .venv (launch/install-deps.sh).
usage: tests/bench/onnx_throughput.py [--build DIR] [--jets N] [--threads T] [--rounds R]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests"))
from project_venv import use_project_venv  # noqa: E402

use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402


def run(cmd, env):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("onnx_throughput: %s failed (%d):\n%s%s" % (" ".join(cmd[:3]), p.returncode, p.stdout, p.stderr))
    return p


def cpu_name():
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def ort_rate(model, x, s, batch, threads, rounds):
    opt = ort.SessionOptions()
    opt.intra_op_num_threads, opt.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model, opt, providers=["CPUExecutionProvider"])
    n = (len(x) // batch) * batch
    sess.run(None, {"X_jet": x[:batch], "scalars": s[:batch]})  # warm-up
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for i in range(0, n, batch):
            sess.run(None, {"X_jet": x[i:i + batch], "scalars": s[i:i + batch]})
        best = max(best, n / (time.perf_counter() - t0))
    return best


def eval_rate(exe, ckpt, data, batch, threads, rounds, env, tmp):
    times = {}
    for split in ("test", "train"):
        best = None
        for r in range(rounds):
            out = os.path.join(tmp, "m-%s-%d-%d.json" % (split, batch, r))
            t0 = time.perf_counter()
            run([exe, "--checkpoint", ckpt, "--data", data, "--split", split, "--batch", str(batch), "--threads",
                 str(threads), "--metrics", out], env)
            dt = time.perf_counter() - t0
            best = dt if best is None else min(best, dt)
        with open(out) as f:
            times[split] = (json.load(f)["jets"], best)
    (n1, t1), (n2, t2) = times["test"], times["train"]
    return (n2 - n1) / (t2 - t1), n2 / t2


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--build", default=os.environ.get("E2E_BUILD", os.path.join(TOP, "build")))
    a.add_argument("--jets", type=int, default=1200)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--rounds", type=int, default=2)
    o = a.parse_args()
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS=str(o.threads))
    exe = lambda n: os.path.join(o.build, "launch", n)  # noqa: E731
    tmp = tempfile.mkdtemp(prefix="e2e-onnx-bench-")
    try:
        small, data = os.path.join(tmp, "small.h5"), os.path.join(tmp, "jets.h5")
        run([exe("e2e-synth"), "--out", small, "--samples", "200", "--seed", "1"], env)
        run([exe("e2e-synth"), "--out", data, "--samples", str(o.jets), "--seed", "2"], env)
        run([exe("e2e-train"), "--data", small, "--out", os.path.join(tmp, "run"), "--epochs", "1", "--threads",
             str(o.threads)], env)
        ckpt, model = os.path.join(tmp, "run", "checkpoints", "best.h5"), os.path.join(tmp, "model.onnx")
        run([os.path.join(TOP, "launch", "e2e-export"), ckpt, "-o", model], env)
        with h5py.File(data, "r") as f:
            n = min(512, o.jets)
            x, s = f["X_jet"][:n].astype(np.float32), np.stack([f["iphi"][:n], f["ieta"][:n]], 1).astype(np.float32)
        print("machine: %s, %d cores visible; load average %.2f; threads per side: %d" % (
            cpu_name(), os.cpu_count(), os.getloadavg()[0], o.threads))
        print("exported file: %d bytes (%.0f KiB); onnxruntime %s" % (os.path.getsize(model),
                                                                      os.path.getsize(model) / 1024, ort.__version__))
        print("| batch | ONNX Runtime jets/s | e2e-eval jets/s (start-up taken out) | e2e-eval jets/s (whole run) |")
        print("| --- | --- | --- | --- |")
        for batch in (1, 256):
            r_ort = ort_rate(model, x, s, batch, o.threads, o.rounds)
            r_eval, r_whole = eval_rate(exe("e2e-eval"), ckpt, data, batch, o.threads, o.rounds, env, tmp)
            print("| %d | %.1f | %.1f | %.1f |" % (batch, r_ort, r_eval, r_whole), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

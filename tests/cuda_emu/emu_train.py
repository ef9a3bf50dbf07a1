#!/usr/bin/env python3
"""e2e-train and e2e-eval with --device cuda on the CUDA emulation (tests/cuda_emu/README.md),
under real mpirun, on a small sparse dataset with signed channels (8 x 16 x 16, float16
values: the device densifies and preprocesses them). Every process sees one emulated GPU
(E2E_EMU_GPUS=1, as srun --gpus-per-task gives), so two ranks of one node both take GPU 0.
One test per subcommand (ctest runs each separately):

  train_2ranks  2 ranks through the emulated NCCL: the checkpoint matches the CPU run's
                within Adam's bound (every parameter within 2 lr per step; the documented
                tolerance, net/cuda/README.md), the validation MAE per epoch within 0.5%,
                and e2e-eval --device cuda gives the CPU's MAE on the same checkpoint
                (relative 1e-4); bf16 trains too
  resume        2 ranks, cuda: stop after N steps (exit 75) + --resume auto == the
                uninterrupted run, bitwise
  faults        the review's findings at the trainer: one rank makes no NCCL communicator
                (its set-up would fail: the run finishes); an all-reduce that fails
                asynchronously ends every rank with NCCL's message; fp32 with cuDNN
                offering only transforms for conv0, and bf16 whose timed search finds no
                bf16 algorithm, fall back with a warning and finish; a driver older than
                the runtime is named with both versions

  classify      a classifier (--task classification: BCE on the logit, the GPU's kernel) on
                labelled jets, 2 ranks, cuda against the CPU: parameters within Adam's bound,
                the validation AUC per epoch within 0.02; e2e-eval --device cuda gives the
                CPU's AUC and loss on one checkpoint; stop and resume == uninterrupted, bitwise

usage: emu_train.py TEST BUILD_DIR
"""
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import test_train_e2e as base  # noqa: E402  (check, run, tensors, same_weights, run_test)

from test_train_e2e import MPIRUN, check, run  # noqa: E402

LR = 1e-3


class EmuEnv(base.Env):
    """a sparse float16 file of 600 jets, 8 x 16 x 16, dz and d0 signed"""

    def __init__(self, build):  # pylint: disable=super-init-not-called
        import tempfile
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-emu-train-")
        dense, self.data = self.path("dense.h5"), self.path("jets.h5")
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", dense, "--samples", "600", "--size", "16",
                      "--channels", "8", "--seed", "11", "--dtype", "float16"], expect=0)
        rng = np.random.default_rng(3)
        with h5py.File(dense, "r+") as f:
            x = f["X_jet"][()]
            for ch in (1, 2):  # dz, d0: impact parameters, signed
                x[:, ch] *= np.where(rng.random(x[:, ch].shape) < 0.5, -1.0, 1.0).astype(x.dtype)
            f["X_jet"][...] = x
            kinds = ["signed" if ch in (1, 2) else "energy" for ch in range(8)]
            f.attrs["channel_kinds"] = np.array(kinds, dtype=h5py.string_dtype())
        run(MPIRUN + ["-np", "2", self.exe("e2e-data"), "convert", "--layout", "sparse", dense, self.data], expect=0)

    def train(self, out, *extra, np_=2, expect=0, epochs=2, timeout=300, data=None, env=None):
        cmd = MPIRUN + ["-np", str(np_)]
        for k, v in (env or {}).items():
            cmd += ["-x", "%s=%s" % (k, v)]
        cmd += [self.exe("e2e-train"), "--data", data or self.data, "--out", out, "--epochs", str(epochs),
                "--batch", "16", "--seed", "5", "--threads", "1"] + list(extra)
        return run(cmd, timeout=timeout, expect=expect)

    def eval_mae(self, ckpt, device):
        js = self.path("eval_%s.json" % device)
        run(MPIRUN + ["-np", "2", self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", self.data, "--split", "val",
                      "--device", device, "--threads", "1", "--metrics", js], expect=0)
        import json
        with open(js) as f:
            return json.load(f)


def val_mae(run_dir):
    rows = open(os.path.join(run_dir, "metrics.csv")).read().splitlines()
    col = rows[0].split(",").index("val_mae_gev")
    return [float(r.split(",")[col]) for r in rows[1:]]


def steps_done(ckpt):
    with h5py.File(ckpt, "r") as f:
        return int(f.attrs["global_step"])


def t_train_2ranks(e):
    cpu, gpu = e.path("cpu"), e.path("cuda")
    e.train(cpu, "--device", "cpu")
    p = e.train(gpu, "--device", "cuda", "--check-replicas", "5")
    check("2 ranks on cuda" in p.stdout, "2 ranks train on the emulated GPUs (both see one GPU: local rank 1 -> GPU 0)")
    a, b = base.final_ckpt(cpu), base.final_ckpt(gpu)
    ta, aa = base.tensors(a)
    tb, ab = base.tensors(b)
    check(aa == ab and sorted(ta) == sorted(tb), "same position and tensors: %s" % aa)
    steps = steps_done(b)
    worst = max(float(np.max(np.abs(ta[k].astype(np.float64) - tb[k]))) for k in ta if k.startswith("model/"))
    check(worst <= 2 * LR * steps, "every parameter within Adam's bound of the CPU's: max |cuda - cpu| %.3g <= "
          "2 lr x %d steps" % (worst, steps))
    mc, mg = val_mae(cpu), val_mae(gpu)
    check(all(abs(x - y) <= 5e-3 * x for x, y in zip(mc, mg)), "validation MAE per epoch: cpu %s, cuda %s" % (mc, mg))
    best = os.path.join(gpu, "checkpoints", "best.h5")
    ec, eg = e.eval_mae(best, "cpu"), e.eval_mae(best, "cuda")
    rel = abs(eg["mae_gev"] - ec["mae_gev"]) / ec["mae_gev"]
    check(rel < 1e-4, "e2e-eval on one checkpoint: MAE cuda %.5f, cpu %.5f GeV (relative %.1e)"
          % (eg["mae_gev"], ec["mae_gev"], rel))
    p = e.train(e.path("bf16"), "--device", "cuda", "--precision", "bf16", epochs=1)
    check("done" in p.stdout, "bf16 trains through the emulated NCCL")


def t_resume(e):
    a, b = e.path("uninterrupted"), e.path("stopped")
    e.train(a, "--device", "cuda")
    p = e.train(b, "--device", "cuda", "--stop-after-steps", "11", expect=75)
    check("exiting with 75" in p.stdout, "stop announced with the requeue code")
    p = e.train(b, "--device", "cuda", "--resume", "auto")
    check("resumed from" in p.stdout, "resumed")
    base.same_weights(base.final_ckpt(a), base.final_ckpt(b))


def t_faults(e):
    p = e.train(e.path("one"), "--device", "cuda", np_=1, epochs=1, env={"E2E_EMU_NCCL_FAIL": "init"})
    check("done" in p.stdout, "one rank, an NCCL set-up that would fail: none is made, the run finishes")
    p = e.train(e.path("nccl"), "--device", "cuda", epochs=1, expect=1, env={"E2E_EMU_NCCL_FAIL": "allreduce:3"})
    check("NCCL all-reduce failed" in p.stderr and "remote process exited" in p.stderr,
          "an all-reduce that fails asynchronously ends the run with NCCL's message: %s" % base.err_line(p))
    p = e.train(e.path("fp32"), "--device", "cuda", epochs=1, env={"E2E_EMU_CUDNN": "in_c=8:transform"})
    check("no algorithm that sums plain products" in p.stderr and "WINOGRAD" in p.stderr and "FFT" in p.stderr,
          "fp32: conv0 with only transforms offered runs on one, with the candidates listed")
    p = e.train(e.path("bf16"), "--device", "cuda", "--precision", "bf16", epochs=1,
                env={"E2E_EMU_CUDNN": "bf16,find:none"})
    check("no bf16 algorithm ran" in p.stderr and "done" in p.stdout,
          "bf16: the timed search finds no bf16 algorithm: float operands, the run finishes")
    p = e.train(e.path("driver"), "--device", "cuda", epochs=1, expect=1, env={"E2E_EMU_DRIVER": "12040"})
    check("12.4" in p.stderr and "13.0" in p.stderr and "driver" in p.stderr,
          "a driver older than the runtime, both versions named: %s" % base.err_line(p))


def column(run_dir, name):
    rows = open(os.path.join(run_dir, "metrics.csv")).read().splitlines()
    col = rows[0].split(",").index(name)
    return [float(r.split(",")[col]) for r in rows[1:]]


def eval_json(e, ckpt, data, device):
    import json
    js = e.path("cls_eval_%s.json" % device)
    run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data, "--split", "val",
                  "--device", device, "--threads", "1", "--metrics", js], expect=0)
    with open(js) as f:
        return json.load(f)


def t_classify(e):
    dense, data = e.path("labelled_dense.h5"), e.path("labelled.h5")
    run(MPIRUN + ["-np", "2", e.exe("e2e-synth"), "--out", dense, "--samples", "800", "--size", "16", "--channels", "8",
                  "--seed", "4", "--dtype", "float16", "--task", "classification"], expect=0)
    run(MPIRUN + ["-np", "2", e.exe("e2e-data"), "convert", "--layout", "sparse", dense, data], expect=0)
    cpu, gpu = e.path("cls_cpu"), e.path("cls_cuda")
    e.train(cpu, "--device", "cpu", "--task", "classification", data=data)
    p = e.train(gpu, "--device", "cuda", "--task", "classification", data=data)
    check("2 ranks on cuda" in p.stdout and "val AUC" in p.stdout, "a classifier trains on the emulated GPUs")
    ta, aa = base.tensors(base.final_ckpt(cpu))
    tb, ab = base.tensors(base.final_ckpt(gpu))
    worst = max(float(np.max(np.abs(ta[k].astype(np.float64) - tb[k]))) for k in ta if k.startswith("model/"))
    steps = steps_done(base.final_ckpt(gpu))
    check(aa == ab and worst <= 2 * LR * steps, "every parameter within Adam's bound of the CPU's: %.3g <= 2 lr x %d"
          % (worst, steps))
    ac, ag = column(cpu, "val_auc"), column(gpu, "val_auc")
    check(all(abs(x - y) <= 0.02 for x, y in zip(ac, ag)), "validation AUC per epoch: cpu %s, cuda %s" % (ac, ag))
    best = os.path.join(gpu, "checkpoints", "best.h5")
    ec, eg = (eval_json(e, best, data, d) for d in ("cpu", "cuda"))
    check(abs(eg["auc"] - ec["auc"]) < 1e-6 and abs(eg["loss"] - ec["loss"]) < 1e-4 * ec["loss"],
          "e2e-eval on one checkpoint: AUC cuda %.6f, cpu %.6f; loss %.6f, %.6f" % (eg["auc"], ec["auc"], eg["loss"],
                                                                                  ec["loss"]))
    stopped = e.path("cls_stopped")
    e.train(stopped, "--device", "cuda", "--task", "classification", "--stop-after-steps", "9", data=data, expect=75)
    e.train(stopped, "--device", "cuda", "--resume", "auto", data=data)
    base.same_weights(base.final_ckpt(gpu), base.final_ckpt(stopped))


TESTS = {"train_2ranks": t_train_2ranks, "resume": t_resume, "faults": t_faults, "classify": t_classify}

if __name__ == "__main__":
    sys.exit(base.run_test(TESTS, __doc__, EmuEnv))

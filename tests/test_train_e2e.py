#!/usr/bin/env python3
"""End-to-end tests of e2e-train and e2e-eval under real mpirun (2 ranks, CPU), on a small
dataset made by e2e-synth. One test per subcommand (ctest runs each separately):

  learns          validation MAE falls well below the constant (median) predictor's
  resume          stop after N steps (exit 75) + --resume auto == an uninterrupted run, bitwise
  resume_v1       the same from a version-1 checkpoint (made from the stop's version-2 one)
                  in the warm-up of a scaled learning rate: the rates version 1 did not
                  store come from the command line
  sigusr1         SIGUSR1 to one rank mid-epoch -> checkpoint, exit 75 -> resume -> same weights
  killed          SIGKILL of one rank: mpirun and the other rank end non-zero within 60 s
  bad_checkpoint  corrupt, truncated, foreign checkpoints refused with one clear message
  bad_data        missing file, NaN pixels in a validation row: one message, all ranks exit 1
  nan_loss        a diverging run stops with a non-finite loss message (or skips steps)
  other_ranks     a 2-rank checkpoint resumes on 1 rank and finishes
  torch_load      the documented h5py + torch snippet loads best.h5 into the PyTorch model and
                  reproduces e2e-eval's predictions, on the synthetic file and on a copy whose
                  scalars are pt, iphi and whose first channel is signed
  inputs          a copy without scalars (no ieta, iphi, pt) trains one epoch on 2 ranks into a
                  model without scalars, its 3 negative masses warned about once; e2e-eval and
                  --resume refuse a dataset of other scalars, naming both files and both inputs
  cli             --help, bad options, plot
  kernel_plan     ranks whose CPU engine records differ run rank 0's engines: the weights
                  equal a run where every rank has rank 0's record
  bf16            --precision bf16 on the CPU: refused on every rank where the CPU has no bf16
                  instructions (ONEDNN_MAX_CPU_ISA=AVX512_CORE makes this one such a CPU); where
                  it has them, a 2-rank bf16 run learns, differs from fp32, and a stop + resume
                  equals the uninterrupted bf16 run bitwise (skipped without bf16 instructions)

usage: test_train_e2e.py TEST BUILD_DIR
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]
EPOCH_STEPS = 28  # 1800 training jets / (2 ranks x batch 32)


class Failure(Exception):
    pass


SKIP = 77  # ctest's SKIP_RETURN_CODE


class Skip(Exception):
    """a test this machine cannot run (run_test exits SKIP)"""


def check(cond, msg):
    if not cond:
        raise Failure(msg)
    print("ok:", msg)


def run(cmd, timeout=240, expect=None):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    if expect is not None and p.returncode != expect:
        print(p.stdout[-4000:], p.stderr[-4000:], sep="\n")
        raise Failure("%s exited %d, expected %d" % (" ".join(cmd[:6]), p.returncode, expect))
    return p


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-train-test-")
        self.data = os.path.join(self.tmp, "jets.h5")
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", self.data, "--samples", "2000",
                      "--size", "32", "--channels", "3", "--seed", "11"], expect=0)

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def train(self, out, *extra, np_=2, expect=0, epochs=2, timeout=240, data=None, mpirun_extra=()):
        cmd = MPIRUN + list(mpirun_extra) + ["-np", str(np_), self.exe("e2e-train"), "--data", data or self.data, "--out", out,
                        "--epochs", str(epochs), "--batch", "32", "--seed", "5"] + list(extra)
        return run(cmd, timeout=timeout, expect=expect)

    def path(self, name):
        return os.path.join(self.tmp, name)


def jet_images(f):
    """X_jet of the open h5py file f as one dense (N, C, H, W) array, whichever layout it is
    stored in (data/format/FORMAT.md: a dataset, or the sparse group of offsets, counts, pos, value)"""
    x = f["X_jet"]
    if isinstance(x, h5py.Dataset):
        return x[()]
    n, c, h, w = [int(v) for v in x.attrs["shape"]]
    off, cnt, pos, val = x["offsets"][()], x["counts"][()], x["pos"][()], x["value"][()]
    out = np.zeros((n, c, h * w), val.dtype)
    for i in range(n):
        e = int(off[i])
        for k in range(c):
            m = int(cnt[i, k])
            out[i, k, pos[e:e + m]] = val[e:e + m]
            e += m
    return out.reshape(n, c, h, w)


def err_line(p):
    """our message (mpirun adds its own banner around it)"""
    lines = [l for l in p.stderr.splitlines() if "error:" in l]
    return lines[-1] if lines else "(no message)"


def final_ckpt(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    names = sorted(n for n in os.listdir(d) if n.startswith("ckpt-"))
    return os.path.join(d, names[-1])


def tensors(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and (name.startswith("model/") or name.startswith("optimizer/")):
                out[name] = obj[()]
        f.visititems(visit)
        attrs = {k: f.attrs[k] for k in ("global_step", "epoch", "adam_step")}
    return out, attrs


def same_weights(a, b):
    ta, aa = tensors(a)
    tb, ab = tensors(b)
    check(sorted(ta) == sorted(tb) and len(ta) > 60, "checkpoints hold the same %d tensors" % len(ta))
    check(aa == ab, "same position: %s" % aa)
    diff = [k for k in ta if ta[k].tobytes() != tb[k].tobytes()]
    check(not diff, "parameters and moments bitwise equal (differing: %s)" % diff[:3])


def metric_rows(run_dir):
    rows = open(os.path.join(run_dir, "metrics.csv")).read().splitlines()
    # drop the timing columns: epoch,lr,train_loss,val_loss,val_mae,val_mre are compared
    return [",".join(r.split(",")[:6]) for r in rows]


# ---- tests ----

def t_learns(e):
    out = e.path("learns")
    p = e.train(out, "--log-every", "7", "--check-replicas", "10", epochs=8)
    check("samples/s" in p.stdout and "ETA" in p.stdout, "rank 0 prints progress with samples/s and ETA")
    check(p.stdout.count("epoch 1/8 done") == 1, "one progress report per epoch (rank 0 only)")
    for f in ("config.json", "metrics.csv", "metrics.jsonl", "results.json", "checkpoints/best.h5"):
        check(os.path.exists(os.path.join(out, f)), "run folder has %s" % f)
    rows = open(os.path.join(out, "metrics.csv")).read().splitlines()
    check(len(rows) == 9, "metrics.csv has a header and 8 epochs")
    col = rows[0].split(",").index("allreduce_frac")
    check(all(float(r.split(",")[col]) > 0 for r in rows[1:]), "2 ranks: the all-reduce share is measured")
    mae = [float(r.split(",")[4]) for r in rows[1:]]
    # the constant predictor with the lowest MAE is the median: take the median of the whole
    # file's masses and its MAE on the validation jets (from e2e-eval's predictions)
    pred = e.path("val_pred.h5")
    run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", os.path.join(out, "checkpoints/best.h5"),
                  "--data", e.data, "--split", "val", "--predictions", pred], expect=0)
    with h5py.File(e.data, "r") as f:
        median = float(np.median(f["m"][()]))
    with h5py.File(pred, "r") as f:
        m_true, m_pred = f["m_true"][()], f["m_pred"][()]
    baseline = float(np.mean(np.abs(m_true - median)))
    best = min(mae)
    print("validation MAE per epoch:", mae, "constant-median baseline: %.2f GeV" % baseline)
    check(best < 0.6 * baseline, "best validation MAE %.2f GeV < 0.6 x the median predictor's %.2f GeV"
          % (best, baseline))
    check(abs(float(np.mean(np.abs(m_pred - m_true))) - best) < 0.05,
          "e2e-eval on best.h5 reproduces the best validation MAE (%.3f)" % best)


def t_resume(e):
    a, b = e.path("uninterrupted"), e.path("stopped")
    e.train(a)
    p = e.train(b, "--stop-after-steps", "17", expect=75)
    check("exiting with 75" in p.stdout, "stop announced with the requeue code")
    check(os.path.exists(os.path.join(b, "checkpoints", "ckpt-0000000017.h5")), "checkpoint at step 17")
    p = e.train(b, "--resume", "auto")
    check("resumed from" in p.stdout and "step 17" in p.stdout, "resumed at epoch 1, step 17")
    same_weights(final_ckpt(a), final_ckpt(b))
    check(metric_rows(a) == metric_rows(b), "the same losses and metrics per epoch")
    # a second stop in the second epoch, then resume again
    c = e.path("stopped_twice")
    e.train(c, "--stop-after-steps", "5", expect=75)
    e.train(c, "--resume", "auto", "--stop-after-steps", "30", expect=75)
    e.train(c, "--resume", "auto")
    same_weights(final_ckpt(a), final_ckpt(c))


def to_version1(path):
    """rewrites a version-4 checkpoint's attributes as version 1 wrote them: the plateau's
    rate as "lr", Adam's rate as "adam_lr", no base, scaled or warm-up rate, no record of the
    model's inputs (which were then always iphi / 360, ieta / 170, energy-like channels), no
    task (then always the regression)"""
    with h5py.File(path, "r+") as f:
        a = f.attrs
        check(int(a["version"]) == 4 and a["task"] in (b"regression", "regression"), "the trainer writes version 4, a regression")
        del a["task"]
        for k in ("scalars", "scalar_scale", "channel_kinds"):
            del f["data"].attrs[k]
        plateau = float(a["lr_plateau"])
        for k in ("lr_base", "lr_scaled", "lr_warmup_steps", "lr_plateau"):
            del a[k]
        a["lr"] = np.float64(plateau)
        a["adam_lr"] = np.float32(plateau)
        a["version"] = np.int32(1)


def t_resume_v1(e):
    opts = ["--lr-scaling", "linear", "--warmup-steps", "40"]
    a, b = e.path("warm"), e.path("warm_v1")
    e.train(a, *opts)
    e.train(b, "--stop-after-steps", "10", *opts, expect=75)
    to_version1(os.path.join(b, "checkpoints", "ckpt-0000000010.h5"))
    p = e.train(b, "--resume", "auto", *opts)
    check("resumed from" in p.stdout and "step 10" in p.stdout, "resumed from the version-1 checkpoint")
    same_weights(final_ckpt(a), final_ckpt(b))
    check(metric_rows(a) == metric_rows(b), "the same rates, losses and metrics per epoch")


def state(pid):
    try:
        return open("/proc/%d/stat" % pid).read().split(")")[-1].split()[0]
    except OSError:
        return "gone"


def alive(pid):
    return state(pid) not in ("gone", "Z", "X")


def rank_pids(mpirun_pid):
    out = subprocess.run(["pgrep", "-P", str(mpirun_pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def start_training(e, out, log, *extra, epochs=2):
    cmd = MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", out, "--epochs",
                    str(epochs), "--batch", "32", "--seed", "5", "--log-every", "1"] + list(extra)
    f = open(log, "w")
    return subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT), f


def wait_for_step(log, step, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout and proc.poll() is None:
        m = re.findall(r"epoch (\d+)/\d+  step (\d+)/", open(log).read())
        if m and (int(m[-1][0]) - 1) * EPOCH_STEPS + int(m[-1][1]) >= step:
            return True
        time.sleep(0.02)
    return False


def t_sigusr1(e):
    a, b = e.path("uninterrupted"), e.path("signalled")
    if not os.path.exists(os.path.join(a, "results.json")):
        e.train(a)
    log = e.path("signalled.log")
    proc, f = start_training(e, b, log)
    check(wait_for_step(log, 8, proc), "training reached step 8")
    pids = rank_pids(proc.pid)
    check(len(pids) == 2, "two rank processes under mpirun: %s" % pids)
    os.kill(pids[1], signal.SIGUSR1)  # one rank only: the other learns it at the agreement point
    code = proc.wait(timeout=120)
    f.close()
    text = open(log).read()
    check(code == 75, "mpirun exits 75 after SIGUSR1 to one rank (got %d)" % code)
    m = re.search(r"checkpoint written at epoch (\d+), step (\d+)", text)
    check(m is not None, "the stop wrote a checkpoint mid-epoch: %s" % (m.group(0) if m else text[-500:]))
    e.train(b, "--resume", "auto")
    same_weights(final_ckpt(a), final_ckpt(b))


def t_killed(e):
    out, log = e.path("killed"), e.path("killed.log")
    proc, f = start_training(e, out, log, epochs=50)
    check(wait_for_step(log, 5, proc), "training started")
    pids = rank_pids(proc.pid)
    os.kill(pids[1], signal.SIGKILL)
    t0 = time.time()
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise Failure("mpirun still running 60 s after a rank was killed")
    f.close()
    dt = time.time() - t0
    check(code != 0, "mpirun exits non-zero (%d) %.1f s after one rank's SIGKILL" % (code, dt))
    left = []
    for _ in range(50):  # mpirun may take a moment to reap its children
        left = [p for p in pids if alive(p)]
        if not left:
            break
        time.sleep(0.1)
    check(not left, "no rank process is left behind (%s)" % [(p, state(p)) for p in left])


def t_bad_checkpoint(e):
    good = e.path("uninterrupted")
    if not os.path.exists(os.path.join(good, "results.json")):
        e.train(good)
    ck = final_ckpt(good)
    size = os.path.getsize(ck)
    cases = {}
    cases["truncated"] = e.path("truncated.h5")
    with open(ck, "rb") as src, open(cases["truncated"], "wb") as dst:
        dst.write(src.read(size // 2))
    cases["corrupt"] = e.path("corrupt.h5")
    shutil.copy(ck, cases["corrupt"])
    with h5py.File(cases["corrupt"], "r+") as f:
        w = f["model/fc.weight"]
        v = w[()]
        v[0, 0] += 1.0
        w[...] = v
    cases["foreign"] = e.path("foreign.h5")
    with h5py.File(cases["foreign"], "w") as f:
        f["model/fc.weight"] = np.zeros((1, 34), np.float32)
    cases["missing"] = e.path("nonexistent.h5")
    expect = {"truncated": "truncated", "corrupt": "corrupt", "foreign": "not an e2e-ddp checkpoint",
              "missing": "cannot read"}
    for kind, path in cases.items():
        t0 = time.time()
        p = e.train(e.path("resume_" + kind), "--resume", path, expect=1, timeout=60)
        err = p.stderr
        check(path in err and expect[kind] in err, "%s checkpoint refused naming the file: %s"
              % (kind, err_line(p)))
        check(err.count("e2e-train: error:") == 1, "%s: the message is printed once" % kind)
        check(time.time() - t0 < 60, "%s: no hang" % kind)
    # another model shape: an 8-channel dataset resumed from the 3-channel checkpoint
    other = e.path("jets8.h5")
    run(MPIRUN + ["-np", "2", e.exe("e2e-synth"), "--out", other, "--samples", "500", "--size", "32",
                  "--channels", "8", "--seed", "1"], expect=0)
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", other, "--out", e.path("shape"),
                      "--resume", ck, "--epochs", "1"], expect=1, timeout=60)
    check("has 8 channels" in p.stderr or "another model shape" in p.stderr,
          "a checkpoint of another model shape is refused: %s" % err_line(p))


def t_bad_data(e):
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.path("absent.h5"), "--out",
                      e.path("absent_run"), "--epochs", "1"], expect=1, timeout=60)
    check("absent.h5" in p.stderr and p.stderr.count("error") == 1,
          "a missing dataset: one message naming it: %s" % err_line(p))
    # NaN pixels in one validation row: only the rank that reads it during validation sees
    # it, and every rank must leave together with its message
    good = e.path("uninterrupted")
    if not os.path.exists(os.path.join(good, "results.json")):
        e.train(good)
    pred = e.path("val_rows.h5")
    run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", os.path.join(good, "checkpoints/best.h5"),
                  "--data", e.data, "--split", "val", "--predictions", pred], expect=0)
    with h5py.File(pred, "r") as f:
        rows = f["index"][()]
    bad = e.path("nan_val.h5")
    shutil.copy(e.data, bad)
    row = int(rows[-1])  # the last validation row: read by the last rank
    with h5py.File(bad, "r+") as f:
        x = f["X_jet"]
        img = x[row]
        img[0, 5, 5] = np.nan
        x[row] = img
    t0 = time.time()
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", bad, "--out", e.path("nan_run"),
                      "--epochs", "1", "--batch", "32"], expect=1, timeout=90)
    check("nan_val.h5" in p.stderr and ("NaN" in p.stderr or "non-finite" in p.stderr),
          "NaN in a validation row: %s" % err_line(p))
    check(p.stderr.count("e2e-train: error:") == 1, "the message is printed once")
    check(time.time() - t0 < 90, "no hang")


def t_nan_loss(e):
    p = e.train(e.path("diverge"), "--lr", "1e30", expect=1, epochs=1, timeout=90)
    check("non-finite loss" in p.stderr, "a diverging run stops: %s" % err_line(p))
    p = e.train(e.path("diverge_skip"), "--lr", "1e30", "--nan-policy", "skip", expect=1, epochs=1,
                timeout=90)
    check("skipped step" in p.stdout, "--nan-policy skip skips the non-finite steps and says so")


def t_other_ranks(e):
    out = e.path("two_then_one")
    e.train(out, "--stop-after-steps", "10", expect=75)
    p = e.train(out, "--resume", "auto", np_=1)
    check("now 1 x 32" in p.stdout, "the rank change is reported: %s" %
          [l for l in p.stdout.splitlines() if "ranks x batch" in l])
    check(os.path.exists(os.path.join(out, "results.json")), "the resumed 1-rank run finished")
    rows = open(os.path.join(out, "metrics.csv")).read().splitlines()
    check(len(rows) == 3, "two epochs in metrics.csv")
    col = rows[0].split(",").index("allreduce_frac")
    fracs = [float(r.split(",")[col]) for r in rows[1:]]
    check(fracs == [0.0, 0.0], "epochs trained on 1 rank have no all-reduce, by definition: %s" % fracs)


def torch_predict(ckpt, data, index):
    """the snippet of dist/README.md ("Loading a checkpoint into PyTorch"): the model from
    the checkpoint, the jets `index` of the data file preprocessed as the reader does,
    predicted masses in GeV; and the keys load_state_dict left out"""
    import torch
    sys.path.insert(0, os.path.join(HERE, "reference"))
    from resnet15 import ResNet15
    with h5py.File(ckpt, "r") as f:
        state = {k: torch.from_numpy(f["model"][k][()]) for k in f["model"]}
        channels = int(f.attrs["in_channels"])
        scales = f["data/scales"][()]
        inputs = f["data"].attrs  # the dataset's scalars, their scales, the channel kinds
        names = [str(s) for s in inputs["scalars"]]
        scalar_scale = inputs["scalar_scale"][()]
        signed = np.array([str(k) == "signed" for k in inputs["channel_kinds"]])[None, :, None, None]
    model = ResNet15(in_channels=channels, n_scalars=len(names))
    missing, unexpected = model.load_state_dict(state, strict=False)
    with h5py.File(data, "r") as f:
        x = f["X_jet"][()][index].astype(np.float32)
        sc = np.stack([f[n][()][index] / s for n, s in zip(names, scalar_scale)] or [np.zeros((len(index), 0))], 1)
    # the reader's preprocessing: x / scale; below 1e-5 (|x| for a signed channel) -> 0;
    # clipped to [0, 1] (energy-like) or [-1, 1] (signed)
    x = x / scales[None, :, None, None]
    x[np.where(signed, np.abs(x), x) < 1e-5] = 0.0
    x = np.clip(x, np.where(signed, -1.0, 0.0), 1.0).astype(np.float32)
    sc = sc.reshape(len(index), len(names)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(x), torch.from_numpy(sc))[:, 0].numpy() * 500.0
    return out, missing, unexpected


def other_inputs(src, dst):
    """a copy of the synthetic file whose scalars are pt / 1000, iphi / 360 and whose first
    channel is signed (its pixels' signs flipped at random, as impact parameters)"""
    shutil.copy(src, dst)
    rng = np.random.default_rng(4)
    with h5py.File(dst, "r+") as f:
        x = f["X_jet"][()]
        x[:, 0] *= np.where(rng.random(x[:, 0].shape) < 0.5, -1.0, 1.0).astype(x.dtype)
        f["X_jet"][...] = x
        f.attrs["channel_kinds"] = np.array(["signed", "energy", "energy"], dtype=h5py.string_dtype())
        f.attrs["scalars"] = np.array(["pt", "iphi"], dtype=h5py.string_dtype())
        f.attrs["scalar_scale"] = np.array([1000.0, 360.0])


def t_torch_load(e):
    good = e.path("uninterrupted")
    if not os.path.exists(os.path.join(good, "results.json")):
        e.train(good)
    other = e.path("other_inputs.h5")
    other_inputs(e.data, other)
    e.train(e.path("other_run"), data=other, epochs=1)
    for run_dir, data in ((good, e.data), (e.path("other_run"), other)):
        best = os.path.join(run_dir, "checkpoints", "best.h5")
        pred = e.path("test_pred.h5")
        run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", best, "--data", data,
                      "--split", "test", "--predictions", pred], expect=0)
        with h5py.File(pred, "r") as f:
            index, m_pred = f["index"][()], f["m_pred"][()]
        out, missing, unexpected = torch_predict(best, data, index)
        name = os.path.basename(data)
        check(not unexpected and all(".shortcut." in k and not k.startswith("layer2") for k in missing),
              "%s: load_state_dict(strict=False) leaves only the unused identity shortcuts out" % name)
        err = np.max(np.abs(out - m_pred)) / np.max(np.abs(m_pred))
        check(err < 1e-4, "%s: PyTorch reproduces e2e-eval's %d test predictions (max rel diff %.2g)"
              % (name, len(index), err))
    with h5py.File(other, "r") as f:
        check(f["X_jet"][:, 0].min() < 0, "the signed channel holds negative pixels")


def t_inputs(e):
    none = e.path("no_scalars.h5")
    shutil.copy(e.data, none)
    with h5py.File(none, "r+") as f:
        for k in ("ieta", "iphi", "pt"):
            del f[k]
        f.attrs["scalars"] = np.array([], dtype=h5py.string_dtype())
        f.attrs["scalar_scale"] = np.array([], dtype=np.float64)
        m = f["m"][()]
        m[:3] = [-1.0, -2.0, -3.0]
        f["m"][...] = m
    out = e.path("no_scalars_run")
    p = e.train(out, data=none, epochs=1)
    check(os.path.exists(os.path.join(out, "results.json")), "one epoch on 2 ranks on a file without scalars")
    warned = [ln for ln in (p.stdout + p.stderr).splitlines() if "warning:" in ln and "negative mass" in ln]
    check(len(warned) == 1 and "no_scalars.h5: 3 of 2000 jets have a negative mass" in warned[0],
          "the negative masses warned about once, naming the file: %s" % warned)
    best = os.path.join(out, "checkpoints", "best.h5")
    with h5py.File(best, "r") as f:
        check(int(f.attrs["n_scalars"]) == 0 and f["model/fc.weight"].shape == (1, 32) and len(f["data"].attrs["scalars"]) == 0,
              "a model without scalars, its checkpoint records none")
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", best, "--data", e.data], expect=1)
    msg = err_line(p)
    check(best in msg and "jets.h5" in msg and "scalars none" in msg and "scalars iphi/360, ieta/170" in msg and
          p.stderr.count("error:") == 1, "e2e-eval refuses a dataset of other scalars, naming both: %s" % msg)
    p = e.train(out, "--resume", "auto", epochs=2, expect=1)
    msg = err_line(p)
    check("jets.h5" in msg and "scalars none" in msg and "scalars iphi/360, ieta/170" in msg,
          "--resume refuses a dataset of other scalars: %s" % msg)


def t_cli(e):
    p = run([e.exe("e2e-train"), "--help"], expect=0)
    check("--resume auto|PATH|none" in p.stdout and "75" in p.stdout, "--help lists options and exit codes")
    p = run(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--epochs", "two"], expect=2)
    check("--epochs expects an integer" in p.stderr and p.stderr.count("expects") == 1,
          "a bad number is named once: %s" % p.stderr.strip())
    p = run([e.exe("e2e-train"), "--data", e.data], expect=1)
    check("--out" in p.stderr, "a missing run folder is named: %s" % p.stderr.strip())
    good = e.path("uninterrupted")
    if not os.path.exists(os.path.join(good, "results.json")):
        e.train(good)
    run([os.path.join(TOP, "launch", "plot"), good], expect=0)
    for png in ("loss.png", "val_metrics.png"):
        with open(os.path.join(good, png), "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "launch/plot wrote %s" % png)


def other_engines(src, dst):
    """the record src with every pass on one engine: the direct kernels where src runs
    oneDNN anywhere, else oneDNN"""
    text = open(src).read()
    to = "direct" if "=onednn" in text else "onednn"
    open(dst, "w").write(re.sub(r"=(onednn|direct)\b", "=" + to, text))


def t_kernel_plan(e):
    p0, p1 = e.path("plan0.txt"), e.path("plan1.txt")
    args = ["--data", e.data, "--epochs", "1", "--batch", "32", "--seed", "5"]
    p = run(MPIRUN + ["-np", "2", "-x", "E2E_CPU_CONV_PLAN=" + p0, e.exe("e2e-train"), "--out",
                      e.path("a")] + args, expect=0)
    check("convolution engines auto" in p.stdout, "the start line names the convolution engines")
    other_engines(p0, p1)
    check(open(p1).read() != open(p0).read(), "the second record runs other engines than the first")
    mixed = MPIRUN + ["-np", "1", "-x", "E2E_CPU_CONV_PLAN=" + p0, e.exe("e2e-train"), "--out",
                      e.path("b")] + args + [":", "-np", "1", "-x", "E2E_CPU_CONV_PLAN=" + p1,
                                             e.exe("e2e-train"), "--out", e.path("b")] + args
    run(mixed, expect=0)
    same_weights(final_ckpt(e.path("a")), final_ckpt(e.path("b")))
    run(MPIRUN + ["-np", "2", "-x", "E2E_CPU_CONV_PLAN=" + p1, e.exe("e2e-train"), "--out",
                  e.path("c")] + args, expect=0)
    ta, _ = tensors(final_ckpt(e.path("a")))
    tc, _ = tensors(final_ckpt(e.path("c")))
    check(any(ta[k].tobytes() != tc[k].tobytes() for k in ta),
          "the other record alone gives other weights (so the equality above is rank 0's plan at work)")


def t_bf16(e):
    p = e.train(e.path("refused"), "--precision", "bf16", expect=1, timeout=60,
                mpirun_extra=["-x", "ONEDNN_MAX_CPU_ISA=AVX512_CORE"])
    msgs = [l for l in p.stderr.splitlines() if "bf16 instructions" in l]
    check(len(msgs) >= 1 and "--precision fp32" in msgs[0],
          "bf16 on a CPU without bf16 instructions is refused with one message: %s" % err_line(p))
    ck = os.path.join(e.path("refused"), "checkpoints")
    check(not os.path.exists(ck) or not os.listdir(ck), "no checkpoint written")
    a, b, f = e.path("bf16"), e.path("bf16_stopped"), e.path("fp32")
    p = e.train(a, "--precision", "bf16", expect=None)
    if p.returncode != 0 and "bf16 instructions" in p.stderr:
        raise Skip("this CPU has no bf16 instructions (the refusal above is what it does)")
    check(p.returncode == 0, "a 2-rank bf16 run finishes")
    check(", bf16 (" in p.stdout, "the start line names the bf16 engines")
    e.train(f)
    ta, _ = tensors(final_ckpt(a))
    tf, _ = tensors(final_ckpt(f))
    check(any(ta[k].tobytes() != tf[k].tobytes() for k in ta), "bf16 and fp32 runs end with other weights")
    mae = [float(r.split(",")[4]) for r in metric_rows(a)[1:]]
    mae32 = [float(r.split(",")[4]) for r in metric_rows(f)[1:]]
    print("validation MAE per epoch, bf16:", mae, "fp32:", mae32)
    check(mae[-1] < mae[0] and abs(mae[-1] - mae32[-1]) < 0.2 * mae32[-1],
          "bf16 learns as fp32 does (within 20% of its last validation MAE)")
    p = e.train(b, "--precision", "bf16", "--stop-after-steps", "17", expect=75)
    p = e.train(b, "--precision", "bf16", "--resume", "auto")
    check("resumed from" in p.stdout and "step 17" in p.stdout, "resumed at epoch 1, step 17")
    same_weights(final_ckpt(a), final_ckpt(b))
    check(metric_rows(a) == metric_rows(b), "the same losses and metrics per epoch")


TESTS = {"learns": t_learns, "resume": t_resume, "resume_v1": t_resume_v1, "sigusr1": t_sigusr1, "killed": t_killed,
         "bad_checkpoint": t_bad_checkpoint, "bad_data": t_bad_data, "nan_loss": t_nan_loss,
         "other_ranks": t_other_ranks, "torch_load": t_torch_load, "inputs": t_inputs, "cli": t_cli,
         "kernel_plan": t_kernel_plan, "bf16": t_bf16}


def run_test(tests, doc, make_env):
    """runs the test named by argv[1] in an Env of the build folder argv[2]; the exit
    status: 0 passed, 1 failed, 77 skipped, 2 a bad command line"""
    test = tests.get(sys.argv[1]) if len(sys.argv) == 3 else None
    if test is None:
        print(doc)
        return 2
    t0 = time.time()
    e = make_env(sys.argv[2])
    failed = skipped = None
    try:
        test(e)
    except Failure as f:
        failed = f
    except Skip as s:
        skipped = s
    finally:
        shutil.rmtree(e.tmp, ignore_errors=True)
    if skipped:
        print("SKIPPED: %s" % skipped)
        return SKIP
    print("FAILED: %s" % failed if failed else "%s: passed (%.1f s)" % (sys.argv[1], time.time() - t0))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

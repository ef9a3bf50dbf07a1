#!/usr/bin/env python3
"""What users of PyTorch DDP and Horovod expect of e2e-train (issue 26), under real mpirun
(2 ranks, CPU), on the synthetic file of tests/test_train_e2e.py (28 optimizer steps an
epoch of 2 x 32). One test per subcommand:

  accum        2 ranks x batch 16 x --accum 2 ends one epoch within 1e-5 (relative, every
               tensor: parameters and both moments) of 2 ranks x batch 32; the epoch line
               counts half the all-reduces of 2 x 16 x 1; the start line and config.json
               give the global batch ranks x batch x accum; the warm-up and --stop-after-steps
               count optimizer steps; a stop (--stop-after-steps, and
               SIGUSR1 to one rank with --accum 3, likely inside a window) is honoured at
               an optimizer step's end and the resumed run is bitwise the uninterrupted one
  early_stop   a run whose validation MAE plateaus (--lr 1e-7: 0.2 GeV an epoch) stops after epoch 3 of 8
               with --early-stop 2 --early-stop-min-delta 0.5: exit 0 on every rank, the last step the same on both
               ranks (their timelines), results.json and the last lines say so; a run
               stopped inside epoch 3 (the count at 1) and resumed stops at the same epoch
               with bitwise the same weights; resuming the stopped run trains no more
  tensorboard  TensorBoard's own reader (EventAccumulator, from PyPI in the project's
               environment) finds every scalar at the right global steps; across two stops
               and --resume auto the curves have no duplicated or backward step; the
               default (events on, the folder being local) leaves the checkpoints bitwise
               those of --no-tensorboard
  trace        --trace: one process row per rank, every phase present, no two spans of a
               rank overlapping, the gradient all-reduce of rank 0 and rank 1 overlapping
               in every step, all-reduces and agreements only after a step's last
               micro-batch; bad --trace, --trace-steps, --accum, --early-stop refused with one
               message

usage: test_train_features.py TEST BUILD_DIR
"""
import json
import os
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
if len(sys.argv) > 1 and sys.argv[1] == "tensorboard":
    from project_venv import use_project_venv  # noqa: E402 - standard library only

    use_project_venv(__file__)

import h5py  # noqa: E402
import numpy as np  # noqa: E402

from test_train_e2e import (ENV, MPIRUN, Env, check, final_ckpt, rank_pids, run, run_test,  # noqa: E402
                            same_weights, tensors)

STEPS = 28  # optimizer steps an epoch: 1800 training jets / (2 ranks x 32)


def train(e, out, *extra, epochs=1, batch=32, expect=0, env=None):
    """e2e-train on 2 ranks; env: variables for the ranks (mpirun -x NAME=VALUE)"""
    cmd = MPIRUN + ["-np", "2"] + sum((["-x", "%s=%s" % kv] for kv in (env or {}).items()), []) + \
          [e.exe("e2e-train"), "--data", e.data, "--out", out, "--epochs", str(epochs), "--batch", str(batch),
           "--seed", "5"] + list(extra)
    return run(cmd, expect=expect)


def rel_errors(a, b):
    """per tensor ||a - b|| / ||b|| of two checkpoints (parameters and both moments)"""
    ta, _ = tensors(a)
    tb, _ = tensors(b)
    return {k: float(np.linalg.norm(ta[k].astype(np.float64) - tb[k]) / max(np.linalg.norm(tb[k].astype(np.float64)),
                                                                            1e-30)) for k in ta}


def allreduces(stdout):
    return [int(n) for n in re.findall(r"(\d+) all-reduces\)", stdout)]


# ---- accumulation ----

def t_accum(e):
    # the same convolution engines at batch 16 and 32 (auto picks per batch size: other
    # rounding), and a learning rate at which one epoch does not amplify float rounding
    # into another trajectory (at 1e-3 a max-pool winner or an L1 sign flips in some
    # step, as between any two runs that round differently: tests/test_ddp_equivalence.c)
    direct = {"E2E_CPU_CONV": "direct"}
    big, acc, small = e.path("b32"), e.path("b16x2"), e.path("b16")
    p32 = train(e, big, "--lr", "1e-4", env=direct)
    p2 = train(e, acc, "--lr", "1e-4", "--accum", "2", batch=16, env=direct)
    p16 = train(e, small, "--lr", "1e-4", batch=16, env=direct)
    err = rel_errors(final_ckpt(acc), final_ckpt(big))
    worst = max(err, key=err.get)
    print("2 x 16 x accum 2 vs 2 x 32 after an epoch: worst tensor %s, relative error %.3g" % (worst, err[worst]))
    check(len(err) > 60 and err[worst] <= 1e-5, "every tensor within 1e-5 of the 2 x 32 run (worst %.3g)" % err[worst])
    check(os.path.basename(final_ckpt(acc)) == "ckpt-%010d.h5" % STEPS, "an epoch is %d optimizer steps" % STEPS)
    counts = (allreduces(p32.stdout), allreduces(p2.stdout), allreduces(p16.stdout))
    check(counts == ([STEPS], [STEPS], [2 * STEPS]),
          "all-reduces per epoch (2 x 32, 2 x 16 x 2, 2 x 16): %s: accumulation halves them" % (counts,))
    check("28 steps per epoch of 2 x 16 x 2 micro-batches (global batch 64)" in p2.stdout,
          "the start line gives the global batch ranks x batch x accum")
    cfg = json.load(open(os.path.join(acc, "config.json")))
    check(cfg["accum"] == 2 and cfg["global_batch"] == 64, "config.json: accum 2, global batch 64")
    with h5py.File(final_ckpt(acc), "r") as f:
        check(int(f.attrs["accum"]) == 2 and int(f.attrs["batch"]) == 16, "the checkpoint records batch and accum")

    # the warm-up counts optimizer steps: 2 ranks x linear scaling, 10 steps to 2e-3
    p = train(e, e.path("warm"), "--accum", "2", "--lr-scaling", "linear", "--warmup-steps", "10", "--log-every", "1",
              "--stop-after-steps", "10", batch=16, expect=75)
    lrs = {int(s): float(v) for s, v in re.findall(r"step (\d+)/\d+  loss \S+  lr (\S+)", p.stdout)}
    check(lrs.get(5) == 0.0015 and lrs.get(10) == 0.002, "the warm-up reaches the scaled rate at optimizer step 10 "
          "(micro-batch 20): %s" % lrs)

    # a stop is honoured at an optimizer step's end: the resumed run is the same run
    stopped = e.path("b16x2_stopped")
    p = train(e, stopped, "--lr", "1e-4", "--accum", "2", "--stop-after-steps", "9", batch=16, env=direct, expect=75)
    check("checkpoint written at epoch 1, step 9" in p.stdout, "stopped after optimizer step 9 (micro-batch 18)")
    train(e, stopped, "--lr", "1e-4", "--accum", "2", "--resume", "auto", batch=16, env=direct)
    same_weights(final_ckpt(acc), final_ckpt(stopped))

    # SIGUSR1 to one rank at any moment, with 3 micro-batches a step (2 of 3 moments fall
    # inside a window): the stop waits for the step's end. Two epochs: mpirun forwards the
    # ranks' lines late on a loaded machine, and a signal after the last step is no stop
    a3, s3, log = e.path("accum3"), e.path("accum3_signalled"), e.path("accum3.log")
    extra = ["--accum", "3", "--batch", "8", "--log-every", "1", "--epochs", "2", "--seed", "5"]
    train(e, a3, "--accum", "3", batch=8, epochs=2)
    f = open(log, "w")
    proc = subprocess.Popen(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", s3] + extra,
                            env=ENV, stdout=f, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 120 and proc.poll() is None and "step 5/" not in open(log).read():
        time.sleep(0.01)
    pids = rank_pids(proc.pid)
    check(len(pids) == 2, "two ranks under mpirun")
    time.sleep(0.013)  # somewhere inside a step
    os.kill(pids[1], signal.SIGUSR1)
    code = proc.wait(timeout=120)
    f.close()
    m = re.search(r"checkpoint written at epoch \d+, step (\d+)", open(log).read())
    check(code == 75 and m is not None, "SIGUSR1: checkpoint at optimizer step %s, exit %d" % (m and m.group(1), code))
    train(e, s3, "--accum", "3", "--resume", "auto", batch=8, epochs=2)
    same_weights(final_ckpt(a3), final_ckpt(s3))


# ---- early stopping ----

def t_early_stop(e):
    flat = ["--lr", "1e-7", "--early-stop", "2", "--early-stop-min-delta", "0.5"]  # 0.2 GeV an epoch
    out, trace = e.path("plateau"), e.path("plateau_trace.json")
    p = train(e, out, *flat, "--trace", trace, "--trace-steps", "0:1000", epochs=8)
    check(p.returncode == 0, "mpirun exits 0: every rank ended normally")
    check("epoch 3/8 done" in p.stdout and "epoch 4/8" not in p.stdout, "trained 3 of 8 epochs")
    check("early stop after epoch 3 of 8: val MAE (GeV) has not improved by more than 0.5 for 2 epochs" in p.stdout,
          "the early-stop line names the epoch, the metric, min_delta and patience")
    last = p.stdout.strip().splitlines()[-1]
    check(re.match(r"test \(best checkpoint checkpoints/best.h5, epoch [123]; stopped early after epoch 3\)", last),
          "the last line: stopped early, the best checkpoint: %s" % last)
    res = json.load(open(os.path.join(out, "results.json")))
    check(res["stopped_early"] is True and res["stopped_epoch"] == 3 and res["epochs"] == 3 and
          res["best_checkpoint"] == "checkpoints/best.h5" and 1 <= res["best_epoch"] <= 3,
          "results.json: stopped early at epoch 3, and the best checkpoint: %s" % res)
    ev = [x for x in json.load(open(trace))["traceEvents"] if x["ph"] == "X"]
    last_steps = {r: max(x["args"]["step"] for x in ev if x["pid"] == r) for r in (0, 1)}
    validations = {r: sum(1 for x in ev if x["pid"] == r and x["name"] == "validation") for r in (0, 1)}
    check(last_steps == {0: 3 * STEPS - 1, 1: 3 * STEPS - 1} and validations == {0: 3, 1: 3},
          "both ranks stopped after the same step %s, after 3 validations each %s" % (last_steps, validations))
    with h5py.File(os.path.join(out, "checkpoints", "ckpt-%010d.h5" % (3 * STEPS)), "r") as f:
        check(int(f.attrs["early_stop_bad_epochs"]) == 2, "the checkpoint holds the count")

    # stopped inside epoch 3, its count at 1 (epoch 2 did not improve): the resumed run must
    # stop after epoch 3 too (a fresh count would train to epoch 5)
    resumed = e.path("plateau_resumed")
    train(e, resumed, *flat, "--stop-after-steps", str(2 * STEPS + 5), epochs=8, expect=75)
    p = train(e, resumed, *flat, "--resume", "auto", epochs=8)
    check("early stop after epoch 3 of 8" in p.stdout and "epoch 4/8" not in p.stdout,
          "the resumed run keeps the count and stops after epoch 3")
    same_weights(final_ckpt(out), final_ckpt(resumed))
    p = train(e, out, *flat, "--resume", "auto", epochs=8)
    check("epoch 4/8" not in p.stdout and "stopped early after epoch 3" in p.stdout,
          "resuming a run that stopped early trains no more: the test again")


# ---- TensorBoard ----

SCALARS_STEP = ["train/loss", "train/lr"]
SCALARS_EPOCH = ["epoch", "train/epoch_loss", "val/loss", "val/mae_gev", "val/mre", "perf/samples_per_s",
                 "perf/data_wait_frac", "perf/allreduce_frac", "perf/sync_wait_frac", "perf/epoch_s",
                 "perf/allreduces", "perf/skipped_steps"]
SCALARS_TEST = ["test/loss", "test/mae_gev", "test/mre"]


def scalars(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(s.step, s.value) for s in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def check_curves(run_dir, what):
    s = scalars(run_dir)
    check(sorted(s) == sorted(SCALARS_STEP + SCALARS_EPOCH + SCALARS_TEST), "%s: every scalar: %s" % (what, sorted(s)))
    for tag in SCALARS_STEP:
        check([st for st, _ in s[tag]] == list(range(1, 2 * STEPS + 1)),
              "%s: %s at steps 1..%d, each once, in order" % (what, tag, 2 * STEPS))
    for tag in SCALARS_EPOCH:
        check([st for st, _ in s[tag]] == [STEPS, 2 * STEPS], "%s: %s at the epochs' last steps" % (what, tag))
    for tag in SCALARS_TEST:
        check([st for st, _ in s[tag]] == [2 * STEPS], "%s: %s once, at the end" % (what, tag))
    return s


def t_tensorboard(e):
    out, off = e.path("tb"), e.path("tb_off")
    train(e, out, epochs=2)
    s = check_curves(out, "one run")
    rows = open(os.path.join(out, "metrics.csv")).read().splitlines()
    col = rows[0].split(",").index("val_mae_gev")
    mae = [float(r.split(",")[col]) for r in rows[1:]]
    check(all(abs(v - m) < 1e-3 for (_, v), m in zip(s["val/mae_gev"], mae)), "val/mae_gev = metrics.csv's")
    check(all(abs(v - 1e-3) < 1e-9 for _, v in s["train/lr"]) and [v for _, v in s["perf/allreduces"]] == [STEPS] * 2,
          "the learning rate and the all-reduce count")
    check(s["train/loss"][-1][1] < s["train/loss"][0][1], "the loss curve falls")

    train(e, off, "--no-tensorboard", epochs=2)
    check(not [n for n in os.listdir(off) if "tfevents" in n], "--no-tensorboard: no event file")
    same_weights(final_ckpt(out), final_ckpt(off))  # events on by default change nothing

    stopped = e.path("tb_stopped")
    train(e, stopped, "--stop-after-steps", "17", epochs=2, expect=75)
    train(e, stopped, "--stop-after-steps", "30", "--resume", "auto", epochs=2, expect=75)  # after epoch 1's events
    train(e, stopped, "--resume", "auto", epochs=2)
    check(len([n for n in os.listdir(stopped) if "tfevents" in n]) == 3, "one event file per start")
    r = check_curves(stopped, "two stops and --resume auto")
    check([v for _, v in r["train/loss"]] == [v for _, v in s["train/loss"]], "the same losses as the run never stopped")


# ---- the timeline ----

PHASES = ["data wait", "host-to-device", "forward", "backward", "accumulate", "loss check", "agreement", "all-reduce",
          "optimizer", "validation", "checkpoint"]


def t_trace(e):
    out, path = e.path("traced"), e.path("trace.json")
    p = train(e, out, "--accum", "2", "--trace", path, "--trace-steps", "20:35", batch=16, epochs=2)
    check("trace of steps 20:35 written to" in p.stdout, "rank 0 says where the trace is")
    doc = json.load(open(path))
    meta = [x for x in doc["traceEvents"] if x["ph"] == "M" and x["name"] == "process_name"]
    check(sorted(x["pid"] for x in meta) == [0, 1] and all(x["args"]["name"].startswith("rank %d (" % x["pid"])
                                                           for x in meta), "one process row per rank, named")
    spans = [x for x in doc["traceEvents"] if x["ph"] == "X"]
    for r in (0, 1):
        mine = sorted((x for x in spans if x["pid"] == r), key=lambda x: x["ts"])
        missing = [ph for ph in PHASES if ph not in {x["name"] for x in mine}]
        check(not missing, "rank %d: every phase present (missing: %s)" % (r, missing))
        check({x["args"]["step"] for x in mine} == set(range(20, 35)), "rank %d: steps 20 to 34" % r)
        overlaps = [(a["name"], b["name"]) for a, b in zip(mine, mine[1:]) if b["ts"] < a["ts"] + a["dur"] - 0.002]
        check(not overlaps, "rank %d: no two spans overlap (%d spans; overlapping: %s)" % (r, len(mine), overlaps[:3]))
        comm = [x["args"]["micro"] for x in mine if x["name"] in ("all-reduce", "agreement")]
        check(len(comm) == 2 * 15 and set(comm) == {1}, "rank %d: one agreement and one all-reduce a step, after "
              "its last micro-batch only" % r)
    reduce = {r: {x["args"]["step"]: x for x in spans if x["pid"] == r and x["name"] == "all-reduce"} for r in (0, 1)}
    apart = [s for s in reduce[0] if not (reduce[0][s]["ts"] < reduce[1][s]["ts"] + reduce[1][s]["dur"] and
                                          reduce[1][s]["ts"] < reduce[0][s]["ts"] + reduce[0][s]["dur"])]
    check(sorted(reduce[0]) == list(range(20, 35)) and not apart,
          "the all-reduce of rank 0 and rank 1 overlap in time in every step (apart: %s)" % apart)

    # bad options: one message, every rank out, nothing trained
    for args, code, words in ((["--trace-steps", "9:3"], 2, "--trace-steps expects A:B"),
                              (["--trace-steps", "3"], 2, "--trace-steps expects A:B"),
                              (["--accum", "0"], 1, "--accum must be positive"),
                              (["--early-stop", "-1"], 2, "--early-stop expects"),
                              (["--trace", e.path("no/such/folder/t.json")], 1, "t.json"),
                              (["--trace", e.data], 1, "--data")):
        p = train(e, e.path("bad"), *args, expect=code)
        msg = [ln for ln in p.stderr.splitlines() if words in ln]
        check(len(msg) == 1 and "epoch 1" not in p.stdout, "%s: exit %d, once: %s" % (" ".join(args), code, msg))


TESTS = {"accum": t_accum, "early_stop": t_early_stop, "tensorboard": t_tensorboard, "trace": t_trace}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

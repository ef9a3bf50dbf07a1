#!/usr/bin/env python3
"""A battery of adversarial cases against a build of e2e-ddp, each outcome classified:

  clear error       non-zero exit, one short message naming the problem (and nothing lost)
  unclear message   non-zero exit, but the message misses the problem or drowns it in pages
  hang              no end within the case's time limit (the processes are killed)
  crash             a signal (segfault, SIGFPE, abort)
  data lost         an input, an earlier output or a checkpoint just written destroyed or
                    changed, two runs' files mixed
  garbage accepted  exit 0 (or going on) where it should have refused, wrong bytes read,
                    a file of zeros or a partial file left, an option silently ignored
  ok                the right result where succeeding is right (a layout read right, a
                    list with a byte-order mark)

Run it on two builds (the same cases; options a build lacks are left out) and print the
table before and after:

  tests/bench/adversarial.py --build /path/main/build --source /path/main --json before.json
  tests/bench/adversarial.py --build build --json after.json
  tests/bench/adversarial.py --table before.json after.json

Classes (issue 14): 1 run folders, 2 outputs and full disks, 3 resume on other data and
options, 4 HDF5 storage layouts, 5 file lists and splits, 6 stuck ranks, 7 messages;
(issue 28) 8 ranks writing one file together when one rank's writes fail (faults from
tests/fault_write.c, built here; nearly full disks), 9 inputs that claim what they are
not and records of what did not happen, 10 messages (long paths, a 1-jet file, a killed
mpirun), 11 malformed files the fuzzers found (memory safety). The
full-disk cases need a tmpfs (root); without one they are reported as not run. Runs as
root under mpirun (--oversubscribe, 2 ranks); a few minutes on 2 cores."""
import argparse
import errno
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none"]
OUTCOMES = ["clear error", "unclear message", "hang", "crash", "data lost", "garbage accepted", "ok", "not run"]
CASES = []


def case(cls, name):
    def put(fn):
        CASES.append((cls, name, fn))
        return fn
    return put


class Result:
    def __init__(self, code, out, err, timed_out, seconds):
        self.code, self.out, self.err, self.timed_out, self.seconds = code, out, err, timed_out, seconds

    @property
    def text(self):
        return self.out + self.err


class Ctx:
    def __init__(self, build, source):
        self.build, self.source = os.path.abspath(build), os.path.abspath(source)
        self.tmp = tempfile.mkdtemp(prefix="e2e-adversarial-")
        self.help = run([self.exe("e2e-train"), "--help"]).out
        self.data = self.synth("jets.h5", 600, seed=11)
        self.best_dir = None

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, *names):
        return os.path.join(self.tmp, *names)

    def has(self, option):
        return option in self.help

    def synth(self, name, n, seed=11, channels=3, extra=()):
        out = self.path(name)
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", out, "--samples", str(n), "--size", "32",
                      "--channels", str(channels), "--seed", str(seed)] + list(extra))
        return out

    def train(self, out, *extra, epochs=1, data=None, limit=180, env=None, np_=2):
        wd = ["--watchdog", "0"] if self.has("--watchdog") and "--watchdog" not in extra else []
        return run(MPIRUN + ["-np", str(np_), self.exe("e2e-train"), "--data", data or self.data, "--out", out,
                             "--epochs", str(epochs), "--batch", "16", "--seed", "5", "--log-every", "1000"] +
                   wd + list(extra), limit=limit, env=env)

    def eval(self, ckpt, *extra, data=None, limit=120, env=None, cwd=None):
        return run(MPIRUN + ["-np", "2", self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data or self.data] +
                   list(extra), limit=limit, env=env, cwd=cwd)

    def best(self):
        """a trained run (1 epoch) and its best checkpoint"""
        if not self.best_dir:
            self.best_dir = self.path("base")
            self.train(self.best_dir)
        return os.path.join(self.best_dir, "checkpoints", "best.h5")


def run(cmd, limit=120, env=None, cwd=None):
    e = dict(ENV, **(env or {}))
    if env and cmd[0] == "mpirun":
        cmd = cmd[:1] + [x for k in env for x in ("-x", k)] + cmd[1:]
    t0 = time.time()
    p = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=limit)
        return Result(p.returncode, out, err, False, time.time() - t0)
    except subprocess.TimeoutExpired:
        kill_group(p)
        out, err = p.communicate()
        return Result(None, out, err, True, time.time() - t0)


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGCONT)
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        pass


def crashed(r):
    t = r.text
    return (r.code is not None and (r.code < 0 or r.code in (134, 136, 139))) or "Segmentation fault" in t or \
        "signal 11" in t or "signal 8" in t or "Floating point exception" in t or "*** Process received signal" in t


def noise(r):
    """lines that are not ours: MPI-IO and HDF5 diagnostics"""
    return sum(1 for l in r.err.splitlines() if l.startswith(("mca_", "HDF5-DIAG", "  #0", "    major", "    minor")))


def judge(r, words, lost=False):
    """an error was expected: classify how it came"""
    if r.timed_out:
        return "hang", "no end in %.0f s" % r.seconds
    if crashed(r):
        return "crash", last_line(r)
    if lost:
        return "data lost", last_line(r)
    if r.code == 0:
        return "garbage accepted", "exit 0"
    msg = r.err + r.out
    if all(re.search(w, msg) for w in words) and noise(r) < 5:
        return "clear error", last_line(r)
    return "unclear message", last_line(r)


def last_line(r):
    text = (r.err + r.out).splitlines()
    keep = [l for l in text if re.search(r"error|watchdog:|Error", l)] or \
        [l for l in text if re.search(r"e2e-\w+:", l) and not re.search(r"rank \d+ of \d+ on", l)]
    return (keep[-1] if keep else (r.err.strip().splitlines() or ["(no output)"])[-1])[:220]


def ok_if(cond, note, r=None):
    if r is not None and r.timed_out:
        return "hang", "no end in %.0f s" % r.seconds
    if r is not None and crashed(r):
        return "crash", last_line(r)
    return ("ok", note) if cond else ("garbage accepted", note)


# ---- the cases ----

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from test_no_loss import (Tmpfs, compact_file, digest, fill, layout_files, pixel_stats,  # noqa: E402
                          qg_source, shuffled_copy, tree)
from test_train_e2e import Skip  # noqa: E402
from launcher_kill import kill_launcher_midrun, written_after  # noqa: E402
from test_claims import copy_with  # noqa: E402

NEVER = r"(?!x)x"  # matches nothing: an error where succeeding is right


def failed_to_work(r):
    """succeeding was right: an error instead is unclear (or a hang, a crash)"""
    return judge(r, [NEVER])


# ---- 1: run folders ----

def finished(x, name, epochs=2):
    d = x.path(name)
    x.train(d, epochs=epochs)
    return d


def fresh_over(x, name, *extra, epochs=1):
    """a fresh run started in a finished run's folder"""
    d = finished(x, name)
    before = tree(d)
    r = x.train(d, *extra, epochs=epochs)
    return judge(r, [r"holds another run"], lost=tree(d) != before)


case(1, "fresh run in a finished run's folder")(lambda x: fresh_over(x, "c1a"))
case(1, "--resume none in a finished run's folder")(lambda x: fresh_over(x, "c1b", "--resume", "none"))
case(1, "fresh run with other options in a finished run's folder")(
    lambda x: fresh_over(x, "c1b2", "--seed", "9", "--lr", "0.01", epochs=3))


@case(1, "rewind to an earlier checkpoint: the stop checkpoint just written is kept")
def c_rewind(x):
    d = finished(x, "c1c", epochs=3)
    ck = os.path.join(d, "checkpoints")
    r = x.train(d, "--resume", os.path.join(ck, "ckpt-0000000016.h5"), "--keep", "1", "--stop-after-steps", "5",
                epochs=3)
    if r.timed_out or crashed(r) or r.code != 75:
        return failed_to_work(r)
    if not os.path.exists(os.path.join(ck, "ckpt-0000000021.h5")):
        return "data lost", "the stop checkpoint (step 21) was pruned: %s" % sorted(os.listdir(ck))
    r = x.train(d, "--resume", "auto", "--keep", "1", epochs=3)
    return ok_if("ckpt-0000000021.h5" in r.out, "--resume auto continued step 21", r)


@case(1, "rewind: --resume auto afterwards continues the rewound run")
def c_rewind_auto(x):
    d = finished(x, "c1c2", epochs=3)
    ck = os.path.join(d, "checkpoints")
    r = x.train(d, "--resume", os.path.join(ck, "ckpt-0000000016.h5"), "--stop-after-steps", "3", epochs=3)
    r = x.train(d, "--resume", "auto", epochs=3)
    m = re.search(r"resumed from \S+ckpt-(\d+)\.h5", r.out)
    if m and int(m.group(1)) == 48:
        return "data lost", "continued the abandoned branch (step 48); the rewound run's step 19 was outranked"
    return ok_if(m is not None and int(m.group(1)) == 19, "continued %s" % (m.group(0) if m else "nothing"), r)


@case(1, "two jobs on one --out")
def c_two_jobs(x):
    d = x.path("c1d")
    wd = ["--watchdog", "0"] if x.has("--watchdog") else []
    log = open(x.path("c1d.log"), "w")
    first = subprocess.Popen(MPIRUN + ["-np", "2", x.exe("e2e-train"), "--data", x.data, "--out", d, "--epochs", "300",
                                       "--batch", "16", "--log-every", "1"] + wd, env=ENV, stdout=log,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.time()
        while time.time() - t0 < 60 and "step 2/" not in open(log.name).read():
            time.sleep(0.1)
        r = x.train(d, "--resume", "auto", epochs=1, limit=90)
    finally:
        os.kill(first.pid, signal.SIGUSR1)
        try:
            first.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kill_group(first)
        log.close()
    if r.code == 0:
        return "data lost", "both jobs ran in one folder (config, metrics, checkpoints of two runs)"
    return judge(r, [r"in use", r"pid \d+", re.escape(socket.gethostname())])


@case(1, "dead writers' temporary files left in the run folder")
def c_leftovers(x):
    d = x.path("c1e")
    os.makedirs(os.path.join(d, "checkpoints"))
    junk = [os.path.join(d, "checkpoints", n) for n in (".ckpt-0000000099.h5.partial-123", "ckpt-0000000099.h5.tmp-123")]
    junk.append(os.path.join(d, "config.json.tmp"))
    for p in junk:
        open(p, "wb").write(b"\0" * 1000)
    r = x.train(d, epochs=1)
    left = [os.path.basename(p) for p in junk if os.path.exists(p)]
    return ok_if(not left, "left: %s" % left, r)


@case(1, "--resume auto: results but the checkpoints deleted")
def c_results_no_ckpt(x):
    d = finished(x, "c1f", epochs=1)
    ck = os.path.join(d, "checkpoints")
    for n in os.listdir(ck):
        os.unlink(os.path.join(ck, n))
    before = tree(d)
    r = x.train(d, "--resume", "auto", epochs=1)
    return judge(r, [r"no checkpoint"], lost=tree(d) != before)


@case(1, "--resume auto: only a corrupt checkpoint")
def c_corrupt_only(x):
    d = finished(x, "c1g", epochs=1)
    ck = os.path.join(d, "checkpoints")
    os.unlink(os.path.join(ck, "best.h5"))
    with open(os.path.join(ck, "ckpt-0000000016.h5"), "r+b") as f:
        f.truncate(1000)
    before = tree(d)
    r = x.train(d, "--resume", "auto", epochs=1)
    return judge(r, [r"valid|corrupt|truncated"], lost=tree(d) != before)


@case(1, "--out names a file")
def c_out_file(x):
    p = x.path("c1h")
    open(p, "w").write("x")
    r = x.train(p, epochs=1)
    return judge(r, [r"c1h", r"file", r"folder"])


@case(1, "a fresh run where only a Slurm log lies")
def c_slurm_log(x):
    d = x.path("c1i")
    os.makedirs(d)
    open(os.path.join(d, "slurm-3.out"), "w").write("log\n")
    r = x.train(d, epochs=1)
    return ok_if(r.code == 0 and os.path.exists(os.path.join(d, "slurm-3.out")), "trained, log kept", r)


# ---- 2: outputs ----

def eval_over(x, target, words, *extra):
    h = digest(target)
    r = x.eval(x.best(), "--predictions", target, *extra)
    return judge(r, words, lost=digest(target) != h)


def eval_over_data(x, target, data):
    h = digest(data)
    r = x.eval(x.best(), "--predictions", target, data=data)
    return judge(r, [r"input"], lost=digest(data) != h)


def eval_over_copy(x, name, link):
    """--predictions over a copy of the data, or a link to it (link: os.symlink, os.link)"""
    data = x.path(name + ".h5")
    shutil.copy(x.data, data)
    target = data if link is None else x.path(name + "_link.h5")
    if link:
        link(data, target)
    return eval_over_data(x, target, data)


case(2, "e2e-eval --predictions = the dataset")(lambda x: eval_over_copy(x, "c2a", None))
case(2, "e2e-eval --predictions = a symbolic link to the dataset")(lambda x: eval_over_copy(x, "c2b", os.symlink))
case(2, "e2e-eval --predictions = a hard link to the dataset")(lambda x: eval_over_copy(x, "c2c", os.link))


@case(2, "e2e-eval --predictions = the --checkpoint")
def c_pred_ckpt(x):
    best = x.best()
    copy = x.path("c2d.h5")
    shutil.copy(best, copy)
    h = digest(copy)
    r = x.eval(copy, "--predictions", copy)
    return judge(r, [r"input|checkpoint"], lost=digest(copy) != h)


@case(2, "e2e-eval --predictions = another run's checkpoint")
def c_pred_other_ckpt(x):
    other = x.path("c2e.h5")
    shutil.copy(x.best(), other)
    return eval_over(x, other, [r"checkpoint"])


@case(2, "e2e-eval --metrics = the dataset")
def c_metrics_data(x):
    data = x.path("c2f.h5")
    shutil.copy(x.data, data)
    h = digest(data)
    r = x.eval(x.best(), "--metrics", data, data=data)
    return judge(r, [r"input"], lost=digest(data) != h)


@case(2, "e2e-eval --metrics = a run's config.json")
def c_metrics_config(x):
    x.best()
    cfg = os.path.join(x.best_dir, "config.json")
    h = digest(cfg)
    r = x.eval(x.best(), "--metrics", cfg)
    return judge(r, [r"metrics"], lost=digest(cfg) != h)


@case(2, "e2e-eval --predictions and --metrics the same file")
def c_same_outputs(x):
    p = x.path("c2g.out")
    r = x.eval(x.best(), "--predictions", p, "--metrics", p)
    if r.code == 0:
        return "garbage accepted", "one output overwrote the other"
    return judge(r, [r"both"])


def synth_over(x, target, words):
    """e2e-synth --out over a file that is not one it wrote"""
    h = digest(target)
    r = run(MPIRUN + ["-np", "2", x.exe("e2e-synth"), "--out", target, "--samples", "10"])
    return judge(r, words, lost=digest(target) != h)


@case(2, "e2e-synth --out = a checkpoint")
def c_synth_ckpt(x):
    shutil.copy(x.best(), x.path("c2h.h5"))
    return synth_over(x, x.path("c2h.h5"), [r"checkpoint|another kind|exists"])


@case(2, "e2e-synth --out = a jet file of real data")
def c_synth_real(x):
    target = x.path("c2i.h5")
    shutil.copy(x.data, target)
    with h5py.File(target, "r+") as f:
        f.attrs["source"] = "parquet: top_gun_opendata_0.parquet"
    return synth_over(x, target, [r"real data|exists"])


@case(2, "e2e-synth of 500 TB")
def c_synth_huge(x):
    out = x.path("c2j.h5")
    r = run(MPIRUN + ["-np", "2", x.exe("e2e-synth"), "--out", out, "--samples", "1000000000"], limit=60)
    if os.path.exists(out) and not r.timed_out:
        return "garbage accepted", "left a file of %d bytes (apparent size)" % os.path.getsize(out)
    return judge(r, [r"needs about|free|space"])


@case(2, "e2e-convert -o = a hard link to its input")
def c_convert_link(x):
    conv = os.path.join(x.source, "data", "e2e-convert")
    src = x.path("c2k.h5")
    qg_source(src, 64)
    os.link(src, x.path("c2k_hard.h5"))
    h = digest(src)
    r = run([conv, "-q", "-f", "-o", x.path("c2k_hard.h5"), src])
    return judge(r, [r"input"], lost=digest(src) != h)


def full(x, name, size):
    try:
        return Tmpfs(x.path(name), size)
    except Skip as s:
        raise RuntimeError(str(s))


def partials(folder):
    return [n for _, _, fs in os.walk(folder) for n in fs if ".partial-" in n or ".tmp" in n]


def on_full_disk(r, left, words):
    """a writer's end on a full disk: an error, nothing left behind"""
    if r.timed_out:
        return "hang", "no end in %.0f s (left %s)" % (r.seconds, left)
    if r.code == 0:
        return "garbage accepted", "exit 0 on a full disk"
    if left and not crashed(r):
        return "garbage accepted", "left %s" % left
    return judge(r, words)


def full_train(x, name, env):
    with full(x, name, "1600k") as mnt:
        r = x.train(os.path.join(mnt, "run"), epochs=3, env=env)
        return on_full_disk(r, partials(mnt), [r"checkpoint", r"space|full"])


@case(2, "e2e-train: the disk fills at a checkpoint")
def c_full_train(x):
    return full_train(x, "full_c2l", {})


@case(2, "e2e-train: the disk fills at a checkpoint (no free-space check)")
def c_full_train_nocheck(x):
    return full_train(x, "full_c2m", {"E2E_SPACE_CHECK": "0"})


def full_eval(x, name, opt, out, env):
    best = x.best()
    with full(x, name, "512k") as mnt:
        target = os.path.join(mnt, out)
        x.eval(best, opt, target)
        h = digest(target)
        fill(mnt)
        r = x.eval(best, "--split", "train", opt, target, env=env)
        if r.code == 0:
            zeros = open(target, "rb").read().count(b"\0") > 0.9 * os.path.getsize(target) if h else False
            return "garbage accepted", "exit 0 on a full disk%s" % (", a file of zeros" if zeros else "")
        if digest(target) != h:
            return "data lost", "the previous file was destroyed (%s)" % last_line(r)
        if partials(mnt):
            return "garbage accepted", "left %s" % partials(mnt)
        return judge(r, [re.escape(out), r"space|full"])


@case(2, "e2e-eval --predictions on a full disk")
def c_full_pred(x):
    return full_eval(x, "full_c2n", "--predictions", "p.h5", {"E2E_SPACE_CHECK": "0"})


@case(2, "e2e-eval --metrics on a full disk")
def c_full_metrics(x):
    return full_eval(x, "full_c2o", "--metrics", "m.json", {"E2E_SPACE_CHECK": "0"})


@case(2, "e2e-synth on a full disk")
def c_full_synth(x):
    with full(x, "full_c2p", "600k") as mnt:
        r = run(MPIRUN + ["-np", "2", x.exe("e2e-synth"), "--out", os.path.join(mnt, "s.h5"), "--samples", "600",
                          "--size", "32", "--channels", "3"], env={"E2E_SPACE_CHECK": "0"})
        return on_full_disk(r, os.listdir(mnt), [r"s\.h5", r"space|full|write"])


@case(2, "e2e-convert on a full disk")
def c_full_convert(x):
    conv = os.path.join(x.source, "data", "e2e-convert")
    src = x.path("c2q.h5")
    qg_source(src, 400)
    with full(x, "full_c2q", "600k") as mnt:
        r = run([conv, "-q", "-o", os.path.join(mnt, "c.h5"), src], env={"E2E_SPACE_CHECK": "0"})
        return on_full_disk(r, os.listdir(mnt), [r"c\.h5", r"space|full"])


# ---- 3: resume on other data, options ----

def stopped(x, name):
    src = x.path("c3_stopped")
    if not os.path.exists(src):
        x.train(src, "--stop-after-steps", "5", epochs=2)
    d = x.path(name)
    shutil.copytree(src, d)
    return d


def resume_other(x, name, data):
    d = stopped(x, name)
    r = x.train(d, "--resume", "auto", data=data, epochs=2)
    if r.code == 0:
        return "garbage accepted", "resumed mid-epoch on other jets with the old scales"
    return judge(r, [r"trained on", re.escape(os.path.basename(data))])


@case(3, "resume on regenerated data (another seed)")
def c_resume_seed(x):
    return resume_other(x, "c3a", x.synth("c3a.h5", 600, seed=12))


@case(3, "resume on data of another N")
def c_resume_n(x):
    return resume_other(x, "c3b", x.synth("c3b.h5", 500))


case(3, "resume on the same jets in another order")(
    lambda x: resume_other(x, "c3c", shuffled_copy(x.data, x.path("c3c.h5"))))


@case(3, "resume on a list with a file added")
def c_resume_list(x):
    lst = x.path("c3d.txt")
    x.synth("c3d.h5", 200, seed=21)
    open(lst, "w").write("jets.h5\nc3d.h5\n")
    return resume_other(x, "c3d", lst)


@case(3, "resume on the same jets moved to another name")
def c_resume_moved(x):
    d = stopped(x, "c3e")
    data = x.path("c3e.h5")
    shutil.copy(x.data, data)
    r = x.train(d, "--resume", "auto", data=data, epochs=2)
    return ok_if(r.code == 0, "resumed", r)


@case(3, "resume with --lr: said to be ignored")
def c_resume_lr(x):
    d = stopped(x, "c3f")
    r = x.train(d, "--resume", "auto", "--lr", "0.01", epochs=2)
    return ok_if(r.code == 0 and re.search(r"ignored.*--lr 0\.01", r.out) is not None,
                 "the checkpoint's schedule continues; said: %s" % bool(re.search(r"ignored", r.out)), r)


@case(3, "resume with --weight-decay: said, not silently applied")
def c_resume_wd(x):
    d = stopped(x, "c3g")
    r = x.train(d, "--resume", "auto", "--weight-decay", "0.1", epochs=2)
    return ok_if(r.code == 0 and "--weight-decay" in r.out, "reported: %s" % ("--weight-decay" in r.out), r)


@case(3, "e2e-eval preprocesses as the run did (--zero-suppress 0.3)")
def c_eval_zero(x):
    d = x.path("c3h")
    x.train(d, "--zero-suppress", "0.3", epochs=2)
    rows = open(os.path.join(d, "metrics.csv")).read().splitlines()[1:]
    best_mae = min(float(r.split(",")[4]) for r in rows)
    r = x.eval(os.path.join(d, "checkpoints", "best.h5"), "--split", "val")
    m = re.search(r'"mae_gev": ([0-9.]+)', r.out)
    return ok_if(m is not None and abs(float(m.group(1)) - best_mae) < 0.01,
                 "validation MAE %.3f, e2e-eval %s" % (best_mae, m.group(1) if m else "?"), r)


# ---- 4: HDF5 storage layouts ----

def layouts(x):
    if not hasattr(x, "lay"):
        x.lay = layout_files(x)
        ref = x.path("c4_ref.h5")
        x.eval(x.best(), "--split", "train", "--predictions", ref)
        x.ref = preds(ref)
    return x.lay


def preds(path):
    with h5py.File(path, "r") as f:
        return dict(zip(f["index"][()].tolist(), f["m_pred"][()].tolist()))


def layout_case(x, name):
    files, _ = layouts(x)
    out = x.path("c4_%s.h5" % name)
    os.makedirs(x.path("c4_cwd"), exist_ok=True)
    r = x.eval(x.best(), "--split", "train", "--predictions", out, data=files[name], cwd=x.path("c4_cwd"))
    if r.code != 0:
        return failed_to_work(r)
    got = preds(out)
    common = set(got) & set(x.ref)
    wrong = sum(got[i] != x.ref[i] for i in common)
    return ("ok", "%d jets, the same predictions" % len(common)) if common and not wrong else \
        ("garbage accepted", "%d of %d predictions differ: wrong bytes read" % (wrong, len(common)))


for _name in ("elink", "extraw", "vds", "ublock_chunked", "ublock_contig", "gzip", "bigendian", "rechunked"):
    case(4, "layout: %s" % _name)(lambda x, n=_name: layout_case(x, n))


@case(4, "layout: a filter this HDF5 lacks (lzf)")
def c_lzf(x):
    _, lzf = layouts(x)
    r = x.eval(x.best(), data=lzf)
    return judge(r, [r"filter", r"lzf|32000"])


@case(4, "layout: compact storage")
def c_compact(x):
    path = x.path("c4_compact.h5")
    img = compact_file(path)
    r = run([x.exe("e2e-data"), "info", path])
    if r.code != 0:
        return failed_to_work(r)
    stats = pixel_stats(r.out)
    return ok_if(len(stats) == 1 and abs(stats[0][1] - float(img.mean())) < 1e-3, "min, mean, max %s" % stats, r)


# ---- 5: file lists and splits ----

def list_case(x, name, lines, setup=None):
    if setup:
        setup()
    lst = x.path("c5_%s.txt" % name)
    open(lst, "w").write(lines)
    r = x.train(x.path("c5_%s" % name), data=lst, epochs=1)
    if r.code == 0:
        return "garbage accepted", "trained with the same jets in more than one split"
    return judge(r, [r"twice|same jets|same file"])


@case(5, "a list naming one file twice")
def c_list_twice(x):
    return list_case(x, "twice", "jets.h5\njets.h5\n")


@case(5, "a list naming a file and ./file")
def c_list_dot(x):
    return list_case(x, "dot", "jets.h5\n./jets.h5\n")


@case(5, "a list naming a file and a symbolic link to it")
def c_list_symlink(x):
    return list_case(x, "sym", "jets.h5\nc5_link.h5\n", lambda: os.symlink(x.data, x.path("c5_link.h5")))


@case(5, "a list naming a file and a hard link to it")
def c_list_hardlink(x):
    return list_case(x, "hard", "jets.h5\nc5_hard.h5\n", lambda: os.link(x.data, x.path("c5_hard.h5")))


@case(5, "a list naming a file and a copy of it")
def c_list_copy(x):
    return list_case(x, "copy", "jets.h5\nc5_copy.h5\n", lambda: shutil.copy(x.data, x.path("c5_copy.h5")))


@case(5, "a list with a byte-order mark and CRLF line ends")
def c_list_bom(x):
    lst = x.path("c5_bom.txt")
    open(lst, "wb").write(b"\xef\xbb\xbfjets.h5\r\n")
    r = x.train(x.path("c5_bom"), data=lst, epochs=1)
    return ("ok", "trained") if r.code == 0 else failed_to_work(r)


@case(5, "a re-chunked copy gets the same validation and test jets")
def c_split_rechunked(x):
    files, _ = layouts(x)
    splits = []
    for data in (x.data, files["rechunked"]):
        out = x.path("c5_split_%d.h5" % len(splits))
        x.eval(x.best(), "--split", "val", "--predictions", out, data=data)
        splits.append(set(preds(out)))
    return ok_if(splits[0] == splits[1], "validation jets equal: %s" % (splits[0] == splits[1]))


# ---- 6: stuck ranks ----

def sigstop(x, which):
    """a frozen rank: the build's shortest limit for it (3 s), --peer-timeout where it has
    one, else --watchdog; named by its rank and host in either build's message"""
    out = x.path("c6_%d" % which)
    wd = ["--peer-timeout", "3"] if x.has("--peer-timeout") else ["--watchdog", "3"] if x.has("--watchdog") else []
    log = open(x.path("c6_%d.log" % which), "w")
    p = subprocess.Popen(MPIRUN + ["-np", "2", x.exe("e2e-train"), "--data", x.data, "--out", out, "--epochs", "300",
                                   "--batch", "16", "--log-every", "1"] + wd, env=ENV, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    t0 = time.time()
    while time.time() - t0 < 60 and "step 3/" not in open(log.name).read():
        time.sleep(0.1)
    time.sleep(3)
    ranks = sorted(int(v) for v in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True,
                                                   text=True).stdout.split())
    os.kill(ranks[which], signal.SIGSTOP)
    t0 = time.time()
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        kill_group(p)
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        log.close()
        return "hang", "still running 60 s after SIGSTOP on rank %d" % which
    log.close()
    text = open(log.name).read()
    named = re.search(r"watchdog: rank %d .*\(host [^)]+\)|no heartbeat from rank %d on \S+" % (which, which), text)
    if named:
        return "clear error", "ended %.1f s later, exit %d: %s" % (time.time() - t0, p.returncode, named.group(0)[:90])
    return "unclear message", "ended, exit %d, without naming the rank" % p.returncode


@case(6, "SIGSTOP on rank 1 during training")
def c_stop1(x):
    return sigstop(x, 1)


@case(6, "SIGSTOP on rank 0 during training")
def c_stop0(x):
    return sigstop(x, 0)


# ---- 7: messages ----

@case(7, "e2e-eval on data of another channel count")
def c_eval_channels(x):
    r = x.eval(x.best(), data=x.synth("c7a.h5", 300, channels=8))
    return judge(r, [r"8 channels", r"3"])


@case(7, "resume on data of another channel count")
def c_resume_channels(x):
    d = stopped(x, "c7b")
    r = x.train(d, "--resume", "auto", data=x.synth("c7b.h5", 300, channels=8), epochs=2)
    return judge(r, [r"8 channels", r"3"])


@case(7, "e2e-eval's default batch on a small file")
def c_eval_small(x):
    r = x.eval(x.best(), data=x.synth("c7c.h5", 80))
    return ("ok", "evaluated") if r.code == 0 else failed_to_work(r)


@case(7, "a folder as --data")
def c_data_folder(x):
    os.makedirs(x.path("c7d"), exist_ok=True)
    return judge(x.train(x.path("c7d_run"), data=x.path("c7d")), [r"folder"])


@case(7, "a list naming a folder")
def c_list_folder(x):
    os.makedirs(x.path("c7e"), exist_ok=True)
    open(x.path("c7e.txt"), "w").write("jets.h5\nc7e\n")
    return judge(x.train(x.path("c7e_run"), data=x.path("c7e.txt")), [r"c7e", r"folder"])


@case(7, "the checkpoint given as --data")
def c_ckpt_as_data(x):
    return judge(x.eval(x.best(), data=x.best()), [r"checkpoint, not|not a jet file"])


@case(7, "the data given as --checkpoint")
def c_data_as_ckpt(x):
    return judge(x.eval(x.data), [r"not an e2e-ddp checkpoint"])


@case(7, "a folder as --checkpoint")
def c_ckpt_folder(x):
    os.makedirs(x.path("c7h"), exist_ok=True)
    return judge(x.eval(x.path("c7h")), [r"folder"])


@case(7, "e2e-synth --out a folder")
def c_synth_folder(x):
    os.makedirs(x.path("c7i"), exist_ok=True)
    return judge(run(MPIRUN + ["-np", "2", x.exe("e2e-synth"), "--out", x.path("c7i"), "--samples", "10"]), [r"folder"])


@case(7, "e2e-eval --predictions in a missing folder")
def c_pred_missing_dir(x):
    return judge(x.eval(x.best(), "--predictions", x.path("nowhere", "p.h5")), [r"nowhere", r"does not exist|No such"])


@case(7, "e2e-data info on a folder")
def c_info_folder(x):
    os.makedirs(x.path("c7k"), exist_ok=True)
    return judge(run([x.exe("e2e-data"), "info", x.path("c7k")]), [r"folder"])


@case(7, "--resume of a missing checkpoint")
def c_resume_missing(x):
    return judge(x.train(x.path("c7l"), "--resume", x.path("nope.h5")), [r"nope\.h5"])


@case(7, "a batch above the training share")
def c_batch_big(x):
    return judge(x.train(x.path("c7m"), "--batch", "400"), [r"batch"])


@case(7, "a truncated dataset")
def c_truncated(x):
    p = x.path("c7n.h5")
    with open(x.data, "rb") as s, open(p, "wb") as d:
        d.write(s.read(os.path.getsize(x.data) // 2))
    return judge(x.train(x.path("c7n_run"), data=p), [r"c7n\.h5", r"truncated"])


# ---- 8: ranks writing one file together, one rank's write failing (issue 28) ----

def fault_lib(x):
    """tests/fault_write.c built for this battery (the same library for either build)"""
    lib = x.path("libfault_write.so")
    if not os.path.exists(lib):
        src = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fault_write.c")
        subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", lib, src, "-ldl"], check=True)
    return lib


def mpirun_env(cmd, env, limit=60):
    """2 ranks with env's variables given to the ranks only (mpirun -x NAME=VALUE)"""
    return run(MPIRUN[:1] + [a for k in env for a in ("-x", "%s=%s" % (k, env[k]))] + MPIRUN[1:] + ["-np", "2"] + cmd,
               limit=limit)


def write_fault(x, name, cmd_of, rank, where="middle", err="EIO"):
    """cmd_of(out) under 2 ranks: count the calls on the temporary file, then fail rank's
    calls from the middle one (or its first, or its last) on, as a file system gone bad"""
    folder = x.path(name)
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, "out.h5")
    counts = x.path(name + ".counts")
    r = mpirun_env(cmd_of(out), {"LD_PRELOAD": fault_lib(x), "E2E_FAULT_COUNT": counts})
    if r.code != 0 or not os.path.exists(counts):
        return failed_to_work(r)
    calls = {int(a): int(b) for a, b in (l.split() for l in open(counts))}
    n = {"first": 1, "middle": max(1, calls.get(rank, 1) // 2), "last": calls.get(rank, 1)}[where]
    os.unlink(out)
    r = mpirun_env(cmd_of(out), {"LD_PRELOAD": fault_lib(x), "E2E_FAULT_RANK": str(rank), "E2E_FAULT_CALL": str(n),
                                 "E2E_FAULT_MODE": "from", "E2E_FAULT_ERRNO": err})
    left = os.listdir(folder)
    if left and not r.timed_out and not crashed(r):
        return "garbage accepted", "left %s (exit %s)" % (left, r.code)
    return judge(r, [r"out\.h5", re.escape(os.strerror(getattr(errno, err))) + "|write|HDF5"])


def synth_cmd(x, layout, n=300):
    return lambda out: [x.exe("e2e-synth"), "--out", out, "--samples", str(n), "--size", "16", "--channels", "3",
                        "--layout", layout]


def convert_cmd(x, layout):
    src = x.path("c8_src.h5")
    if not os.path.exists(src):
        x.synth("c8_src.h5", 300)
    return lambda out: [x.exe("e2e-data"), "convert", "--layout", layout, src, out]


for _layout in ("sparse", "dense"):
    for _rank in (0, 1):
        case(8, "e2e-synth --layout %s: rank %d's writes fail from the middle on (EIO)" % (_layout, _rank))(
            lambda x, l=_layout, r=_rank: write_fault(x, "c8_synth_%s_%d" % (l, r), synth_cmd(x, l), r))
case(8, "e2e-synth --layout sparse: rank 1's last write fails (ENOSPC)")(
    lambda x: write_fault(x, "c8_last", synth_cmd(x, "sparse"), 1, "last", "ENOSPC"))
case(8, "e2e-synth --layout sparse: rank 1 cannot open the file (EACCES)")(
    lambda x: write_fault(x, "c8_open", synth_cmd(x, "sparse"), 1, "first", "EACCES"))
case(8, "e2e-data convert --layout sparse: rank 1's writes fail from the middle on (EDQUOT)")(
    lambda x: write_fault(x, "c8_conv_s", convert_cmd(x, "sparse"), 1, "middle", "EDQUOT"))
case(8, "e2e-data convert --layout dense: rank 0's writes fail from the middle on (EIO)")(
    lambda x: write_fault(x, "c8_conv_d", convert_cmd(x, "dense"), 0))


def nearly_full(x, name, cmd):
    with full(x, name, "1000k") as mnt:
        r = run(MPIRUN + ["-np", "2"] + cmd(os.path.join(mnt, "x.h5")), env={"E2E_SPACE_CHECK": "0"}, limit=60)
        return on_full_disk(r, os.listdir(mnt), [r"x\.h5", r"space|full"])


@case(8, "e2e-synth --layout sparse on a nearly full disk (6000 jets)")
def c_full_sparse_synth(x):
    return nearly_full(x, "full_c8a", lambda out: [x.exe("e2e-synth"), "--out", out, "--samples", "6000", "--size",
                                                   "32", "--channels", "3", "--layout", "sparse"])


@case(8, "e2e-data convert --layout sparse on a nearly full disk")
def c_full_sparse_convert(x):
    src = x.synth("c8b.h5", 6000)
    return nearly_full(x, "full_c8b", lambda out: [x.exe("e2e-data"), "convert", "--layout", "sparse", src, out])


@case(8, "e2e-synth --layout sparse: the size estimated up front")
def c_sparse_estimate(x):
    with full(x, "full_c8c", "1000k") as mnt:
        r = run(MPIRUN + ["-np", "2", x.exe("e2e-synth"), "--out", os.path.join(mnt, "x.h5"), "--samples", "6000",
                          "--size", "32", "--channels", "3", "--layout", "sparse"], limit=60)
        return on_full_disk(r, os.listdir(mnt), [r"needs about"])


# ---- 9: inputs that claim what they are not, records that say what did not happen ----

def h5_copy(x, name, images=None, attrs=None, drop=()):
    """a copy of the case's jet file as name: test_claims.copy_with"""
    return copy_with(x.data, x.path(name), images, attrs, drop)


def channel_last(x, name, c, size):
    src = x.synth(name + "_src.h5", 200, channels=max(c, 3))
    with h5py.File(src, "r") as f:
        xs = f["X_jet"][()][:, :c]
    dst = x.path(name + ".h5")
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        g["X_jet"] = np.ascontiguousarray(np.moveaxis(xs, 1, 3))
        for k in ("m", "pt", "ieta", "iphi"):
            g[k] = f[k][()]
    return judge(x.train(x.path(name + "_run"), data=dst), [r"channel-last"])


case(9, "channel-last (N, 32, 32, 8) without a channels attribute")(lambda x: channel_last(x, "c9a", 8, 32))
case(9, "channel-last (N, 32, 32, 5) without a channels attribute")(lambda x: channel_last(x, "c9b", 5, 32))
case(9, "channel-last (N, 32, 32, 1) without a channels attribute")(lambda x: channel_last(x, "c9c", 1, 32))


@case(9, "every pixel negative")
def c_all_negative(x):
    return judge(x.train(x.path("c9d_run"), data=h5_copy(x, "c9d.h5", lambda a: -np.abs(a) - 0.01)),
                 [r"c9d\.h5", r"negative"])


@case(9, "only zeros and negative pixels")
def c_zero_negative(x):
    return judge(x.train(x.path("c9e_run"), data=h5_copy(x, "c9e.h5", lambda a: np.where(a > 0, -a, 0))),
                 [r"c9e\.h5", r"negative"])


@case(9, "one channel of negative energies: warned about")
def c_negative_channel(x):
    def flip(a):
        b = a.copy()
        b[:, 1] = -b[:, 1]
        return b
    r = x.train(x.path("c9f_run"), data=h5_copy(x, "c9f.h5", flip))
    return ok_if(r.code == 0 and re.search(r"warning:.*channel 1.*negative", r.err) is not None,
                 "trained, warned: %s" % bool(re.search(r"warning:.*negative", r.err)), r)


@case(9, "pixels of 3e12: warned about")
def c_huge_pixels(x):
    def huge(a):
        b = a.copy()
        b[::7, 2, 3, 3] = 3e12
        return b
    r = x.train(x.path("c9g_run"), data=h5_copy(x, "c9g.h5", huge))
    return ok_if(r.code == 0 and re.search(r"warning:.*above", r.err) is not None,
                 "trained, warned: %s" % bool(re.search(r"warning:.*above", r.err)), r)


case(9, "a format attribute naming a checkpoint")(
    lambda x: judge(x.train(x.path("c9h_run"), data=h5_copy(x, "c9h.h5", attrs={"format": "e2e-ddp checkpoint"})),
                    [r"c9h\.h5", r"format"]))
case(9, "a format attribute naming another format")(
    lambda x: judge(x.train(x.path("c9i_run"), data=h5_copy(x, "c9i.h5", attrs={"format": "hdf5-images"})),
                    [r"c9i\.h5", r"format"]))
case(9, "our format at version 99")(
    lambda x: judge(x.train(x.path("c9j_run"), data=h5_copy(x, "c9j.h5", attrs={"format_version": np.int32(99)})),
                    [r"c9j\.h5", r"version 99"]))
case(9, "our format at version 0")(
    lambda x: judge(x.train(x.path("c9k_run"), data=h5_copy(x, "c9k.h5", attrs={"format_version": np.int32(0)})),
                    [r"c9k\.h5", r"version 0"]))


@case(9, "config.json of a resumed run records what the checkpoint fixed")
def c_resume_config(x):
    d = stopped(x, "c9l")
    before = json.load(open(os.path.join(d, "config.json")))
    r = x.train(d, "--resume", "auto", "--lr", "0.5", "--seed", "9", "--blocks", "1", "--weight-decay", "0.1",
                epochs=2)
    now = json.load(open(os.path.join(d, "config.json")))
    wrong = {k: now[k] for k in ("lr", "seed", "blocks", "weight_decay") if now[k] != before[k]}
    return ok_if(r.code == 0 and not wrong, "config.json records %s" % (wrong or "the checkpoint's values"), r)


# ---- 10: messages ----

@case(10, "a file-list line of 519 characters (./././...)")
def c_long_line(x):
    os.makedirs(x.path("c10a"), exist_ok=True)
    os.symlink(x.data, x.path("c10a", "jets.h5"))
    lst = x.path("c10a", "l.txt")
    open(lst, "w").write("./" * 256 + "jets.h5\n")
    r = x.train(x.path("c10a_run"), data=lst)
    return ("ok", "trained") if r.code == 0 else failed_to_work(r)


@case(10, "a data path of 300 characters")
def c_long_path(x):
    deep = x.path("c10b")
    while len(deep) < 300:
        deep = os.path.join(deep, "a_long_folder_name_%d" % len(deep))
    os.makedirs(deep)
    os.symlink(x.data, os.path.join(deep, "jets.h5"))
    return judge(x.train(x.path("c10b_run"), data=os.path.join(deep, "jets.h5")), [r"path", r"long|characters"])


@case(10, "a 1-jet file: what to do about the split")
def c_one_jet(x):
    return judge(x.train(x.path("c10c_run"), data=x.synth("c10c.h5", 1)), [r"split", r"at least \d+ jets"])


@case(10, "mpirun SIGKILLed: its ranks end at once, writing nothing more")
def c_launcher_killed(x):
    out, errf = x.path("c10d"), x.path("c10d.err")
    train = "exec %s --data %s --out %s --epochs 300 --batch 16 --log-every 100000 2>>%s" % (
        x.exe("e2e-train"), x.data, out, errf)
    ck = os.path.join(out, "checkpoints")
    ranks, killed, took = kill_launcher_midrun(MPIRUN, ENV, train, ck, wait_s=90)
    late = written_after(ck, killed)
    said = "launcher" in open(errf).read() if os.path.exists(errf) else False
    if late:
        return "data lost", "orphans wrote %s after the kill (ended %.1f s later)" % (late, took)
    if took > 2 or not said:
        return "unclear message", "orphans ended %.1f s after the kill, %s" % (took, "saying why" if said else "silently")
    return "clear error", "orphans ended %.2f s after the kill, saying why" % took


# ---- 11: memory safety on malformed files (issue 28's fuzzing findings) ----

@case(11, "a checkpoint whose scalar attribute is an array")
def c_ckpt_array_attr(x):
    ck = x.path("c11a.h5")
    shutil.copy(x.best(), ck)
    with h5py.File(ck, "r+") as f:
        del f.attrs["epoch"]
        f.attrs["epoch"] = np.arange(64, dtype=np.int64)
    return judge(x.eval(ck), [r"c11a\.h5"])


@case(11, "a checkpoint claiming a model of 1.9e9 channels")
def c_ckpt_channels(x):
    ck = x.path("c11b.h5")
    shutil.copy(x.best(), ck)
    with h5py.File(ck, "r+") as f:
        f.attrs["in_channels"] = np.int64(1895825408)
    return judge(x.eval(ck), [r"c11b\.h5"])


@case(11, "a sparse file whose shape attribute holds 8 values")
def c_sparse_shape(x):
    sp = x.path("c11c.h5")
    r = run(MPIRUN + ["-np", "2", x.exe("e2e-data"), "convert", "--layout", "sparse", x.data, sp])
    if r.code != 0:
        return "not run", "no sparse copy: %s" % last_line(r)
    with h5py.File(sp, "r+") as f:
        shape = f["X_jet"].attrs["shape"]
        del f["X_jet"].attrs["shape"]
        f["X_jet"].attrs["shape"] = np.concatenate([shape, shape]).astype(np.int64)
    return judge(x.train(x.path("c11c_run"), data=sp), [r"c11c\.h5", r"shape"])


@case(11, "a jet mass of 1e28 GeV among plausible ones")
def c_huge_mass(x):
    src = x.path("c11d.h5")
    shutil.copy(x.data, src)
    with h5py.File(src, "r+") as f:
        m = f["m"][()]
        m[5] = 4e28
        f["m"][...] = m
    r = x.train(x.path("c11d_run"), data=src)
    return ok_if(r.code == 0, "trained (the mass in the last unbiasing bin)", r) if r.code == 0 else judge(r, [r"c11d"])


def run_all(ctx, only=None):
    results = []
    for cls, name, fn in CASES:
        if only and not re.search(only, name):
            continue
        t0 = time.time()
        try:
            outcome, note = fn(ctx)
        except Exception as e:  # a case that could not be set up says so
            outcome, note = "not run", "%s: %s" % (type(e).__name__, e)
        results.append({"class": cls, "case": name, "outcome": outcome, "note": note, "s": round(time.time() - t0, 1)})
        print("%d  %-58s %-17s %5.1f s  %s" % (cls, name, outcome, time.time() - t0, note[:110]), flush=True)
    return results


def table(before, after):
    b = {r["case"]: r for r in before}
    a = {r["case"]: r for r in after}
    names = [r["case"] for r in after] + [n for n in b if n not in a]
    print("| outcome | before | after |")
    print("| --- | ---: | ---: |")
    print("| cases tried | %d | %d |" % (len(before), len(after)))
    for o in OUTCOMES:
        nb, na = sum(r["outcome"] == o for r in before), sum(r["outcome"] == o for r in after)
        if nb or na:
            print("| %s | %d | %d |" % (o, nb, na))
    print()
    print("| class | case | before | after |")
    print("| ---: | --- | --- | --- |")
    for n in names:
        r = a.get(n) or b.get(n)
        print("| %d | %s | %s | %s |" % (r["class"], n, b.get(n, {}).get("outcome", "-"), a.get(n, {}).get("outcome", "-")))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", help="the build folder (its launch/ holds the programs)")
    ap.add_argument("--source", help="its source tree (data/e2e-convert); default: the build's parent")
    ap.add_argument("--json", help="write the outcomes here")
    ap.add_argument("--only", help="cases whose name matches this regular expression")
    ap.add_argument("--table", nargs=2, metavar=("BEFORE", "AFTER"), help="print the table of two --json files")
    a = ap.parse_args()
    if a.table:
        table(json.load(open(a.table[0])), json.load(open(a.table[1])))
        return 0
    if not a.build:
        ap.error("--build or --table")
    ctx = Ctx(a.build, a.source or os.path.dirname(os.path.abspath(a.build)))
    try:
        results = run_all(ctx, a.only)
    finally:
        subprocess.run(["umount", "-l"] + [os.path.join(ctx.tmp, d) for d in os.listdir(ctx.tmp) if d.startswith("full")],
                       capture_output=True)
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=1)
    counts = {o: sum(r["outcome"] == o for r in results) for o in OUTCOMES}
    print("cases %d: %s" % (len(results), ", ".join("%s %d" % kv for kv in counts.items() if kv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

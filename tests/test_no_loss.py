#!/usr/bin/env python3
"""Nothing lost, nothing silently wrong: the run folder, outputs, resume, HDF5 storage
layouts, file lists, stuck ranks and messages, end to end under real mpirun (2 ranks,
CPU) on small datasets made by e2e-synth and h5py. One test per subcommand:

  run_folder   a run folder belongs to one run: a fresh run in a finished run's folder is
               refused and changes nothing; --overwrite; a rewind supersedes the newer
               checkpoints and the checkpoint just written survives pruning; a second job
               on the folder is refused naming its holder; dead writers' files removed
  outputs      e2e-eval, e2e-synth, e2e-convert never write over an input (a path, a
               symbolic or hard link, the checkpoint) or a file of another kind; a size
               check refuses a file larger than the free space
  full_disk    a real full file system (a small tmpfs; skipped where mount is refused):
               every writer exits non-zero with a clear message, no crash, no partial file,
               the previous file kept
  resume_data  a checkpoint refuses other data (other seed, N, order) naming both, accepts
               the same jets moved, warns for an old checkpoint; the options report; e2e-eval
               takes the checkpoint's zero suppression
  layouts      external link, external raw storage, virtual dataset, user blocks, gzip,
               big-endian, a re-chunked copy, the sparse copy and its X_jet group behind an
               external link, its arrays behind external links, virtual, with a user block,
               gzip: the same predictions as the plain file; an unavailable filter named
               (dense and sparse); compact storage read right
  file_list    a file listed twice (name, ./name, symbolic link, hard link, copy, sparse
               copy) refused; a byte-order mark and CRLF line ends accepted
  split_rechunked  a re-chunked copy and the sparse copy get the same validation and test
               jets
  watchdog     SIGSTOP on one rank (either) ends every rank within seconds of --peer-timeout
               with exit 76, naming it; a rank stuck in its own work, a deadlock: exit 3;
               long evaluation, checkpoint and first step do not fire it
  messages     another channel count, a folder or a checkpoint as data, the default eval
               batch on a small file, --out a file

usage: test_no_loss.py TEST BUILD_DIR
"""
import hashlib
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import (ENV, MPIRUN, Failure, Skip, alive, check, rank_pids, run, run_test,  # noqa: E402
                            same_weights)

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
STEPS = 16  # 540 training jets / (2 ranks x batch 16)


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-noloss-")
        self.data = self.synth("jets.h5", 600, seed=11)

    def exe(self, name):
        if name == "watchdog_probe":
            return os.path.join(self.build, "tests", name)
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def synth(self, name, n, seed=11, channels=3, size=32, expect=0, extra=()):
        out = self.path(name)
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", out, "--samples", str(n), "--size", str(size),
                      "--channels", str(channels), "--seed", str(seed)] + list(extra), expect=expect)
        return out

    def train(self, out, *extra, np_=2, expect=0, epochs=2, data=None, timeout=240, env=None):
        cmd = MPIRUN + ["-np", str(np_), self.exe("e2e-train"), "--data", data or self.data, "--out", out,
                        "--epochs", str(epochs), "--batch", "16", "--seed", "5", "--log-every", "1000"] + list(extra)
        return run_env(cmd, expect=expect, timeout=timeout, env=env)

    def eval(self, ckpt, *extra, expect=0, data=None, np_=2, cwd=None, env=None):
        cmd = MPIRUN + ["-np", str(np_), self.exe("e2e-eval"), "--checkpoint", ckpt, "--data", data or self.data] + \
            list(extra)
        return run_env(cmd, expect=expect, cwd=cwd, env=env)


def run_env(cmd, expect=None, timeout=240, env=None, cwd=None):
    e = dict(ENV, **(env or {}))
    if env:  # mpirun passes these on to the ranks
        cmd = cmd[:1] + [x for k in env for x in ("-x", k)] + cmd[1:]
    p = subprocess.run(cmd, env=e, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    if expect is not None and p.returncode != expect:
        print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
        raise Failure("%s exited %d, expected %d" % (" ".join(cmd[-12:]), p.returncode, expect))
    return p


def ours(p):
    """our message lines (mpirun adds its banners around them)"""
    keep = ("error:", "warning:", "watchdog:", "e2e-train:", "e2e-eval:", "e2e-synth:", "e2e-data:", "e2e-convert:",
            "note:")
    return "\n".join(l for l in p.stderr.splitlines() + p.stdout.splitlines() if any(k in l for k in keep))


def digest(path):
    """the file's content as an MD5 (None when there is no file)"""
    try:
        with open(path, "rb") as f:
            return hashlib.md5(f.read()).hexdigest()
    except OSError:
        return None


def tree(folder):
    """every file under folder (but the lock) and its content's digest"""
    out = {}
    for root, _, files in os.walk(folder):
        for n in files:
            if n != "e2e-train.lock":
                p = os.path.join(root, n)
                out[os.path.relpath(p, folder)] = digest(p)
    return out


def crashed(p):
    text = p.stdout + p.stderr
    return p.returncode in (139, 134, -11, -6) or "Segmentation fault" in text or "signal 11" in text or \
        "Signal:" in text


def refused(p, *words, what=""):
    msg = ours(p)
    check(p.returncode not in (0, 124) and not crashed(p) and all(w in msg for w in words),
          "%s refused (exit %d) naming %s: %s" % (what, p.returncode, words, msg.strip()[:400]))


def metrics_epochs(run_dir):
    rows = open(os.path.join(run_dir, "metrics.csv")).read().splitlines()[1:]
    return [int(r.split(",")[0]) for r in rows]


def global_step(ckpt):
    with h5py.File(ckpt, "r") as f:
        return int(f.attrs["global_step"])


# ---- class 1: the run folder ----

def t_run_folder(e):
    a = e.path("run")
    e.train(a)
    before = tree(a)
    p = e.train(a, expect=1)
    refused(p, "holds another run", "--overwrite", "--resume auto", what="a fresh run in a finished run's folder")
    check(tree(a) == before, "the finished run's files are all unchanged")
    p = e.train(a, "--resume", "none", expect=1)
    refused(p, "holds another run", what="--resume none in a finished run's folder")
    open(os.path.join(a, "notes.txt"), "w").write("mine\n")
    p = e.train(a, "--overwrite", "--seed", "6", epochs=1)
    check(metrics_epochs(a) == [1], "--overwrite: metrics.csv holds only the new run's epoch")
    check(sorted(os.listdir(os.path.join(a, "checkpoints"))) == ["best.h5", "ckpt-0000000016.h5"],
          "--overwrite: only the new run's checkpoints: %s" % os.listdir(os.path.join(a, "checkpoints")))
    check(open(os.path.join(a, "notes.txt")).read() == "mine\n", "--overwrite keeps files that are not the run's")
    p = e.train(a, "--overwrite", "--resume", "auto", expect=2)
    refused(p, "--overwrite and --resume auto", what="--overwrite with --resume auto")
    # a folder holding only other files (a Slurm log) is free for a fresh run
    b = e.path("slurm_out")
    os.makedirs(b)
    open(os.path.join(b, "slurm-7.out"), "w").write("log\n")
    e.train(b, epochs=1)
    check(os.path.exists(os.path.join(b, "slurm-7.out")), "a fresh run keeps the Slurm log in its folder")
    rewind_and_prune(e)
    leftovers(e)
    second_job(e)


def rewind_and_prune(e):
    """resuming at an earlier checkpoint: the later ones are superseded, so the stop
    checkpoint just written survives pruning (--keep 1) and --resume auto continues it"""
    c = e.path("rewind")
    e.train(c, epochs=3)
    ck = os.path.join(c, "checkpoints")
    p = e.train(c, "--resume", os.path.join(ck, "ckpt-0000000016.h5"), "--keep", "1", "--stop-after-steps", "5",
                epochs=3, expect=75)
    check("not on the resumed run's path" in p.stdout, "the later checkpoints are named as superseded")
    names = sorted(os.listdir(ck))
    check("ckpt-0000000021.h5" in names, "the stop checkpoint just written (step 21) is kept: %s" % names)
    check("ckpt-0000000048.h5" not in names and "ckpt-0000000048.h5.superseded" in names,
          "the abandoned branch's step-48 checkpoint was renamed, not left to outrank step 21")
    p = e.train(c, "--resume", "auto", "--keep", "1", epochs=3)
    check("resumed from %s/ckpt-0000000021.h5" % ck in p.stdout, "--resume auto continues the stop checkpoint: %s"
          % [l for l in p.stdout.splitlines() if "resumed" in l])
    check(metrics_epochs(c) == [1, 2, 3], "metrics.csv holds each epoch once: %s" % metrics_epochs(c))


def leftovers(e):
    """temporary files of writers that died are removed once the folder is locked; other
    files are not"""
    d = e.path("leftovers")
    os.makedirs(os.path.join(d, "checkpoints"))
    junk = [".ckpt-0000000099.h5.partial-12345", "ckpt-0000000099.h5.tmp-12345", ".best.h5.partial-777"]
    for n in junk:
        open(os.path.join(d, "checkpoints", n), "wb").write(b"\0" * 100)
    for n in ("config.json.tmp", ".metrics.csv.partial-4242"):
        open(os.path.join(d, n), "w").write("x")
    open(os.path.join(d, "mine.tmp"), "w").write("keep me")
    e.train(d, epochs=1)
    left = [n for n in junk if os.path.exists(os.path.join(d, "checkpoints", n))]
    left += [n for n in ("config.json.tmp", ".metrics.csv.partial-4242") if os.path.exists(os.path.join(d, n))]
    check(not left, "dead writers' temporary files are removed: left %s" % left)
    check(os.path.exists(os.path.join(d, "mine.tmp")), "a file that is no writer's stays")


def second_job(e):
    """two jobs on one --out: the second is refused, naming the first's host and pid"""
    d = e.path("shared")
    log = open(e.path("first.log"), "w")
    first = subprocess.Popen(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", d, "--epochs",
                                       "300", "--batch", "16", "--log-every", "1"],
                             env=ENV, stdout=log, stderr=subprocess.STDOUT)
    try:
        t0 = time.time()
        while time.time() - t0 < 120 and "step 1/" not in open(e.path("first.log")).read():
            time.sleep(0.1)
        pids = rank_pids(first.pid)
        p = e.train(d, "--resume", "auto", expect=1, timeout=120)
        msg = ours(p)
        check("in use by another run" in msg and "host %s" % socket.gethostname() in msg,
              "the second job is refused naming the host: %s" % msg[:300])
        holder = re.search(r"pid (\d+)", msg)
        check(holder is not None and int(holder.group(1)) in pids, "it names the holder's pid %s (ranks %s)"
              % (holder.group(1) if holder else None, pids))
        check(first.poll() is None, "the first job goes on")
    finally:
        first.send_signal(signal.SIGUSR1)  # mpirun forwards it to the ranks
        code = first.wait(timeout=120)
        log.close()
    check(code == 75, "the first job stops with a checkpoint (exit %d)" % code)
    epochs = metrics_epochs(d) if os.path.exists(os.path.join(d, "metrics.csv")) else []
    check(epochs == list(range(1, len(epochs) + 1)), "metrics.csv is the first job's alone: %s" % epochs)


# ---- class 2: outputs ----

def trained(e, name="base", epochs=1, *extra):
    d = e.path(name)
    if not os.path.exists(os.path.join(d, "results.json")):
        e.train(d, *extra, epochs=epochs)
    return d, os.path.join(d, "checkpoints", "best.h5")


def t_outputs(e):
    d, best = trained(e)
    other = os.path.join(d, "checkpoints", "ckpt-0000000016.h5")
    link, hard = e.path("link.h5"), e.path("hard.h5")
    os.symlink(e.data, link)
    os.link(e.data, hard)
    keep = {p: digest(p) for p in (e.data, best, other)}
    for target, words in ((e.data, ["--data", "input"]), (link, ["--data", "input"]), (hard, ["--data", "input"]),
                          (best, ["--checkpoint", "input"]), (other, ["e2e-ddp checkpoint"])):
        p = e.eval(best, "--predictions", target, expect=1)
        refused(p, *words, what="--predictions %s" % os.path.basename(target))
    p = e.eval(best, "--metrics", hard, expect=1)
    refused(p, "--metrics", "input", what="--metrics over a hard link to the data")
    cfg = os.path.join(d, "config.json")
    keep[cfg] = digest(cfg)
    p = e.eval(best, "--metrics", cfg, expect=1)
    refused(p, "not an e2e-eval metrics file", what="--metrics over another JSON file")
    check(all(digest(p) == h for p, h in keep.items()), "no input and no other file changed")
    p = e.eval(best, "--predictions", e.path("same"), "--metrics", e.path("same"), expect=1)
    refused(p, "both --predictions and --metrics", what="one file for both outputs")
    p = e.eval(best, "--predictions", e.path("nowhere/p.h5"), expect=1)
    refused(p, "does not exist", what="--predictions in a missing folder")
    pred, met = e.path("p.h5"), e.path("m.json")
    for _ in range(2):  # the second run replaces its own outputs
        e.eval(best, "--predictions", pred, "--metrics", met)
    with h5py.File(pred, "r") as f:
        check(f.attrs["format"] == b"e2e-ddp predictions" or f.attrs["format"] == "e2e-ddp predictions",
              "the prediction file says what it is")
    check(not [n for n in os.listdir(e.tmp) if ".partial-" in n], "no temporary file is left")
    synth_outputs(e, best)
    convert_outputs(e)


def synth_outputs(e, best):
    real = e.path("real.h5")
    shutil.copy(e.data, real)
    with h5py.File(real, "r+") as f:
        f.attrs["source"] = "parquet: top_gun_0.parquet"
    for target, words in ((real, ["a jet file of real data"]), (best, ["another kind of HDF5 file"]),
                          (e.path("notes.txt"), ["not an HDF5 file"])):
        if not os.path.exists(target):
            open(target, "w").write("notes\n")
        h = digest(target)
        p = run_env(MPIRUN + ["-np", "2", e.exe("e2e-synth"), "--out", target, "--samples", "10"], expect=1)
        refused(p, *words, what="e2e-synth over %s" % os.path.basename(target))
        check(digest(target) == h, "%s unchanged" % os.path.basename(target))
    e.synth("again.h5", 20)
    e.synth("again.h5", 30)  # its own earlier file is replaced
    with h5py.File(e.path("again.h5"), "r") as f:
        check(f["m"].shape == (30,), "e2e-synth replaced its own earlier file")
    t0 = time.time()
    p = run_env(MPIRUN + ["-np", "2", e.exe("e2e-synth"), "--out", e.path("huge.h5"), "--samples", "1000000000"],
                expect=1)
    refused(p, "needs about", "free", what="e2e-synth of 500 TB")
    check(time.time() - t0 < 60 and not os.path.exists(e.path("huge.h5")), "refused before writing anything")


def convert_outputs(e):
    conv = os.path.join(TOP, "data", "e2e-convert")
    venv = os.environ.get("E2E_VENV", os.path.join(TOP, ".venv"))
    if not os.access(os.path.join(venv, "bin", "python"), os.X_OK):
        print("note: no converter environment at %s: e2e-convert cases left out" % venv)
        return
    src = e.path("qg.h5")
    qg_source(src, 64)
    hard = e.path("qg_hard.h5")
    os.link(src, hard)
    h = digest(src)
    p = subprocess.run([conv, "-q", "-f", "-o", hard, src], capture_output=True, text=True, env=ENV)
    refused(p, "is both an input and the output", what="e2e-convert -o over a hard link to its input")
    check(digest(src) == h, "the input is unchanged")


def qg_source(path, n, seed=0):
    """an HDF5 source in the quark-gluon layout (channel-last X_jets, m0, pt, y)"""
    r = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f["X_jets"] = r.random((n, 32, 32, 3), dtype=np.float32)
        f["m0"] = r.uniform(10, 400, n).astype(np.float32)
        f["pt"] = r.uniform(400, 600, n).astype(np.float32)
        f["y"] = np.zeros(n, np.float32)


# ---- class 2: a full file system ----

class Tmpfs:
    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise Skip("cannot mount a small tmpfs to fill (%s): run as root to test a full disk"
                          % (p.stderr.strip() or "mount refused"))

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.path])


def fill(folder):
    """takes every free block of folder's file system"""
    fd = os.open(os.path.join(folder, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\1" * 4096) > 0:
            pass
    except OSError:
        pass
    os.close(fd)


def no_partials(folder):
    bad = []
    for root, _, files in os.walk(folder):
        bad += [n for n in files if ".partial-" in n or ".tmp" in n]
    return bad


def t_full_disk(e):
    d, best = trained(e)
    with Tmpfs(e.path("full_train"), "1600k") as mnt:
        out = os.path.join(mnt, "run")
        for env in ({}, {"E2E_SPACE_CHECK": "0"}):
            p = e.train(out, "--overwrite", epochs=3, expect=1, env=env)
            refused(p, "checkpoint not written", what="e2e-train on a full disk %s" % env)
            check("file system" in ours(p), "the message says the file system is full: %s" % ours(p)[-300:])
            check(not no_partials(out), "no temporary file left: %s" % no_partials(out))
            for n in os.listdir(os.path.join(out, "checkpoints")):
                with h5py.File(os.path.join(out, "checkpoints", n), "r") as f:
                    check(int(f.attrs["global_step"]) > 0, "%s is a whole checkpoint" % n)
            kept = "previous one of that name is kept" in ours(p)
            failed = re.search(r"checkpoint not written: (\S+):", ours(p))
            check(failed is not None and kept == os.path.exists(failed.group(1).rstrip(":")),
                  "'the previous one is kept' only where there is one (%s)" % ours(p)[-200:])
    with Tmpfs(e.path("full_eval"), "512k") as mnt:
        pred, met = os.path.join(mnt, "p.h5"), os.path.join(mnt, "m.json")
        e.eval(best, "--predictions", pred, "--metrics", met)
        before = (digest(pred), digest(met))
        fill(mnt)
        for env in ({}, {"E2E_SPACE_CHECK": "0"}):
            p = e.eval(best, "--split", "train", "--predictions", pred, expect=1, env=env)
            refused(p, "p.h5", "nothing was written", what="--predictions on a full disk %s" % env)
            p = e.eval(best, "--metrics", met, expect=1, env=env)
            refused(p, "m.json", "nothing was written", what="--metrics on a full disk %s" % env)
        check((digest(pred), digest(met)) == before, "the earlier prediction and metrics files are kept whole")
        check(not no_partials(mnt), "no temporary file left")
    with Tmpfs(e.path("full_synth"), "600k") as mnt:
        out = os.path.join(mnt, "s.h5")
        for env, words in (({}, ["needs about"]), ({"E2E_SPACE_CHECK": "0"}, ["cannot write", "full"])):
            p = run_env(MPIRUN + ["-np", "2", e.exe("e2e-synth"), "--out", out, "--samples", "600", "--size", "32",
                                  "--channels", "3"], env=env, expect=1)
            refused(p, *words, what="e2e-synth on a full disk %s" % env)
            check(os.listdir(mnt) == [], "nothing left on the file system: %s" % os.listdir(mnt))
    convert_full(e)


def convert_full(e):
    conv = os.path.join(TOP, "data", "e2e-convert")
    if not os.access(os.path.join(os.environ.get("E2E_VENV", os.path.join(TOP, ".venv")), "bin", "python"), os.X_OK):
        print("note: no converter environment: e2e-convert left out")
        return
    src = e.path("qg_big.h5")
    qg_source(src, 400)
    with Tmpfs(e.path("full_convert"), "600k") as mnt:
        for store in ("sparse", "dense"):  # the sparse writer's small chunks stay in HDF5's cache to the end
            for env in ({}, {"E2E_SPACE_CHECK": "0"}):
                p = subprocess.run([conv, "-q", "--store", store, "-o", os.path.join(mnt, "c.h5"), src],
                                   capture_output=True, text=True, env=dict(ENV, **env))
                refused(p, "nothing was written", what="e2e-convert --store %s on a full disk %s" % (store, env))
                check(os.listdir(mnt) == [], "nothing left: %s" % os.listdir(mnt))


# ---- class 3: what a checkpoint was trained on ----

def t_resume_data(e):
    r = e.path("stopped")
    e.train(r, "--stop-after-steps", "5", expect=75)
    ck = os.path.join(r, "checkpoints", "ckpt-0000000005.h5")
    shutil.copy(ck, e.path("ckpt5.h5"))
    other_seed = e.synth("other_seed.h5", 600, seed=12)
    other_n = e.synth("other_n.h5", 500)
    shuffled = shuffled_copy(e.data, e.path("shuffled.h5"))
    for data, words in ((other_seed, ["other masses"]), (other_n, ["500 jets, not 600"]),
                        (shuffled, ["other masses"])):
        p = e.train(r, "--resume", "auto", data=data, expect=1)
        refused(p, ck, os.path.basename(data), "was trained on", what="resume on %s" % os.path.basename(data))
    moved = e.path("moved.h5")
    shutil.copy(e.data, moved)
    p = e.train(r, "--resume", "auto", "--lr", "0.01", "--seed", "9", "--weight-decay", "0.1", data=moved, epochs=3)
    check("resumed from" in p.stdout, "the same jets under another name resume")
    fixed = [l for l in p.stdout.splitlines() if "the checkpoint fixes" in l]
    ignored = [l for l in p.stdout.splitlines() if "ignored on resume" in l]
    changed = [l for l in p.stdout.splitlines() if "from the command line" in l]
    check(fixed and "seed 5" in fixed[0] and "base 0.001" in fixed[0], "the fixed options are printed: %s" % fixed)
    check(ignored and all(w in ignored[0] for w in ("--lr 0.01", "--seed 9", "--weight-decay 0.1")),
          "given fixed options are named as ignored: %s" % ignored)
    check(changed and "--epochs 3 (the run had 2)" in changed[0] and "moved.h5" in changed[0],
          "the options taken from the command line are printed: %s" % changed)
    old_checkpoint(e)
    zero_suppress(e)


def shuffled_copy(src, dst):
    """the same jets in another order"""
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        order = np.random.default_rng(1).permutation(f["m"].shape[0])
        for k in ("X_jet", "m", "pt", "ieta", "iphi"):
            f[k][...] = f[k][()][order]
    return dst


def old_checkpoint(e):
    """a checkpoint from before the fingerprint resumes, with a warning"""
    s = e.path("old_run")
    os.makedirs(os.path.join(s, "checkpoints"))
    old = os.path.join(s, "checkpoints", "ckpt-0000000005.h5")
    shutil.copy(e.path("ckpt5.h5"), old)
    with h5py.File(old, "r+") as f:  # what checkpoints held before the fingerprint
        for k in list(f["data"].attrs):
            if k.startswith("data_") or k in ("zero_suppress", "unbias"):
                del f["data"].attrs[k]
    p = e.train(s, "--resume", "auto", epochs=1)
    check("no dataset fingerprint" in p.stderr, "an old checkpoint resumes with a warning: %s" % ours(p)[:200])


def zero_suppress(e):
    """e2e-eval preprocesses as the run did (its zero suppression, not the default)"""
    d = e.path("zs")
    e.train(d, "--zero-suppress", "0.3", epochs=2)
    best = os.path.join(d, "checkpoints", "best.h5")
    with h5py.File(best, "r") as f:
        stored = float(f["data"].attrs["zero_suppress"])
    check(abs(stored - 0.3) < 1e-6, "the checkpoint stores the zero suppression (%g)" % stored)
    rows = open(os.path.join(d, "metrics.csv")).read().splitlines()[1:]
    best_mae = min(float(r.split(",")[4]) for r in rows)
    p = e.eval(best, "--split", "val")
    mae = float(re.search(r'"mae_gev": ([0-9.]+)', p.stdout).group(1))
    check(abs(mae - best_mae) < 0.01, "e2e-eval reproduces the run's validation MAE %.3f (got %.3f)" % (best_mae, mae))


# ---- class 4: HDF5 storage layouts ----

def file_maker(src, folder):
    """a function base(name, **h5py_file_options) that opens a new file `name` in folder
    holding src's columns and root attributes, for the caller to add X_jet"""
    with h5py.File(src, "r") as f:
        cols = {k: f[k][()] for k in ("m", "pt", "ieta", "iphi")}
        attrs = dict(f.attrs)
    os.makedirs(folder, exist_ok=True)

    def base(name, **kw):
        f = h5py.File(os.path.join(folder, name), "w", **kw)
        for k, v in cols.items():
            f[k] = v
        for k, v in attrs.items():
            f.attrs[k] = v
        return f
    return base


def layout_files(e):
    """copies of the data in every storage HDF5 offers"""
    with h5py.File(e.data, "r") as f:
        X = f["X_jet"][()]
    chunks = (16,) + X.shape[1:]
    base = file_maker(e.data, e.path("lay"))

    with h5py.File(e.path("lay/target.h5"), "w") as t:
        t.create_dataset("X_jet", data=X, chunks=chunks)
    files = {}
    with base("elink.h5") as f:  # the link file's own bytes come first: a decoy
        f.create_dataset("decoy", data=np.full_like(X, 7.0), chunks=chunks)
        f["X_jet"] = h5py.ExternalLink("target.h5", "/X_jet")
    X.tofile(e.path("lay/x.bin"))
    with base("extraw.h5") as f:
        f.create_dataset("X_jet", shape=X.shape, dtype=X.dtype, external=[("x.bin", 0, X.nbytes)])
    with base("vds.h5") as f:
        lay = h5py.VirtualLayout(shape=X.shape, dtype=X.dtype)
        lay[:] = h5py.VirtualSource("target.h5", "X_jet", shape=X.shape)
        f.create_virtual_dataset("X_jet", lay)
    with base("ublock_chunked.h5", userblock_size=4096) as f:
        f.create_dataset("X_jet", data=X, chunks=chunks)
    with base("ublock_contig.h5", userblock_size=512) as f:
        f.create_dataset("X_jet", data=X)
    with base("gzip.h5") as f:
        f.create_dataset("X_jet", data=X, chunks=chunks, compression="gzip", shuffle=True)
    with base("bigendian.h5") as f:
        f.create_dataset("X_jet", data=X.astype(">f4"), chunks=chunks)
    with base("rechunked.h5") as f:
        f.create_dataset("X_jet", data=X, chunks=(50,) + X.shape[1:])
    with base("lzf.h5") as f:
        f.create_dataset("X_jet", data=X, chunks=chunks, compression="lzf")
    for n in ("elink", "extraw", "vds", "ublock_chunked", "ublock_contig", "gzip", "bigendian", "rechunked"):
        files[n] = e.path("lay/%s.h5" % n)
    return files, e.path("lay/lzf.h5")


def sparse_copy(e):
    """the data in the sparse layout (e2e-data convert), made once"""
    out = e.path("jets_sparse.h5")
    if not os.path.exists(out):
        run(MPIRUN + ["-np", "2", e.exe("e2e-data"), "convert", "--layout", "sparse", e.data, out], expect=0)
    return out


def sparse_layout_files(e):
    """copies of the sparse file with the X_jet group or its arrays stored in other ways"""
    src = sparse_copy(e)
    base = file_maker(src, e.path("slay"))
    with h5py.File(src, "r") as f:
        gattrs = dict(f["X_jet"].attrs)
        arrays = {k: f["X_jet"][k][()] for k in ("offsets", "counts", "pos", "value")}

    def group(f, **kw):  # the X_jet group: kw gives an array's storage (a callable) or h5py options
        g = f.create_group("X_jet")
        for k, v in gattrs.items():
            g.attrs[k] = v
        for k, a in arrays.items():
            if callable(kw.get(k)):
                kw[k](g, k, a)
            else:
                g.create_dataset(k, data=a, **(kw.get(k) or {}))
        return g

    with h5py.File(e.path("slay/target.h5"), "w") as t:
        t.create_dataset("decoy", data=np.full(len(arrays["value"]) * 3, 7.0, np.float32))  # other bytes first
        group(t, pos={"chunks": (4096,)}, value={"chunks": (4096,)})
    with base("group_elink.h5") as f:  # the whole X_jet group in the target file
        f.create_dataset("decoy", data=np.full(len(arrays["value"]), 5.0, np.float32))
        f["X_jet"] = h5py.ExternalLink("target.h5", "/X_jet")
    link = lambda g, k, a: g.__setitem__(k, h5py.ExternalLink("target.h5", "/X_jet/" + k))  # noqa: E731
    with base("arrays_elink.h5") as f:  # pos and value behind external links, the index here
        f.create_dataset("decoy", data=np.full(len(arrays["value"]), 5.0, np.float32))
        group(f, pos=link, value=link)

    def virtual(g, k, a):
        lay = h5py.VirtualLayout(shape=a.shape, dtype=a.dtype)
        lay[:] = h5py.VirtualSource("target.h5", "X_jet/" + k, shape=a.shape)
        g.create_virtual_dataset(k, lay)
    with base("value_vds.h5") as f:
        group(f, value=virtual)
    with base("ublock.h5", userblock_size=4096) as f:
        group(f, pos={"chunks": (1000,)}, value={"chunks": (1000,)})
    with base("gzip.h5") as f:
        group(f, value={"compression": "gzip", "shuffle": True})
    with base("lzf.h5") as f:
        group(f, value={"compression": "lzf"})
    files = {"sparse_" + n: e.path("slay/%s.h5" % n) for n in ("group_elink", "arrays_elink", "value_vds", "ublock",
                                                                 "gzip")}
    return files, e.path("slay/lzf.h5")


def predictions(path):
    with h5py.File(path, "r") as f:
        return dict(zip(f["index"][()].tolist(), f["m_pred"][()].tolist()))


def t_layouts(e):
    d, best = trained(e)
    files, lzf = layout_files(e)
    sparse_files, sparse_lzf = sparse_layout_files(e)
    files.update(sparse_files)
    files["sparse"] = sparse_copy(e)
    ref = e.path("ref_pred.h5")
    e.eval(best, "--split", "train", "--predictions", ref)
    want = predictions(ref)
    elsewhere = e.path("elsewhere")
    os.makedirs(elsewhere)
    for name, path in files.items():
        out = e.path("pred_%s.h5" % name)
        p = e.eval(best, "--split", "train", "--predictions", out, data=path, cwd=elsewhere)
        got = predictions(out)
        common = set(got) & set(want)
        differ = [i for i in common if got[i] != want[i]]
        check(len(common) > 300 and not differ, "%s: the same predictions as the plain file on %d jets (%d differ)"
              % (name, len(common), len(differ)))
    p = e.eval(best, data=lzf, expect=1)
    refused(p, "filter 32000", "lzf", "not damaged", what="a filter this HDF5 cannot decode")
    p = e.eval(best, data=sparse_lzf, expect=1)
    refused(p, "X_jet/value", "filter 32000", "lzf", "not damaged",
            what="a filter this HDF5 cannot decode on the sparse X_jet's values")
    p = run([e.exe("e2e-data"), "info", files["vds"]], expect=0)
    check("virtual dataset" in p.stdout, "e2e-data info says how X_jet is stored")
    for name, words in (("sparse_value_vds", "virtual dataset"), ("sparse_gzip", "read through HDF5: filtered"),
                        ("sparse_group_elink", "raw reads"), ("sparse_ublock", "raw reads")):
        p = run([e.exe("e2e-data"), "info", files[name]], expect=0)
        check(words in p.stdout, "e2e-data info of %s says '%s'" % (name, words))
    compact(e)


def compact_file(path):
    """a jet file whose X_jet is stored compact (in the object header, < 64 kB); its
    images"""
    x = np.random.default_rng(3).random((12, 1, 32, 32)).astype(np.float32)
    with h5py.File(path, "w") as f:
        for k in ("m", "pt", "ieta", "iphi"):
            f[k] = np.linspace(50, 300, 12).astype(np.float32)
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        d = h5py.h5d.create(f.id, b"X_jet", h5py.h5t.IEEE_F32LE, h5py.h5s.create_simple(x.shape), dcpl=dcpl)
        d.write(h5py.h5s.ALL, h5py.h5s.ALL, x)
    return x


def pixel_stats(info):
    """e2e-data info's per-channel (min, mean, max): the numbers before the percentage of
    each row "  channel  [kind]  min  mean  max  nonzero  q99.9" """
    return [[float(v) for v in re.findall(r"[-+]?[0-9.]+(?:e[-+]?\d+)?(?=\s)", l.split("%")[0] + " ")[-4:-1]]
            for l in info.splitlines() if re.search(r"\s[0-9.]+%\s", l)]


def compact(e):
    """compact storage: read right"""
    path = e.path("lay/compact.h5")
    x = compact_file(path)
    p = run([e.exe("e2e-data"), "info", path], expect=0)
    check("compact" in p.stdout, "compact storage is named")
    rows = pixel_stats(p.stdout)
    check(len(rows) == 1 and len(rows[0]) == 3 and abs(rows[0][1] - float(x.mean())) < 1e-3 and
          abs(rows[0][2] - float(x.max())) < 1e-3,
          "e2e-data info's pixel mean and max are the compact data's (%.4f, %.4f): %s" % (x.mean(), x.max(), rows))


# ---- class 5: file lists ----

def t_file_list(e):
    copy, link, hard = e.path("copy.h5"), e.path("link2.h5"), e.path("hard2.h5")
    shutil.copy(e.data, copy)
    os.symlink(e.data, link)
    os.link(e.data, hard)
    lists = {"the same name": "jets.h5\njets.h5\n", "./name": "jets.h5\n./jets.h5\n",
             "a symbolic link": "jets.h5\nlink2.h5\n", "a hard link": "jets.h5\nhard2.h5\n",
             "a copy": "jets.h5\ncopy.h5\n", "a sparse copy": "jets.h5\njets_sparse.h5\n"}
    sparse_copy(e)
    for what, text in lists.items():
        lst = e.path("list_%s.txt" % what.replace(" ", "_").replace("/", "_"))
        open(lst, "w").write(text)
        p = e.train(e.path("dup"), data=lst, epochs=1, expect=1)
        refused(p, "more than one split", what="a list naming one file twice (%s)" % what)
    bom = e.path("bom.txt")
    open(bom, "wb").write(b"\xef\xbb\xbfjets.h5\r\n# a comment\r\n")
    e.train(e.path("bom_run"), data=bom, epochs=1)
    check(True, "a list with a byte-order mark and CRLF line ends trains")


def split_of(e, best, data, split):
    out = e.path("split_%s_%s.h5" % (os.path.basename(data), split))
    e.eval(best, "--split", split, "--predictions", out, data=data)
    with h5py.File(out, "r") as f:
        return set(f["index"][()].tolist())


def t_split_rechunked(e):
    d, best = trained(e)
    again = e.path("rechunked.h5")
    with h5py.File(e.data, "r") as f, h5py.File(again, "w") as g:
        for k in ("m", "pt", "ieta", "iphi"):
            g[k] = f[k][()]
        for k, v in f.attrs.items():
            g.attrs[k] = v
        g.create_dataset("X_jet", data=f["X_jet"][()], chunks=(50,) + f["X_jet"].shape[1:])
    sparse = sparse_copy(e)
    for s in ("val", "test"):
        want = split_of(e, best, e.data, s)
        check(split_of(e, best, again, s) == want, "a re-chunked copy has the same %s jets" % s)
        check(split_of(e, best, sparse, s) == want, "the sparse copy has the same %s jets" % s)


# ---- class 6: the watchdog ----

def stop_one(e, which, limit=3.0):
    """SIGSTOP on rank `which` of a training run with --peer-timeout `limit` (the progress
    limit left at its default): the silence ends every rank with exit 76"""
    out = e.path("wd_%d" % which)
    log = open(e.path("wd_%d.log" % which), "w")
    proc = subprocess.Popen(MPIRUN + ["-np", "2", e.exe("e2e-train"), "--data", e.data, "--out", out, "--epochs",
                                      "300", "--batch", "16", "--log-every", "1", "--peer-timeout", str(limit)],
                            env=ENV, stdout=log, stderr=subprocess.STDOUT)
    t0 = time.time()
    while time.time() - t0 < 120 and "step 3/" not in open(log.name).read():
        time.sleep(0.1)
    time.sleep(limit)  # heartbeats have gone both ways
    pids = sorted(rank_pids(proc.pid))
    check(len(pids) == 2, "two ranks: %s" % pids)
    check(proc.poll() is None, "the run is going")
    victim = pids[which]  # mpirun starts rank 0 first
    os.kill(victim, signal.SIGSTOP)
    t0 = time.time()
    try:
        code = proc.wait(timeout=10 * limit + 30)
    except subprocess.TimeoutExpired:
        proc.kill()
        os.kill(victim, signal.SIGKILL)
        raise Failure("rank %d stopped: the job still runs %.0f s later" % (which, time.time() - t0))
    dt = time.time() - t0
    log.close()
    text = open(log.name).read()
    line = [l for l in text.splitlines() if l.startswith("watchdog:")]
    check(code == 76 and dt < 4 * limit + 20, "SIGSTOP on one rank: every process ended, exit %d (76: a rank "
          "lost), %.1f s later" % (code, dt))
    check(len(line) == 1 and line[0].endswith("(exit 76)") and "stopped answering" in line[0],
          "one line, 'stopped answering ... (exit 76)': %s" % line)
    named = re.search(r"watchdog: rank (\d+) .*\(host ([^)]+)\)", line[0]) if line else None
    return named, pids, line


def thread_refused(e):
    """a rank whose threads cannot start (tests/refuse_thread.c preloaded on that rank only,
    as a node at its process limit): the watchdog's start fails there and every rank ends
    with the message, nothing written; with both limits off, the data reader falls back to
    reading in the caller and training ends as a normal run does"""
    shim = os.path.join(e.build, "tests", "librefuse_thread.so")

    def mpmd(which, args):  # two ranks, the library preloaded on rank `which` only
        preload = ["env", "LD_PRELOAD=" + shim]
        return MPIRUN + ["-np", "1"] + preload * (which == 0) + args + [":", "-np", "1"] + preload * (which == 1) + args

    train = [e.exe("e2e-train"), "--data", e.data, "--epochs", "1", "--batch", "16", "--seed", "5", "--log-every",
             "1000", "--out"]
    for which in (0, 1):
        out = e.path("refused_%d" % which)
        t0 = time.time()
        p = run_env(mpmd(which, train + [out]), timeout=120)
        refused(p, "rank %d: watchdog: cannot start its thread" % which, "--watchdog 0 --peer-timeout 0",
                what="a rank whose watchdog thread cannot start (rank %d)" % which)
        check("refusing the program's first thread" in p.stderr and time.time() - t0 < 60 and
              not os.path.exists(out), "  within a minute, nothing written (%s)" % os.listdir(e.tmp))
    _, best = trained(e)
    p = run_env(mpmd(1, [e.exe("e2e-eval"), "--checkpoint", best, "--data", e.data]), timeout=120)
    refused(p, "rank 1: watchdog: cannot start its thread", what="e2e-eval, rank 1's watchdog thread refused")
    out = e.path("refused_off")
    p = run_env(mpmd(1, train + [out, "--watchdog", "0", "--peer-timeout", "0"]), timeout=120)
    check(p.returncode == 0 and "refusing the program's first thread" in p.stderr,
          "both limits off, rank 1's reader thread refused: it reads in the caller (exit %d)" % p.returncode)
    same_weights(best, os.path.join(out, "checkpoints", "best.h5"))  # as the normal run's, bitwise


def t_watchdog(e):
    thread_refused(e)
    for which in (1, 0):
        named, pids, line = stop_one(e, which)
        check(named is not None and int(named.group(1)) == which and named.group(2) == socket.gethostname(),
              "the first line names rank %d: 'watchdog: rank N ... (host H)': %s" % (which, line))
        check(re.search(r"last seen in .*, epoch \d+, step \d+ \(host", line[0]) is not None and
              "reported by rank %d" % (1 - which) in line[0], "it says where the rank was last seen (epoch, step) "
              "and which rank reports it")
        for _ in range(50):
            if not [p for p in pids if alive(p)]:
                break
            time.sleep(0.1)
        left = [p for p in pids if alive(p)]
        for p in left:
            os.kill(p, signal.SIGKILL)
        check(not left, "no rank process is left behind")
    probe = e.exe("watchdog_probe")
    for case, words in (("stuck_local", ["watchdog: rank 1 made no progress", "reading a batch"]),
                        ("deadlock", ["watchdog: rank 0 and every other rank have waited",
                                      "(rank 0 in the agreement point, host %s): MPI" % socket.gethostname()])):
        t0 = time.time()
        p = run_env(MPIRUN + ["-np", "2", probe, case, "1.5"], timeout=120)
        check(p.returncode == 3 and all(w in p.stderr for w in words) and "(exit 3)" in p.stderr and
              time.time() - t0 < 60,
              "%s: ended with exit %d in %.0f s: %s" % (case, p.returncode, time.time() - t0,
                                                       [l for l in p.stderr.splitlines() if "watchdog" in l]))
    for case in ("long_eval", "long_checkpoint", "first_step"):
        p = run_env(MPIRUN + ["-np", "2", probe, case, "1.5"], timeout=120)
        check(p.returncode == 0 and "ran to its end" in p.stdout, "%s: the watchdog stays quiet (exit %d) %s"
              % (case, p.returncode, p.stderr[-300:]))
    d = e.path("wd_quiet")
    e.train(d, "--watchdog", "1", "--peer-timeout", "1", epochs=2)
    e.eval(os.path.join(d, "checkpoints", "best.h5"), "--watchdog", "1", "--peer-timeout", "1")
    check(True, "a whole run and an evaluation with 1 s limits end normally")
    for exe in ("e2e-train", "e2e-eval"):
        p = run([e.exe(exe), "--help"], expect=0)
        check("--watchdog SECONDS" in p.stdout and "(600" in p.stdout and "--peer-timeout SECONDS" in p.stdout and
              "(30" in p.stdout and "76" in p.stdout, "%s --help documents both limits, their defaults and exit 76"
              % exe)


# ---- class 7: messages ----

def t_messages(e):
    d, best = trained(e)
    eight = e.synth("eight.h5", 300, channels=8)
    p = e.eval(best, data=eight, expect=1)
    refused(p, "has 8 channels", "made for 3", what="evaluating a 3-channel checkpoint on 8 channels")
    check("given scale" not in p.stderr, "not a message about a scale")
    p = e.train(d, "--resume", best, data=eight, expect=1)
    refused(p, "has 8 channels", "made for 3", what="resuming on 8 channels")
    small = e.synth("small.h5", 80)
    e.eval(best, data=small)  # the default batch (256) is above every split
    check(True, "e2e-eval's default batch on an 80-jet file works")
    folder = e.path("a_folder")
    os.makedirs(folder)
    p = e.train(e.path("r_folder"), data=folder, expect=1)
    refused(p, "is a folder", what="a folder as --data")
    lst = e.path("folder_list.txt")
    open(lst, "w").write("jets.h5\na_folder\n")
    p = e.train(e.path("r_folder2"), data=lst, expect=1)
    refused(p, "is a folder", what="a list naming a folder")
    check("mca_" not in p.stderr and len(p.stderr.splitlines()) < 30, "no pages of MPI-IO text")
    p = e.eval(best, data=best, expect=1)
    refused(p, "checkpoint, not a jet file", what="the checkpoint as --data")
    p = e.eval(e.data, expect=1)
    refused(p, "not an e2e-ddp checkpoint", "swapped", what="the data as --checkpoint")
    p = e.eval(folder, expect=1)
    refused(p, "is a folder", what="a folder as --checkpoint")
    afile = e.path("afile")
    open(afile, "w").write("x")
    p = e.train(afile, expect=1)
    refused(p, "is a file, not a folder", what="--out naming a file")
    p = run([e.exe("e2e-data"), "info", folder], expect=1)
    refused(p, "is a folder", what="e2e-data info on a folder")


TESTS = {"run_folder": t_run_folder, "outputs": t_outputs, "full_disk": t_full_disk, "resume_data": t_resume_data,
         "layouts": t_layouts, "file_list": t_file_list, "split_rechunked": t_split_rechunked,
         "watchdog": t_watchdog, "messages": t_messages}


if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

#!/usr/bin/env python3
"""Ranks that write one file together (data/format/jetwriter.h: e2e-synth, e2e-data
convert), when one rank's write fails: every rank must leave, exit non-zero with one
clear message naming the file and the cause, and nothing may be left but the previous
output, unchanged. Faults are injected with tests/fault_write.c (LD_PRELOAD): the
writers' calls on the temporary file (open for writing, write, pwrite(v), fsync,
ftruncate) are counted on each rank in a clean run, then each call in turn fails on
rank 0 (which holds the file's HDF5 structure) and on rank 1, with ENOSPC, EIO, EDQUOT
or EACCES in turn; a few runs fail every call from one on (a file system gone bad).

  synth     e2e-synth under 2 ranks, dense and sparse
  convert   e2e-data convert under 2 ranks, dense -> sparse and sparse -> dense
  full      a real full file system (a small tmpfs; skipped where mount is refused):
            the sparse writers' size estimate refuses up front ("needs about"), and
            without the check (E2E_SPACE_CHECK=0) the writes fail: both layouts, both
            tools, an error, nothing left, no hang

usage: test_write_faults.py TEST BUILD_DIR
"""
import errno
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_no_loss import digest  # noqa: E402
from test_train_e2e import ENV, MPIRUN, Failure, Skip, check, run_test  # noqa: E402

ERRNOS = ["ENOSPC", "EIO", "EDQUOT", "EACCES"]
LIMIT = 60  # seconds a faulty run may take before it counts as a hang


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-write-faults-")
        self.shim = os.path.join(self.build, "tests", "libfault_write.so")
        check(os.path.exists(self.shim), "the fault library is built (%s)" % self.shim)

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, *names):
        return os.path.join(self.tmp, *names)


class Result:
    def __init__(self, code, out, err, hung):
        self.code, self.out, self.err, self.hung = code, out, err, hung


def mpirun(cmd, env=None, preload=None, limit=LIMIT):
    """2 ranks; env's variables passed to them; the process group killed after limit"""
    env = dict(env or {})
    if preload:
        env["LD_PRELOAD"] = preload
    # odls_base_sigkill_timeout 0: mpirun ends the job at once after a rank exits non-zero
    # (by default it waits 1 s), so a sweep of some 200 failing runs takes a minute
    full = MPIRUN[:1] + [x for k in env for x in ("-x", "%s=%s" % (k, env[k]))] + MPIRUN[1:] + \
        ["--mca", "odls_base_sigkill_timeout", "0", "-np", "2"] + cmd
    p = subprocess.Popen(full, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=limit)
        return Result(p.returncode, out, err, False)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return Result(None, out, err, True)


def count_calls(e, cmd):
    counts = e.path("counts")
    if os.path.exists(counts):
        os.unlink(counts)
    r = mpirun(cmd, {"E2E_FAULT_COUNT": counts}, e.shim)
    check(r.code == 0, "a clean run under the fault library succeeds (%s)" % r.err[-300:])
    calls = {}
    for line in open(counts):
        rank, n = map(int, line.split())
        calls[rank] = n
    return calls


def ours(r, prog):
    return [l for l in (r.err + r.out).splitlines() if l.startswith(prog + ":")]


def left_over(folder, keep):
    return sorted(n for n in os.listdir(folder) if n != keep)


def judge(e, r, prog, out, before, rank, call, err, mode):
    """one faulty run: an error, no hang, one message naming the file and the cause,
    nothing left but the previous output, unchanged; or, where the failed call was one
    the library could do without (HDF5 probes whether the file is open before creating
    it), a success that wrote the clean run's bytes (the previous output is that run's)"""
    what = "%s, rank %d, call %d, %s%s" % (prog, rank, call, err, " and every later call" if mode == "from" else "")
    if r.hung:
        raise Failure("%s: no end in %d s (a hang)" % (what, LIMIT))
    fired = "fault_write: rank %d: failing call %d" % (rank, call) in r.err
    msgs = ours(r, prog)
    if r.code == 0 and fired and digest(out) == before and not left_over(os.path.dirname(out), os.path.basename(out)):
        return "(the call was not needed: the same file written)"
    cause = os.strerror(getattr(errno, err))
    problems = []
    if not fired:
        problems.append("the fault did not fire (the calls differ from the counting run)")
    if r.code == 0 or r.code is None or r.code < 0 or r.code > 128:
        problems.append("exit %s" % r.code)
    if len(msgs) != 1:
        problems.append("%d messages of ours, not 1: %s" % (len(msgs), msgs))
    elif os.path.basename(out) not in msgs[0] or (cause not in msgs[0] and "HDF5" not in msgs[0]):
        problems.append("the message names neither the file nor the cause (%s): %s" % (cause, msgs[0]))
    left = left_over(os.path.dirname(out), os.path.basename(out))
    if left:
        problems.append("left behind: %s" % left)
    if digest(out) != before:
        problems.append("the previous output changed")
    if problems:
        print(r.err[-2000:])
        raise Failure("%s: %s" % (what, "; ".join(problems)))
    return msgs[0]


def sweep(e, name, prog, cmd, out, from_calls=3):
    """every counted call of each rank fails in turn; then a few persistent failures"""
    r = mpirun(cmd)
    check(r.code == 0 and os.path.exists(out), "%s: the previous output is written" % name)
    before = digest(out)
    calls = count_calls(e, cmd)
    check(calls.get(0, 0) > 0 and calls.get(1, 0) > 0, "%s: calls on the temporary file: rank 0 %d, rank 1 %d"
          % (name, calls.get(0, 0), calls.get(1, 0)))
    t0, runs, kinds = time.time(), 0, set()
    for rank in (0, 1):
        picks = sorted({1, max(1, calls[rank] // 2), calls[rank]})[:from_calls]
        plan = [(n, ERRNOS[n % len(ERRNOS)], "once") for n in range(1, calls[rank] + 1)]
        plan += [(n, ERRNOS[(n + 1) % len(ERRNOS)], "from") for n in picks]
        for call, err, mode in plan:
            env = {"E2E_FAULT_RANK": str(rank), "E2E_FAULT_CALL": str(call), "E2E_FAULT_ERRNO": err,
                   "E2E_FAULT_MODE": mode}
            msg = judge(e, mpirun(cmd, env, e.shim), prog, out, before, rank, call, err, mode)
            kinds.add(re.sub(r"[0-9]+", "N", msg.split(": ", 2)[-1])[:60])
            runs += 1
    check(True, "%s: %d faulty runs (every call of both ranks, 4 errnos, persistent failures): each an error "
          "naming the file and the cause, no hang, nothing left, the previous output kept (%.0f s)"
          % (name, runs, time.time() - t0))
    for k in sorted(kinds):
        print("   ", k)


def t_synth(e):
    for layout in ("dense", "sparse"):
        out = e.path("synth_" + layout, "jets.h5")
        os.makedirs(os.path.dirname(out))
        # dense: 3 chunks of 80 jets (rank 0 writes 2 rounds, rank 1 one); sparse: 3 blocks of
        # 64 jets (rank 1's second round is empty)
        extra = ["--chunk", "80"] if layout == "dense" else []
        cmd = [e.exe("e2e-synth"), "--out", out, "--samples", "200" if layout == "dense" else "150", "--size", "16",
               "--channels", "3", "--layout", layout] + extra
        sweep(e, "e2e-synth --layout " + layout, "e2e-synth", cmd, out)


def t_convert(e):
    src = e.path("src.h5")
    r = mpirun([e.exe("e2e-synth"), "--out", src, "--samples", "150", "--size", "16", "--channels", "3", "--chunk",
                "60"])
    check(r.code == 0, "the source file is written")
    sparse_src = e.path("src_sparse.h5")
    r = mpirun([e.exe("e2e-data"), "convert", "--layout", "sparse", src, sparse_src])
    check(r.code == 0, "its sparse copy is written")
    for name, inp, layout, extra in (("dense -> sparse", src, "sparse", []),
                                     ("sparse -> dense", sparse_src, "dense", ["--chunk", "60"])):
        out = e.path("convert_" + layout, "out.h5")
        os.makedirs(os.path.dirname(out))
        cmd = [e.exe("e2e-data"), "convert", "--layout", layout] + extra + [inp, out]
        sweep(e, "e2e-data convert " + name, "e2e-data", cmd, out)


class Tmpfs:
    def __init__(self, path, size):
        self.path = path
        os.makedirs(path, exist_ok=True)
        p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path], capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise Skip("cannot mount a small tmpfs (%s): run as root to test a full disk" % p.stderr.strip())

    def __enter__(self):
        return self.path

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.path])


def t_full(e):
    src = e.path("src.h5")
    mpirun([e.exe("e2e-synth"), "--out", src, "--samples", "6000", "--size", "32", "--channels", "3"])
    with Tmpfs(e.path("full"), "1000k") as mnt:
        out = os.path.join(mnt, "x.h5")
        synth = [e.exe("e2e-synth"), "--out", out, "--samples", "6000", "--size", "32", "--channels", "3", "--layout"]
        convert = [e.exe("e2e-data"), "convert", "--layout"]
        for layout in ("sparse", "dense"):
            for prog, cmd in (("e2e-synth", synth + [layout]), ("e2e-data", convert + [layout, src, out])):
                for env, words in (({}, ["needs about"]), ({"E2E_SPACE_CHECK": "0"}, ["cannot write", "full"])):
                    t0 = time.time()
                    r = mpirun(cmd, env)
                    msgs = ours(r, prog)
                    check(not r.hung and r.code not in (0, None) and len(msgs) == 1 and
                          all(w in msgs[0] for w in words + ["x.h5"]) and os.listdir(mnt) == [],
                          "%s --layout %s on a full disk %s: exit %s in %.1f s, %s, nothing left (%s)"
                          % (prog, layout, env, r.code, time.time() - t0, msgs, os.listdir(mnt)))
                    if "sparse" == layout and not env:
                        check(re.search(r"needs about [0-9.]+ [kM]B", msgs[0]) is not None,
                              "  the sparse file's size is estimated up front: %s" % msgs[0][:160])


TESTS = {"synth": t_synth, "convert": t_convert, "full": t_full}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

#!/usr/bin/env python3
"""A batch too large for the memory a rank may take is refused with a message, before
anything is allocated: not ended by the kernel's OOM killer without a word part way
through. Each test runs e2e-train or e2e-eval under real mpirun (2 ranks, CPU) inside a
memory control group of 1 GB made here (cgroup v1 or v2, as Slurm's ConstrainRAMSpace and
containers make them), so an allocation past the limit would kill the ranks. Skipped
where no memory control group can be made (not root, no memory controller).

  refused     --batch 1000 (about 1.7 GB a rank for 3 x 64 x 64 images) is refused on both
              ranks with one message naming the batch, the need, the control group and the
              2 ranks sharing it (exit 1, no OOM kill, no metrics or checkpoints written);
              e2e-eval's --batch the same; a batch that fits (32) trains and evaluates
  split_first a batch larger than a rank's training split is refused for that (naming the
              split), before the model is built: --batch 100000 would need 170 GB

usage: test_memory_limit.py TEST BUILD_DIR
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import ENV, MPIRUN, Failure, Skip, check, err_line, run_test  # noqa: E402

LIMIT = 1 << 30


class MemoryGroup:
    """a memory control group with a limit; processes started through run() live in it"""

    def __init__(self, limit):
        name = "e2e-memory-test-%d" % os.getpid()
        v1, v2 = "/sys/fs/cgroup/memory", "/sys/fs/cgroup"
        self.dir = None
        for root, limit_file in ((v1, "memory.limit_in_bytes"), (v2, "memory.max")):
            d = os.path.join(root, name)
            try:
                os.mkdir(d)
            except OSError:
                continue
            try:
                with open(os.path.join(d, limit_file), "w") as f:
                    f.write(str(limit))
                self.dir = d
                break
            except OSError:
                os.rmdir(d)
        if self.dir is None:
            raise Skip("no memory control group can be made here (needs root and a memory controller)")
        for knob in ("memory.swappiness", "memory.swap.max"):  # the limit is the memory, no swap
            try:
                with open(os.path.join(self.dir, knob), "w") as f:
                    f.write("0")
            except OSError:
                pass

    def join(self):
        with open(os.path.join(self.dir, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))

    def run(self, cmd, timeout=240, expect=None):
        p = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout, preexec_fn=self.join)
        if expect is not None and p.returncode != expect:
            print(p.stdout[-4000:], p.stderr[-4000:], sep="\n")
            raise Failure("%s exited %d, expected %d" % (" ".join(cmd[:8]), p.returncode, expect))
        return p

    def close(self):
        if self.dir:
            try:
                os.rmdir(self.dir)
            except OSError as e:
                print("warning: could not remove %s: %s" % (self.dir, e))


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-memory-test-")
        self.data = os.path.join(self.tmp, "jets.h5")
        subprocess.run([self.exe("e2e-synth"), "--out", self.data, "--samples", "3000", "--channels", "3",
                        "--size", "64", "--layout", "sparse", "--seed", "1"], env=ENV, check=True,
                       capture_output=True)

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def train(self, group, out, batch, expect):
        return group.run(MPIRUN + ["-np", "2", self.exe("e2e-train"), "--data", self.data, "--out", out,
                                   "--epochs", "1", "--batch", str(batch), "--no-tensorboard"], expect=expect)


def written(out):
    """the run's files (the lock and the empty checkpoint folder do not count)"""
    found = []
    for dirpath, _, files in os.walk(out):
        found += [os.path.join(dirpath, f) for f in files if f != "e2e-train.lock"]
    return found


def with_group(test):
    def wrapped(e):
        g = MemoryGroup(LIMIT)
        try:
            test(e, g)
        finally:
            g.close()
    return wrapped


@with_group
def t_refused(e, g):
    out = os.path.join(e.tmp, "big")
    p = e.train(g, out, 1000, expect=1)
    msg = err_line(p)
    check("batch 1000 of 3 x 64 x 64 images needs at least" in msg and "control group" in msg
          and "over 2 ranks on the node" in msg and "give a smaller --batch" in msg,
          "--batch 1000 refused, naming the batch, the control group and the ranks: %s" % msg)
    check("Killed" not in p.stderr and "signal 9" not in p.stderr, "no rank was killed")
    check(written(out) == [], "nothing written: %s" % written(out))
    small = os.path.join(e.tmp, "small")
    e.train(g, small, 32, expect=0)
    ckpt = os.path.join(small, "checkpoints", "best.h5")
    check(os.path.exists(os.path.join(small, "results.json")) and os.path.exists(ckpt),
          "--batch 32 fits in the same group: trained, results and a checkpoint written")
    base = MPIRUN + ["-np", "2", e.exe("e2e-eval"), "--checkpoint", ckpt, "--data", e.data]
    p = g.run(base + ["--batch", "1000"], expect=1)
    check("batch 1000 of 3 x 64 x 64 images needs at least" in err_line(p),
          "e2e-eval --batch 1000 refused: %s" % err_line(p))
    p = g.run(base + ["--batch", "64"], expect=0)
    check('"mae_gev"' in p.stdout, "e2e-eval --batch 64 fits and evaluates: %s" % p.stdout.strip()[:120])


@with_group
def t_split_first(e, g):
    out = os.path.join(e.tmp, "huge")
    p = e.train(g, out, 100000, expect=1)
    msg = err_line(p)
    check("the training split gives each of the 2 ranks 1350 jets, fewer than --batch 100000" in msg,
          "a batch larger than the split is refused for that, before the model: %s" % msg)
    check(written(out) == [], "nothing written")


TESTS = {"refused": t_refused, "split_first": t_split_first}

if __name__ == "__main__":
    sys.exit(run_test(TESTS, __doc__, Env))

#!/usr/bin/env python3
"""e2e-train on a dense file and on its sparse copy (data/format/FORMAT.md, format version 2) under
real mpirun (2 ranks, CPU), one test per subcommand:

  same    the same seed gives bitwise the same checkpoints (parameters, Adam's moments, the
          preprocessing scales) and the same metrics from the dense file, its sparse copy,
          and the sparse copy held in memory (--cache memory): the split, the order, the
          weights and the scale statistic do not depend on the layout
  cache   --cache memory on a dense file, and a --cache-limit the slice does not fit in:
          one message naming the file, every rank exits 1, no hang

usage: test_train_sparse.py TEST BUILD_DIR
"""
import os
import shutil
import sys
import tempfile

import h5py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_train_e2e import MPIRUN, Failure, check, run  # noqa: E402 - the e2e tests' helpers


class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.tmp = tempfile.mkdtemp(prefix="e2e-train-sparse-")
        self.dense = self.path("jets.h5")
        self.sparse = self.path("jets_sparse.h5")
        run(MPIRUN + ["-np", "2", self.exe("e2e-synth"), "--out", self.dense, "--samples", "1200", "--size", "32",
                      "--channels", "8", "--chunk", "9", "--seed", "13"], expect=0)
        run(MPIRUN + ["-np", "2", self.exe("e2e-data"), "convert", "--layout", "sparse", self.dense, self.sparse],
            expect=0)

    def exe(self, name):
        return os.path.join(self.build, "launch", name)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def train(self, data, out, *extra, expect=0):
        return run(MPIRUN + ["-np", "2", self.exe("e2e-train"), "--data", data, "--out", out, "--epochs", "2",
                             "--batch", "16", "--seed", "5"] + list(extra), expect=expect)


def final_ckpt(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    return os.path.join(d, sorted(n for n in os.listdir(d) if n.startswith("ckpt-"))[-1])


def contents(path):
    """every dataset of the checkpoint but its configuration (which names the data file)"""
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()].tobytes())
                     if isinstance(obj, h5py.Dataset) else None)
        attrs = {k: f.attrs[k] for k in ("global_step", "epoch", "adam_step", "best_metric")}
    return out, attrs


def metrics(run_dir):
    """epoch, lr, train loss, validation loss, MAE, MRE (the timing columns dropped)"""
    return [",".join(r.split(",")[:6]) for r in open(os.path.join(run_dir, "metrics.csv")).read().splitlines()]


def t_same(e):
    runs = {"dense": (e.dense, []), "sparse": (e.sparse, []), "sparse, cached": (e.sparse, ["--cache", "memory"])}
    got = {}
    for name, (data, extra) in runs.items():
        out = e.path(name.replace(", ", "_"))
        e.train(data, out, *extra, expect=0)
        got[name] = (contents(final_ckpt(out)), contents(os.path.join(out, "checkpoints", "best.h5")), metrics(out))
    (ref_t, ref_a), (ref_bt, _), ref_m = got["dense"]
    check(len(ref_t) > 60 and "data/scales" in ref_t, "the dense run's checkpoint holds %d datasets" % len(ref_t))
    for name in ("sparse", "sparse, cached"):
        (t, a), (bt, _), m = got[name]
        diff = sorted(k for k in set(t) | set(ref_t) if t.get(k) != ref_t.get(k))
        check(not diff, "%s: every tensor and the scales bitwise as the dense run's (differing: %s)" % (name, diff[:4]))
        check(a == ref_a, "%s: the same position and best metric %s" % (name, a))
        check(bt == ref_bt, "%s: best.h5 bitwise as the dense run's" % name)
        check(m == ref_m and len(m) >= 3, "%s: the same metrics, epoch by epoch" % name)


def t_cache(e):
    for data, extra, want in ((e.dense, [], "holds sparse files only"),
                              (e.sparse, ["--cache-limit", "0.00001"], "more than the limit given")):
        p = e.train(data, e.path("refused"), "--cache", "memory", *extra, expect=1)
        lines = [l for l in p.stderr.splitlines() if want in l]
        check(len(lines) == 1 and data in lines[0], "%s: one message naming the file: %s" % (want, lines))
        shutil.rmtree(e.path("refused"), ignore_errors=True)
    p = run([e.exe("e2e-train"), "--cache", "disk", "--data", e.dense, "--out", e.path("x")], expect=2)
    check("--cache expects none or memory" in p.stderr, "--cache disk refused: %s" % p.stderr.strip())


TESTS = {"same": t_same, "cache": t_cache}


def main():
    name, build = sys.argv[1], sys.argv[2]
    e = Env(build)
    try:
        TESTS[name](e)
    except Failure as f:
        print("FAILED:", f)
        return 1
    finally:
        shutil.rmtree(e.tmp, ignore_errors=True)
    print("test_train_sparse %s: passed" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

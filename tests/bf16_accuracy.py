#!/usr/bin/env python3
"""Does bf16 training reach fp32's test MAE? The quickstart's synthetic recipe (e2e-synth
jets, 2 MPI ranks of 1 thread, batch 32; by default 6000 jets of 8 channels, 64x64, 6
epochs) trained with --precision fp32 and with --precision bf16 from each of several seeds
(the seed draws the model's initialisation, the split and the order, so each seed's two
runs differ only in precision). Prints each run's test MAE (GeV, best checkpoint), the
mean and spread of each precision, and the paired difference bf16 - fp32 against the
run-to-run noise (the spread of fp32's test MAE over the seeds). Exit status 0 when the
mean paired difference lies within that noise, 1 when not, 77 when the CPU has no bf16
instructions (e2e-train refuses --precision bf16 there).

usage: tests/bf16_accuracy.py [BUILD_DIR] [--seeds 1,2,3,4] [--samples 6000] [--size 64]
                              [--channels 8] [--epochs 6] [--out DIR]
A run of the defaults trains 8 models: about 10 minutes on 2 cores of an AMD Zen 5.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")
MPIRUN = ["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "2"]


def run(cmd):
    p = subprocess.run(cmd, env=ENV, capture_output=True, text=True)
    return p.returncode, p.stdout + p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build", nargs="?", default=os.environ.get("E2E_BUILD", os.path.join(HERE, "..", "build")))
    ap.add_argument("--seeds", default="1,2,3,4")
    ap.add_argument("--samples", type=int, default=6000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder, removed)")
    a = ap.parse_args()
    exe = lambda name: os.path.join(os.path.abspath(a.build), "launch", name)
    out = a.out or tempfile.mkdtemp(prefix="e2e-bf16-accuracy-")
    os.makedirs(out, exist_ok=True)
    data = os.path.join(out, "jets.h5")
    if not os.path.exists(data):
        rc, log = run(MPIRUN + [exe("e2e-synth"), "--out", data, "--samples", str(a.samples), "--size", str(a.size),
                                "--channels", str(a.channels), "--seed", "1"])
        if rc:
            sys.exit("e2e-synth failed:\n" + log[-2000:])
    seeds = [int(s) for s in a.seeds.split(",")]
    mae = {"fp32": [], "bf16": []}
    for seed in seeds:
        for prec in ("fp32", "bf16"):
            run_dir = os.path.join(out, "%s-seed%d" % (prec, seed))
            rc, log = run(MPIRUN + [exe("e2e-train"), "--data", data, "--out", run_dir, "--epochs", str(a.epochs),
                                    "--batch", "32", "--seed", str(seed), "--precision", prec, "--resume", "none"])
            if rc and "bf16 instructions" in log:
                print("bf16: not available on this CPU:", [l for l in log.splitlines() if "bf16 instructions" in l][0])
                return 77
            if rc:
                sys.exit("e2e-train %s seed %d failed:\n%s" % (prec, seed, log[-3000:]))
            with open(os.path.join(run_dir, "results.json")) as f:
                r = json.load(f)
            mae[prec].append(r["test_mae_gev"])
            print("seed %d %s: test MAE %.3f GeV (best epoch %d, %.1f s)"
                  % (seed, prec, r["test_mae_gev"], r["best_epoch"], r["train_time_s"]), flush=True)
    diff = [b - f for b, f in zip(mae["bf16"], mae["fp32"])]
    noise = statistics.stdev(mae["fp32"]) if len(seeds) > 1 else float("nan")
    print("\n%d seeds, %d jets of %dx%dx%d, %d epochs, 2 ranks x batch 32:"
          % (len(seeds), a.samples, a.channels, a.size, a.size, a.epochs))
    for prec in ("fp32", "bf16"):
        sd = statistics.stdev(mae[prec]) if len(seeds) > 1 else float("nan")
        print("  %s test MAE: mean %.3f GeV, spread over seeds (std) %.3f GeV" % (prec, statistics.mean(mae[prec]), sd))
    mean_diff = statistics.mean(diff)
    print("  bf16 - fp32 per seed: %s GeV; mean %+.3f GeV" % (", ".join("%+.3f" % d for d in diff), mean_diff))
    within = abs(mean_diff) <= noise
    print("  run-to-run noise (fp32's spread over seeds): %.3f GeV: bf16 is %s" %
          (noise, "within it" if within else "OUTSIDE it"))
    if not a.out:
        subprocess.run(["rm", "-rf", out])
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())

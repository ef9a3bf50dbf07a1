#!/usr/bin/env python3
"""PyTorch's CPU training throughput for the same ResNet-15, batch and threads as
bench_cpu_train (L1 loss, Adam, 20%-occupied inputs). Tries the default (NCHW) and the
channels_last memory formats and reports the faster, so the baseline is PyTorch at its
best here. --precision bf16: the training step under torch.autocast("cpu", bfloat16)
(bf16 convolutions and activations, float32 parameters and Adam: what a PyTorch user
turns on for bf16), the loss in float32. Prints a report, and last one JSON line."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from resnet15 import ResNet15  # noqa: E402


def measure(batch, threads, steps, channels, size, channels_last, repeats, bf16):
    torch.manual_seed(5)
    model = ResNet15(in_channels=channels)
    x = torch.rand(batch, channels, size, size) * (torch.rand(batch, channels, size, size) < 0.2)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    scalars, target = torch.rand(batch, 2), torch.rand(batch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            pred = model(x, scalars)[:, 0]
        F.l1_loss(pred.float(), target).backward()
        opt.step()

    for _ in range(3):
        step()
    best = 0.0
    for _ in range(repeats):  # the best of repeats: other work on the machine only slows
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = max(best, batch * steps / (time.perf_counter() - t0))
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--size", type=int, default=125)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    res = {}
    for cl in (False, True):
        res["channels_last" if cl else "nchw"] = measure(a.batch, a.threads, a.steps, a.channels, a.size, cl,
                                                         a.repeats, a.precision == "bf16")
    best = max(res, key=res.get)
    print("PyTorch %s CPU training, %s, batch %d, %d threads: %s"
          % (torch.__version__, a.precision, a.batch, a.threads,
             ", ".join("%s %.1f samples/s" % kv for kv in res.items())))
    print(json.dumps({"impl": "pytorch", "version": torch.__version__, "precision": a.precision, "format": best,
                      "batch": a.batch, "threads": a.threads, "samples_per_s": res[best],
                      "by_format": res}))


if __name__ == "__main__":
    main()

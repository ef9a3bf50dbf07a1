#!/usr/bin/env python3
"""PyTorch's GPU training throughput for the same ResNet-15 step as bench_gpu_train
(L1 loss, Adam, 20%-lit inputs already on the GPU), in three forms: eager fp32 (cuDNN
TF32 off), eager AMP bf16 with channels_last, and torch.compile of the AMP bf16
channels_last model. cudnn.benchmark is on, so each form runs at its best. Prints a
report and one JSON line per (form, batch); exits 2 when there is no GPU."""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from resnet15 import ResNet15  # noqa: E402


def make_step(form, batch, channels, size):
    torch.manual_seed(5)
    dev = torch.device("cuda")
    model = ResNet15(in_channels=channels).to(dev)
    x = torch.rand(batch, channels, size, size, device=dev)
    x = x * (torch.rand_like(x) < 0.2)
    scalars = torch.rand(batch, 2, device=dev)
    target = torch.rand(batch, device=dev)
    amp = form != "eager_fp32"
    if amp:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    fwd = torch.compile(model) if form == "compiled_amp_bf16" else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            loss = F.l1_loss(fwd(x, scalars)[:, 0].float(), target)
        loss.backward()
        opt.step()

    return step


def measure(form, batch, channels, size, seconds):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = form != "eager_fp32"
    torch.backends.cuda.matmul.allow_tf32 = False
    step = make_step(form, batch, channels, size)
    for _ in range(5):  # warm-up: cudnn.benchmark searches, torch.compile compiles
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    probe = 0
    while time.perf_counter() - t0 < 0.2 * seconds or probe < 3:
        step()
        probe += 1
        torch.cuda.synchronize()
    per = (time.perf_counter() - t0) / probe
    steps = int(seconds / 5 / per) + 3
    rates = []
    for _ in range(5):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        rates.append(batch * steps / (time.perf_counter() - t0))
    return sorted(rates)[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, action="append")
    ap.add_argument("--channels", type=int, default=8)
    ap.add_argument("--size", type=int, default=125)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--forms", default="eager_fp32,eager_amp_bf16_cl,compiled_amp_bf16")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_gpu_train: PyTorch sees no GPU here", file=sys.stderr)
        sys.exit(2)
    for batch in a.batch or [256]:
        for form in a.forms.split(","):
            try:
                sps = measure(form, batch, a.channels, a.size, a.seconds)
                err = None
            except Exception as e:  # torch.compile may be unavailable; say so and go on
                sps, err = None, "%s: %s" % (type(e).__name__, (str(e).splitlines() or [""])[0][:200])
            print("PyTorch %s on %s, %s, batch %d: %s" % (
                torch.__version__, torch.cuda.get_device_name(), form, batch,
                "%.1f samples/s" % sps if sps else "failed (%s)" % err), file=sys.stderr)
            print(json.dumps({"impl": "pytorch", "version": torch.__version__, "form": form,
                              "batch": batch, "samples_per_s": sps, "error": err}))


if __name__ == "__main__":
    main()

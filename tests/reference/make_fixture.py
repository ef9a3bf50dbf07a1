#!/usr/bin/env python3
"""Regenerates tests/reference/resnet15_fixture.bin, the PyTorch side of the parity
test (tests/test_parity_torch.c): PyTorch's own initialisation of the E2E ResNet-15,
one batch, the output, the L1 loss, every gradient, and the parameters and losses of
3 Adam steps on that batch; and the same 3 steps from the same start under PyTorch's
bf16 autocast (torch.autocast("cpu", torch.bfloat16): bf16 convolutions, activations and
linear layer, float32 parameters and Adam), the "bf16/" tensors, against whose distance
from fp32 the bf16 parity test measures its own.

    python3 tests/reference/make_fixture.py   (needs torch and numpy: Debian's python3-torch)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bundle  # noqa: E402
from resnet15 import ResNet15, carried_names  # noqa: E402

N, C, H, W, STEPS, LR = 2, 8, 125, 125, 3, 1e-3


def bf16_steps(out, names, x, scalars, target):
    """the 3 Adam steps again from the initial parameters, under bf16 autocast"""
    model = ResNet15(in_channels=C)
    model.load_state_dict({k[len("param/"):]: torch.from_numpy(out[k]) for k in out if k.startswith("param/")},
                          strict=False)  # the identity blocks' unused shortcuts are not in the fixture
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = model(x, scalars)[:, 0]
        loss = torch.nn.functional.l1_loss(pred.float(), target)
        loss.backward()
        if step == 0:
            out["bf16/pred"] = pred.detach().float().numpy()
            params = dict(model.named_parameters())
            for k in names:
                out["bf16/grad/" + k] = params[k].grad.numpy().copy()
        losses.append(loss.item())
        opt.step()
    out["bf16/losses"] = np.array(losses, dtype=np.float32)
    state = model.state_dict()
    for k in names:
        out["bf16/adam3/" + k] = state[k].numpy().copy()


def main():
    torch.manual_seed(20261123)
    torch.set_num_threads(1)
    model = ResNet15(in_channels=C)
    names = carried_names(model)
    # Dense inputs in [0, 1): exact ties inside max-pool windows (flat zero regions)
    # would let the two implementations' last-bit rounding pick different winners.
    x = torch.rand(N, C, H, W)
    scalars = torch.stack([torch.rand(N) * 0.5, torch.rand(N) * 0.4 - 0.2], 1)
    target = torch.tensor([0.35, 0.6])

    out = {"x": x.numpy(), "scalars": scalars.numpy(), "target": target.numpy()}
    state = model.state_dict()
    for k in names:
        out["param/" + k] = state[k].numpy().copy()

    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        pred = model(x, scalars)[:, 0]
        loss = torch.nn.functional.l1_loss(pred, target)
        loss.backward()
        if step == 0:
            out["pred"] = pred.detach().numpy()
            params = dict(model.named_parameters())
            for k in names:
                out["grad/" + k] = params[k].grad.numpy().copy()
        losses.append(loss.item())
        opt.step()
    out["losses"] = np.array(losses, dtype=np.float32)
    state = model.state_dict()
    for k in names:
        out["adam3/" + k] = state[k].numpy().copy()
    bf16_steps(out, names, x, scalars, target)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resnet15_fixture.bin")
    bundle.write(path, out)
    print("wrote %s: %d tensors, losses %s" % (path, len(out), losses))


if __name__ == "__main__":
    main()

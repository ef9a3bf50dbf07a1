#!/usr/bin/env python3
"""Regenerates tests/reference/resnet15_fixture.bin, the PyTorch side of the parity
test (tests/test_parity_torch.c): PyTorch's own initialisation of the E2E ResNet-15,
one batch, the output, the L1 loss, every gradient, and the parameters and losses of
3 Adam steps on that batch; and the same 3 steps from the same start under PyTorch's
bf16 autocast (torch.autocast("cpu", torch.bfloat16): bf16 convolutions, activations and
linear layer, float32 parameters and Adam), the "bf16/" tensors, against whose distance
from fp32 the bf16 parity test measures its own. The shared steps: fixture.py.

    python3 tests/reference/make_fixture.py   (needs torch and numpy: Debian's python3-torch)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402
from resnet15 import ResNet15  # noqa: E402

N, C, H, W = 2, 8, 125, 125


def main():
    model, names = fixture.seeded_model(20261123, C)
    # Dense inputs in [0, 1): exact ties inside max-pool windows (flat zero regions)
    # would let the two implementations' last-bit rounding pick different winners.
    x = torch.rand(N, C, H, W)
    scalars = torch.stack([torch.rand(N) * 0.5, torch.rand(N) * 0.4 - 0.2], 1)
    target = torch.tensor([0.35, 0.6])
    out = {"x": x.numpy(), "scalars": scalars.numpy(), "target": target.numpy()}
    fixture.put_state(out, model, names, "param/")
    l1 = lambda pred: torch.nn.functional.l1_loss(pred, target)  # noqa: E731
    losses = fixture.adam_steps(out, model, names, x, scalars, l1)
    # the 3 Adam steps again from the initial parameters, under bf16 autocast
    bf16 = ResNet15(in_channels=C)
    bf16.load_state_dict({k[len("param/"):]: torch.from_numpy(out[k]) for k in out if k.startswith("param/")},
                         strict=False)  # the identity blocks' unused shortcuts are not in the fixture
    fixture.adam_steps(out, bf16, names, x, scalars, l1, prefix="bf16/", autocast=True)
    path = fixture.write("resnet15_fixture.bin", out)
    print("wrote %s: %d tensors, losses %s" % (path, len(out), losses))


if __name__ == "__main__":
    main()

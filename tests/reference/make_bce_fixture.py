#!/usr/bin/env python3
"""Regenerates tests/reference/resnet15_bce_fixture.bin, the PyTorch side of the
classification parity test (tests/test_parity_torch.c, "bce"):

  op/*     torch.nn.BCEWithLogitsLoss(weight=w) (mean) on logits over a wide range (0,
           small, +-20, +-100, +-1e4: both sigmoid branches, no overflow), 0/1 targets and
           per-sample weights: the loss and d loss / d logit, in float64 (the exact values
           our float results are compared with) and float32
  model/*  the E2E ResNet-15 (PyTorch's own initialisation) with one logit, a batch of 4 jets
           with labels 1, 0, 0, 1 and weights as --balance gives them: the logits, the loss,
           every gradient, and the parameters and losses of 3 Adam steps, in float32; and the
           first step again in float64 from the same weights and inputs (model.double()):
           model/logit_f64, model/loss_f64, model/grad_f64/* (the exact answer, which
           PyTorch's float32 and ours are both measured against)

The shared steps: fixture.py.

    python3 tests/reference/make_bce_fixture.py   (needs Debian's python3-torch)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixture  # noqa: E402

N, C, H, W = 4, 3, 32, 32


def op_part(out):
    # float32 values (the op's input), held in float64
    x = torch.tensor([0.0, 0.3, -0.7, 2.5, -4.0, 20.0, -20.0, 100.0, -100.0, 1e4, -1e4, 15.5]).double()
    t = torch.tensor([1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1], dtype=torch.float64)
    w = torch.tensor([1.0, 0.5, 2.0, 1.5, 0.25, 1.0, 3.0, 1.0, 0.75, 1.0, 1.0, 2.0], dtype=torch.float64)
    out["op/logit"], out["op/target"], out["op/weight"] = x.numpy(), t.numpy(), w.numpy()
    for name, dtype in (("f64", torch.float64), ("f32", torch.float32)):
        xd = x.to(dtype).clone().requires_grad_(True)
        loss = torch.nn.BCEWithLogitsLoss(weight=w.to(dtype))(xd, t.to(dtype))
        loss.backward()
        out["op/loss_" + name] = np.array([loss.item()])
        out["op/grad_" + name] = xd.grad.numpy().astype(np.float64)


def model_part(out):
    model, names = fixture.seeded_model(20261205, C)
    x = torch.rand(N, C, H, W)  # dense: no exact max-pool ties
    scalars = torch.stack([torch.rand(N) * 0.5, torch.rand(N) * 0.4 - 0.2], 1)
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    weight = torch.tensor([0.8, 1.25, 1.25, 0.8])
    out.update({"model/x": x.numpy(), "model/scalars": scalars.numpy(), "model/target": target.numpy(),
                "model/weight": weight.numpy()})
    fixture.put_state(out, model, names, "model/param/")
    bce64 = torch.nn.BCEWithLogitsLoss(weight=weight.double())
    fixture.exact_step(out, model, names, x, scalars, lambda y: bce64(y, target.double()), "model/", "logit")
    bce = torch.nn.BCEWithLogitsLoss(weight=weight)
    return fixture.adam_steps(out, model, names, x, scalars, lambda y: bce(y, target), "model/", "logit")


def main():
    out = {}
    op_part(out)
    losses = model_part(out)
    path = fixture.write("resnet15_bce_fixture.bin", out)
    print("wrote %s: %d tensors, losses %s" % (path, len(out), losses))


if __name__ == "__main__":
    main()

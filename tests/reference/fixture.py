"""What the parity fixtures' scripts (make_fixture.py, make_bce_fixture.py) share: PyTorch's
own initialisation of the E2E ResNet-15 from a seed, the recorded Adam steps (the first
step's output and gradients, every step's loss, the parameters after the last), the exact
float64 gradients of a step, and the bundle written with float64 values as float32
(hi, lo) pairs. Needs torch and numpy (Debian's python3-torch)."""
import copy
import os

import numpy as np
import torch

import bundle
from resnet15 import ResNet15, carried_names

STEPS, LR = 3, 1e-3
HERE = os.path.dirname(os.path.abspath(__file__))


def seeded_model(seed, channels):
    """(the model as torch initialises it after manual_seed(seed), its carried names); one
    thread, so the float32 sums come in one order"""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    model = ResNet15(in_channels=channels)
    return model, carried_names(model)


def put_state(out, model, names, prefix):
    state = model.state_dict()
    for k in names:
        out[prefix + k] = state[k].numpy().copy()


def adam_steps(out, model, names, x, scalars, loss_of, prefix="", output="pred", autocast=False):
    """STEPS Adam steps (lr LR) on one batch: out gets <prefix><output> and <prefix>grad/* of
    the first step, <prefix>losses, <prefix>adam3/*; loss_of(output) is the loss. With
    autocast: under torch.autocast("cpu", bfloat16). Returns the losses."""
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for step in range(STEPS):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            y = model(x, scalars)[:, 0]
        loss = loss_of(y.float() if autocast else y)
        loss.backward()
        if step == 0:
            out[prefix + output] = y.detach().float().numpy()
            params = dict(model.named_parameters())
            for k in names:
                out[prefix + "grad/" + k] = params[k].grad.numpy().copy()
        losses.append(loss.item())
        opt.step()
    out[prefix + "losses"] = np.array(losses, dtype=np.float32)
    put_state(out, model, names, prefix + "adam3/")
    return losses


def exact_step(out, model, names, x, scalars, loss_of, prefix, output):
    """the first step in float64 (a copy of the model and the inputs, made double: the same
    float32 values, every sum exact to about 1e-16): out gets <prefix><output>_f64,
    <prefix>loss_f64 and <prefix>grad_f64/*, which write() stores as (hi, lo) pairs"""
    m64 = copy.deepcopy(model).double()
    y = m64(x.double(), scalars.double())[:, 0]
    loss = loss_of(y)
    loss.backward()
    out[prefix + output + "_f64"] = y.detach().numpy()
    out[prefix + "loss_f64"] = np.array([loss.item()])
    params = dict(m64.named_parameters())
    for k in names:
        out[prefix + "grad_f64/" + k] = params[k].grad.numpy().copy()


def write(name, out):
    """tests/reference/<name>; a key with "_f64" in it becomes <key>_hi and <key>_lo, float32
    with hi + lo = the float64 value (to about 1e-14 relative)"""
    for k in [k for k in out if "_f64" in k]:
        v = np.asarray(out.pop(k), dtype=np.float64)
        hi = v.astype(np.float32)
        out[k + "_hi"], out[k + "_lo"] = hi, (v - hi.astype(np.float64)).astype(np.float32)
    path = os.path.join(HERE, name)
    bundle.write(path, out)
    return path

#!/usr/bin/env python3
"""Regenerates tests/reference/schedule_fixture.txt: the learning rates that PyTorch's
ReduceLROnPlateau gives for metric sequences under several configurations; the C
scheduler (dist/lr_schedule.c) must give the same (tests/test_lr_schedule.c).

    /usr/bin/python3 tests/reference/make_schedule_fixture.py
Line format: case MODE THRESHOLD_MODE FACTOR PATIENCE THRESHOLD COOLDOWN MIN_LR LR0 N,
then N metrics, then N learning rates (after each step)."""
import os
import random

import torch

CASES = [
    ("min", "rel", 0.5, 2, 1e-4, 0, 0.0, 1e-3),   # the E2E recipe
    ("min", "abs", 0.1, 0, 0.05, 1, 1e-5, 1e-2),
    ("max", "rel", 0.5, 1, 1e-3, 2, 0.0, 3e-4),
    ("max", "abs", 0.3, 3, 0.0, 0, 2e-4, 1e-3),
    ("min", "rel", 0.5, 2, 1e-4, 0, 4e-4, 1e-3),  # min_lr floor reached
]


def main():
    rnd = random.Random(7)
    out = []
    for mode, tmode, factor, patience, threshold, cooldown, min_lr, lr0 in CASES:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.Adam([p], lr=lr0)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode=mode, factor=factor, patience=patience, threshold=threshold,
            threshold_mode=tmode, cooldown=cooldown, min_lr=min_lr)
        metrics, lrs, m = [], [], 10.0
        for _ in range(40):
            # plateaus and small improvements, in the threshold's neighbourhood
            m = m * rnd.choice([1.0, 1.0, 0.99995, 0.999, 0.9, 1.01]) + rnd.choice([0, 0, 0.01, -0.01])
            metrics.append(m)
            sched.step(m)
            lrs.append(opt.param_groups[0]["lr"])
        out.append("case %s %s %r %d %r %d %r %r %d" % (mode, tmode, factor, patience, threshold,
                                                        cooldown, min_lr, lr0, len(metrics)))
        out.append(" ".join(repr(x) for x in metrics))
        out.append(" ".join(repr(x) for x in lrs))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schedule_fixture.txt")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
    print("wrote", path)


if __name__ == "__main__":
    main()

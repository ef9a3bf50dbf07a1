"""Compares two e2e-train checkpoints bitwise: every dataset under /model (and under
/optimizer when both have it). Exit 0 when all are identical, 1 otherwise; prints which
tensors differ. Usage: /usr/bin/python3 compare_ckpt.py A.h5 B.h5"""
import sys

import h5py
import numpy as np


def tensors(f, group):
    out = {}
    if group in f:
        f[group].visititems(lambda name, obj: out.__setitem__(name, obj[()])
                            if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    a_path, b_path = sys.argv[1], sys.argv[2]
    with h5py.File(a_path, "r") as a, h5py.File(b_path, "r") as b:
        groups = ["model"] + [g for g in ("optimizer",) if g in a and g in b]
        same = diff = floats = 0
        for g in groups:
            ta, tb = tensors(a, g), tensors(b, g)
            if sorted(ta) != sorted(tb):
                print(f"/{g}: different tensor names: {sorted(set(ta) ^ set(tb))}")
                return 1
            for name in sorted(ta):
                x, y = np.ascontiguousarray(ta[name]), np.ascontiguousarray(tb[name])
                if x.shape == y.shape and x.dtype == y.dtype and x.tobytes() == y.tobytes():
                    same += 1
                    floats += x.size
                else:
                    diff += 1
                    d = np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))) if x.shape == y.shape else "shape"
                    print(f"/{g}/{name}: differs (max |a-b| = {d})")
    print(f"compare_ckpt: {same} tensors ({floats} values) bitwise identical, {diff} differ "
          f"(groups: {', '.join('/' + g for g in groups)})")
    return 0 if diff == 0 and same > 0 else 1


if __name__ == "__main__":
    sys.exit(main())

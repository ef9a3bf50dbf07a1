"""The test fixtures' file format: named float32 tensors, little-endian.
  b"E2EB" u32 count, then per tensor: u32 name length, name (utf-8), u32 ndim,
  u32 dims[ndim], float32 data (C order). Read in C by tests/bundle.c."""
import struct

import numpy as np


def write(path, tensors):
    with open(path, "wb") as f:
        f.write(b"E2EB" + struct.pack("<I", len(tensors)))
        for name, arr in tensors.items():
            a = np.ascontiguousarray(arr, dtype="<f4")
            raw = name.encode()
            f.write(struct.pack("<I", len(raw)) + raw + struct.pack("<I", a.ndim))
            f.write(struct.pack("<%dI" % a.ndim, *a.shape))
            f.write(a.tobytes())


def read(path):
    out = {}
    with open(path, "rb") as f:
        assert f.read(4) == b"E2EB", path
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            (ln,) = struct.unpack("<I", f.read(4))
            name = f.read(ln).decode()
            (nd,) = struct.unpack("<I", f.read(4))
            dims = struct.unpack("<%dI" % nd, f.read(4 * nd))
            n = int(np.prod(dims)) if nd else 1
            out[name] = np.frombuffer(f.read(4 * n), dtype="<f4").reshape(dims)
    return out

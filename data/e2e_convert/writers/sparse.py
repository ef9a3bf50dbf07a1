"""The sparse layout (format version 2, data/format/FORMAT.md): X_jet is a group holding each jet's
non-zero pixels. offsets (N+1) int64: jet i's entries are [offsets[i], offsets[i+1]);
counts (N, C) uint32: the entries of each channel plane; pos: uint16 (uint32 for planes of
more than 65536 pixels) position y*W + x inside the plane, increasing; value: the value as
stored (float32 or float16). "Non-zero" is a bit pattern other than all zeros, so -0.0 is
kept and the round trip is bit-exact. All extendible, so --append can grow them; the
per-jet columns are as in the dense layout."""
import numpy as np

from ..errors import Bad
from .dense import COLUMN_CHUNK, appendable_columns, create_columns, grow_columns

ENTRY_CHUNK = 1 << 16  # entries a chunk of pos and value, as e2e-synth writes them


def pos_dtype(hw):
    return np.uint16 if hw <= 65536 else np.uint32


def encode(x):
    """(counts (n, C) uint32, pos, value) of a block x (n, C, H, W) in its stored dtype"""
    n, C, H, W = x.shape
    flat = x.reshape(n, C * H * W)
    bits = flat.view(np.uint32 if x.dtype == np.float32 else np.uint16)
    jet, idx = np.nonzero(bits)  # row-major: jet by jet, channel-major inside a jet
    counts = np.count_nonzero(bits.reshape(n, C, H * W), axis=2).astype(np.uint32)
    return counts, (idx % (H * W)).astype(pos_dtype(H * W)), flat[jet, idx]


class SparseWriter:
    name = "sparse"
    format_version = 2

    def __init__(self, f):
        self.f = f

    def create(self, total, chw, dtype, chunk_rows, outs):
        C, H, W = chw
        g = self.f.create_group("X_jet")
        g.attrs["layout"] = "sparse"
        g.attrs["shape"] = np.array([total, C, H, W], np.int64)
        rows = max(1, min(total + 1, COLUMN_CHUNK))
        g.create_dataset("offsets", shape=(total + 1,), maxshape=(None,), chunks=(rows,), dtype=np.int64)
        g.create_dataset("counts", shape=(total, C), maxshape=(None, C), chunks=(max(1, min(total, COLUMN_CHUNK)), C),
                         dtype=np.uint32)
        g.create_dataset("pos", shape=(0,), maxshape=(None,), chunks=(ENTRY_CHUNK,), dtype=pos_dtype(H * W))
        g.create_dataset("value", shape=(0,), maxshape=(None,), chunks=(ENTRY_CHUNK,), dtype=np.dtype(dtype))
        g["offsets"][0] = 0
        self.nnz = 0
        self.hold(g)
        self.cols = create_columns(self.f, total, outs)

    def hold(self, g):
        """the four arrays kept open for the writes: a dataset object let go flushes its
        cached chunks in h5py's deallocator, where a failure (a full disk) is only
        printed and the conversion would go on as if written"""
        self.d = {name: g[name] for name in ("offsets", "counts", "pos", "value")}

    def grow(self, old, total, outs):
        g = self.f["X_jet"]
        g["offsets"].resize(total + 1, axis=0)
        g["counts"].resize(total, axis=0)
        shape = g.attrs["shape"].copy()
        shape[0] = total
        g.attrs["shape"] = shape
        self.nnz = int(g["offsets"][old])
        self.hold(g)
        self.cols = grow_columns(self.f, total, outs)

    def write(self, pos, x, cols):
        d = self.d
        n = len(x)
        counts, p, v = encode(x)
        d["counts"][pos:pos + n] = counts
        d["offsets"][pos + 1:pos + n + 1] = self.nnz + np.cumsum(counts.sum(axis=1, dtype=np.int64))
        end = self.nnz + len(p)
        for name, a in (("pos", p), ("value", v)):
            d[name].resize(end, axis=0)
            d[name][self.nnz:end] = a
        self.nnz = end
        for column, c in zip(self.cols, cols):
            column[pos:pos + n] = c

    @staticmethod
    def owns(f):
        x = f.get("X_jet")
        return x is not None and not hasattr(x, "shape") and str(x.attrs.get("layout", "")) == "sparse"

    @staticmethod
    def describe(f, path):
        g = f["X_jet"]
        shape = [int(v) for v in g.attrs.get("shape", [])]
        if len(shape) != 4 or g["value"].dtype not in (np.float32, np.float16):
            raise Bad("%s: a sparse X_jet of shape %s and values %s; expected (N, C, H, W), float32 or float16"
                      % (path, shape, g["value"].dtype))
        n = shape[0]
        fixed = [name for name in ("offsets", "counts", "pos", "value") if g[name].maxshape[0] is not None]
        columns = appendable_columns(f, path, n, ["X_jet/" + name for name in fixed])
        return {"n": n, "chw": tuple(shape[1:]), "dtype": "float32" if g["value"].dtype == np.float32 else "float16",
                "chunk": g["offsets"].chunks[0], "columns": columns}

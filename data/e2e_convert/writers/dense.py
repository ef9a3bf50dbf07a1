"""The dense layout (format version 1): X_jet (N, C, H, W) chunked along N in whole images
and extendible (so --append can grow it), and one (N,) dataset per output column."""
import numpy as np

from ..errors import Bad

COLUMN_CHUNK = 16384


def create_columns(f, total, outs):
    """the per-jet (total,) datasets, extendible, with their units"""
    cols = []
    for o in outs:
        d = f.create_dataset(o.name, shape=(total,), maxshape=(None,), chunks=(max(1, min(total, COLUMN_CHUNK)),),
                             dtype=o.dtype)
        if o.unit:
            d.attrs["unit"] = o.unit
        cols.append(d)
    return cols


def grow_columns(f, total, outs):
    cols = [f[o.name] for o in outs]
    for d in cols:
        d.resize(total, axis=0)
    return cols


def appendable_columns(f, path, n, fixed):
    """{name: dtype} of the file's per-jet (n,) datasets, for --append; refuses a file
    where one of them, or one of `fixed` (the image datasets that cannot grow), has a
    fixed number of rows"""
    columns = {}
    for name, d in f.items():
        if name == "X_jet" or not hasattr(d, "shape") or d.ndim != 1:
            continue
        if d.shape != (n,):
            raise Bad("%s: %s has shape %s but X_jet has %d rows" % (path, name, d.shape, n))
        columns[name] = d.dtype
        if d.maxshape[0] is not None:
            fixed.append(name)
    if fixed:
        raise Bad("%s: %s %s a fixed number of rows (made by e2e-synth?), so rows cannot be added; "
                  "convert to a new file and list both in a file list (data/format/FORMAT.md, 'Several files')"
                  % (path, ", ".join(fixed), "has" if len(fixed) == 1 else "have"))
    return columns


class DenseWriter:
    name = "dense"
    format_version = 1

    def __init__(self, f):
        self.f = f

    def create(self, total, chw, dtype, chunk_rows, outs):
        C, H, W = chw
        self.x = self.f.create_dataset("X_jet", shape=(total, C, H, W), maxshape=(None, C, H, W),
                                       chunks=(chunk_rows, C, H, W), dtype=np.dtype(dtype))
        self.cols = create_columns(self.f, total, outs)

    def grow(self, old, total, outs):
        self.x = self.f["X_jet"]
        self.x.resize(total, axis=0)
        self.cols = grow_columns(self.f, total, outs)

    def write(self, pos, x, cols):
        n = len(x)
        self.x[pos:pos + n] = x
        for d, v in zip(self.cols, cols):
            d[pos:pos + n] = v

    @staticmethod
    def owns(f):
        return "X_jet" in f and hasattr(f["X_jet"], "shape")  # a dataset; the sparse layout's is a group

    @staticmethod
    def describe(f, path):
        x = f["X_jet"]
        if x.ndim != 4 or x.dtype not in (np.float32, np.float16):
            raise Bad("%s: X_jet is %s %s; expected (N, C, H, W) float32 or float16" % (path, x.dtype, x.shape))
        n = x.shape[0]
        columns = appendable_columns(f, path, n, [] if x.maxshape[0] is None else ["X_jet"])
        return {"n": n, "chw": tuple(x.shape[1:]), "dtype": "float32" if x.dtype == np.float32 else "float16",
                "chunk": x.chunks[0], "columns": columns}

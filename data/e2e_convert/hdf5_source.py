"""HDF5 sources (the quark-gluon files: X_jets (N, 125, 125, 3) channel-last, lzf-compressed,
m0, pt, y): the root group's datasets, spans of rows aligned to the image's chunks, and
reading a span in batches."""
import numpy as np

from .columns import Column
from .errors import Bad

CACHE_MIN = 16 << 20
CACHE_MAX = 256 << 20  # a chunk larger than this is re-read for each batch instead


def open_h5(path, cache=CACHE_MIN):
    import h5py

    try:
        return h5py.File(path, "r", rdcc_nbytes=cache, rdcc_nslots=10007)
    except OSError as e:
        raise Bad("%s: damaged or truncated HDF5 file: it cannot be opened (%s)" % (path, e))


def describe(d):
    filt = d.compression or ""
    return "%s %s%s" % (d.dtype, "(N, %s)" % ", ".join(map(str, d.shape[1:])) if d.ndim > 1 else "(N,)",
                        ", %s" % filt if filt else "")


def column_of(name, d):
    if d.dtype.kind not in "fiub" or d.ndim == 0:
        return Column(name, "other", None, "%s %s" % (d.dtype, d.shape))
    if d.ndim == 4:
        return Column(name, "image", d.dtype, describe(d), d.shape[0])
    if d.ndim == 1 or (d.ndim == 2 and d.shape[1] == 1):
        return Column(name, "scalar", d.dtype, describe(d), d.shape[0])
    return Column(name, "other", None, describe(d), d.shape[0])


def missing_filters(d):
    """names of the compression filters of dataset d that this HDF5 library cannot decode"""
    import h5py

    plist = d.id.get_create_plist()
    out = []
    for k in range(plist.get_nfilters()):
        code, _, _, name = plist.get_filter(k)
        if not h5py.h5z.filter_avail(code):
            out.append("%s (filter %d)" % (name.decode(errors="replace") or "unnamed", code))
    return out


class HDF5Source:
    """One HDF5 file, seen from the main process."""

    kind = "hdf5"

    def __init__(self, path, size):
        import h5py

        self.path, self.bytes = path, size
        self.columns = {}
        self.rows = None
        self.shapes, self.chunks = {}, {}
        with open_h5(path) as f:
            for name, obj in f.items():
                if isinstance(obj, h5py.Dataset):
                    self.columns[name] = column_of(name, obj)
                    self.shapes[name] = obj.shape
                    self.chunks[name] = obj.chunks
                else:
                    self.columns[name] = Column(name, "other", None, "a group")

    def use(self, image, scalars):
        """fixes the image and per-jet datasets: the rows are the image's; each column must
        have as many"""
        self.image = image
        self.rows = self.shapes[image][0]
        for c in scalars:
            if self.shapes[c][0] != self.rows:
                raise Bad("%s: %s has %d rows but %s has %d" % (self.path, c, self.shapes[c][0], image, self.rows))
        with open_h5(self.path) as f:
            for c in [image] + list(scalars):
                lack = missing_filters(f[c])
                if lack:
                    raise Bad("%s: %s is compressed with %s, which this h5py cannot decode (the hdf5plugin "
                              "package provides more filters)" % (self.path, c, ", ".join(lack)))

    def first_image_dims(self, column):
        return tuple(self.shapes[column][1:]) if self.rows else None

    def tasks(self, target_rows):
        """spans of whole chunks of the image, about target_rows rows each"""
        ch = self.chunks[self.image]
        step = ch[0] if ch else 1
        span = max(step, (target_rows + step - 1) // step * step)
        return [(lo, min(lo + span, self.rows)) for lo in range(0, self.rows, span)]

    def reader(self):
        ch = self.chunks[self.image]
        chunk_bytes = int(np.prod(ch)) * self.columns[self.image].dtype.itemsize if ch else 0
        cache = 2 * chunk_bytes + (1 << 20) if chunk_bytes * 2 <= CACHE_MAX else CACHE_MIN
        return HDF5Reader(self.path, max(CACHE_MIN, cache))


class HDF5Reader:
    """Reads spans of one HDF5 file (in a decoding process, or the main one)."""

    def __init__(self, path, cache):
        self.path, self.cache = path, cache
        self.f = None

    def batches(self, task, spec, batch_rows):
        lo, hi = task
        if self.f is None:
            self.f = open_h5(self.path, self.cache)
        x = self.f[spec.image]
        cols = [self.f[c] for c in spec.sources]
        for r in range(lo, hi, batch_rows):
            n = min(batch_rows, hi - r)
            try:
                img = x[r:r + n]
                vals = [c[r:r + n].reshape(n) for c in cols]
            except (OSError, ValueError) as e:
                raise Bad("%s: rows %d to %d cannot be read (damaged file, or a compression filter "
                          "h5py lacks?): %s" % (self.path, r, r + n - 1, e))
            yield r, img, vals

    def fail(self, row, what):
        raise Bad("%s: row %d: %s" % (self.path, row, what))

    def close(self):
        if self.f is not None:
            self.f.close()
            self.f = None

"""One batch of a source into the output's buffers: the image transposed to C x H x W and
rounded to the stored dtype, the per-jet columns converted; every value checked (a
failure names the file, where in it, and the row); and the batch's statistics for the
plausibility checks (plausible.py)."""
import numpy as np

from .layout import ImageSpec


class OutColumn:
    """A 1-D dataset of the output: its name, the role it plays (m, pt, ieta, iphi, or None
    for a column copied as it is), its dtype, whether it is a model input or the format's
    (float32, finite), a divisor (1000 for MeV -> GeV); or, with constant, one value for
    every row, read from no source column (--label-value: a class label stamped on files
    of one class)."""

    def __init__(self, name, role, dtype, checked, divide=1.0, unit=None, constant=None):
        self.name, self.role, self.dtype = name, role, np.dtype(dtype)
        self.checked, self.divide, self.unit, self.constant = checked, divide, unit, constant


class ReadSpec(ImageSpec):
    """What a decoding process needs for one file (picklable): the image column and its
    shape and layout, the source column of each output column that is not a constant."""

    def __init__(self, image_spec, image, sources, outs):
        ImageSpec.__init__(self, image_spec.dims, image_spec.layout, image_spec.dtype)
        self.image, self.sources, self.outs = image, list(sources), list(outs)


class BatchStats:
    """zero: jets whose image is all zeros; negative[c]: negative pixels in channel c"""

    def __init__(self, zero, negative):
        self.zero, self.negative = zero, negative


def fill(reader, spec, row, img, cols, xbuf, cbufs):
    """writes the batch (first file row `row`, source image (n, a, b, c), per-jet arrays)
    into xbuf[:n] and cbufs[k][:n]; returns (n, BatchStats)"""
    n = len(img)
    xo = xbuf[:n]
    with np.errstate(over="ignore", invalid="ignore"):
        xo[...] = img if spec.layout == "chw" else img.transpose(0, 3, 1, 2)
    # one pass: each jet's and channel's smallest and largest pixel (NaN and Inf show there)
    v = xo.reshape(n, xo.shape[1], -1)
    lo, hi = v.min(axis=2), v.max(axis=2)
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        not_finite(reader, spec, row, img, xo)
    read = iter(zip(spec.sources, cols))
    for k, out in enumerate(spec.outs):
        if out.constant is not None:
            cbufs[k][:n] = out.constant
            continue
        src, values = next(read)
        cbufs[k][:n] = column(reader, row, values, src, out)
    zero = int(np.count_nonzero((lo == 0).all(axis=1) & (hi == 0).all(axis=1)))
    negative = [int(np.count_nonzero(v[:, c] < 0)) if lo[:, c].min() < 0 else 0 for c in range(v.shape[1])]
    return n, BatchStats(zero, negative)


def not_finite(reader, spec, row, img, xo):
    """fails on the first pixel that is NaN or Inf in the stored dtype"""
    r, ch, yy, xx = (int(v[0]) for v in np.nonzero(~np.isfinite(xo)))
    v = img[r, ch, yy, xx] if spec.layout == "chw" else img[r, yy, xx, ch]
    if np.isfinite(v):
        reader.fail(row + r, "%s value %g (channel %d, pixel %d, %d) does not fit in %s%s" % (
            spec.image, v, ch, yy, xx, spec.dtype, "; use --dtype float32" if spec.dtype == "float16" else ""))
    reader.fail(row + r, "%s holds %s (channel %d, pixel %d, %d); the format rejects non-finite pixels"
                % (spec.image, v, ch, yy, xx))


def column(reader, row, v, src, out):
    """a per-jet column in the output's dtype; a model input or format column must be a
    finite float32"""
    if not out.checked:
        return v.astype(out.dtype) if v.dtype != out.dtype else v
    with np.errstate(over="ignore", invalid="ignore"):
        v32 = (v / out.divide if out.divide != 1.0 else v).astype(np.float32)
    if not np.isfinite(v32).all():
        r = int(np.flatnonzero(~np.isfinite(v32))[0])
        if np.isfinite(v[r]):
            reader.fail(row + r, "%s = %g does not fit in float32" % (src, v[r]))
        reader.fail(row + r, "%s is %s; the format rejects non-finite %s" % (src, v[r], out.name))
    return v32

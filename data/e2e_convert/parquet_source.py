"""Parquet sources: the columns a file has, spans of its row groups, and the decoding of a
span into numpy arrays (the image as (n, a, b, c), one array a per-jet column), every
nested length and null checked. The footer is read once through parquet_footer (the
whole FileMetaData of a file with 150 000 row groups would cost 0.8 GB a process)."""
import bisect

import numpy as np

from .columns import Column
from .errors import Bad
from .layout import shape_str
from .parquet_footer import FooterIndex, FooterPart


def nested_depth(t, pa):
    """(depth, leaf type) of a list<list<...<leaf>>> type; fixed-size and large lists count"""
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        depth += 1
        t = t.value_type
    return depth, t


def is_number(t, pa):
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def column_of(field, pa):
    t = field.type
    depth, leaf = nested_depth(t, pa)
    if depth == 0 and (is_number(t, pa) or pa.types.is_boolean(t)):
        return Column(field.name, "scalar", np.dtype(t.to_pandas_dtype()), str(t))
    if depth == 3 and is_number(leaf, pa):
        return Column(field.name, "image", np.dtype(leaf.to_pandas_dtype()), "3-level list of %s" % leaf)
    return Column(field.name, "other", None, "%d-level list of %s" % (depth, leaf) if depth else str(t))


def open_part(path, part):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, metadata=part.metadata(), page_checksum_verification=True, pre_buffer=True)
    except Bad:
        raise
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ...
        raise Bad("%s: damaged parquet file: its footer cannot be read (%s)" % (path, e))


class ParquetSource:
    """One parquet file, seen from the main process."""

    kind = "parquet"

    def __init__(self, path, size):
        import pyarrow as pa

        self.path, self.bytes = path, size
        self.index = FooterIndex(path, size)
        self.rows = self.index.num_rows
        schema = open_part(path, self.index.part(0, 0)).schema_arrow
        self.columns = {f.name: column_of(f, pa) for f in schema}

    def use(self, image, scalars):
        """the image and per-jet columns chosen (nothing to check: a row group has them all)"""

    def where(self, row):
        return where(self.index.rg_start, 0, self.index.groups, row)

    def first_image_dims(self, column):
        """the nesting lengths of the first jet's image (None for a file without rows)"""
        if self.rows == 0:
            return None
        g = int(np.flatnonzero(self.index.rg_rows > 0)[0])  # the first row group with rows
        pf = open_part(self.path, self.index.part(g, g + 1))
        try:
            batch = next(pf.iter_batches(batch_size=1, columns=[column], use_threads=False))
        except Exception as e:
            raise Bad("%s: %s: cannot be decoded (%s)" % (self.path, self.where(0), e))
        dims = nested_shape(batch.column(0)[0].as_py())
        if dims is None or isinstance(dims, str):
            raise Bad("%s: %s, row 0: %s %s" % (self.path, self.where(0), column, dims or "is null"))
        return dims

    def tasks(self, target_rows):
        """consecutive row groups in spans of about target_rows rows (a big group alone)"""
        out, g0, n = [], None, 0
        rows = self.index.rg_rows
        for g in range(self.index.groups):
            if rows[g] == 0:
                continue
            if g0 is None:
                g0 = g
            n += int(rows[g])
            if n >= target_rows:
                out.append(self._task(g0, g + 1))
                g0, n = None, 0
        if g0 is not None:
            out.append(self._task(g0, self.index.groups))
        return out

    def _task(self, g0, g1):
        ix = self.index
        return (g0, g1, int(ix.rg_at[g0]), int(ix.rg_at[g1]), ix.rg_start[g0:g1 + 1].copy())

    def reader(self):
        """what a decoding process opens (picklable: no footer in it)"""
        return ParquetReader(self.path, self.index.fields, self.index.groups)


def where(starts, g0, groups, row):
    """'row group G of N (rows A to B)' of a file row, starts[k] the first row of group g0 + k"""
    k = bisect.bisect_right(starts, row) - 1
    return "row group %d of %d (rows %d to %d)" % (g0 + k, groups, starts[k], starts[k + 1] - 1)


class ParquetReader:
    """Decodes spans of one parquet file (in a decoding process, or the main one)."""

    def __init__(self, path, fields, groups):
        self.path, self.fields, self.groups = path, fields, groups

    def batches(self, task, spec, batch_rows):
        """yields (first file row, image (n, a, b, c), [per-jet column arrays]) for the
        row groups of task; spec: the ReadSpec of this file"""
        g0, g1, lo, hi, starts = task
        pf = open_part(self.path, FooterPart(self.path, self.fields, lo, hi, g1 - g0, int(starts[-1] - starts[0])))
        names = [spec.image] + spec.sources
        it = pf.iter_batches(batch_size=batch_rows, columns=list(dict.fromkeys(names)), use_threads=False)
        row = int(starts[0])
        self.span = (starts, g0)
        while True:
            try:
                batch = next(it)
            except StopIteration:
                return
            except Exception as e:
                raise Bad("%s: %s: cannot be decoded (%s)" % (self.path, self._damage(pf, starts, g0, row, names), e))
            x = self._image(batch.column(spec.image), spec, row)
            cols = [self._column(batch.column(c), c, row) for c in spec.sources]
            yield row, x, cols
            row += batch.num_rows

    def where(self, row):
        starts, g0 = self.span
        return where(starts, g0, self.groups, row)

    def fail(self, row, what):
        raise Bad("%s: %s, row %d: %s" % (self.path, self.where(row), row, what))

    def close(self):
        pass

    def _damage(self, pf, starts, g0, row, names):
        """the row group that fails to decode (a failed span is re-read group by group)"""
        k0 = bisect.bisect_right(starts, row) - 1
        for k in range(k0, len(starts) - 1):
            try:
                for _ in pf.iter_batches(batch_size=64, row_groups=[k], columns=names, use_threads=False):
                    pass
            except Exception:
                return where(starts, g0, self.groups, int(starts[k]))
        return where(starts, g0, self.groups, row)

    def _column(self, col, name, first_row):
        if col.null_count:
            self.fail(first_row + int(np.flatnonzero(np.asarray(col.is_null()))[0]), "%s is null (missing)" % name)
        return col.to_numpy(zero_copy_only=False)

    def _image(self, x, spec, first_row):
        """(n, a, b, c) values of a nested-list column, every length and null checked"""
        import pyarrow.compute as pc

        n = len(x)
        level, per_jet = x, 1
        for depth, want in enumerate(spec.dims):
            if level.null_count:
                bad = int(np.flatnonzero(np.asarray(level.is_null()))[0]) // per_jet
                self.fail(first_row + bad, self._problem(x, bad, spec) if depth else
                          "%s is null (a missing image)" % spec.image)
            lens = pc.list_value_length(level).to_numpy(zero_copy_only=False)
            wrong = np.flatnonzero(lens != want)
            if wrong.size:
                bad = int(wrong[0]) // per_jet
                self.fail(first_row + bad, self._problem(x, bad, spec))
            level = level.flatten()
            per_jet *= want
        if level.null_count:
            bad = int(np.flatnonzero(np.asarray(level.is_null()))[0]) // per_jet
            self.fail(first_row + bad, "%s holds a null (missing) pixel value" % spec.image)
        return level.to_numpy(zero_copy_only=False).reshape((n,) + spec.dims)

    @staticmethod
    def _problem(x, r, spec):
        """the message for jet r, whose lengths differ somewhere from the expected ones"""
        s = nested_shape(x[r].as_py())
        if s is None:
            return "%s is null (a missing image)" % spec.image
        if isinstance(s, str):
            return "%s %s; expected %s" % (spec.image, s, spec.words())
        return "%s has shape %s; expected %s like the rows before" % (spec.image, shape_str(s), spec.words())


def nested_shape(v):
    """(a, b, c) of a regular 3-level nested list; a description string if it is ragged
    or holds nulls; None for a null jet"""
    if v is None:
        return None
    if any(r is None for r in v):
        return "holds a null channel or row"
    a = len(v)
    lb = sorted({len(r) for r in v})
    if len(lb) != 1:
        return "is ragged: its lists at depth 2 have lengths %s" % ", ".join(map(str, lb[:6]))
    lc = set()
    for r in v:
        for q in r:
            if q is None:
                return "holds a null list at depth 3"
            lc.add(len(q))
    if len(lc) != 1:
        return "is ragged: its lists at depth 3 have lengths %s" % ", ".join(map(str, sorted(lc)[:6]))
    return (a, lb[0], lc.pop()) if a else "is an empty list"

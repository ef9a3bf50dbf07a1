"""A parquet file's footer without pyarrow's FileMetaData for all of it.

A Top Gun file has one row group per jet: about 150 000 row groups, a footer of about
90 MB, which pyarrow turns into about 0.8 GB of C++ objects in every process that opens
the file. Here the footer (Thrift compact protocol, parquet.thrift's FileMetaData) is
walked once, in the main process, keeping only where each row group's description
starts and how many rows it has (two small arrays). A decoding process then reads the
descriptions of just the row groups it decodes from the file and gives pyarrow a small
footer made of them (the same schema and key-value metadata, those row groups copied
byte for byte), so pyarrow's metadata stays proportional to the row groups in hand. The
copied descriptions keep their absolute column-chunk offsets, so pyarrow reads the pages
from the original file as it would with the whole footer."""
import struct

import numpy as np

from .errors import Bad

# Thrift compact protocol types
T_TRUE, T_FALSE, T_BYTE, T_I16, T_I32, T_I64, T_DOUBLE, T_BINARY, T_LIST, T_SET, T_MAP, T_STRUCT = range(1, 13)
FMD_NUM_ROWS, FMD_ROW_GROUPS = 3, 4  # FileMetaData field ids
RG_NUM_ROWS = 3  # RowGroup field id


class ThriftError(Exception):
    pass


def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 127) << s
        if c < 128:
            return r, i
        s += 7


def _zigzag(v):
    return (v >> 1) ^ -(v & 1)


def _skip_struct(b, i):
    """the end of the struct whose fields start at i (primitives inline: this walks every
    column chunk's description, about 40 values each, so it is written for speed)"""
    while True:
        h = b[i]
        i += 1
        if h == 0:
            return i
        if h < 16:  # long-form field id: a zigzag varint follows
            while b[i] > 127:
                i += 1
            i += 1
        t = h & 15
        if t == T_I32 or t == T_I64 or t == T_I16:
            while b[i] > 127:
                i += 1
            i += 1
        elif t == T_BINARY:
            n, i = _varint(b, i)
            i += n
        elif t == T_STRUCT:
            i = _skip_struct(b, i)
        elif t == T_LIST or t == T_SET:
            i = _skip_list(b, i)
        elif t == T_TRUE or t == T_FALSE:
            pass
        else:
            i = _skip_value(b, i, t)


def _skip_value(b, i, t):
    if t == T_STRUCT:
        return _skip_struct(b, i)
    if t == T_I32 or t == T_I64 or t == T_I16:
        while b[i] > 127:
            i += 1
        return i + 1
    if t == T_BINARY:
        n, i = _varint(b, i)
        return i + n
    if t == T_LIST or t == T_SET:
        return _skip_list(b, i)
    if t == T_BYTE or t == T_TRUE or t == T_FALSE:  # a bool in a list is one byte
        return i + 1
    if t == T_DOUBLE:
        return i + 8
    if t == T_MAP:
        n, i = _varint(b, i)
        if n:
            kv = b[i]
            i += 1
            for _ in range(n):
                i = _skip_value(b, _skip_value(b, i, kv >> 4), kv & 15)
        return i
    raise ThriftError("unknown Thrift type %d at byte %d" % (t, i))


def _list_header(b, i):
    h = b[i]
    i += 1
    n, et = h >> 4, h & 15
    if n == 15:
        n, i = _varint(b, i)
    return n, et, i


def _skip_list(b, i):
    n, et, i = _list_header(b, i)
    if et == T_STRUCT:
        for _ in range(n):
            i = _skip_struct(b, i)
    else:
        for _ in range(n):
            i = _skip_value(b, i, et)
    return i


def _field(b, i, fid):
    """(field id, type, position of its value) of the struct field whose header is at i
    (the id is a delta from the previous field's, or long-form); fid None at the end"""
    h = b[i]
    i += 1
    if h == 0:
        return None, 0, i
    if h >> 4:
        return fid + (h >> 4), h & 15, i
    v, i = _varint(b, i)
    return _zigzag(v), h & 15, i


def _row_group(b, i):
    """(end, rows) of the RowGroup struct at i"""
    fid = 0
    rows = -1
    while True:
        fid, t, i = _field(b, i, fid)
        if fid is None:
            return i, rows
        if t == T_LIST:
            i = _skip_list(b, i)
        elif fid == RG_NUM_ROWS and t == T_I64:
            v, i = _varint(b, i)
            rows = _zigzag(v)
        elif t != T_TRUE and t != T_FALSE:
            i = _skip_value(b, i, t)


def _encode_varint(n):
    out = bytearray()
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field_header(last, fid, t):
    d = fid - last
    if 0 < d <= 15:
        return bytes([(d << 4) | t])
    return bytes([t]) + _encode_varint((fid << 1) ^ (fid >> 63))


class FooterIndex:
    """Where the row groups of a parquet file are described, and how many rows each has.

    rg_rows[g]: rows of row group g; rg_start[g]: its first row in the file (G + 1
    entries); rg_at[g]: the byte in the file where its description starts (G + 1
    entries: the last is where the list ends). fields: the footer's other top-level
    fields (field id, type, raw value bytes): schema, key-value metadata, ..."""

    def __init__(self, path, size):
        self.path = path
        with open(path, "rb") as f:
            f.seek(size - 8)
            n, magic = struct.unpack("<i4s", f.read(8))
            if magic == b"PARE":
                raise Bad("%s: an encrypted parquet file (its footer is encrypted); not supported" % path)
            if n <= 0 or n > size - 12:
                raise Bad("%s: damaged parquet file: its footer length %d does not fit in its %d bytes"
                          % (path, n, size))
            self.footer_at = size - 8 - n
            f.seek(self.footer_at)
            b = f.read(n)
        try:
            self._parse(b)
        except (ThriftError, IndexError, ValueError) as e:
            raise Bad("%s: damaged parquet file: its footer cannot be read (%s)" % (path, e or "it ends early"))

    def _parse(self, b):
        i, fid = 0, 0
        self.fields = []
        self.num_rows = None
        starts, rows = None, None
        while True:
            fid, t, i = _field(b, i, fid)
            if fid is None:
                break
            s = i
            if fid == FMD_ROW_GROUPS:
                n, et, i = _list_header(b, i)
                if et != T_STRUCT:
                    raise ThriftError("row_groups is not a list of structs")
                starts, rows = [0] * (n + 1), [0] * n
                for g in range(n):
                    starts[g] = i
                    i, rows[g] = _row_group(b, i)
                starts[n] = i
                starts, rows = np.array(starts, np.int64), np.array(rows, np.int64)
            elif fid == FMD_NUM_ROWS:
                v, i = _varint(b, i)
                self.num_rows = _zigzag(v)
            else:
                i = _skip_value(b, i, t) if t not in (T_TRUE, T_FALSE) else i
                self.fields.append((fid, t, bytes(b[s:i])))
        if starts is None or self.num_rows is None:
            raise ThriftError("no row group list or no row count")
        if (rows < 0).any() or int(rows.sum()) != self.num_rows:
            raise ThriftError("its row groups hold %d rows, it says %d" % (int(rows.sum()), self.num_rows))
        self.rg_rows = rows
        self.rg_start = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self.rg_at = starts + self.footer_at

    @property
    def groups(self):
        return len(self.rg_rows)

    def part(self, g0, g1):
        """what a decoding process needs to read row groups g0 .. g1-1 (picklable, small)"""
        return FooterPart(self.path, self.fields, int(self.rg_at[g0]), int(self.rg_at[g1]), g1 - g0,
                          int(self.rg_start[g1] - self.rg_start[g0]))


class FooterPart:
    """The footer of a parquet file cut down to a run of consecutive row groups."""

    def __init__(self, path, fields, lo, hi, groups, rows):
        self.path, self.fields, self.lo, self.hi, self.groups, self.rows = path, fields, lo, hi, groups, rows

    def metadata(self):
        """pyarrow FileMetaData of those row groups only"""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with open(self.path, "rb") as f:
            f.seek(self.lo)
            descriptions = f.read(self.hi - self.lo)
        if len(descriptions) != self.hi - self.lo:
            raise Bad("%s: the file ends inside its footer (changed while being read?)" % self.path)
        n = self.groups
        head = bytes([(n << 4) | T_STRUCT]) if n < 15 else bytes([0xF0 | T_STRUCT]) + _encode_varint(n)
        items = self.fields + [(FMD_NUM_ROWS, T_I64, _encode_varint((self.rows << 1) ^ (self.rows >> 63))),
                               (FMD_ROW_GROUPS, T_LIST, head + descriptions)]
        parts, last = [], 0
        for fid, t, raw in sorted(items, key=lambda x: x[0]):
            parts += [_field_header(last, fid, t), raw]
            last = fid
        body = b"".join(parts) + b"\0"
        return pq.read_metadata(pa.BufferReader(b"PAR1" + body + struct.pack("<i", len(body)) + b"PAR1"))


"""The kind of a source file, from its first bytes (never from its name)."""
import os

from .errors import Bad

PARQUET_MAGIC = b"PAR1"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def hdf5_signature_at(fp, size):
    """HDF5's signature may sit at 0, 512, 1024, 2048, ... (after a user block)"""
    at = 0
    while at + 8 <= size:
        fp.seek(at)
        if fp.read(8) == HDF5_MAGIC:
            return at
        at = 512 if at == 0 else 2 * at
    return None


def detect(path):
    """('parquet' | 'hdf5', size in bytes); refuses anything else with a message"""
    if not os.path.exists(path):
        raise Bad("%s: no such file" % path)
    if os.path.isdir(path):
        raise Bad("%s: is a folder, not a parquet or HDF5 file" % path)
    try:
        with open(path, "rb") as fp:
            head = fp.read(8)
            size = fp.seek(0, os.SEEK_END)
            fp.seek(max(0, size - 4))
            tail = fp.read(4)
            if head[:4] == PARQUET_MAGIC:
                if size < 12 or tail != PARQUET_MAGIC:
                    raise Bad("%s: truncated or incomplete parquet file: it starts like one but its footer "
                              "(the index of its row groups) is missing; copy or download it again" % path)
                return "parquet", size
            if size and hdf5_signature_at(fp, size) is not None:
                return "hdf5", size
    except OSError as e:
        raise Bad("%s: cannot read: %s" % (path, e.strerror or e))
    if size == 0:
        raise Bad("%s: empty file (0 bytes), not a parquet or HDF5 file" % path)
    raise Bad("%s: neither a parquet file (no PAR1 signature) nor an HDF5 file (no HDF5 signature); "
              "it starts with %r" % (path, head))


def open_source(path):
    """the Source object for path (parquet_source.ParquetSource or hdf5_source.HDF5Source)"""
    kind, size = detect(path)
    if kind == "parquet":
        from .parquet_source import ParquetSource

        return ParquetSource(path, size)
    from .hdf5_source import HDF5Source

    return HDF5Source(path, size)

"""The output layouts. A writer gets the rows as dense batches, in file order, and stores
them in its layout; convert.py writes the root attributes common to every layout.

A writer class has:
  name, format_version     the --store value, and the format_version it writes
  Writer(f)                f: the open h5py.File of the partial output
  create(total, chw, dtype, chunk_rows, outs)   a new file: datasets for `total` rows
  grow(old, total, outs)   --append: make room for rows old .. total-1
  write(pos, x, cols)      rows pos .. pos+n-1: x (n, C, H, W) in the stored dtype,
                           cols one (n,) array per output column (outs order)
  describe(f, path)        (static) what --append needs of an existing file of this layout:
                           {"n", "chw", "dtype", "chunk", "columns": {name: dtype}}
  owns(f)                  (static) whether an existing file is of this layout

dense.py writes the dense layout (format version 1), sparse.py the sparse one (format
version 2: each jet's non-zero pixels). The sparse encoding runs in write(), in the main
process (numpy over a batch); it can move into the decoding processes
(workers.decode_task) if the main process becomes the bottleneck."""
from .dense import DenseWriter
from .sparse import SparseWriter

WRITERS = {DenseWriter.name: DenseWriter, SparseWriter.name: SparseWriter}


def writer_of_file(f):
    """the writer class of an existing file, or None"""
    for w in WRITERS.values():
        if w.owns(f):
            return w
    return None

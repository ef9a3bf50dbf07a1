#!/usr/bin/env python3
"""convert-parquet: E2E open-data parquet files -> one HDF5 file of the e2e jet-image
format (data/FORMAT.md). Run it through data/convert-parquet, which picks the project's
Python environment (pyarrow and h5py from PyPI, made by launch/install-deps.sh).

The parquet files are read row group by row group (never a whole file at once), in
batches of --batch jets, by --jobs decoding processes; the main process writes the
batches in file order. The output is written under a temporary name and renamed when
complete, so a failure leaves no partial file, and with --append the original file
stays as it was (the new file is a copy of it plus the new rows). data/CONVERT.md
describes the options, the layouts and the checks."""

import argparse
import bisect
import os
import queue
import shlex
import shutil
import signal
import sys
import time

PROG = "convert-parquet"
GENERATOR = "convert-parquet 1"
FORMAT_NAME = "e2e-jet-images"
FORMAT_VERSION = 1
MAX_CHANNELS = 64  # data/jetfile.h JET_MAX_CHANNELS
PIXEL_SIZE = 0.0174  # one ECAL crystal
COLUMNS = ("X_jet", "m", "pt", "ieta", "iphi")
SCALARS = ("m", "pt", "ieta", "iphi")
TOP_GUN_CHANNELS = ["track_pt", "dz", "d0", "ecal", "hcal", "bpix1", "bpix2", "bpix3"]
E2E3_CHANNELS = ["track_pt", "ecal", "hcal"]
LAYOUT_WORDS = {"chw": "channel-first, C x H x W", "hwc": "channel-last, H x W x C"}
HDF5_LIBVER = ("earliest", "v110")  # readable by the reader's HDF5 1.10


class Bad(Exception):
    """Bad input or a failed step: one message, exit status 1."""


def fmt_duration(s):
    s = int(max(0, s) + 0.5)
    if s >= 3600:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%ds" % s


def shape_str(d):
    return " x ".join(str(v) for v in d)


# ---------------------------------------------------------------- the parquet side

def nested_depth(t, pa):
    """(depth, leaf type) of a list<list<...<leaf>>> type; fixed-size and large lists count."""
    depth = 0
    while pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        depth += 1
        t = t.value_type
    return depth, t


class Source:
    """One parquet file: its metadata, row groups, and where its rows go."""

    def __init__(self, path, colmap):
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = path
        self.colmap = colmap
        if not os.path.exists(path):
            raise Bad("%s: no such file" % path)
        if os.path.isdir(path):
            raise Bad("%s: is a folder, not a parquet file" % path)
        try:
            with open(path, "rb") as fp:
                head = fp.read(4)
                size = fp.seek(0, os.SEEK_END)
                fp.seek(max(0, size - 4))
                tail = fp.read(4)
        except OSError as e:
            raise Bad("%s: cannot read: %s" % (path, e.strerror or e))
        if size == 0:
            raise Bad("%s: empty file (0 bytes), not a parquet file" % path)
        if head != b"PAR1":
            raise Bad("%s: not a parquet file (it does not start with the parquet signature PAR1)" % path)
        if tail != b"PAR1":
            raise Bad("%s: truncated or incomplete parquet file: it starts like one but its footer "
                      "(the index of its row groups) is missing; copy or download it again" % path)
        try:
            self.pf = pq.ParquetFile(path, page_checksum_verification=True)
        except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ...
            raise Bad("%s: damaged parquet file: its footer cannot be read (%s)" % (path, e))
        md = self.pf.metadata
        self.rows = md.num_rows
        self.bytes = size
        self.rg_rows = [md.row_group(i).num_rows for i in range(md.num_row_groups)]
        self.rg_start = [0]
        for n in self.rg_rows:
            self.rg_start.append(self.rg_start[-1] + n)
        schema = self.pf.schema_arrow
        names = schema.names
        for c in COLUMNS:
            src = colmap[c]
            if src not in names:
                raise Bad("%s: no column '%s'%s (the file has: %s); an E2E file has X_jet, m, pt, ieta, iphi "
                          "(--column NAME=COLUMN maps another name)"
                          % (path, src, "" if src == c else " (for %s)" % c, ", ".join(names) or "no columns"))
        for c in SCALARS:
            t = schema.field(colmap[c]).type
            if not (pa.types.is_floating(t) or pa.types.is_integer(t)):
                raise Bad("%s: column '%s' has type %s; expected one number a jet (float or integer)"
                          % (path, colmap[c], t))
        t = schema.field(colmap["X_jet"]).type
        depth, leaf = nested_depth(t, pa)
        if depth != 3 or not (pa.types.is_floating(leaf) or pa.types.is_integer(leaf)):
            raise Bad("%s: column '%s' has type %s; expected a 3-level nested list of numbers a jet: "
                      "C x H x W (channel-first) or H x W x C (channel-last)" % (path, colmap["X_jet"], t))
        self.x_type = t

    def columns(self):
        return [self.colmap[c] for c in COLUMNS]

    def where(self, row):
        """'row group G (rows A to B)' of a file row"""
        g = bisect.bisect_right(self.rg_start, row) - 1
        return "row group %d of %d (rows %d to %d)" % (g, len(self.rg_rows), self.rg_start[g],
                                                       self.rg_start[g + 1] - 1)

    def first_jet_dims(self):
        """the nesting lengths of the first jet (None for an empty file)"""
        if self.rows == 0:
            return None
        try:
            batch = next(self.pf.iter_batches(batch_size=1, columns=[self.colmap["X_jet"]], use_threads=False))
        except Exception as e:
            raise Bad("%s: %s: cannot be decoded (%s)" % (self.path, self.where(0), e))
        dims = nested_shape(batch.column(0)[0].as_py())
        if dims is None or isinstance(dims, str):
            raise Bad("%s: %s, row 0: X_jet %s" % (self.path, self.where(0), dims or "is null"))
        return dims

    def spans(self, target_rows):
        """consecutive row groups in lists of about target_rows rows (a big group alone)"""
        out, cur, n = [], [], 0
        for g, r in enumerate(self.rg_rows):
            if r == 0:
                continue
            cur.append(g)
            n += r
            if n >= target_rows:
                out.append(cur)
                cur, n = [], 0
        if cur:
            out.append(cur)
        return out


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


class Spec:
    """What every batch must look like and how to store it (picklable for the workers)."""

    def __init__(self, dims, layout, dtype, colmap):
        self.dims = tuple(dims)  # lengths in the parquet nesting order
        self.layout = layout  # "chw" | "hwc"
        self.dtype = dtype  # "float32" | "float16"
        self.colmap = colmap
        a, b, c = self.dims
        self.chw = (a, b, c) if layout == "chw" else (c, a, b)

    def words(self):
        if self.layout == "chw":
            return "%s (%s)" % (shape_str(self.dims), LAYOUT_WORDS[self.layout])
        return "%s (%s; C x H x W = %s)" % (shape_str(self.dims), LAYOUT_WORDS[self.layout], shape_str(self.chw))


def decode_batch(batch, spec, src, first_row, xbuf, cbuf):
    """One record batch into xbuf[:n] ((n, C, H, W) of spec.dtype) and cbuf[:, :n] (m, pt,
    ieta, iphi as float32); returns n. Every check names the file, the row group and the row."""
    import numpy as np
    import pyarrow.compute as pc

    n = batch.num_rows

    def fail(r, what):
        row = first_row + r
        raise Bad("%s: %s, row %d: %s" % (src.path, src.where(row), row, what))

    x = batch.column(0)
    expect = spec.dims

    def jet_problem(r):
        """the message for jet r, whose lengths differ somewhere from the expected ones"""
        s = nested_shape(x[r].as_py())
        if s is None:
            return "X_jet is null (a missing image)"
        if isinstance(s, str):
            return "X_jet " + s + "; expected %s" % spec.words()
        return "X_jet has shape %s; expected %s like the rows before" % (shape_str(s), spec.words())

    level = x
    per_jet = 1
    for depth, want in enumerate(expect):
        if level.null_count:
            bad = int(np.flatnonzero(np.asarray(level.is_null()))[0])
            fail(bad // per_jet, jet_problem(bad // per_jet) if depth else "X_jet is null (a missing image)")
        lens = pc.list_value_length(level).to_numpy(zero_copy_only=False)
        wrong = np.flatnonzero(lens != want)
        if wrong.size:
            fail(int(wrong[0]) // per_jet, jet_problem(int(wrong[0]) // per_jet))
        level = level.flatten()
        per_jet *= want
    if level.null_count:
        bad = int(np.flatnonzero(np.asarray(level.is_null()))[0])
        fail(bad // per_jet, "X_jet holds a null (missing) pixel value")
    values = level.to_numpy(zero_copy_only=False)
    a, b, c = expect
    xo = xbuf[:n]
    src_view = values.reshape(n, a, b, c)
    with np.errstate(over="ignore", invalid="ignore"):
        if spec.layout == "chw":
            xo[...] = src_view
        else:
            xo[...] = src_view.transpose(0, 3, 1, 2)
    if not np.isfinite(xo).all():
        r, ch, yy, xx = (int(v[0]) for v in np.nonzero(~np.isfinite(xo)))
        v = src_view[r, ch, yy, xx] if spec.layout == "chw" else src_view[r, yy, xx, ch]
        if np.isfinite(v):
            fail(r, "X_jet value %g (channel %d, pixel %d, %d) does not fit in %s%s"
                 % (v, ch, yy, xx, spec.dtype, "; use --dtype float32" if spec.dtype == "float16" else ""))
        fail(r, "X_jet holds %s (channel %d, pixel %d, %d); the format rejects non-finite pixels"
             % (v, ch, yy, xx))
    for k, name in enumerate(SCALARS):
        col = batch.column(k + 1)
        if col.null_count:
            fail(int(np.flatnonzero(np.asarray(col.is_null()))[0]), "%s is null (missing)" % spec.colmap[name])
        v = col.to_numpy(zero_copy_only=False)
        with np.errstate(over="ignore", invalid="ignore"):
            v32 = v.astype(np.float32)  # noqa: the check below reports overflow
        if not np.isfinite(v32).all():
            r = int(np.flatnonzero(~np.isfinite(v32))[0])
            if np.isfinite(v[r]):
                fail(r, "%s = %g does not fit in float32" % (spec.colmap[name], v[r]))
            fail(r, "%s is %s; the format rejects non-finite %s" % (spec.colmap[name], v[r], name))
        cbuf[k, :n] = v32
    return n



def read_span(src, rgs, spec, batch_rows, get_slot):
    """Decodes the row groups rgs batch by batch into the slots get_slot() hands out
    ((slot, X buffer, column buffer)); yields (first file row, rows, slot)."""
    row = src.rg_start[rgs[0]]
    it = src.pf.iter_batches(batch_size=batch_rows, row_groups=rgs, columns=src.columns(), use_threads=False)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as e:
            raise Bad("%s: %s: cannot be decoded (%s)" % (src.path, locate_damage(src, rgs, row), e))
        slot, xbuf, cbuf = get_slot()
        n = decode_batch(batch, spec, src, row, xbuf, cbuf)
        yield row, n, slot
        row += n


def locate_damage(src, rgs, row):
    """the row group that fails to decode, among rgs from the one holding row on (a
    failed span of small groups is re-read group by group)"""
    g0 = bisect.bisect_right(src.rg_start, row) - 1
    if len(rgs) > 1:
        for g in rgs:
            if g < g0:
                continue
            try:
                for _ in src.pf.iter_batches(batch_size=64, row_groups=[g], columns=src.columns(),
                                             use_threads=False):
                    pass
            except Exception:
                return src.where(src.rg_start[g])
    return src.where(row)


# ---------------------------------------------------------------- decoding processes
#
# Each decoding process owns SLOTS batch buffers in shared memory; it decodes a batch
# straight into a free slot and sends the slot's number, the main process writes the
# slot to HDF5 and hands it back. Nothing the size of a batch goes through a pipe.

SLOTS = 3


class SlotMemory:
    """SLOTS buffers of (batch, C, H, W) pixels and (4, batch) columns in one file mapped
    by the main process and one decoding process: in /dev/shm where it has room, else in
    the output folder (the main process creates and removes it)."""

    def __init__(self, batch_rows, chw, dtype, path=None, folder=None, tag=""):
        import mmap

        import numpy as np

        self.np_t = np.float32 if dtype == "float32" else np.float16
        self.shape = (batch_rows,) + tuple(chw)
        self.xbytes = int(np.prod(self.shape)) * np.dtype(self.np_t).itemsize
        self.slot_bytes = self.xbytes + 4 * batch_rows * 4
        self.size = SLOTS * self.slot_bytes
        self.owner = path is None
        if self.owner:
            path = os.path.join(pick_shared_folder(self.size, folder), ".convert-parquet-%d-%s" % (os.getpid(), tag))
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        else:
            fd = os.open(path, os.O_RDWR)
        self.path = path
        try:
            if self.owner:
                os.ftruncate(fd, self.size)
            self.mm = mmap.mmap(fd, self.size)
        except OSError:
            os.close(fd)
            self.remove()
            raise
        os.close(fd)
        self.views = []
        for k in range(SLOTS):
            off = k * self.slot_bytes
            x = np.ndarray(self.shape, dtype=self.np_t, buffer=self.mm, offset=off)
            c = np.ndarray((4, batch_rows), dtype=np.float32, buffer=self.mm, offset=off + self.xbytes)
            self.views.append((x, c))

    def remove(self):
        if self.owner and self.path and os.path.exists(self.path):
            os.unlink(self.path)

    def close(self):
        self.views = []
        try:
            self.mm.close()
        except (BufferError, ValueError):
            pass
        self.remove()


def pick_shared_folder(size, fallback):
    """/dev/shm when it has room for twice size (containers often give it 64 MB), else fallback"""
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 2 * size:
            return "/dev/shm"
    except OSError:
        pass
    return fallback


def parent_gone(ppid):
    return os.getppid() != ppid


def worker_main(paths, colmap, tasks, specs, batch_rows, chw, dtype, mem_path, free_q, out_q, ppid):
    """Decodes the tasks [(task number, (file index, row groups))] in order and puts
    ("data", task, row, n, slot), ("done", task) or ("error", message) on out_q."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides

    def put(item):
        while True:
            try:
                out_q.put(item, timeout=1.0)
                return
            except queue.Full:
                if parent_gone(ppid):
                    os._exit(1)

    def get_slot():
        while True:
            try:
                k = free_q.get(timeout=1.0)
                return k, mem.views[k][0], mem.views[k][1]
            except queue.Empty:
                if parent_gone(ppid):
                    os._exit(1)

    mem = None
    try:
        mem = SlotMemory(batch_rows, chw, dtype, path=mem_path)
        sources = {}
        for ti, (fi, rgs) in tasks:
            if fi not in sources:
                sources.clear()
                sources[fi] = Source(paths[fi], colmap)
            for row, n, slot in read_span(sources[fi], rgs, specs[fi], batch_rows, get_slot):
                put(("data", ti, row, n, slot))
            put(("done", ti))
    except Bad as e:
        put(("error", str(e)))
    except MemoryError:
        put(("error", "out of memory while decoding (lower --batch or --jobs)"))
    except BaseException as e:  # noqa: BLE001 - reported by the main process
        put(("error", "decoding failed: %s: %s" % (type(e).__name__, e)))
    finally:
        if mem is not None:
            mem.close()


class Decoders:
    """--jobs processes (task i on process i % jobs), or the main process with --jobs 0;
    batches come back in file order."""

    def __init__(self, sources, colmap, tasks, specs, batch_rows, chw, dtype, jobs, folder):
        import multiprocessing as mp
        import numpy as np

        self.tasks, self.jobs = tasks, jobs
        self.sources, self.specs, self.batch_rows = sources, specs, batch_rows
        self.procs, self.mems, self.free_qs, self.out_qs = [], [], [], []
        if jobs == 0:
            t = np.float32 if dtype == "float32" else np.float16
            self.inline = (np.empty((batch_rows,) + tuple(chw), dtype=t), np.empty((4, batch_rows), np.float32))
            return
        self.inline = None
        ctx = mp.get_context("spawn")  # fork after pyarrow started threads is unsafe
        paths = [s.path for s in sources]
        try:
            for j in range(jobs):
                self.mems.append(SlotMemory(batch_rows, chw, dtype, folder=folder, tag=str(j)))
                mem = self.mems[-1]
                free_q, out_q = ctx.Queue(), ctx.Queue(maxsize=SLOTS + 1)
                for k in range(SLOTS):
                    free_q.put(k)
                mine = [(ti, t) for ti, t in enumerate(tasks) if ti % jobs == j]
                p = ctx.Process(target=worker_main, daemon=True,
                                args=(paths, colmap, mine, specs, batch_rows, chw, dtype, mem.path, free_q,
                                      out_q, os.getpid()))
                p.start()
                self.procs.append(p)
                self.free_qs.append(free_q)
                self.out_qs.append(out_q)
        except BaseException as e:  # a signal, too: no process or buffer file stays behind
            self.close()
            if isinstance(e, OSError):
                raise Bad("cannot start %d decoding processes with %d batches of %d jets each (%s); lower "
                          "--jobs or --batch" % (jobs, SLOTS, batch_rows, e))
            raise

    def batches(self):
        """(file index, first file row, X, columns) in file order; X and columns stay
        valid until the next batch is asked for"""
        for ti, (fi, rgs) in enumerate(self.tasks):
            if self.inline:
                x, c = self.inline
                for row, n, _ in read_span(self.sources[fi], rgs, self.specs[fi], self.batch_rows,
                                           lambda: (0, x, c)):
                    yield fi, row, x[:n], c[:, :n]
                continue
            j = ti % self.jobs
            q, p = self.out_qs[j], self.procs[j]
            while True:
                try:
                    msg = q.get(timeout=1.0)
                except queue.Empty:
                    if not p.is_alive():
                        raise Bad("a decoding process ended unexpectedly (exit status %s%s)"
                                  % (p.exitcode, ": killed, out of memory?" if p.exitcode == -9 else ""))
                    continue
                if msg[0] == "error":
                    raise Bad(msg[1])
                if msg[0] == "done":
                    break
                _, _, row, n, slot = msg
                x, c = self.mems[j].views[slot]
                yield fi, row, x[:n], c[:, :n]
                self.free_qs[j].put(slot)

    def close(self):
        for p in self.procs:
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(5)
        for q in self.free_qs + self.out_qs:
            q.cancel_join_thread()
            q.close()
        for m in self.mems:
            m.close()
        self.procs, self.mems, self.free_qs, self.out_qs = [], [], [], []


# ---------------------------------------------------------------- the HDF5 side

def default_chunk(rows, row_bytes):
    """as e2e-synth: about 4 MiB a chunk, at least 64 chunks where the file allows"""
    c = (4 << 20) // max(1, row_bytes)
    c = min(c, (rows + 63) // 64)
    return max(1, c)


def read_existing(path):
    """what --append needs to know of OUT"""
    import h5py
    import numpy as np

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise Bad("%s: cannot open as HDF5 to append to it (%s)" % (path, e))
    with f:
        if f.attrs.get("format") not in (FORMAT_NAME, FORMAT_NAME.encode()):
            raise Bad("%s: not an e2e jet-image file (no format attribute '%s')" % (path, FORMAT_NAME))
        for c in COLUMNS:
            if c not in f:
                raise Bad("%s: no dataset '%s'; cannot append" % (path, c))
        x = f["X_jet"]
        if x.ndim != 4 or x.dtype not in (np.float32, np.float16):
            raise Bad("%s: X_jet is %s %s; expected (N, C, H, W) float32 or float16" % (path, x.dtype, x.shape))
        n = x.shape[0]
        fixed = [c for c in COLUMNS if f[c].maxshape[0] is not None]
        if fixed:
            raise Bad("%s: %s %s a fixed number of rows (made by e2e-synth?), so rows cannot be added; "
                      "convert to a new file and list both in a file list (data/FORMAT.md, 'Several files')"
                      % (path, ", ".join(fixed), "has" if len(fixed) == 1 else "have"))
        for c in SCALARS:
            if f[c].shape != (n,):
                raise Bad("%s: %s has shape %s but X_jet has %d rows" % (path, c, f[c].shape, n))
        names = [s.decode() if isinstance(s, bytes) else str(s) for s in f.attrs.get("channels", [])]
        files = [s.decode() if isinstance(s, bytes) else str(s) for s in f.attrs.get("source_files", [])]
        return {
            "n": n, "chw": tuple(x.shape[1:]), "dtype": "float32" if x.dtype == np.float32 else "float16",
            "channels": names, "chunk": x.chunks[0],
            "source_files": files, "source_rows": [int(v) for v in f.attrs.get("source_rows", [])],
            "command": str(f.attrs.get("command", "")),
        }


def open_output(path, mode, chunk_bytes):
    import h5py

    return h5py.File(path, mode, libver=HDF5_LIBVER, rdcc_nbytes=max(64 << 20, 4 * chunk_bytes),
                     rdcc_nslots=100003, rdcc_w0=1.0)


def create_datasets(f, total, chw, dtype, chunk_rows):
    import numpy as np

    C, H, W = chw
    f.create_dataset("X_jet", shape=(total, C, H, W), maxshape=(None, C, H, W), chunks=(chunk_rows, C, H, W),
                     dtype=np.float32 if dtype == "float32" else np.float16)
    for c in SCALARS:
        d = f.create_dataset(c, shape=(total,), maxshape=(None,), chunks=(max(1, min(total, 16384)),),
                             dtype=np.float32)
        if c in ("m", "pt"):
            d.attrs["unit"] = "GeV"


def write_attrs(f, channels, pixel_size, files, rows, command):
    import h5py
    import numpy as np

    s = h5py.string_dtype("utf-8")
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = np.int32(FORMAT_VERSION)
    f.attrs.create("channels", data=channels, dtype=s)
    f.attrs["pixel_size"] = np.float64(pixel_size)
    f.attrs["source"] = "parquet: " + ", ".join(files)
    f.attrs.create("source_files", data=files, dtype=s)
    f.attrs["source_rows"] = np.asarray(rows, dtype=np.int64)
    f.attrs["generator"] = GENERATOR
    f.attrs["command"] = command


class Syncer:
    """fsyncs a file from a thread every `every` bytes written, so the disk writes the
    data while the conversion goes on and the final fsync before the rename is short"""

    def __init__(self, path, every=256 << 20):
        import threading

        self.fd = os.open(path, os.O_RDONLY)
        self.every, self.pending = every, 0
        self.wake = threading.Event()
        self.done = False
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while True:
            self.wake.wait()
            self.wake.clear()
            if self.done:
                return
            try:
                os.fsync(self.fd)
            except OSError as e:
                self.error = e
                return

    def wrote(self, nbytes):
        self.pending += nbytes
        if self.pending >= self.every:
            self.pending = 0
            self.wake.set()

    def close(self):
        self.done = True
        self.wake.set()
        self.thread.join()
        os.close(self.fd)
        if self.error:
            raise self.error


def fsync_path(path, directory=False):
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---------------------------------------------------------------- progress

class Progress:
    """A bar on a terminal (redrawn at most 4 times a second), a line every 10 s otherwise."""

    def __init__(self, total, row_bytes, quiet):
        self.total, self.row_bytes, self.quiet = total, row_bytes, quiet
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.last = 0.0
        self.done = 0

    def update(self, done, final=False):
        self.done = done
        if self.quiet:
            return
        now = time.monotonic()
        if not final and now - self.last < (0.25 if self.tty else 10.0):
            return
        self.last = now
        el = max(now - self.t0, 1e-9)
        rate = done / el
        eta = (self.total - done) / rate if rate > 0 else 0.0
        frac = done / self.total if self.total else 1.0
        bar = "#" * int(24 * frac) + "." * (24 - int(24 * frac))
        line = "%s: [%s] %d/%d jets %3.0f%%  %.0f jets/s  %.0f MB/s  %s %s" % (
            PROG, bar, done, self.total, 100 * frac, rate, rate * self.row_bytes / 1e6,
            "elapsed" if final else "ETA", fmt_duration(el if final else eta))
        if self.tty:
            sys.stderr.write("\r" + line + ("\n" if final else ""))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()


# ---------------------------------------------------------------- main

HELP_EPILOG = """\
layouts (--layout auto decides from the first jet of each file):
  chw  X_jet is C lists of H lists of W numbers (channel-first, as the Top Gun files)
  hwc  X_jet is H lists of W lists of C numbers (channel-last)
  auto: chw when the last two lengths are equal and the first differs, hwc when the
  first two are equal and the last differs; anything else needs --layout.

Every row is checked: nested lengths (no ragged or missing lists), finite pixels and
finite m, pt, ieta, iphi. A failure names the file, the row group and the row, exits 1,
and leaves no output file (with --append or --force: FILE exactly as it was).

examples:
  data/convert-parquet -o topgun.h5 top_gun_opendata_0.parquet top_gun_opendata_1.parquet
  data/convert-parquet --append -o topgun.h5 top_gun_opendata_2.parquet
  data/convert-parquet --dtype float16 --jobs 8 -o topgun16.h5 top_gun_opendata_*.parquet
"""


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=HELP_EPILOG,
        description="Converts E2E parquet files (columns X_jet, m, pt, ieta, iphi) into one HDF5 file\n"
                    "of the e2e jet-image format (data/FORMAT.md), which e2e-train reads unchanged.\n"
                    "The files are read row group by row group; see data/CONVERT.md.")
    p.add_argument("inputs", nargs="+", metavar="INPUT.parquet", help="parquet files, converted in this order")
    p.add_argument("-o", "--out", required=True, metavar="FILE", help="the HDF5 file to write")
    p.add_argument("-a", "--append", action="store_true",
                   help="add the rows to FILE (made by convert-parquet): the same image shape, channels, dtype")
    p.add_argument("-f", "--force", action="store_true", help="replace FILE if it exists")
    p.add_argument("--dtype", choices=("float32", "float16"), metavar="TYPE",
                   help="float32 (default) or float16 for X_jet; with --append, the file's")
    p.add_argument("--layout", choices=("auto", "chw", "hwc"), default="auto", metavar="L",
                   help="auto (default), chw or hwc: how X_jet is nested (see below)")
    p.add_argument("--channels", metavar="A,B,...",
                   help="channel names (default: the Top Gun names for 8 channels, track_pt,ecal,hcal "
                        "for 3, ch0,ch1,... otherwise; with --append, the file's)")
    p.add_argument("--column", action="append", default=[], metavar="NAME=COLUMN",
                   help="read NAME (X_jet, m, pt, ieta or iphi) from parquet column COLUMN (repeatable)")
    p.add_argument("--pixel-size", type=float, default=PIXEL_SIZE, metavar="X",
                   help="eta-phi size of a pixel, stored as an attribute (default %(default)g)")
    p.add_argument("--chunk", type=int, metavar="K",
                   help="rows per X_jet chunk (default: about 4 MiB, at least 64 chunks)")
    p.add_argument("--batch", type=int, default=32, metavar="N",
                   help="jets decoded at a time by each process (default %(default)s)")
    p.add_argument("-j", "--jobs", type=int, default=min(os.cpu_count() or 1, 8), metavar="N",
                   help="decoding processes (default: the CPU count, at most 8); 0 decodes in the main "
                        "process, between writes")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=GENERATOR)
    a = p.parse_args(argv)
    if a.append and a.force:
        p.error("--append and --force exclude each other")
    if a.batch < 1:
        p.error("--batch must be at least 1 (got %d)" % a.batch)
    if a.jobs < 0:
        p.error("--jobs must be 0 or more (got %d)" % a.jobs)
    if a.chunk is not None and a.chunk < 1:
        p.error("--chunk must be at least 1 (got %d)" % a.chunk)
    if not a.pixel_size > 0:
        p.error("--pixel-size must be positive (got %g)" % a.pixel_size)
    colmap = {c: c for c in COLUMNS}
    for m in a.column:
        k, sep, v = m.partition("=")
        if not sep or k not in colmap or not v:
            p.error("--column takes NAME=COLUMN with NAME one of %s (got '%s')" % (", ".join(COLUMNS), m))
        colmap[k] = v
    a.colmap = colmap
    if a.channels is not None:
        a.channels = [s.strip() for s in a.channels.split(",")]
        if any(not s for s in a.channels):
            p.error("--channels: empty channel name in '%s'" % ",".join(a.channels))
    return a


def pick_layout(dims, layout, path):
    a, b, c = dims
    if layout != "auto":
        return layout
    if b == c and a != b:
        return "chw"
    if a == b and c != a:
        return "hwc"
    raise Bad("%s: cannot tell the layout of X_jet from its shape %s: channel-first needs H = W (the last "
              "two lengths equal), channel-last needs the first two equal%s; pass --layout chw or "
              "--layout hwc" % (path, shape_str(dims), " (all three are equal)" if a == b == c else ""))


def convert(a, argv):
    t_start = time.monotonic()
    out = a.out
    out_dir = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(out_dir):
        raise Bad("%s: the folder %s does not exist" % (out, out_dir))
    exists = os.path.exists(out)
    if a.append and not exists:
        raise Bad("%s: no such file to append to (leave out --append to create it)" % out)
    if exists and not a.append and not a.force:
        raise Bad("%s: exists; pass --append to add rows to it or --force to replace it" % out)
    real_out = os.path.realpath(out)
    seen = set()
    for p in a.inputs:
        r = os.path.realpath(p)
        if r == real_out:
            raise Bad("%s: is both an input and the output" % p)
        if r in seen:
            raise Bad("%s: is listed twice" % p)
        seen.add(r)

    old = read_existing(out) if a.append else None
    if old and a.dtype and a.dtype != old["dtype"]:
        raise Bad("%s: stores X_jet as %s; cannot append as --dtype %s" % (out, old["dtype"], a.dtype))
    dtype = old["dtype"] if old else (a.dtype or "float32")
    if old:
        for p in a.inputs:
            if os.path.basename(p) in old["source_files"]:
                raise Bad("%s: %s already holds the rows of a file named %s (attribute source_files); "
                          "appending them again would put the same jets twice, possibly in training and "
                          "test; rename the file if it holds other jets" % (p, out, os.path.basename(p)))

    # every input is opened and its schema and first jet checked before anything is written
    sources = [Source(p, a.colmap) for p in a.inputs]
    spec = None
    for s in sources:
        dims = s.first_jet_dims()
        if dims is None:
            continue
        layout = pick_layout(dims, a.layout, s.path)
        cand = Spec(dims, layout, dtype, a.colmap)
        C = cand.chw[0]
        if not 1 <= C <= MAX_CHANNELS:
            raise Bad("%s: X_jet %s has %d channels; the format allows 1 to %d"
                      % (s.path, cand.words(), C, MAX_CHANNELS))
        if old and cand.chw != old["chw"]:
            raise Bad("%s: X_jet is %s, but %s holds images of %s (C x H x W)"
                      % (s.path, cand.words(), out, shape_str(old["chw"])))
        if spec is None:
            spec, first = cand, s
        elif cand.chw != spec.chw:
            raise Bad("%s: X_jet is %s, but %s has images of %s (C x H x W); one output file holds one "
                      "image shape" % (s.path, cand.words(), first.path, shape_str(spec.chw)))
        s.spec = cand
    if spec is None:
        raise Bad("%s: no jets: the input files hold no rows" % ", ".join(a.inputs))

    C, H, W = spec.chw
    if old:
        channels = old["channels"] or ["ch%d" % i for i in range(C)]
        if a.channels and a.channels != channels:
            raise Bad("%s: its channels are %s; --channels gives %s" % (out, ",".join(channels), ",".join(a.channels)))
    elif a.channels:
        if len(a.channels) != C:
            raise Bad("--channels names %d channels but X_jet has %d" % (len(a.channels), C))
        channels = a.channels
    else:
        channels = TOP_GUN_CHANNELS if C == 8 else E2E3_CHANNELS if C == 3 else ["ch%d" % i for i in range(C)]

    new_rows = sum(s.rows for s in sources)
    n0 = old["n"] if old else 0
    total = n0 + new_rows
    row_bytes = C * H * W * (4 if dtype == "float32" else 2)
    chunk_rows = old["chunk"] if old else (a.chunk or default_chunk(new_rows, row_bytes))
    files = (old["source_files"] if old else []) + [os.path.basename(s.path) for s in sources]
    rows = (old["source_rows"] if old else []) + [s.rows for s in sources]
    command = " ".join(shlex.quote(v) for v in [PROG] + argv)
    if old and old["command"]:
        command = old["command"] + "\n" + command

    tmp = os.path.join(out_dir, ".%s.partial-%d" % (os.path.basename(out), os.getpid()))
    decoders = syncer = None
    quiet = a.quiet
    try:
        if not quiet:
            sys.stderr.write("%s: %d jets from %d file%s, X_jet %s -> %s %s in %s (%s)\n" % (
                PROG, new_rows, len(sources), "" if len(sources) == 1 else "s", spec.words(),
                shape_str(spec.chw), dtype, out, "after its %d rows" % n0 if old else "a new file"))
        tm = {"copy of the original": 0.0, "decode wait": 0.0, "HDF5 write": 0.0}
        t0 = time.monotonic()
        if old:
            shutil.copyfile(out, tmp)  # the original stays untouched until the rename
            os.chmod(tmp, os.stat(out).st_mode & 0o7777)
        tm["copy of the original"] = time.monotonic() - t0
        f = open_output(tmp, "r+" if old else "w-", chunk_rows * row_bytes)
        with f:
            if old:
                for c in COLUMNS:
                    f[c].resize(total, axis=0)
            else:
                create_datasets(f, total, spec.chw, dtype, chunk_rows)
            xd = f["X_jet"]
            cd = {c: f[c] for c in SCALARS}
            syncer = Syncer(tmp)
            tasks = []
            for fi, s in enumerate(sources):
                for rgs in s.spans(4 * a.batch):
                    tasks.append((fi, rgs))
            jobs = min(a.jobs, len(tasks))
            # each file keeps its own layout (a channel-last file may follow a channel-first one)
            specs = [getattr(s, "spec", spec) for s in sources]
            decoders = Decoders(sources, a.colmap, tasks, specs, a.batch, spec.chw, dtype, jobs, out_dir)
            prog = Progress(new_rows, row_bytes, quiet)
            at = n0
            base = [n0]
            for s in sources:
                base.append(base[-1] + s.rows)
            it = decoders.batches()
            while True:
                t0 = time.monotonic()
                got = next(it, None)
                t1 = time.monotonic()
                tm["decode wait"] += t1 - t0
                if got is None:
                    break
                fi, row, x, cols = got
                pos = base[fi] + row
                if pos != at:
                    raise Bad("%s: rows arrived out of order (internal error)" % sources[fi].path)
                xd[pos:pos + len(x)] = x
                for k, c in enumerate(SCALARS):
                    cd[c][pos:pos + len(x)] = cols[k]
                at += len(x)
                syncer.wrote(len(x) * row_bytes)
                tm["HDF5 write"] += time.monotonic() - t1
                prog.update(at - n0)
            if at != total:
                raise Bad("%s: the files' metadata promised %d rows but %d were read (damaged file?)"
                          % (", ".join(a.inputs), new_rows, at - n0))
            write_attrs(f, channels, a.pixel_size if not old else f.attrs.get("pixel_size", a.pixel_size),
                        files, rows, command)
            t0 = time.monotonic()
        tm["HDF5 write"] += time.monotonic() - t0  # the close flushes
        decoders.close()
        decoders = None
        t0 = time.monotonic()
        syncer.close()
        syncer = None
        fsync_path(tmp)
        os.replace(tmp, out)
        fsync_path(out_dir, directory=True)
        tm["sync to disk"] = time.monotonic() - t0
        prog.update(new_rows, final=True)
        el = max(time.monotonic() - t_start, 1e-9)
        print("%s: wrote %d jets (%s %s) to %s in %.1f s: %.0f jets/s, %.0f MB/s written, %.1f MB/s of parquet "
              "read (%s)" % (PROG, new_rows, shape_str(spec.chw), dtype, out, el, new_rows / el,
                             new_rows * row_bytes / 1e6 / el, sum(s.bytes for s in sources) / 1e6 / el,
                             ", ".join("%s %.1f s" % kv for kv in tm.items() if old or kv[0] != "copy of the original")))
        if old:
            print("%s: %s now holds %d jets from %d parquet files" % (PROG, out, total, len(files)))
    finally:
        if decoders is not None:
            decoders.close()
        if syncer is not None:
            try:
                syncer.close()
            except OSError:
                pass
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    a = parse_args(argv)

    got = []

    def on_term(signum, frame):
        got.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        convert(a, argv)
    except Bad as e:
        sys.stderr.write("\n" if sys.stderr.isatty() and not a.quiet else "")
        sys.stderr.write("%s: %s\n" % (PROG, e))
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("\n%s: interrupted; no output written (%s is as it was)\n" % (PROG, a.out))
        return 143 if got else 130
    except OSError as e:
        sys.stderr.write("%s: %s: %s\n" % (PROG, e.filename or a.out, e.strerror or e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

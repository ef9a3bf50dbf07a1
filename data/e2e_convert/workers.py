"""Decoding processes and the batch buffers they share with the main process.

Each decoding process owns SLOTS batch buffers in shared memory; it decodes a batch
straight into a free slot and sends the slot's number, the main process writes the
slot to HDF5 and hands it back. Nothing the size of a batch goes through a pipe. Task i
goes to process i % jobs; the main process takes the batches back in task order, so the
rows keep the order of the files. With jobs = 0 the main process decodes, between writes."""
import os
import queue
import signal

import numpy as np

from . import PROG
from .decode import BatchStats, fill
from .errors import Bad

SLOTS = 3


def pick_shared_folder(size, fallback):
    """/dev/shm when it has room for twice size (containers often give it 64 MB), else fallback"""
    try:
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= 2 * size:
            return "/dev/shm"
    except OSError:
        pass
    return fallback


class Buffers:
    """One batch buffer: X (batch, C, H, W) and one (batch,) array per output column."""

    def __init__(self, batch_rows, chw, dtype, coltypes, buf=None, offset=0):
        self.shape = (batch_rows,) + tuple(chw)
        self.x = np.ndarray(self.shape, dtype=dtype, buffer=buf, offset=offset) if buf is not None else \
            np.empty(self.shape, dtype)
        at = offset + self.x.nbytes
        self.cols = []
        for t in coltypes:
            at = (at + 7) // 8 * 8
            self.cols.append(np.ndarray((batch_rows,), dtype=t, buffer=buf, offset=at) if buf is not None else
                             np.empty(batch_rows, t))
            at += self.cols[-1].nbytes
        self.nbytes = at - offset

    @staticmethod
    def size(batch_rows, chw, dtype, coltypes):
        at = batch_rows * int(np.prod(chw)) * np.dtype(dtype).itemsize
        for t in coltypes:
            at = (at + 7) // 8 * 8 + batch_rows * np.dtype(t).itemsize
        return (at + 63) // 64 * 64


class SlotMemory:
    """SLOTS Buffers in one file mapped by the main process and one decoding process: in
    /dev/shm where it has room, else in the output folder (the main process creates and
    removes it)."""

    def __init__(self, batch_rows, chw, dtype, coltypes, path=None, folder=None, tag=""):
        import mmap

        self.slot_bytes = Buffers.size(batch_rows, chw, dtype, coltypes)
        self.size = SLOTS * self.slot_bytes
        self.owner = path is None
        if self.owner:
            path = os.path.join(pick_shared_folder(self.size, folder), ".%s-%d-%s" % (PROG, os.getpid(), tag))
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
        self.views = [Buffers(batch_rows, chw, dtype, coltypes, self.mm, k * self.slot_bytes) for k in range(SLOTS)]

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


def decode_task(readers, specs, task, batch_rows, get_slot):
    """yields (first file row, n, slot, BatchStats) for one task (file index, span)"""
    fi, span = task
    reader, spec = readers[fi], specs[fi]
    for row, img, cols in reader.batches(span, spec, batch_rows):
        slot, buf = get_slot()
        n, stats = fill(reader, spec, row, img, cols, buf.x, buf.cols)
        yield row, n, slot, stats


def worker_main(readers, tasks, specs, batch_rows, chw, dtype, coltypes, mem_path, free_q, out_q, ppid):
    """Decodes the tasks [(task number, (file index, span))] in order and puts
    ("data", task, row, n, slot, stats), ("done", task) or ("error", message) on out_q."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides

    def put(item):
        while True:
            try:
                out_q.put(item, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != ppid:
                    os._exit(1)

    def get_slot():
        while True:
            try:
                k = free_q.get(timeout=1.0)
                return k, mem.views[k]
            except queue.Empty:
                if os.getppid() != ppid:
                    os._exit(1)

    mem = None
    try:
        mem = SlotMemory(batch_rows, chw, dtype, coltypes, path=mem_path)
        for ti, task in tasks:
            for row, n, slot, st in decode_task(readers, specs, task, batch_rows, get_slot):
                put(("data", ti, row, n, slot, (st.zero, st.negative)))
            put(("done", ti))
    except Bad as e:
        put(("error", str(e)))
    except MemoryError:
        put(("error", "out of memory while decoding (lower --batch or --jobs)"))
    except BaseException as e:  # noqa: BLE001 - reported by the main process
        put(("error", "decoding failed: %s: %s" % (type(e).__name__, e)))
    finally:
        for r in readers:
            r.close()
        if mem is not None:
            mem.close()


class Decoders:
    """--jobs processes (task i on process i % jobs), or the main process with --jobs 0;
    batches come back in file order."""

    def __init__(self, readers, tasks, specs, batch_rows, chw, dtype, coltypes, jobs, folder):
        import multiprocessing as mp

        self.readers, self.tasks, self.specs, self.jobs, self.batch_rows = readers, tasks, specs, jobs, batch_rows
        self.procs, self.mems, self.free_qs, self.out_qs = [], [], [], []
        if jobs == 0:
            self.inline = Buffers(batch_rows, chw, dtype, coltypes)
            return
        self.inline = None
        ctx = mp.get_context("spawn")  # fork after pyarrow started threads is unsafe
        try:
            for j in range(jobs):
                self.mems.append(SlotMemory(batch_rows, chw, dtype, coltypes, folder=folder, tag=str(j)))
                free_q, out_q = ctx.Queue(), ctx.Queue(maxsize=SLOTS + 1)
                for k in range(SLOTS):
                    free_q.put(k)
                mine = [(ti, t) for ti, t in enumerate(tasks) if ti % jobs == j]
                p = ctx.Process(target=worker_main, daemon=True,
                                args=(readers, mine, specs, batch_rows, chw, dtype, coltypes, self.mems[-1].path,
                                      free_q, out_q, os.getpid()))
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
        """(file index, first file row, X, [columns], BatchStats) in file order; the arrays
        stay valid until the next batch is asked for"""
        for ti, task in enumerate(self.tasks):
            fi = task[0]
            if self.inline:
                buf = self.inline
                for row, n, _, st in decode_task(self.readers, self.specs, task, self.batch_rows, lambda: (0, buf)):
                    yield fi, row, buf.x[:n], [c[:n] for c in buf.cols], st
                continue
            yield from self._from_process(ti, fi)

    def _from_process(self, ti, fi):
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
                return
            _, _, row, n, slot, (zero, negative) = msg
            buf = self.mems[j].views[slot]
            yield fi, row, buf.x[:n], [c[:n] for c in buf.cols], BatchStats(zero, negative)
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
        for r in self.readers:
            r.close()
        self.procs, self.mems, self.free_qs, self.out_qs = [], [], [], []

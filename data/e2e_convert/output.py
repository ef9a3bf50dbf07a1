"""The output file: written under a temporary name in the output's folder, synced to disk
as it grows, renamed over OUT only when complete; removed after any failure."""
import os
import threading

HDF5_LIBVER = ("earliest", "v110")  # readable by the reader's HDF5 1.10


def partial_name(out):
    return os.path.join(os.path.dirname(os.path.abspath(out)), ".%s.partial-%d" % (os.path.basename(out), os.getpid()))


def open_output(path, mode, chunk_bytes):
    import h5py

    return h5py.File(path, mode, libver=HDF5_LIBVER, rdcc_nbytes=max(64 << 20, 4 * chunk_bytes),
                     rdcc_nslots=100003, rdcc_w0=1.0)


class Syncer:
    """fsyncs a file from a thread every `every` bytes written, so the disk writes the
    data while the conversion goes on and the final fsync before the rename is short"""

    def __init__(self, path, every=256 << 20):
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


def commit(tmp, out):
    """the complete partial file becomes OUT, durably"""
    fsync_path(tmp)
    os.replace(tmp, out)
    fsync_path(os.path.dirname(os.path.abspath(out)), directory=True)

"""The output file: written under a temporary name in the output's folder, synced to disk
as it grows, renamed over OUT only when complete; removed after any failure. The same
rules as the C writers (net/base/outfile.h): the name .OUT.partial-PID, a free-space check
before writing (E2E_SPACE_CHECK=0 skips it), and after a failure the partial file's
blocks are freed before HDF5 closes it, so that its closing flush cannot fail on a full
disk (a failed close leaves the library's state half torn down: a crash at exit)."""
import errno
import os
import shutil
import threading

from .errors import Bad

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


# set when HDF5 could not close the output (its dirty chunks cannot be written on a full
# disk): the library's state is then half torn down and its exit handler would crash, so
# the program ends with os._exit after its message (__main__.py)
CLOSE_FAILED = []


def close_output(f):
    """closes the HDF5 file; a failed close is remembered (CLOSE_FAILED) and raised"""
    try:
        f.close()
    except BaseException as e:
        # kept: its traceback holds the writer's frames, whose HDF5 objects must not be
        # released either (that too would reach the half torn-down file)
        CLOSE_FAILED.append((f, e))
        raise


def release(tmp):
    """frees the blocks of a failed partial file (truncates it), before HDF5 closes it"""
    try:
        os.truncate(tmp, 0)
    except OSError:
        pass


def bytes_str(n):
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return ("%d %s" % (n, unit)) if unit == "bytes" else ("%.1f %s" % (n, unit))
        n /= 1000.0


def check_space(out, need):
    """refuses a file that cannot fit in the free space of OUT's file system"""
    if os.environ.get("E2E_SPACE_CHECK") == "0":
        return
    folder = os.path.dirname(os.path.abspath(out))
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if need > free:
        raise Bad("%s: the file needs about %s but the file system of %s has %s free; nothing was written "
                  "(free some space or write elsewhere; E2E_SPACE_CHECK=0 skips this check)"
                  % (out, bytes_str(need), folder, bytes_str(free)))


def is_disk_full(e):
    """an OSError of a full disk or quota, also as h5py reports HDF5's (errno in the text)"""
    text = str(e)
    return getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "errno = 28" in text or \
        "errno = 122" in text or "No space left" in text

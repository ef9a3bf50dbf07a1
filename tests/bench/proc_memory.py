"""The memory of a command and every process it starts, sampled from /proc (Linux): for
the converter's benchmarks and its memory test."""
import os
import subprocess
import time


def parents():
    """{pid: parent pid} of every process"""
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    out[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                pass
    return out


def tree(pid):
    """pid and its descendants"""
    kids = {}
    for p, pp in parents().items():
        kids.setdefault(pp, []).append(p)
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += kids.get(p, [])
    return out


def status_kb(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampled:
    """rc, stdout, stderr, seconds; peak_mb: the largest sum of the tree's resident sizes
    seen (sampled every `every` s); hwm_mb: {pid: that process's own peak, VmHWM}, which
    no sampling misses while the process is seen at least once"""

    def __init__(self, argv, env=None, every=0.02):
        t0 = time.time()
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        peak, hwm = 0, {}
        while p.poll() is None:
            pids = tree(p.pid)
            peak = max(peak, sum(status_kb(q, "VmRSS:") for q in pids))
            for q in pids:
                hwm[q] = max(hwm.get(q, 0), status_kb(q, "VmHWM:"))
            time.sleep(every)
        self.stdout, self.stderr = p.communicate()
        self.rc, self.seconds = p.returncode, time.time() - t0
        self.peak_mb = peak / 1024
        self.hwm_mb = {q: v / 1024 for q, v in hwm.items() if v}


# the peak resident size (VmHWM, kB) of a process that imports pyarrow and h5py, and opens
# the file named on its command line (if one is) with pyarrow.parquet.ParquetFile, which
# reads the whole footer (ru_maxrss would not do: Linux carries it over fork and exec)
OPEN_WHOLE = """import sys, h5py, pyarrow.parquet as pq
if sys.argv[1:]:
    pq.ParquetFile(sys.argv[1]).metadata
print([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM:")][0])
"""


def pyarrow_open_mb(python, path=None):
    """the peak MB of `python` importing pyarrow and h5py and, given a path, opening that
    parquet file whole (its footer as pyarrow's FileMetaData)"""
    p = subprocess.run([python, "-c", OPEN_WHOLE] + ([path] if path else []), capture_output=True, text=True,
                       check=True)
    return int(p.stdout) / 1024

"""The progress bar: on a terminal redrawn at most 4 times a second, otherwise (a batch
job's log) a line every 10 s; jets done, jets/s, MB/s written, the ETA."""
import sys
import time

from . import PROG


def fmt_duration(s):
    s = int(max(0, s) + 0.5)
    if s >= 3600:
        return "%dh%02dm" % (s // 3600, s % 3600 // 60)
    if s >= 60:
        return "%dm%02ds" % (s // 60, s % 60)
    return "%ds" % s


class Progress:
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
        sys.stderr.write(("\r" + line + ("\n" if final else "")) if self.tty else line + "\n")
        sys.stderr.flush()

"""The converter's one kind of failure, and its warnings."""
import sys


class Bad(Exception):
    """Bad input or a failed step: one message, exit status 1."""


def warn(msg):
    """a warning on standard error (the run goes on)"""
    from . import PROG

    # on a terminal the progress bar's line is open: start a new one
    sys.stderr.write("%s%s: warning: %s\n" % ("\n" if sys.stderr.isatty() else "", PROG, msg))
    sys.stderr.flush()

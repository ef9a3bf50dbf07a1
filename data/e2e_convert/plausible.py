"""Plausibility checks of one source file, on the rows as they are written: masses that
look like MeV (refused: the model's target is m / 500 GeV), negative masses, images that
are all zeros (warnings with the count; every image zero is refused), and negative pixels
in a channel marked energy-like (a warning: it may be an impact parameter)."""
import numpy as np

from .errors import Bad, warn

MEV_MEDIAN_GEV = 5000.0  # a median jet mass above 5 TeV is a file in MeV
EARLY_ROWS = 1024  # the MeV check runs on a file's first rows, then again on all of them


class FileChecks:
    def __init__(self, path, rows, channels, kinds, mass_unit):
        self.path, self.rows, self.channels, self.kinds = path, rows, channels, kinds
        self.mass_unit = mass_unit
        self.masses = []
        self.seen = 0
        self.zero = 0
        self.negative = np.zeros(len(channels), np.int64)
        self.checked_early = False

    def add(self, m, stats, rows):
        """a batch of rows jets: its masses (GeV, float32; None for a classifier's file without
        them) and its BatchStats"""
        if m is not None:
            self.masses.append(np.array(m, np.float32))
        self.seen += rows
        self.zero += stats.zero
        self.negative += np.asarray(stats.negative, np.int64)
        if not self.checked_early and (self.seen >= EARLY_ROWS or self.seen == self.rows):
            self.checked_early = True
            if self.masses:
                self._mev(np.concatenate(self.masses), "its first %d jets" % self.seen)
        if self.seen == self.rows:
            self.finish()

    def _mev(self, m, which):
        med = float(np.median(m))
        if med > MEV_MEDIAN_GEV:
            hint = ("pass --mass-unit MeV to divide m and pt by 1000" if self.mass_unit == "GeV" else
                    "even after --mass-unit MeV; check the column given for m")
            raise Bad("%s: the median mass of %s is %.4g GeV: the masses look like MeV (the format stores "
                      "GeV, the model's target is m / 500 GeV); %s" % (self.path, which, med, hint))

    def finish(self):
        m = np.concatenate(self.masses) if self.masses else np.zeros(0, np.float32)
        n = self.seen
        if len(m):
            self._mev(m, "all its %d jets" % n)
        neg = int(np.count_nonzero(m < 0))
        if neg:
            warn("%s: %d of %d jets have a negative mass (the smallest %.4g GeV)" % (self.path, neg, n, m.min()))
        if n and self.zero == n:
            raise Bad("%s: every one of its %d images is all zeros (an empty or unfilled file?)" % (self.path, n))
        if self.zero:
            warn("%s: %d of %d jets have an image that is all zeros" % (self.path, self.zero, n))
        for c, count in enumerate(self.negative):
            if count and self.kinds[c] != "signed":
                warn("%s: channel %d (%s) is marked energy-like but has %d negative pixels; if it is an impact "
                     "parameter, mark it signed (--channel-kinds, or name it dz or d0 with --channels)"
                     % (self.path, c, self.channels[c], count))
        self.masses = []

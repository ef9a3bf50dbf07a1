/* Plausibility checks of a dataset's contents at open (data/README.md, "Plausibility"):
 * what makes training garbage is refused, with a message naming the file; what is only
 * odd is a warning naming the file and the count. No MPI, no HDF5: the reader calls
 * them with numbers every rank holds alike, and lets one rank warn. */
#ifndef E2E_DATA_PLAUSIBLE_H
#define E2E_DATA_PLAUSIBLE_H

/* more than half the masses of a file above this (a median above 5 TeV): MeV */
#define MEV_MEDIAN_GEV 5000.0f

/* One file's masses m[0..n): refused (-1, e2e_error()) when they look like MeV (the
 * median above MEV_MEDIAN_GEV); negative masses counted into *negative and, with warn,
 * a warning. */
int plausible_masses(const float *m, long long n, const char *path, int warn, long long *negative);

#include "preprocess.h"

/* a pixel above this (in any channel, of |x| for a signed one) is no detector's: 10 PeV
 * in GeV, 10 km in mm */
#define PLAUSIBLE_PIXEL_MAX 1e7f

/* What the statistics pass read of one file: its images, and its pixels. */
typedef struct {
    long long checked;  /* images read */
    long long empty;    /* of those, images whose every pixel is zero */
    long long kept;     /* pixels the preprocessing keeps: positive in an energy-like
                           channel, non-zero in a signed one */
    long long negative; /* negative pixels of energy-like channels (preprocessing makes them 0) */
} ImageCounts;

/* Each file's images read at open: refused when a file's images hold nothing the
 * preprocessing keeps: every one all zeros (an unfilled or broken file), or nothing but
 * zeros and negative values in energy-like channels (no detector measures a negative
 * energy, pT or charge, and every image would be empty once preprocessed: nothing to
 * learn the mass from either way); with warn, a warning per file with empty images. */
int plausible_images(const char *const *paths, int nfiles, const ImageCounts *counts, int warn);

/* The statistics pass's histogram of every file's pixels (summed over the ranks), with
 * warn: a warning for an energy-like channel whose non-zero pixels are mostly negative
 * (a signed quantity not declared so in channel_kinds? its negatives become 0), and for
 * a channel with pixels above PLAUSIBLE_PIXEL_MAX (a broken conversion or unit?
 * training is unharmed: the scale is a quantile and such pixels clip to 1). names:
 * the channel names ("" where the file has none). */
void plausible_channels(const PixelHist *h, const char *const *names, const char *path, int warn);

#endif

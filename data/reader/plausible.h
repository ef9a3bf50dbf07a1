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

/* Each file's images read at open (checked[i], of which empty[i] were all zeros):
 * refused when every image read from a file is empty (nothing to learn the mass from:
 * an unfilled or broken file); with warn, a warning per file with empty images. */
int plausible_images(const char *const *paths, int nfiles, const long long *empty, const long long *checked,
                     int warn);

#endif

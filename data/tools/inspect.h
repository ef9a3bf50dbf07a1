/* What `e2e-data info` prints: a dataset's files, shapes, dtype, chunking, provenance
 * attributes, the model's inputs (scalars and their scales, channel kinds), per-jet
 * columns, a text histogram of the mass, a classifier's class counts, and per-channel
 * pixel statistics. Serial: it
 * reads with HDF5's default (POSIX) driver. */
#ifndef E2E_DATA_INSPECT_H
#define E2E_DATA_INSPECT_H

#include <stdio.h>

/* max_rows > 0: pixel statistics over that many rows, evenly spaced (0: all rows).
 * label: a column of class labels whose counts to show (NULL: y, where every file has
 * it); values other than 0 and 1 are counted apart. 0, or -1 with a message naming the
 * file and the problem. */
int data_inspect(const char *path, FILE *out, long long max_rows, const char *label);

#endif

/* A dataset's fingerprint: what a checkpoint records of the data it was trained on, so
 * that a resumed run can refuse other data (a regenerated file, another N or seed, a
 * file list in another order) instead of continuing mid-epoch on other jets with the
 * old scales. Cheap: the masses are N floats every rank holds after dataset_open.
 *
 * Compared: N, the image shape, the channel names, a hash of the masses in dataset
 * order, and a hash of which rows are validation and test (so a copy of the same jets
 * that the reader splits differently is told apart too); for a classifier also the label
 * column's name and a hash of its values in dataset order (relabelled jets are other
 * data), compared where both fingerprints have them (a classifier's checkpoint from
 * before them has none). The files' names are kept
 * for messages only: a moved or renamed file with the same jets is the same data. */
#ifndef E2E_DATA_FINGERPRINT_H
#define E2E_DATA_FINGERPRINT_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "dataset.h"

#define FINGERPRINT_TEXT 1024

typedef struct {
    long long n;                        /* jets */
    int channels, height, width;
    uint64_t mass_hash;                 /* the masses, in dataset order */
    uint64_t split_hash;                /* the validation and test rows (order-free sum) */
    char channel_names[FINGERPRINT_TEXT]; /* "a,b,c" (empty names where the file has none) */
    char label[FINGERPRINT_TEXT];       /* a classifier's label column; "" without one (a
                                           regression's fingerprint is what it always was) */
    uint64_t label_hash;                /* with a label: its values, in dataset order */
    char files[FINGERPRINT_TEXT];       /* the files' names, ", "-joined (messages only) */
} DataFingerprint;

/* The open dataset's fingerprint. Collective over comm (the split's hash sums every
 * rank's rows); cannot fail. */
void data_fingerprint(const Dataset *d, MPI_Comm comm, DataFingerprint *fp);
/* 0 when a and b describe the same jets split the same way; else 1, with what differs
 * ("1500 jets, not 2000; other masses") in why. */
int data_fingerprint_differs(const DataFingerprint *a, const DataFingerprint *b, char *why, size_t size);
/* "2000 jets of 3 x 32 x 32 (track_pt, ecal, hcal) from jets.h5, masses #1a2b..." */
void data_fingerprint_describe(const DataFingerprint *f, char *out, size_t size);

#endif

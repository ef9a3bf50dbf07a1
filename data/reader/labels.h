/* A classifier's labels over the split: the jets of each class in each split, counted on
 * every rank's share and summed over the ranks, and the refusal of a split that holds one
 * class only (a classifier cannot learn from it, nor an AUC be measured on it). Internal
 * to the reader (dataset.c); the labels themselves are read by columns.c. */
#ifndef E2E_DATA_LABELS_H
#define E2E_DATA_LABELS_H

#include <mpi.h>

#include "split.h"

/* Collective over comm: count[s][c] = the jets of class c (label[row] 0 or 1) in split s,
 * all ranks. */
void labels_count(const float *label, const SplitRows *sp, MPI_Comm comm, long long count[DATA_SPLITS][2]);
/* 0, or -1 naming the dataset, the label column and the split when a split that has jets
 * holds only one class. */
int labels_check(const long long count[DATA_SPLITS][2], const char *path, const char *label);

#endif

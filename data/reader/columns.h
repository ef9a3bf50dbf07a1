/* The per-jet columns of a dataset, read whole on every rank: the mass (the regression's
 * target), the model's scalars as the files declare them (jet_inputs.h), each divided by
 * its scale once, here, and a classifier's labels. Internal to the reader (dataset.c). Checks, each failure naming the file:
 * every file declares the same inputs; the columns it needs exist (m, which a classifier's
 * file may lack, and the declared scalars; a file that declares none needs m, pt, ieta,
 * iphi as before) and hold finite
 * values; the masses are plausible (data/README.md, "Plausibility"). */
#ifndef E2E_DATA_COLUMNS_H
#define E2E_DATA_COLUMNS_H

#include <hdf5.h>
#include <mpi.h>

#include "jet_inputs.h"
#include "jetfile.h"

typedef struct {
    JetInputs inputs;          /* the files' declarations (the same in every file) */
    float *m;                  /* [N] GeV; NaN for the rows of a file without masses */
    int has_mass;              /* 1: every file holds the mass m; 0: some file has none (a
                                  classifier's, e.g. the E2E electron/photon files: X, y) */
    float *scalars;            /* [N][inputs.n_scalars]: value / scale; NULL when none */
    long long negative_mass;   /* jets with m < 0, all files */
    float *label;              /* [N] the class labels, 0 or 1 (columns_read's label); NULL
                                  when none was asked for */
} Columns;

/* Collective over comm (every step ends in agree_fail_together, so all ranks fail together):
 * files[0..nfiles) are open, start[i] is file i's first dataset row, start[nfiles] = N.
 * dxpl: the transfer property of the column reads. label: the column of class labels
 * (any integer or float type, every value 0 or 1; refused, naming the file and the row,
 * when missing, NaN or another value), or NULL: then a file without m is refused. Rank 0 of comm prints a warning per file
 * with negative masses. 0 or -1 (e2e_error()). */
int columns_read(Columns *c, JetFile *files, int nfiles, const long long *start, const char *label, hid_t dxpl,
                 MPI_Comm comm);
void columns_free(Columns *c);

#endif

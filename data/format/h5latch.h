/* An HDF5 file driver that never lets HDF5 see a failed write (jetwriter.c builds its
 * files' structure with it on rank 0). It reads and writes with POSIX calls, as HDF5's
 * own sec2 driver does, but a write, truncate or close that fails is recorded in the
 * caller's H5Latch and reported to HDF5 as done. Why: HDF5 1.10 handles a failed
 * metadata write badly: H5Fclose fails with the library's state half torn down, and
 * the process then crashes in HDF5's exit handler (at MPI_Finalize). With this driver
 * every HDF5 call completes, the file closes cleanly, and the writer checks the latch
 * after each step: a failure is its message, the file removed. Reads that fail are
 * returned to HDF5 as errors (nothing to hide there). */
#ifndef E2E_DATA_H5LATCH_H
#define E2E_DATA_H5LATCH_H

#include <hdf5.h>

typedef struct {
    int error;        /* errno of the first failed write, truncate or close; 0: none */
    const char *what; /* which of them ("writing", "truncating", "closing") */
} H5Latch;

/* A file-access property list of this driver recording into *latch (which must
 * outlive the file); the caller closes the list. -1 on failure. */
hid_t h5_latch_fapl(H5Latch *latch);

#endif

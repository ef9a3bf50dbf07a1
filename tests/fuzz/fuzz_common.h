/* What the fuzz harnesses share: MPI started once (the readers run on MPI_COMM_SELF),
 * HDF5's error printing off, a scratch folder (in /dev/shm when there is one) removed
 * at exit, and the check that turns a broken invariant into a crash the fuzzer
 * reports. */
#ifndef E2E_FUZZ_COMMON_H
#define E2E_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* MPI_Init (once), HDF5 quiet, the scratch folder; returns it */
const char *fuzz_setup(void);
/* "<scratch>/<name>" into out */
void fuzz_path(char *out, size_t size, const char *name);
/* a broken invariant: the message, then abort() (libFuzzer saves the input) */
void fuzz_require(int ok, const char *what);

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

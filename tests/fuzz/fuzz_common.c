/* The fuzz harnesses' shared setup (fuzz_common.h). */
#define _XOPEN_SOURCE 700
#include "fuzz_common.h"

#include <ftw.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char scratch[256];

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
    (void)st, (void)type, (void)ftw;
    remove(path);
    return 0;
}

/* the scratch tree, depth first (fuzz_file_list makes folders in it) */
static void remove_scratch(void) {
    nftw(scratch, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

const char *fuzz_setup(void) {
    if (scratch[0]) return scratch;
    int started = 0;
    MPI_Initialized(&started);
    if (!started) MPI_Init(NULL, NULL);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(scratch, sizeof scratch, "%s/e2e-fuzz-XXXXXX", base);
    if (!mkdtemp(scratch)) {
        perror("fuzz: cannot make a scratch folder");
        abort();
    }
    atexit(remove_scratch);
    return scratch;
}

void fuzz_path(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", fuzz_setup(), name); }

void fuzz_require(int ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "fuzz: invariant broken: %s\n", what);
    abort();
}

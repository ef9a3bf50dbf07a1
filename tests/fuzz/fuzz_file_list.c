/* libFuzzer harness of the file-list parser (jet_list_resolve, data/format/jetfile.h): the
 * input is the text of a list file, resolved in a folder that holds two small jet files
 * (a.h5, b.h5), one in a sub-folder (sub/c.h5), a symbolic link to a.h5 (link.h5) and a
 * folder (dir); a list that resolves is then opened by the reader (dataset_open on
 * MPI_COMM_SELF). A crash, a sanitizer report, or a resolved list that breaks the
 * parser's promises (no names, an empty or overlong name, a name twice) is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dataset.h"
#include "error.h"
#include "fuzz_common.h"
#include "jetfile.h"
#include "synthfile.h"

static char list[512];

static void jet_file(const char *name, uint64_t seed) {
    char p[512];
    fuzz_path(p, sizeof p, name);
    SynthFileOptions o;
    synth_file_defaults(&o);
    o.out = p;
    o.samples = 40;
    o.size = 8;
    o.channels = 2;
    o.seed = seed;
    fuzz_require(synth_write_file(&o, MPI_COMM_SELF) == 0, "a jet file of the folder is written");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char p[512], q[512];
    fuzz_path(p, sizeof p, "sub");
    mkdir(p, 0777);
    fuzz_path(p, sizeof p, "dir");
    mkdir(p, 0777);
    jet_file("a.h5", 1);
    jet_file("b.h5", 2);
    jet_file("sub/c.h5", 3);
    fuzz_path(p, sizeof p, "a.h5");
    fuzz_path(q, sizeof q, "link.h5");
    fuzz_require(symlink(p, q) == 0, "the link is made");
    fuzz_path(list, sizeof list, "list.txt");
    return 0;
}

static void check_names(char **names, int n) {
    fuzz_require(n >= 1 && names != NULL, "a resolved list names a file");
    for (int i = 0; i < n; i++) {
        fuzz_require(names[i] && names[i][0] && strlen(names[i]) < 16384, "every name non-empty, of a sane length");
        for (int j = 0; j < i; j++) fuzz_require(strcmp(names[i], names[j]) != 0, "no name twice");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(list, "wb");
    if (!f) return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    char **names = NULL;
    int n = 0;
    if (jet_list_resolve(list, &names, &n) == 0) {
        check_names(names, n);
        jet_list_free(names, n);
        DatasetOptions o;
        dataset_default_options(&o);
        o.path = list;
        o.comm = MPI_COMM_SELF;
        o.batch = 4;
        o.prefetch = 0;
        Dataset *d = NULL;
        if (dataset_open(&d, &o) == 0) dataset_close(d);
    }
    e2e_clear_error();
    return 0;
}

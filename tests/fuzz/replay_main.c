/* The fuzz harnesses as plain programs (builds without libFuzzer, and the corpus tests):
 * each argument is an input file, or a folder whose files are all inputs; each runs
 * once through LLVMFuzzerTestOneInput. A crash or a sanitizer report fails the run. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* a folder's files in name order */
static int run_folder(const char *dir, int *count) {
    DIR *d = opendir(dir);
    if (!d) return run_file(dir);
    char **names = NULL;
    int n = 0, bad = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            char **more = realloc(names, (size_t)(n + 1) * sizeof *names);
            if (!more) break;
            names = more;
            names[n++] = strdup(e->d_name);
        }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name);
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        bad |= run_file(p);
        (*count)++;
        free(names[i]);
    }
    free(names);
    return bad;
}

int main(int argc, char **argv) {
    LLVMFuzzerInitialize(&argc, &argv);
    int bad = 0, count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) bad |= run_folder(argv[i], &count);
        else bad |= run_file(argv[i]), count++;
    }
    printf("replay %s: %d inputs, %s\n", argv[0], count, bad ? "some unreadable" : "no crash, no report");
    return bad;
}

/* The one atomic writer (net/base/outfile.h): a whole file appears under its name or nothing
 * does; a failed write (ENOSPC, from /dev/full) leaves no temporary file and the previous
 * file as it was; the checks before writing refuse a missing folder, a folder, an input
 * under another name (symbolic and hard links), a size above the free space; dead
 * writers' temporary files are recognised and only they are removed. (A real full file
 * system: tests/test_no_loss.py full_disk.) */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "outfile.h"

static char dir[] = "/tmp/e2e-outfile-XXXXXX";

/* DIR/name (kept for the test's life, freed at exit: the sanitizer build counts leaks) */
static char *names[256];
static int n_names;

static void free_names(void) {
    while (n_names) free(names[--n_names]);
}

static const char *in_dir(const char *name) {
    char *p = malloc(600);
    snprintf(p, 600, "%s/%s", dir, name);
    if (n_names == 0) atexit(free_names);
    if (n_names < 256) names[n_names++] = p;
    return p;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 4096);
    size_t n = fread(buf, 1, 4095, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* the folder's entries that are temporary files (.NAME.partial-PID) */
static int partials(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".partial-") != NULL;
    if (d) closedir(d);
    return n;
}

static void test_write(void) {
    char tmp[600];
    CHECK(out_partial_name("/a/b/c.h5", 42, tmp, sizeof tmp) == 0 && strcmp(tmp, "/a/b/.c.h5.partial-42") == 0,
          "partial name: %s", tmp);
    CHECK(out_partial_name("c.h5", 7, tmp, sizeof tmp) == 0 && strcmp(tmp, "./.c.h5.partial-7") == 0, "bare: %s", tmp);
    const char *p = in_dir("a.txt");
    CHECK(out_write_file(p, "first\n", 6) == 0, "write: %s", e2e_error());
    char *s = slurp(p);
    CHECK(s && strcmp(s, "first\n") == 0, "content: %s", s ? s : "(none)");
    free(s);
    CHECK(out_write_file(p, "second\n", 7) == 0, "replace: %s", e2e_error());
    s = slurp(p);
    CHECK(s && strcmp(s, "second\n") == 0, "replaced content: %s", s ? s : "(none)");
    free(s);
    CHECK(partials() == 0, "no temporary file after writing");

    /* a write that fails (ENOSPC from /dev/full): no temporary file, the old file kept */
    OutFile o;
    CHECK(out_open(&o, p) == 0, "open: %s", e2e_error());
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        close(o.fd);
        o.fd = full;
        CHECK(out_write(&o, "third\n", 6) == -1, "a write to a full device must fail");
        CHECK(strstr(e2e_error(), "a.txt") && strstr(e2e_error(), "full") && strstr(e2e_error(), "nothing was written"),
              "message: %s", e2e_error());
        s = slurp(p);
        CHECK(s && strcmp(s, "second\n") == 0, "the previous file is kept: %s", s ? s : "(none)");
        free(s);
    } else {
        out_abort(&o);
    }
    CHECK(partials() == 0, "no temporary file after a failed write");
    CHECK(out_open(&o, in_dir("b.txt")) == 0 && out_write(&o, "x", 1) == 0, "open b: %s", e2e_error());
    out_abort(&o);
    CHECK(access(in_dir("b.txt"), F_OK) != 0 && partials() == 0, "an aborted file leaves nothing");

    /* a file written by another library under the temporary name, then committed */
    out_partial_name(in_dir("c.bin"), 99, tmp, sizeof tmp);
    FILE *f = fopen(tmp, "w");
    fputs("made elsewhere", f);
    fclose(f);
    CHECK(out_commit_path(tmp, in_dir("c.bin")) == 0 && access(tmp, F_OK) != 0, "commit: %s", e2e_error());
    s = slurp(in_dir("c.bin"));
    CHECK(s && strcmp(s, "made elsewhere") == 0, "committed content");
    free(s);
    out_release(in_dir("c.bin"));
    struct stat st;
    CHECK(stat(in_dir("c.bin"), &st) == 0 && st.st_size == 0, "out_release frees the blocks (0 bytes)");
    CHECK(out_commit_path(in_dir("nope"), in_dir("d.bin")) == -1 && strstr(e2e_error(), "d.bin"),
          "committing a missing file fails naming it: %s", e2e_error());
}

static void test_checks(void) {
    const char *data = in_dir("data.h5");
    FILE *f = fopen(data, "w");
    fputs("the input", f);
    fclose(f);
    CHECK(symlink(data, in_dir("sym.h5")) == 0 && link(data, in_dir("hard.h5")) == 0, "links");
    OutInput in[2] = {{in_dir("ckpt.h5"), "--checkpoint"}, {data, "--data"}};
    CHECK(out_check_path(in_dir("new.h5"), "--predictions", in, 2) == 0, "a new file is fine: %s", e2e_error());
    const char *bad[] = {data, in_dir("sym.h5"), in_dir("hard.h5")};
    for (int i = 0; i < 3; i++) {
        CHECK(out_check_path(bad[i], "--predictions", in, 2) == -1, "%s must be refused", bad[i]);
        CHECK(strstr(e2e_error(), "--data") && strstr(e2e_error(), "input") && strstr(e2e_error(), bad[i]),
              "message: %s", e2e_error());
    }
    char *s = slurp(data);
    CHECK(s && strcmp(s, "the input") == 0, "the input is untouched");
    free(s);
    CHECK(out_check_path(in_dir("no/such/x.h5"), "--out", NULL, 0) == -1 && strstr(e2e_error(), "does not exist"),
          "a missing folder: %s", e2e_error());
    CHECK(out_check_path(dir, "--out", NULL, 0) == -1 && strstr(e2e_error(), "is a folder"), "a folder: %s",
          e2e_error());
    CHECK(out_check_path(in_dir("sub/"), "--out", NULL, 0) == -1 && strstr(e2e_error(), "is a folder"),
          "a name ending in '/': %s", e2e_error());
    CHECK(out_check_path(in_dir("data.h5/x"), "--out", NULL, 0) == -1 && strstr(e2e_error(), "not a folder"),
          "a file as the folder: %s", e2e_error());
    unsetenv("E2E_SPACE_CHECK");
    CHECK(out_check_space(data, 1000, "x") == 0, "1 kB fits");
    CHECK(out_check_space(data, 1ull << 62, "the jet file") == -1 && strstr(e2e_error(), "needs about") &&
          strstr(e2e_error(), "free") && strstr(e2e_error(), "the jet file"), "4 EB does not: %s", e2e_error());
    setenv("E2E_SPACE_CHECK", "0", 1);
    CHECK(out_check_space(data, 1ull << 62, "x") == 0, "E2E_SPACE_CHECK=0 skips the check");
    unsetenv("E2E_SPACE_CHECK");
    char b[32];
    CHECK(!strcmp(out_bytes_str(999, b, sizeof b), "999 bytes") && !strcmp(out_bytes_str(1500000, b, sizeof b), "1.5 MB"),
          "bytes: %s", b);
}

static void test_leftovers(void) {
    const char *names[] = {".ckpt-0000000010.h5.partial-123", ".config.json.partial-9", "x.partial-123",
                           ".y.partial-12a", ".z.partial-", "keep.txt"};
    int gone[] = {1, 1, 0, 0, 0, 0};
    for (int i = 0; i < 6; i++) {
        FILE *f = fopen(in_dir(names[i]), "w");
        fclose(f);
    }
    CHECK(out_remove_partials(dir) == 2, "two leftovers removed");
    for (int i = 0; i < 6; i++)
        CHECK((access(in_dir(names[i]), F_OK) != 0) == gone[i], "%s %s", names[i], gone[i] ? "removed" : "kept");
}

int main(void) {
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_write();
    test_checks();
    test_leftovers();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_main_result("test_outfile");
}

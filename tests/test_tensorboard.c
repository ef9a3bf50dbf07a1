/* TensorBoard's event files as dist/run/tensorboard.c writes them: CRC-32C against its
 * check value, records that read back whole (lengths, masked CRCs, the Event's step),
 * the file version first, buffering until a flush, a resumed run's cut (events past its
 * step dropped, and the test metrics at it; a torn last record dropped), the new file
 * named after the earlier ones, and the local-folder test. TensorBoard's own reader
 * reads what e2e-train writes in tests/test_train_features.py tensorboard. */
#define _GNU_SOURCE  /* memmem */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "tensorboard.h"

typedef struct {
    int records, version, tests, torn;
    long steps[64];
} Read;

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* every record of the file: CRCs checked, the Event's step (field 2) */
static Read read_file(const char *path) {
    Read r = {0};
    FILE *f = fopen(path, "rb");
    unsigned char buf[1 << 16];
    size_t n = f ? fread(buf, 1, sizeof buf, f) : 0, at = 0;
    if (f) fclose(f);
    while (at + 16 <= n) {
        uint64_t len = le(buf + at, 8);
        if (le(buf + at + 8, 4) != tensorboard_masked_crc(buf + at, 8) || at + 16 + len > n ||
            le(buf + at + 12 + len, 4) != tensorboard_masked_crc(buf + at + 12, len))
            break;
        const unsigned char *e = buf + at + 12;
        long step = -1;
        if (e[0] == 0x09 && e[9] == 0x10) step = (long)e[10];  /* wall_time, then step (< 128 here) */
        r.version += memmem(e, len, "brain.Event:2", 13) != NULL;
        r.tests += memmem(e, len, "test/", 5) != NULL;
        if (r.records < 64) r.steps[r.records] = step;
        r.records++;
        at += 16 + len;
    }
    r.torn = at != n;
    return r;
}

/* the event files of dir, in name order, into names (at most 4) */
static int event_files(const char *dir, char names[4][600]) {
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), k = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(list[i]->d_name, TB_EVENT_PREFIX, strlen(TB_EVENT_PREFIX)) == 0 && k < 4)
            snprintf(names[k++], 600, "%s/%s", dir, list[i]->d_name);
        free(list[i]);
    }
    free(list);
    return k;
}

int main(void) {
    CHECK(tensorboard_crc32c("123456789", 9) == 0xE3069283u, "CRC-32C check value");
    uint32_t c = tensorboard_crc32c("", 0);
    CHECK(tensorboard_masked_crc("", 0) == ((c >> 15) | (c << 17)) + 0xA282EAD8u, "TFRecord's mask");

    char dir[256], fs[32];
    snprintf(dir, sizeof dir, "/tmp/e2e-tb-test-%ld", (long)getpid());
    mkdir(dir, 0777);
    CHECK(tensorboard_folder_is_local(dir, fs, sizeof fs) == 1, "/tmp is local (%s)", fs);

    TensorBoard tb;
    CHECK(tensorboard_open(&tb, dir, 0, -1) == 0 && !tb.on, "mode 0: no file");
    CHECK(tensorboard_open(&tb, dir, 1, -1) == 0 && tb.on, "open: %s", e2e_error());
    char names[4][600];
    CHECK(event_files(dir, names) == 1, "one event file");
    Read r = read_file(names[0]);
    CHECK(r.records == 1 && r.version == 1 && r.steps[0] == 0 && !r.torn, "the file version first, written at once");
    for (long s = 1; s <= 10; s++) tensorboard_step(&tb, s, 0.5 / s, 1e-3);
    r = read_file(names[0]);
    CHECK(r.records == 1, "steps are buffered (%d records on disk)", r.records);
    RunResults res = {.test_loss = 0.1, .test_mae = 20, .test_mre = 0.2};
    tensorboard_test(&tb, 10, &res);
    tensorboard_close(&tb);
    r = read_file(names[0]);
    CHECK(r.records == 1 + 20 + 3 && r.tests == 3 && r.steps[1] == 1 && r.steps[20] == 10 && !r.torn,
          "a flush writes every record whole: %d records, %d test", r.records, r.tests);

    /* a torn last record (a crash mid-write), then a resume at step 6 */
    FILE *f = fopen(names[0], "ab");
    fwrite("\x30\x00\x00\x00\x00\x00\x00\x00\x01\x02", 1, 10, f);
    fclose(f);
    CHECK(read_file(names[0]).torn, "the torn record is there");
    CHECK(tensorboard_open(&tb, dir, 1, 6) == 0, "resume: %s", e2e_error());
    tensorboard_close(&tb);
    CHECK(event_files(dir, names) == 2, "a second file for the resumed run");
    r = read_file(names[0]);
    CHECK(r.records == 1 + 12 && r.tests == 0 && r.steps[12] == 6 && !r.torn,
          "the earlier file cut to steps <= 6: %d records, last step %ld", r.records, r.steps[r.records - 1]);
    r = read_file(names[1]);
    CHECK(r.records == 1 && r.version == 1, "the new file sorts after the earlier one and opens with the version");
    CHECK(tensorboard_cut(names[0], 6) == 0 && read_file(names[0]).records == 13, "a second cut changes nothing");

    /* a resume at the last step keeps its training events but not its test metrics */
    CHECK(tensorboard_open(&tb, dir, 1, -1) == 0, "third file");
    tensorboard_step(&tb, 7, 0.1, 1e-3);
    tensorboard_test(&tb, 7, &res);
    tensorboard_close(&tb);
    CHECK(tensorboard_open(&tb, dir, 1, 7) == 0, "resume at 7");
    tensorboard_close(&tb);
    event_files(dir, names);
    r = read_file(names[2]);
    CHECK(r.records == 3 && r.tests == 0 && r.steps[2] == 7, "at the resumed step: loss and lr kept, test dropped");

    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_main_result("test_tensorboard");
}

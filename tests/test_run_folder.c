/* A run folder belongs to one run (dist/run/run_folder.h): the lock refuses a second holder
 * and names it (host, pid), and is free again once released; dead writers' temporary
 * files go and nothing else does; a fresh start in a folder holding a run is refused
 * unless --overwrite, which deletes the run's files only (TensorBoard's event files among
 * them); --resume auto without a checkpoint refuses a folder with results; pruning
 * follows the run's own history, so the checkpoint just written stays whatever other,
 * higher-numbered files lie there.
 * (Resuming from real checkpoints, rewinds and two jobs under mpirun:
 * tests/test_no_loss.py run_folder.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "run_folder.h"

static char dir[] = "/tmp/e2e-run-folder-XXXXXX";

static const char *in_dir(const char *name) {
    char *p = malloc(700);
    snprintf(p, 700, "%s/%s", dir, name);
    return p;
}

static void touch(const char *name, const char *text) {
    FILE *f = fopen(in_dir(name), "w");
    if (f) fputs(text, f), fclose(f);
}

static int exists(const char *name) { return access(in_dir(name), F_OK) == 0; }

static void test_lock(void) {
    RunFolder a, b;
    CHECK(run_folder_open(&a, dir) == 0, "open: %s", e2e_error());
    CHECK(exists("checkpoints") && exists(RUN_LOCK_NAME), "the folder, checkpoints/ and the lock exist");
    char host[256] = "", pid[64];
    gethostname(host, sizeof host);
    snprintf(pid, sizeof pid, "pid %ld on host %s", (long)getpid(), host);
    CHECK(run_folder_open(&b, dir) == -1, "a second holder must be refused");
    CHECK(strstr(e2e_error(), "in use by another run") && strstr(e2e_error(), pid) && strstr(e2e_error(), "--out"),
          "the holder is named (%s): %s", pid, e2e_error());
    run_folder_close(&b);
    run_folder_close(&a);
    CHECK(run_folder_open(&b, dir) == 0, "free again after the holder released it: %s", e2e_error());
    run_folder_close(&b);
}

static void test_leftovers(void) {
    const char *junk[] = {"checkpoints/.ckpt-0000000005.h5.partial-77", "checkpoints/ckpt-0000000005.h5.tmp-77",
                          "checkpoints/best.h5.tmp-123", "config.json.tmp", ".metrics.csv.partial-5"};
    const char *keep[] = {"notes.tmp", "checkpoints/my.h5.tmp", "slurm-12.out"};
    for (int i = 0; i < 5; i++) touch(junk[i], "x");
    for (int i = 0; i < 3; i++) touch(keep[i], "x");
    RunFolder rf;
    CHECK(run_folder_open(&rf, dir) == 0, "open: %s", e2e_error());
    for (int i = 0; i < 5; i++) CHECK(!exists(junk[i]), "%s removed", junk[i]);
    for (int i = 0; i < 3; i++) CHECK(exists(keep[i]), "%s kept", keep[i]);
    run_folder_close(&rf);
}

static int start(RunFolder *rf, const char *resume, int overwrite) {
    RunStartRequest req = {.resume = resume, .overwrite = overwrite};
    char path[4200];
    CheckpointState *st = calloc(1, sizeof *st);
    int rc = run_folder_start(rf, &req, path, sizeof path, st);
    free(st);
    return rc;
}

static void test_rule(void) {
    RunFolder rf;
    CHECK(run_folder_open(&rf, dir) == 0, "open: %s", e2e_error());
    char held[512];
    touch("config.json", "{}");
    touch("events.out.tfevents.1790000000.node7.42", "x");
    CHECK(run_folder_describe(&rf, held, sizeof held) == 0, "config.json and event files alone are no run: %s", held);
    CHECK(start(&rf, NULL, 0) == 0 && !exists("config.json") && !exists("events.out.tfevents.1790000000.node7.42"),
          "a fresh start replaces an unfinished start's config and TensorBoard events");
    touch("metrics.csv", "epoch,lr\n1,0.001\n2,0.001\n");
    touch("results.json", "{}");
    touch("checkpoints/ckpt-0000000016.h5", "x");
    touch("checkpoints/best.h5", "x");
    touch("events.out.tfevents.1790000001.node7.43", "x");
    CHECK(run_folder_describe(&rf, held, sizeof held) == 1 && strstr(held, "metrics of 2 epochs") &&
          strstr(held, "results.json") && strstr(held, "1 checkpoint") && strstr(held, "best.h5"), "held: %s", held);
    CHECK(start(&rf, NULL, 0) == -1 && strstr(e2e_error(), "holds another run") && strstr(e2e_error(), "--overwrite"),
          "a fresh start is refused: %s", e2e_error());
    CHECK(start(&rf, "none", 0) == -1, "--resume none too");
    CHECK(exists("metrics.csv") && exists("results.json") && exists("checkpoints/best.h5"), "nothing was deleted");
    CHECK(start(&rf, "auto", 1) == -1 && strstr(e2e_error(), "exclude each other"), "--overwrite --resume auto");
    unlink(in_dir("checkpoints/ckpt-0000000016.h5"));
    unlink(in_dir("checkpoints/best.h5"));
    CHECK(start(&rf, "auto", 0) == -1 && strstr(e2e_error(), "no checkpoint to continue"),
          "results but no checkpoint: refused: %s", e2e_error());
    touch("checkpoints/ckpt-0000000016.h5", "not a checkpoint");
    CHECK(start(&rf, "auto", 0) == -1 && strstr(e2e_error(), "none of its 1 checkpoints is valid"),
          "only invalid checkpoints: refused: %s", e2e_error());
    CHECK(start(&rf, NULL, 1) == 0, "--overwrite starts over: %s", e2e_error());
    CHECK(!exists("metrics.csv") && !exists("results.json") && !exists("checkpoints/ckpt-0000000016.h5") &&
              !exists("events.out.tfevents.1790000001.node7.43"),
          "--overwrite deleted the run's files, TensorBoard's events too");
    CHECK(exists("notes.tmp") && exists("slurm-12.out"), "and only those");
    CHECK(start(&rf, "auto", 0) == 0, "--resume auto in an empty folder starts fresh: %s", e2e_error());
    run_folder_close(&rf);
}

static void test_prune(void) {
    RunFolder rf;
    CHECK(run_folder_open(&rf, dir) == 0, "open: %s", e2e_error());
    touch("checkpoints/ckpt-9999999999.h5", "another run's, or a superseded branch's");
    long steps[] = {10, 20, 30};
    char name[64];
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "checkpoints/ckpt-%010ld.h5", steps[i]);
        touch(name, "x");
        CHECK(run_folder_checkpointed(&rf, steps[i], 2) == 0, "checkpointed %ld: %s", steps[i], e2e_error());
        CHECK(exists(name), "the checkpoint just written (%ld) is kept", steps[i]);
    }
    CHECK(!exists("checkpoints/ckpt-0000000010.h5") && exists("checkpoints/ckpt-0000000020.h5"),
          "the oldest of the run's own beyond --keep 2 is pruned");
    CHECK(exists("checkpoints/ckpt-9999999999.h5"), "a file not in the run's history is never pruned");
    run_folder_close(&rf);
}

int main(void) {
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    test_lock();
    test_leftovers();
    test_rule();
    test_prune();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0, "cleanup");
    return check_main_result("test_run_folder");
}

/* A run folder belongs to one run (run_folder.h): the lock, the rule for an existing
 * folder, the checkpoints' lineage and pruning. */
#include "run_folder.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error.h"
#include "outfile.h"
#include "run_files.h"
#include "tensorboard.h"

#define PATH_BUF (OUT_PATH_MAX + 512)

/* ---- names ---- */

/* the run's files in RUNDIR: what --overwrite deletes (launch/plot's pictures too: they
 * show the old run) */
static const char *const RUN_FILES[] = {"config.json", "metrics.csv", "metrics.jsonl", "results.json",
                                        "loss.png", "val_metrics.png"};
#define N_RUN_FILES (int)(sizeof RUN_FILES / sizeof *RUN_FILES)

/* ckpt-<10 digits>.h5, as checkpoint_name writes */
static int is_checkpoint(const char *name) {
    long s;
    char tail[8];
    return sscanf(name, "ckpt-%ld.%7s", &s, tail) == 2 && strcmp(tail, "h5") == 0 && strlen(name) == 18;
}

static int is_superseded(const char *name) { return strstr(name, ".h5.superseded") != NULL; }

/* TensorBoard's event files (tensorboard.h), any writer's: the run's curves */
static int is_event_file(const char *name) { return strncmp(name, TB_EVENT_PREFIX, strlen(TB_EVENT_PREFIX)) == 0; }

static int digits(const char *p) {
    if (!*p) return 0;
    for (; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    return 1;
}

/* temporary names of earlier versions' writers: ckpt-*.h5.tmp-PID, best.h5.tmp-PID */
static int is_old_checkpoint_tmp(const char *name) {
    const char *t = strstr(name, ".h5.tmp-");
    return t && (strncmp(name, "ckpt-", 5) == 0 || strncmp(name, "best.h5", 7) == 0) && digits(t + 8);
}

/* and config.json.tmp, metrics.csv.tmp, ... */
static int is_old_run_tmp(const char *name) {
    char want[64];
    for (int i = 0; i < N_RUN_FILES; i++) {
        snprintf(want, sizeof want, "%s.tmp", RUN_FILES[i]);
        if (strcmp(name, want) == 0) return 1;
    }
    return 0;
}

/* counts (and with `remove`, deletes) the entries of dir that match; -1 when an entry
 * cannot be deleted */
static int each_entry(const char *dir, int (*match)(const char *), int remove) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0, failed = 0;
    struct dirent *e;
    char path[PATH_BUF];
    while ((e = readdir(d))) {
        if (!match(e->d_name)) continue;
        n++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (remove && unlink(path) && errno != ENOENT) failed = e2e_fail("%s: cannot delete (%s)", path, strerror(errno));
    }
    closedir(d);
    return failed ? -1 : n;
}

/* ---- the lock ---- */

static void holder_record(char *buf, size_t size) {
    char host[256] = "?", when[32] = "?";
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    const char *job = getenv("SLURM_JOB_ID");
    snprintf(buf, size, "pid %ld on host %s since %s%s%s\n", (long)getpid(), host, when,
             job ? ", Slurm job " : "", job ? job : "");
}

/* flock on RUNDIR/e2e-train.lock, kept for the run's life; the holder's record in it */
static int take_lock(RunFolder *rf) {
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", rf->dir, RUN_LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return e2e_fail("%s: cannot create the run folder's lock (%s)", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char who[512] = "";
            ssize_t n = pread(fd, who, sizeof who - 1, 0);
            who[n > 0 ? n : 0] = '\0';
            who[strcspn(who, "\n")] = '\0';
            close(fd);
            return e2e_fail("%s: in use by another run (%s; it holds %s): two runs in one folder would mix "
                            "their checkpoints and metrics; wait for it to end, or give another --out", rf->dir,
                            who[0] ? who : "its holder has not written its name yet", path);
        }
        fprintf(stderr, "e2e-train: warning: %s: cannot lock it (%s): this file system does not support flock "
                "(Lustre: mount with -o flock), so a second run on this folder would not be noticed\n", path,
                strerror(errno));
    }
    char rec[512];
    holder_record(rec, sizeof rec);
    if (ftruncate(fd, 0) == 0 && pwrite(fd, rec, strlen(rec), 0) < 0) {
        /* the record is for messages only; the lock holds without it */
    }
    rf->lock_fd = fd;
    return 0;
}

int run_folder_open(RunFolder *rf, const char *dir) {
    memset(rf, 0, sizeof *rf);
    rf->lock_fd = -1;
    if (strlen(dir) >= sizeof rf->dir - 16) return e2e_fail("%s: path too long", dir);
    snprintf(rf->dir, sizeof rf->dir, "%s", dir);
    snprintf(rf->ckpt_dir, sizeof rf->ckpt_dir, "%s/checkpoints", dir);
    if (run_prepare(dir) || take_lock(rf)) return -1;
    /* no live writer but ours can use the folder now: dead writers' leftovers go */
    out_remove_partials(rf->dir);
    out_remove_partials(rf->ckpt_dir);
    each_entry(rf->ckpt_dir, is_old_checkpoint_tmp, 1);
    each_entry(rf->dir, is_old_run_tmp, 1);
    return 0;
}

void run_folder_close(RunFolder *rf) {
    if (rf->lock_fd >= 0) close(rf->lock_fd);  /* releases the flock */
    rf->lock_fd = -1;
    free(rf->history);
    rf->history = NULL;
    rf->n_history = rf->cap = 0;
}

/* ---- what the folder holds ---- */

static int metric_rows(const RunFolder *rf) {
    char path[PATH_BUF], line[4096];
    snprintf(path, sizeof path, "%s/metrics.csv", rf->dir);
    FILE *f = fopen(path, "r");
    int rows = 0;
    while (f && fgets(line, sizeof line, f)) rows += line[0] >= '0' && line[0] <= '9';
    if (f) fclose(f);
    return rows;
}

static int exists(const char *dir, const char *name) {
    char path[PATH_BUF];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void add_word(char *out, size_t size, const char *word) {
    size_t used = strlen(out);
    if (used + 1 < size) snprintf(out + used, size - used, "%s%s", used ? ", " : "", word);
}

int run_folder_describe(const RunFolder *rf, char *out, size_t size) {
    char w[64];
    out[0] = '\0';
    int rows = metric_rows(rf), ckpts = each_entry(rf->ckpt_dir, is_checkpoint, 0);
    if (rows > 0) {
        snprintf(w, sizeof w, "metrics of %d epoch%s", rows, rows == 1 ? "" : "s");
        add_word(out, size, w);
    }
    if (exists(rf->dir, "results.json")) add_word(out, size, "results.json");
    if (ckpts > 0) {
        snprintf(w, sizeof w, "%d checkpoint%s", ckpts, ckpts == 1 ? "" : "s");
        add_word(out, size, w);
    }
    if (exists(rf->ckpt_dir, "best.h5")) add_word(out, size, "checkpoints/best.h5");
    return out[0] != '\0';
}

/* deletes the run's files (RUN_FILES, TensorBoard's event files, the checkpoints,
 * best.h5, superseded ones) and nothing else */
static int clear_run(const RunFolder *rf) {
    char path[PATH_BUF];
    for (int i = 0; i < N_RUN_FILES; i++) {
        snprintf(path, sizeof path, "%s/%s", rf->dir, RUN_FILES[i]);
        if (unlink(path) && errno != ENOENT) return e2e_fail("%s: cannot delete (%s)", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/best.h5", rf->ckpt_dir);
    if (unlink(path) && errno != ENOENT) return e2e_fail("%s: cannot delete (%s)", path, strerror(errno));
    if (each_entry(rf->ckpt_dir, is_checkpoint, 1) < 0 || each_entry(rf->ckpt_dir, is_superseded, 1) < 0 ||
        each_entry(rf->dir, is_event_file, 1) < 0)
        return -1;
    return 0;
}

/* ---- the lineage ---- */

/* NAME -> NAME.superseded (or .superseded-2, ... when taken) */
static int supersede(const char *dir, const char *name) {
    char from[PATH_BUF], to[PATH_BUF + 32];
    snprintf(from, sizeof from, "%s/%s", dir, name);
    for (int k = 1; k < 1000; k++) {
        if (k == 1) snprintf(to, sizeof to, "%s.superseded", from);
        else snprintf(to, sizeof to, "%s.superseded-%d", from, k);
        if (access(to, F_OK) == 0) continue;
        if (rename(from, to)) return e2e_fail("%s: cannot rename to %s (%s)", from, to, strerror(errno));
        printf("e2e-train: %s is not on the resumed run's path: renamed %s\n", from, to);
        return 0;
    }
    return e2e_fail("%s: too many superseded copies", from);
}

static int history_add(RunFolder *rf, long step) {
    if (rf->n_history && rf->history[rf->n_history - 1] == step) return 0;
    if (rf->n_history == rf->cap) {
        int cap = rf->cap ? 2 * rf->cap : 16;
        long *h = realloc(rf->history, sizeof *h * cap);
        if (!h) return e2e_fail("out of memory for the checkpoint history");
        rf->history = h;
        rf->cap = cap;
    }
    rf->history[rf->n_history++] = step;
    return 0;
}

/* best.h5 past step S (or unreadable) belongs to another branch: it is superseded and
 * the best is chosen anew (the resumed state's best refers to a file that is gone) */
static int settle_best(RunFolder *rf, long S, const char *resumed_from, CheckpointState *st) {
    char best[PATH_BUF];
    snprintf(best, sizeof best, "%s/best.h5", rf->ckpt_dir);
    if (access(best, F_OK) != 0 || strcmp(best, resumed_from) == 0) return 0;
    CheckpointState *b = malloc(sizeof *b);
    if (!b) return e2e_fail("out of memory");
    int past = checkpoint_peek(best, b) != 0 || b->train.global_step > S;
    free(b);
    if (!past) return 0;
    if (supersede(rf->ckpt_dir, "best.h5")) return -1;
    train_state_forget_best(&st->train);
    printf("e2e-train: the best checkpoint is chosen anew from the next validation\n");
    return 0;
}

/* Resuming at the state st (global step S): checkpoints past S are superseded, the
 * others are the run's history. */
static int settle_lineage(RunFolder *rf, const char *resumed_from, CheckpointState *st) {
    long *steps, S = st->train.global_step;
    int n = checkpoint_list(rf->ckpt_dir, &steps), rc = 0;
    if (n < 0) return e2e_fail("%s: cannot list checkpoints (%s)", rf->ckpt_dir, strerror(errno));
    char path[PATH_BUF];
    for (int i = n - 1; i >= 0 && !rc; i--) {  /* oldest first */
        if (steps[i] <= S) {
            rc = history_add(rf, steps[i]);
            continue;
        }
        checkpoint_name(path, sizeof path, rf->ckpt_dir, steps[i]);
        rc = supersede(rf->ckpt_dir, strrchr(path, '/') + 1);
    }
    free(steps);
    return rc ? -1 : settle_best(rf, S, resumed_from, st);
}

void run_folder_checkpoint_path(const RunFolder *rf, long step, char *out, size_t size) {
    checkpoint_name(out, size, rf->ckpt_dir, step);
}

int run_folder_checkpointed(RunFolder *rf, long step, int keep) {
    if (history_add(rf, step)) return -1;
    char path[PATH_BUF];
    int drop = rf->n_history > keep ? rf->n_history - keep : 0;
    for (int i = 0; i < drop; i++) {
        checkpoint_name(path, sizeof path, rf->ckpt_dir, rf->history[i]);
        if (unlink(path) && errno != ENOENT) return e2e_fail("%s: cannot delete (%s)", path, strerror(errno));
    }
    memmove(rf->history, rf->history + drop, sizeof *rf->history * (rf->n_history - drop));
    rf->n_history -= drop;
    return 0;
}

/* ---- the rule ---- */

static int start_fresh(RunFolder *rf, int overwrite, const char *held) {
    if (held[0] && !overwrite)
        return e2e_fail("%s: holds another run (%s): continue it with --resume auto, start over with "
                        "--overwrite (deletes those files), or give another --out", rf->dir, held);
    if (held[0]) printf("e2e-train: --overwrite: deleting the run in %s (%s)\n", rf->dir, held);
    return clear_run(rf);  /* also an earlier start's config.json that never got further */
}

static int resume_auto(RunFolder *rf, char *path, size_t size, CheckpointState *st, const char *held) {
    long *steps;
    int n = checkpoint_list(rf->ckpt_dir, &steps);
    free(steps);
    if (n < 0) return e2e_fail("%s: cannot list checkpoints (%s)", rf->ckpt_dir, strerror(errno));
    int found = n > 0 ? checkpoint_find_latest(rf->ckpt_dir, path, size) : 0;
    if (found < 0) return -1;
    if (!found && n > 0)
        return e2e_fail("%s: none of its %d checkpoints is valid (see the warnings): --resume PATH to continue "
                        "from another, or --overwrite to start over", rf->ckpt_dir, n);
    if (!found && held[0])
        return e2e_fail("%s: holds a run (%s) but no checkpoint to continue it from: --overwrite to start over, "
                        "or give another --out", rf->dir, held);
    if (!found) return clear_run(rf) ? -1 : 0;
    if (checkpoint_peek(path, st)) return -1;
    return settle_lineage(rf, path, st) ? -1 : 1;
}

/* path's folder is the run's checkpoints folder (the same folder by device and inode) */
static int in_checkpoints(const RunFolder *rf, const char *path) {
    char dir[PATH_BUF];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    struct stat a, b;
    return stat(dir, &a) == 0 && stat(rf->ckpt_dir, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int resume_path(RunFolder *rf, const char *want, int overwrite, char *path, size_t size,
                       CheckpointState *st, const char *held) {
    snprintf(path, size, "%s", want);
    if (checkpoint_peek(path, st)) return -1;
    if (in_checkpoints(rf, path)) return settle_lineage(rf, path, st) ? -1 : 1;
    if (held[0] && !overwrite)
        return e2e_fail("%s: holds another run (%s); continuing %s there would mix the two: give another --out, "
                        "or --overwrite to replace that run", rf->dir, held, path);
    if (held[0]) printf("e2e-train: --overwrite: deleting the run in %s (%s)\n", rf->dir, held);
    return clear_run(rf) ? -1 : 1;
}

int run_folder_start(RunFolder *rf, const RunStartRequest *req, char *path, size_t size, CheckpointState *st) {
    const char *want = req->resume && strcmp(req->resume, "none") != 0 ? req->resume : NULL;
    int is_auto = want && strcmp(want, "auto") == 0;
    if (req->overwrite && is_auto)
        return e2e_fail("--overwrite and --resume auto exclude each other (--overwrite starts the folder's run over)");
    char held[512];
    run_folder_describe(rf, held, sizeof held);
    path[0] = '\0';
    if (!want) return start_fresh(rf, req->overwrite, held);
    if (is_auto) return resume_auto(rf, path, size, st, held);
    return resume_path(rf, want, req->overwrite, path, size, st, held);
}

/* A run folder belongs to one run (dist/README.md, "Run folder").
 *
 * - The lock: rank 0 holds flock() on RUNDIR/e2e-train.lock for the run's life and
 *   writes its host, pid and start time there; a second run on the same folder is
 *   refused with that holder named. flock holds on local file systems and on NFS (Linux
 *   maps it to NFS byte-range locks) and on Lustre mounted with -o flock; where the file
 *   system refuses it (Lustre's default, -o noflock) the run goes on with a warning.
 * - The rule: a fresh run in a folder that holds another run (metrics rows,
 *   results.json, checkpoints) is refused unless --overwrite (which deletes exactly
 *   those files first); --resume auto continues the folder's run; --resume PATH of a
 *   checkpoint from elsewhere is refused where the folder holds another run.
 * - The lineage: resuming at global step S, the folder's checkpoints past S (another
 *   branch after a rewind, or ones that failed validation) are renamed NAME.superseded,
 *   so --resume auto never continues them and pruning never prefers them.
 * - Pruning by the run's own history: the checkpoints of the lineage, oldest first,
 *   plus each one this run writes; only the oldest beyond --keep are deleted, so the
 *   checkpoint just written is never the one pruned.
 * - Leftovers of writers that died (temporary files) are removed once the lock is held.
 * Rank 0 calls all of this (the trainer's find_resume); messages go to e2e_error(). */
#ifndef E2E_DIST_RUN_FOLDER_H
#define E2E_DIST_RUN_FOLDER_H

#include <stddef.h>

#include "checkpoint.h"

#define RUN_LOCK_NAME "e2e-train.lock"

typedef struct {
    char dir[4096];         /* RUNDIR */
    char ckpt_dir[4200];    /* RUNDIR/checkpoints */
    int lock_fd;            /* the held lock (-1: none) */
    long *history;          /* global steps of the lineage's checkpoints, oldest first */
    int n_history, cap;
} RunFolder;

/* How the command asked to start. */
typedef struct {
    const char *resume;     /* NULL or "none": fresh; "auto"; or a checkpoint path */
    int overwrite;          /* --overwrite: a fresh start (or PATH) replaces the folder's run */
} RunStartRequest;

/* Creates RUNDIR and RUNDIR/checkpoints, takes the lock (refusing a folder another run
 * holds, naming it), removes dead writers' temporary files. 0 or -1. */
int run_folder_open(RunFolder *rf, const char *dir);
/* Applies the rule: 1 resume from `path` (its state in *st, position and lineage
 * settled), 0 start fresh (the folder emptied of an earlier run's files where allowed),
 * -1 refused (the message says why and what to pass instead). */
int run_folder_start(RunFolder *rf, const RunStartRequest *req, char *path, size_t size, CheckpointState *st);
/* The path of the checkpoint of global step `step` in this folder. */
void run_folder_checkpoint_path(const RunFolder *rf, long step, char *out, size_t size);
/* The checkpoint of `step` was written: it joins the history, and the oldest beyond
 * `keep` are deleted. 0 or -1. */
int run_folder_checkpointed(RunFolder *rf, long step, int keep);
/* Releases the lock (the process's end releases it too). */
void run_folder_close(RunFolder *rf);

/* What the folder holds of a run, as words ("metrics of 2 epochs, results.json, 3
 * checkpoints, best.h5"); 0 when nothing. */
int run_folder_describe(const RunFolder *rf, char *out, size_t size);

#endif

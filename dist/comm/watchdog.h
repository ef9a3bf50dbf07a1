/* The watchdog: no rank waits for ever (dist/README.md, "Watchdog").
 *
 * A rank that stops (SIGSTOP, its node lost or cut off) or stops making progress (a hung
 * file system, a stuck GPU, a deadlock) leaves every other rank inside a collective that
 * will never complete: Open MPI 4.1 has no failure detection of its own. One thread on
 * every rank, on its own duplicate of the communicator, watches for both:
 *
 *   - heartbeats: every rank sends a small message to rank 0 (its phase, position and
 *     how long it has made no progress) every tick (an eighth of the shorter limit, at
 *     most 1 s); rank 0 sends its own to every rank;
 *   - progress: the main thread marks its phase and progress (a batch read, a step, a
 *     validation batch), and the communicator marks where it waits in a collective
 *     (comm.c).
 *
 * Two limits, two exit codes:
 *   - silence (peer_timeout_s, --peer-timeout, 30 s): rank 0 has heard nothing from a
 *     rank, or a rank nothing from rank 0 (rank 1 first, the others 10 s later), for the
 *     limit: that process is stopped or gone, or its node is down or cut off. Exit
 *     WATCHDOG_EXIT_LOST (76): the run can go on from its newest checkpoint on the nodes
 *     left (launch/e2e-train.sbatch requeues it).
 *   - no progress while alive (progress_s, --watchdog, 600 s): a rank outside a
 *     collective made no progress for the limit (stuck in its own work: it names
 *     itself), or every rank has waited in collectives for the limit (MPI or the network
 *     stuck: rank 0 reports). Exit WATCHDOG_EXIT_STUCK (3): not requeued (a stuck node
 *     may stay stuck).
 * Setup (opening the data), the first training step (GPU autotuning, graph capture) and
 * checkpoint writes get WATCHDOG_LONG_FACTOR times the progress limit; validation marks
 * progress every batch. A process that was itself suspended judges no one across that
 * gap.
 *
 * The reporting rank prints one line on stderr,
 *   watchdog: rank N <what> ... (host H)...; reported by rank R (host G), ending every rank (exit E)
 * and calls MPI_Abort, which makes mpirun and srun end every process of the job (SIGKILL
 * reaches a stopped one too); if the abort itself hangs, SIGALRM ends the process 30 s
 * later. Heartbeats need MPI_THREAD_MULTIPLE; without it each rank only watches its own
 * progress (and ends with _exit). */
#ifndef E2E_DIST_WATCHDOG_H
#define E2E_DIST_WATCHDOG_H

#include "comm.h"

#define WATCHDOG_DEFAULT_S 600.0    /* --watchdog: no progress while alive */
#define PEER_TIMEOUT_DEFAULT_S 30.0 /* --peer-timeout: silence of a peer process */
#define WATCHDOG_EXIT_STUCK 3       /* a rank alive but making no progress */
#define WATCHDOG_EXIT_LOST 76       /* a rank silent: stopped, gone, its node lost (EX_PROTOCOL) */
#define WATCHDOG_LONG_FACTOR 5      /* setup, first step, checkpoint: 5 x the progress limit */

typedef enum {
    WD_SETUP,        /* opening the data, the model, reading a checkpoint */
    WD_READ,         /* reading a batch */
    WD_STEP,         /* a training step (forward, backward, update) */
    WD_FIRST_STEP,   /* the process's first training step */
    WD_EVAL,         /* evaluating a split (validation, test), batch by batch */
    WD_CHECKPOINT,   /* writing a checkpoint or the run's files */
    WD_PHASES
} WatchdogPhase;

/* Starts the watchdog thread (collective over c). A limit of 0 turns its check off;
 * both 0: no thread (every call below is then a no-op). 0, or -1 (e2e_error()) on
 * every rank. */
int watchdog_start(Comm *c, double progress_s, double peer_timeout_s);
/* Collective: every rank calls it at the end. Heartbeats go on until every rank has
 * arrived (a rank that finishes first is not taken for lost), then the thread stops. */
void watchdog_stop(void);

/* This rank's work now; entering a phase is progress. */
void watchdog_phase(WatchdogPhase p);
/* Progress within the phase (a batch read, a step done). */
void watchdog_progress(void);
/* The training position, for the message. */
void watchdog_position(long epoch, long step);
/* Entering (name: "the agreement point", ...) and leaving a collective wait. */
void watchdog_wait(const char *name);
void watchdog_wait_end(void);

#endif

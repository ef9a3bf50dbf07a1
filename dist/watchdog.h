/* The watchdog: no rank waits for ever (dist/README.md, "Watchdog").
 *
 * A rank that stops making progress (SIGSTOP, a hung file system, a lost node, a stuck
 * GPU) leaves every other rank inside a collective that will never complete. A thread
 * on every rank watches: the main thread marks its progress (a batch read, a step, a
 * validation batch) and its phase, and the communicator marks where it waits in a
 * collective (comm.c). Every rank sends a small heartbeat (its phase, position and how
 * long it has made no progress) to rank 0 every limit/8 (at most 5 s); rank 0 sends
 * its own to every rank. A rank ends the job when:
 *   - it has itself made no progress for the limit outside a collective (stuck in its
 *     own work: it names itself);
 *   - it is rank 0 and a rank's heartbeats stopped arriving for the limit (frozen,
 *     killed without its peers knowing, or its node lost): it names that rank;
 *   - it is another rank and rank 0's heartbeats stopped (rank 1 first, the others 10 s
 *     later): it names rank 0;
 *   - it is rank 0 and every rank has waited in collectives for the limit (MPI or the
 *     network is stuck).
 * It prints one line "watchdog: rank N ... (host H)" on stderr and calls MPI_Abort with
 * WATCHDOG_EXIT, which makes mpirun and srun end every process of the job (SIGKILL
 * reaches a stopped one too); if the abort itself hangs, SIGALRM ends the process 30 s
 * later.
 *
 * Setup (opening the data: its statistics pass), the first training step (GPU
 * autotuning, graph capture) and checkpoint writes get WATCHDOG_LONG_FACTOR times the
 * limit; validation marks progress every batch, so a long validation never fires it.
 * Needs MPI_THREAD_MULTIPLE for the heartbeats; without it each rank only watches
 * itself (and ends with _exit). */
#ifndef E2E_DIST_WATCHDOG_H
#define E2E_DIST_WATCHDOG_H

#include "comm.h"

#define WATCHDOG_DEFAULT_S 600.0 /* e2e-train's and e2e-eval's --watchdog */
#define WATCHDOG_EXIT 3          /* the exit code of a run the watchdog ended */
#define WATCHDOG_LONG_FACTOR 5   /* setup, first step, checkpoint: 5 x the limit */

typedef enum {
    WD_SETUP,        /* opening the data, the model, reading a checkpoint */
    WD_READ,         /* reading a batch */
    WD_STEP,         /* a training step (forward, backward, update) */
    WD_FIRST_STEP,   /* the process's first training step */
    WD_EVAL,         /* evaluating a split (validation, test), batch by batch */
    WD_CHECKPOINT,   /* writing a checkpoint or the run's files */
    WD_PHASES
} WatchdogPhase;

/* Starts the watchdog thread (collective over c). seconds = 0: off (every call below
 * is then a no-op). 0, or -1 (net_error()) on every rank. */
int watchdog_start(Comm *c, double seconds);
/* Stops and joins the thread (collective: every rank calls it at the end). */
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

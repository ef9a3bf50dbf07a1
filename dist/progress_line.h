/* Rank 0's progress line during an epoch: "epoch 2/25  step 140/280  loss 0.04211  lr
 * 0.001  5120.3 samples/s  ETA 01:02:03", every --log-every optimizer steps (about 10 an
 * epoch by default) and at the epoch's end; the rate and the ETA count this process's
 * steps since the loop began (a resumed run's earlier steps are not its). */
#ifndef E2E_DIST_PROGRESS_LINE_H
#define E2E_DIST_PROGRESS_LINE_H

/* Where the run stands against the clock. */
typedef struct {
    double t0;           /* when the loop started (monotonic seconds) */
    long done_at_start;  /* global steps before it (a resumed run) */
    long total;          /* global steps of the whole run */
    int every;           /* a line every this many steps */
    int epochs;
    long global_batch;   /* samples of an optimizer step, all ranks and micro-batches */
} Pace;

/* The loop begins at `global_step`, epochs of `steps` optimizer steps; log_every 0:
 * about 10 lines an epoch. */
void pace_start(Pace *p, long global_step, long steps, int epochs, int log_every, long global_batch);
/* After `done` of the epoch's `steps` (global_step in all): the line, when it is due;
 * note (a classifier's "  val AUC 0.9123", or "") follows the rate. */
void progress_line(const Pace *p, long epoch, long done, long steps, long global_step, double loss, double lr,
                   const char *note);

#endif

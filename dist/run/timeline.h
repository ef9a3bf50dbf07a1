/* A timeline of every rank's step phases (--trace FILE): data wait, host-to-device,
 * forward, backward, the micro-batches' gradient sum, the loss check, the agreement
 * point, the gradient all-reduce, the optimizer, validation and checkpoints, recorded
 * for a window of global optimizer steps [first, end) and written by rank 0 as one
 * Chrome trace (JSON "traceEvents": one process row per rank, named by rank and host;
 * Perfetto and chrome://tracing open it). Each rank's clock is turned into rank 0's
 * (comm_clock_offset: exactly on rank 0's node, estimated on others), so the ranks'
 * rows line up and a collective's spans overlap across rows.
 *
 * A trace holds at most 2 million spans over all ranks (each rank keeps its first
 * 2 million / ranks; more are left out with a warning).
 *
 * A rank is in one phase at a time: timeline_phase ends the span of the phase before,
 * so a rank's spans never overlap. In a CUDA build every phase is also an NVTX range
 * (nvtx3, header-only), always, with or without --trace, so Nsight Systems shows them;
 * on a GPU the host spans show when work was enqueued and where the host waited. */
#ifndef E2E_DIST_TIMELINE_H
#define E2E_DIST_TIMELINE_H

#include <stddef.h>

#include "comm.h"
#include "train_config.h"

typedef enum {
    TL_NONE = 0,       /* between phases: no span */
    TL_DATA,           /* "data wait": reading a batch from the reader */
    TL_H2D,            /* "host-to-device": staging the next batch in the model */
    TL_FORWARD,        /* forward pass and loss (the model's hook) */
    TL_BACKWARD,       /* backward pass (the model's hook) */
    TL_ACCUMULATE,     /* the micro-batches' gradient sum (--accum) */
    TL_CHECK,          /* the loss read-back and the gradients' finiteness check */
    TL_AGREE,          /* the step's agreement point */
    TL_ALLREDUCE,      /* the gradient all-reduce */
    TL_OPTIMIZER,      /* Adam */
    TL_VALIDATION,     /* the validation split at an epoch's end */
    TL_CHECKPOINT,     /* writing a checkpoint (rank 0) and waiting for it (the others) */
    TL_PHASES
} TracePhase;

typedef struct {
    double t0, t1;     /* rank 0's clock, seconds */
    long step;         /* the global optimizer step under way (0-based) */
    int micro;         /* its micro-batch */
    int phase;
} TraceEvent;

typedef struct {
    const char *path;  /* the trace file (NULL: no trace) */
    long first, end;   /* the window of global steps, end excluded */
    int recording, done;
    double offset;     /* added to this rank's clock: rank 0's */
    double origin;     /* rank 0: its clock at the start (the trace's time 0) */
    TracePhase phase;  /* the open span's phase, since `since` */
    double since;
    long step;
    int micro;
    TraceEvent *ev;
    size_t n, cap;
    size_t max;        /* spans this rank keeps (2 million over all ranks) */
    long dropped;      /* spans past max (or past memory), left out */
} Timeline;

/* Ready to record cfg->trace (NULL: only NVTX ranges, in a CUDA build) for the steps
 * cfg->trace_first to cfg->trace_end, or, when not given (-1), the first 20 optimizer
 * steps of the second epoch (of the first, in a one-epoch run): with short epochs the
 * window holds an epoch's end. Rank 0 checks that the file can be written (its folder
 * exists, it is not a folder nor --data), every rank learns the offset of its clock.
 * 0, or -1 on every rank. Collective when a trace is asked for. */
int timeline_open(Timeline *tl, Comm *c, const TrainConfig *cfg, long steps_per_epoch);
/* The start of global optimizer step `step` on every rank: the window opens at
 * `first`; at `end` it closes and the trace is written (timeline_finish). Collective
 * while a trace is being recorded. */
void timeline_step(Timeline *tl, Comm *c, long step);
/* The micro-batch k of the step under way. */
void timeline_micro(Timeline *tl, int k);
/* This rank enters phase p (TL_NONE: leaves the phase it was in). */
void timeline_phase(Timeline *tl, TracePhase p);
/* A ModelPhaseHook (net/model.h) for a Timeline: the model's forward and backward. */
void timeline_model_hook(void *timeline, int model_phase);
/* Gathers the recorded spans on rank 0, which writes the trace (net/base/outfile.h);
 * a write that fails is a warning, not the run's end. Nothing when no trace was
 * recorded or it was written already. Collective while a trace is being recorded. */
void timeline_finish(Timeline *tl, Comm *c);
void timeline_free(Timeline *tl);

#endif

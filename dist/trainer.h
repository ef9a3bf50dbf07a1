/* The data-parallel training loop: every rank trains a replica on its own slice of the
 * data; gradients are averaged every step; rank 0 owns validation results, the
 * learning-rate schedule, checkpoints, metrics files and the progress line.
 *
 * Each step ends in an agreement point (comm_agree) before the gradient all-reduce:
 * a rank whose data or step failed, whose loss is not finite, or that was asked to stop
 * says so there, and every rank acts on it together, so no rank is ever left waiting in
 * a collective that another will not join. */
#ifndef E2E_DIST_TRAINER_H
#define E2E_DIST_TRAINER_H

#include "comm.h"
#include "train_config.h"

/* Runs or resumes the run described by cfg. Returns the exit code for every rank:
 * 0 finished, 1 failed (rank 0 printed the first failing rank's message),
 * EXIT_REQUEUE (75) stopped on request after writing a checkpoint. Collective. */
int trainer_run(const TrainConfig *cfg, Comm *comm);

#endif

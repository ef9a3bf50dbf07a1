/* The training state the trainer owns: where the run is (epoch, step), its seed, the
 * running epoch's loss, the best validation result so far, the training time, the
 * learning-rate schedule and early stopping's count. Rank 0 decides its changes at an epoch's end and broadcasts
 * it; a checkpoint saves it with what only the file needs (dist/run/checkpoint.h). */
#ifndef E2E_DIST_TRAIN_STATE_H
#define E2E_DIST_TRAIN_STATE_H

#include <stdint.h>

#include "early_stop.h"
#include "lr_schedule.h"

typedef struct {
    /* position: the next optimizer step is step_in_epoch of epoch (both 0-based) */
    long epoch, step_in_epoch, global_step;
    uint64_t seed;                         /* model initialisation, data split and order */
    double epoch_loss_sum, epoch_samples;  /* the running epoch's training loss so far */
    double best_metric;                    /* best validation MAE so far (GeV), and its epoch */
    long best_epoch;                       /* (1-based; -1: none yet) */
    double elapsed_s;                      /* training time before the last checkpoint */
    LrSchedule lr;
    EarlyStopState early;                  /* early stopping's best and count (early_stop.h) */
} TrainState;

/* A fresh run: position 0, no loss, no best yet, the schedule lr, no early-stop count. */
void train_state_init(TrainState *s, uint64_t seed, const LrSchedule *lr);
/* No best yet: the next validation result is the best. */
void train_state_forget_best(TrainState *s);

#endif

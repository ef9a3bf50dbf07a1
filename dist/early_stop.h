/* Early stopping: the run ends when the monitored validation metric has not improved
 * by more than min_delta for `patience` epochs in a row, as Keras' and PyTorch
 * Lightning's EarlyStopping do (mode min: improved when value < best - min_delta; max:
 * value > best + min_delta). The trainer says what is monitored and which way is
 * better (the validation MAE, lower is better, for the mass regression); rank 0 keeps
 * the counter in the TrainState (dist/train_state.h), so every rank learns it with the
 * state's broadcast and a checkpoint saves it: a resumed run keeps counting. */
#ifndef E2E_DIST_EARLY_STOP_H
#define E2E_DIST_EARLY_STOP_H

typedef struct {
    int patience;        /* epochs without improvement that end the run (0: off) */
    double min_delta;    /* an improvement must be larger than this (metric's units) */
} EarlyStopConfig;

typedef struct {
    double best;         /* the best monitored value so far (NaN: none yet) */
    long bad_epochs;     /* epochs in a row without an improvement larger than min_delta */
} EarlyStopState;

/* No value seen yet. */
void early_stop_init(EarlyStopState *s);
/* One epoch's monitored value (mode_max: 1 when higher is better). A finite value
 * that beats the best by more than min_delta (the first finite value always does) is
 * the new best and clears the count; anything else (NaN included) adds an epoch.
 * Returns 1 when the run should stop now (early_stop_reached), else 0. */
int early_stop_update(EarlyStopState *s, const EarlyStopConfig *c, double value, int mode_max);
/* 1 when early stopping is on and the count has reached the patience. */
int early_stop_reached(const EarlyStopState *s, const EarlyStopConfig *c);
/* The line that says so (stdout, rank 0's), after epoch `epoch` (1-based) of `epochs`,
 * naming the monitored metric: "e2e-train: early stop after epoch 7 of 25: the
 * validation MAE (GeV) has not improved by more than 0.1 for 3 epochs (best 12.3);
 * the best checkpoint is checkpoints/best.h5". */
void early_stop_report(const EarlyStopState *s, const EarlyStopConfig *c, long epoch, int epochs, const char *metric);

#endif

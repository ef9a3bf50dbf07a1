/* What a run trains the model for (DESIGN.md, "Tasks"): the jet-mass regression (L1 on
 * m / 500 GeV; MAE and MRE) or a binary classifier (one logit, BCE with logits; ROC AUC,
 * accuracy, background rejection) of the class in a label column. A small plain record:
 * e2e-train's options fill it, the checkpoint and config.json record it, e2e-eval and a
 * resumed run take it from the checkpoint; the pieces that differ by task ask it here
 * (the model's loss, the reader's label, the metric the schedule and the best checkpoint
 * follow, the lines and files of an epoch's metrics). */
#ifndef E2E_DIST_TASK_H
#define E2E_DIST_TASK_H

#include <stdio.h>

#include "dataset.h"
#include "evaluate.h"

typedef enum { TASK_REGRESSION = 0, TASK_CLASSIFICATION = 1 } TaskKind;

#define TASK_LABEL_MAX 64
#define TASK_DEFAULT_LABEL "y"

typedef struct {
    int kind;                    /* TaskKind */
    char label[TASK_LABEL_MAX];  /* classification: the label column (TASK_DEFAULT_LABEL) */
    int monitor_loss;            /* classification: the schedule and the best checkpoint follow
                                    the validation loss (1) or its AUC (0, the default) */
} Task;

/* The metric an epoch's validation is judged by: the plateau schedule steps on its value,
 * and the best checkpoint is the epoch where it was best (an early stop may watch it
 * too). Regression: the MAE (GeV), lower is better; classification: the AUC, higher is
 * better, or the loss, lower is better. */
typedef struct {
    double value;
    int mode_max;                /* 1: higher is better */
    const char *name;            /* "val_mae_gev", "val_auc", "val_loss" (results.json's best_<name>) */
    const char *words;           /* "val MAE (GeV)", "val AUC", "val loss" (messages) */
} Monitor;

/* The regression (what a checkpoint without a task was trained for). */
Task task_regression(void);
const char *task_name(const Task *t);  /* "regression" or "classification" */
/* Fills t from names ("regression" | "classification", the label, "auc" | "loss"); -1 with a
 * message for an unknown one. label and monitor may be NULL (the defaults). */
int task_from_names(Task *t, const char *kind, const char *label, const char *monitor);
/* 1 when two tasks train the same thing (kind and label). */
int task_same(const Task *a, const Task *b);
/* "regression (L1 on m / 500 GeV)" or "classification of label 'y'" */
const char *task_describe(const Task *t, char *buf, size_t size);
/* The model's loss for the task (model.h's ModelLoss). */
int task_model_loss(const Task *t);
/* The reader's unbiasing where none was asked for (DataUnbias): the mass weights for the
 * regression (the reader's default), none for a classifier (--balance weighs its classes). */
int task_default_unbias(const Task *t);
/* Whether the plateau's mode (min: 0, max: 1) follows the task's monitored metric. */
int task_monitor_mode_max(const Task *t);
Monitor task_monitor(const Task *t, const EvalResult *v);
/* 1 when value is better than best by the monitor's mode (none yet: best_epoch < 0). */
int monitor_improves(const Monitor *m, double best, long best_epoch);

#endif

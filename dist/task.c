/* The task (task.h): its names, the model's loss and the reader's label it asks for, the
 * metric the schedule and the best checkpoint follow. */
#include "task.h"

#include <string.h>

#include "error.h"
#include "model.h"

Task task_regression(void) {
    Task t = {.kind = TASK_REGRESSION};
    strcpy(t.label, TASK_DEFAULT_LABEL);
    return t;
}

const char *task_name(const Task *t) { return t->kind == TASK_CLASSIFICATION ? "classification" : "regression"; }

int task_from_names(Task *t, const char *kind, const char *label, const char *monitor) {
    *t = task_regression();
    if (!strcmp(kind, "classification")) t->kind = TASK_CLASSIFICATION;
    else if (strcmp(kind, "regression"))
        return e2e_fail("unknown task '%s' (regression or classification)", kind);
    if (label && (!label[0] || strlen(label) >= TASK_LABEL_MAX))
        return e2e_fail("the label column's name must be 1 to %d characters, got '%s'", TASK_LABEL_MAX - 1, label);
    if (label) strcpy(t->label, label);
    if (monitor && strcmp(monitor, "auc") && strcmp(monitor, "loss"))
        return e2e_fail("unknown monitored metric '%s' (auc or loss)", monitor);
    t->monitor_loss = monitor && !strcmp(monitor, "loss");
    return 0;
}

int task_same(const Task *a, const Task *b) {
    return a->kind == b->kind && (a->kind == TASK_REGRESSION || !strcmp(a->label, b->label));
}

const char *task_describe(const Task *t, char *buf, size_t size) {
    if (t->kind == TASK_CLASSIFICATION) snprintf(buf, size, "classification of the label '%s'", t->label);
    else snprintf(buf, size, "regression of the jet mass (L1 on m / 500 GeV)");
    return buf;
}

int task_model_loss(const Task *t) { return t->kind == TASK_CLASSIFICATION ? MODEL_LOSS_BCE : MODEL_LOSS_L1; }

int task_default_unbias(const Task *t) { return t->kind == TASK_CLASSIFICATION ? DATA_UNBIAS_NONE : DATA_UNBIAS_WEIGHTS; }

int task_monitor_mode_max(const Task *t) { return t->kind == TASK_CLASSIFICATION && !t->monitor_loss; }

Monitor task_monitor(const Task *t, const EvalResult *v) {
    if (t->kind != TASK_CLASSIFICATION) return (Monitor){v->mae, 0, "val_mae_gev", "val MAE (GeV)"};
    if (t->monitor_loss) return (Monitor){v->loss, 0, "val_loss", "val loss"};
    return (Monitor){v->cls.auc, 1, "val_auc", "val AUC"};
}

int monitor_improves(const Monitor *m, double best, long best_epoch) {
    return best_epoch < 0 || (m->mode_max ? m->value > best : m->value < best);
}

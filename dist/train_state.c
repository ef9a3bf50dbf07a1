/* The trainer's state (train_state.h): a fresh run's, and forgetting the best. */
#include "train_state.h"

#include <math.h>
#include <string.h>

void train_state_init(TrainState *s, uint64_t seed, const LrSchedule *lr) {
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->lr = *lr;
    train_state_forget_best(s);
    early_stop_init(&s->early);
}

void train_state_forget_best(TrainState *s) {
    s->best_metric = INFINITY;
    s->best_epoch = -1;
}

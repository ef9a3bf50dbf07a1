/* Early stopping on a monitored value (early_stop.h): the best value and the count of
 * epochs without an improvement larger than min_delta. */
#include "early_stop.h"

#include <math.h>
#include <stdio.h>

void early_stop_init(EarlyStopState *s) {
    s->best = NAN;
    s->bad_epochs = 0;
}

int early_stop_update(EarlyStopState *s, const EarlyStopConfig *c, double value, int mode_max) {
    int improved = isfinite(value) &&
                   (isnan(s->best) || (mode_max ? value > s->best + c->min_delta : value < s->best - c->min_delta));
    if (improved) {
        s->best = value;
        s->bad_epochs = 0;
    } else {
        s->bad_epochs++;
    }
    return early_stop_reached(s, c);
}

int early_stop_reached(const EarlyStopState *s, const EarlyStopConfig *c) {
    return c->patience > 0 && s->bad_epochs >= c->patience;
}

void early_stop_report(const EarlyStopState *s, const EarlyStopConfig *c, long epoch, int epochs, const char *metric) {
    printf("e2e-train: early stop after epoch %ld of %d: %s has not improved by more than %g for %ld epochs (best "
           "%.6g); the best checkpoint is checkpoints/best.h5\n", epoch, epochs, metric, c->min_delta, s->bad_epochs,
           s->best);
}

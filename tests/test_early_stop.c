/* Early stopping (dist/early_stop.h), as Keras' and Lightning's EarlyStopping: min and
 * max modes, min_delta, the count cleared by an improvement, NaN never an improvement,
 * patience 0 never stops, and the count kept while off (a resumed run may turn it on). */
#include <math.h>

#include "check.h"
#include "early_stop.h"

/* feeds values; returns the 1-based epoch at which it said stop (0: never) */
static int stops_at(const double *v, int n, EarlyStopConfig c, int mode_max, EarlyStopState *s) {
    early_stop_init(s);
    for (int i = 0; i < n; i++)
        if (early_stop_update(s, &c, v[i], mode_max)) return i + 1;
    return 0;
}

int main(void) {
    EarlyStopState s;
    EarlyStopConfig c = {.patience = 2, .min_delta = 0.0};
    double falling[] = {10, 9, 8, 7, 6, 5};
    CHECK(stops_at(falling, 6, c, 0, &s) == 0 && s.best == 5 && s.bad_epochs == 0, "a falling MAE never stops");
    double plateau[] = {10, 9, 9.5, 9.2, 8, 8.5};
    CHECK(stops_at(plateau, 6, c, 0, &s) == 4 && s.best == 9 && s.bad_epochs == 2,
          "two epochs without a lower value stop after epoch 4 (best 9)");
    c.min_delta = 0.5;
    double small[] = {10, 9.8, 9.6, 9.4};
    CHECK(stops_at(small, 4, c, 0, &s) == 3 && s.best == 10, "improvements of 0.2 < min_delta 0.5 do not count");
    c.min_delta = 0.0;
    double auc[] = {0.7, 0.8, 0.79, 0.8, 0.85};
    CHECK(stops_at(auc, 5, c, 1, &s) == 4, "mode max: an equal AUC is no improvement");
    CHECK(stops_at(auc, 5, c, 0, &s) == 3, "the same values in mode min stop earlier");
    double nans[] = {NAN, 5, NAN, NAN};
    CHECK(stops_at(nans, 4, c, 0, &s) == 4 && s.best == 5, "NaN is never an improvement and never the best");
    CHECK(!early_stop_reached(&(EarlyStopState){.best = 1, .bad_epochs = 1}, &c), "1 bad epoch of patience 2");
    EarlyStopConfig off = {.patience = 0};
    CHECK(stops_at(plateau, 6, off, 0, &s) == 0 && s.bad_epochs == 1, "patience 0: off, the count still kept");
    early_stop_init(&s);
    CHECK(isnan(s.best) && s.bad_epochs == 0, "a fresh count");
    return check_main_result("test_early_stop");
}

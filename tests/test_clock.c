/* net/base/clock.h: monotonic_seconds() moves forward by the time slept (at least the sleep,
 * not absurdly more) and never backwards between readings. */
#include <time.h>

#include "check.h"
#include "clock.h"

int main(void) {
    double t0 = monotonic_seconds();
    struct timespec ts = {0, 50 * 1000 * 1000};  /* 50 ms */
    nanosleep(&ts, NULL);
    double t1 = monotonic_seconds();
    CHECK(t1 - t0 >= 0.05 && t1 - t0 < 30.0, "a 50 ms sleep measured %.6f s", t1 - t0);
    int backwards = 0;
    double last = t1;
    for (int i = 0; i < 100000; i++) {
        double t = monotonic_seconds();
        backwards += t < last;
        last = t;
    }
    CHECK(backwards == 0, "%d readings went backwards", backwards);
    return check_main_result("test_clock");
}

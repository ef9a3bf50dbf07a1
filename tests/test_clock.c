/* net/base/clock.h: monotonic_seconds() moves forward by the time slept (at least the sleep,
 * not absurdly more) and never backwards between readings. net/base/progress.h: a mark
 * records the clock's time, read back by progress_last from another thread too. */
#include <pthread.h>
#include <time.h>

#include "check.h"
#include "clock.h"
#include "progress.h"

static void *mark_from_thread(void *arg) {
    (void)arg;
    progress_mark();
    return NULL;
}

static void test_progress(void) {
    CHECK(progress_last() == 0.0, "no mark before the first: %g", progress_last());
    double before = monotonic_seconds();
    progress_mark();
    double marked = progress_last(), after = monotonic_seconds();
    CHECK(marked >= before && marked <= after, "a mark records the time it was made");
    progress_mark_at(12.5);
    CHECK(progress_last() == 12.5, "progress_mark_at sets the time: %g", progress_last());
    pthread_t th;
    CHECK(pthread_create(&th, NULL, mark_from_thread, NULL) == 0 && pthread_join(th, NULL) == 0, "thread");
    CHECK(progress_last() >= after, "a mark from another thread is seen: %g", progress_last());
}

int main(void) {
    test_progress();
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

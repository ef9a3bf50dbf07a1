/* Seconds on the monotonic clock (not moved by time-of-day changes): the project's one
 * clock for timeouts and op timings (dist/comm/watchdog.c, dist/comm/comm_nccl.c,
 * net/ops_profile.c). Only differences between two readings mean anything. */
#ifndef E2E_NET_CLOCK_H
#define E2E_NET_CLOCK_H

#include <time.h>

static inline double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

#endif

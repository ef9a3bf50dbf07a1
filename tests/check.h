/* A minimal test harness: CHECK counts and reports, check_main_result() prints the
 * tally and gives the exit code. A test that cannot run here (no GPU) exits with
 * CHECK_SKIP, which ctest reports as skipped. */
#ifndef E2E_TESTS_CHECK_H
#define E2E_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK_SKIP 77

static int check_passed, check_failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            check_passed++;                                                    \
        } else {                                                               \
            check_failed++;                                                    \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* max |a - b| / max(max |b|, floor): the norm-wise relative error used throughout */
static inline double rel_err(const float *a, const float *b, size_t n, double floor) {
    double num = 0.0, den = floor;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (isnan(d)) return INFINITY;  /* NaN never passes */
        if (d > num) num = d;
        if (fabs((double)b[i]) > den) den = fabs((double)b[i]);
    }
    return num / den;
}

static inline int check_main_result(const char *name) {
    printf("%s: %d checks passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif

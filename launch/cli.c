/* Strict number parsing for the command lines of launch/ (cli.h). */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int cli_ll(const char *prog, const char *opt, const char *s, long long lo, long long hi,
           long long *out, int say) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        if (say) fprintf(stderr, "%s: %s expects an integer in [%lld, %lld], got '%s'\n", prog, opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_u64(const char *prog, const char *opt, const char *s, uint64_t *out, int say) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') {
        if (say) fprintf(stderr, "%s: %s expects a non-negative integer, got '%s'\n", prog, opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_double(const char *prog, const char *opt, const char *s, double lo, double hi,
               double *out, int say) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        if (say) fprintf(stderr, "%s: %s expects a number in [%g, %g], got '%s'\n", prog, opt, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

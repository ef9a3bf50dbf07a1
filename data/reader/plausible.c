/* Plausibility checks at open (plausible.h): masses in MeV refused, negative masses and
 * empty images counted and warned about, files of nothing but empty images refused. */
#include "plausible.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* the median of m[0..n), n > 0 (a sorted copy: only on the way to a refusal); NAN when
 * out of memory */
static double median(const float *m, long long n) {
    float *s = malloc((size_t)n * sizeof *s);
    if (!s) return NAN;
    memcpy(s, m, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_float);
    double v = n % 2 ? s[n / 2] : 0.5 * ((double)s[n / 2 - 1] + s[n / 2]);
    free(s);
    return v;
}

int plausible_masses(const float *m, long long n, const char *path, int warn, long long *negative) {
    long long above = 0, neg = 0;
    float lowest = 0.0f;
    for (long long i = 0; i < n; i++) {
        above += m[i] > MEV_MEDIAN_GEV;
        neg += m[i] < 0.0f;
        lowest = fminf(lowest, m[i]);
    }
    if (2 * above > n) /* the median is above the limit */
        return e2e_fail("%s: the median mass is %.4g GeV: the masses look like MeV (the format stores GeV, the "
                         "model's target is m / 500 GeV); convert the file again with e2e-convert --mass-unit MeV",
                         path, median(m, n));
    if (neg && warn)
        e2e_warn("%s: %lld of %lld jets have a negative mass (the smallest %.4g GeV); they are trained on as "
                  "they are", path, neg, n, lowest);
    *negative += neg;
    return 0;
}

int plausible_images(const char *const *paths, int nfiles, const long long *empty, const long long *checked,
                     int warn) {
    for (int i = 0; i < nfiles; i++)
        if (checked[i] > 0 && empty[i] == checked[i])
            return e2e_fail("%s: every one of the %lld images read from it for the preprocessing scales is all "
                             "zeros: nothing to learn the mass from (an unfilled or broken file?)", paths[i],
                             checked[i]);
    for (int i = 0; warn && i < nfiles; i++)
        if (empty[i])
            e2e_warn("%s: %lld of the %lld images read for the preprocessing scales are all zeros; they are "
                      "trained on as they are", paths[i], empty[i], checked[i]);
    return 0;
}

/* Plausibility checks at open (plausible.h): masses in MeV refused, negative masses and
 * empty images counted and warned about, files of nothing but empty images (or of no
 * positive pixel) refused, channels of mostly negative or impossibly large pixels
 * warned about. */
#include "plausible.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "prep_pixel.h"

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

int plausible_images(const char *const *paths, int nfiles, const ImageCounts *counts, int warn) {
    for (int i = 0; i < nfiles; i++) {
        const ImageCounts *c = &counts[i];
        if (c->checked > 0 && c->empty == c->checked)
            return e2e_fail("%s: every one of the %lld images read from it for the preprocessing scales is all "
                             "zeros: nothing to learn the mass from (an unfilled or broken file?)", paths[i],
                             c->checked);
        if (c->checked > 0 && c->kept == 0)
            return e2e_fail("%s: the %lld images read from it for the preprocessing scales hold no positive pixel, "
                            "only zeros and %lld negative ones: no detector measures a negative energy, pT or "
                            "charge, and preprocessing sets them to 0 (every image would be empty); a broken "
                            "conversion? (a channel of signed values is declared in channel_kinds: FORMAT.md)",
                            paths[i], c->checked, c->negative);
    }
    for (int i = 0; warn && i < nfiles; i++)
        if (counts[i].empty)
            e2e_warn("%s: %lld of the %lld images read for the preprocessing scales are all zeros; they are "
                      "trained on as they are", paths[i], counts[i].empty, counts[i].checked);
    return 0;
}

/* "channel 2 ('ecal')" */
static const char *channel_name(char *buf, size_t size, const char *const *names, int c) {
    if (names && names[c] && names[c][0]) snprintf(buf, size, "channel %d ('%s')", c, names[c]);
    else snprintf(buf, size, "channel %d", c);
    return buf;
}

void plausible_channels(const PixelHist *h, const char *const *names, const char *path, int warn) {
    char name[96];
    for (int c = 0; warn && c < h->channels; c++) {
        const int energy = !h->kinds || h->kinds[c] != CHANNEL_SIGNED;
        uint64_t kept = pixel_hist_kept(h, c), neg = h->negative[c];
        if (energy && neg > kept)
            e2e_warn("%s: %s has %llu negative pixels and %llu positive ones in the images read: preprocessing "
                     "sets an energy-like channel's negatives to 0; if it holds a signed quantity (an impact "
                     "parameter), declare it 'signed' in channel_kinds (data/format/FORMAT.md)", path,
                     channel_name(name, sizeof name, names, c), (unsigned long long)neg, (unsigned long long)kept);
        float highest = 0.0f;
        uint64_t huge = pixel_hist_above(h, c, PLAUSIBLE_PIXEL_MAX, &highest);
        if (huge)
            e2e_warn("%s: %s has %llu pixels above %g (up to about %.3g): no detector gives such values (a broken "
                     "conversion, or a unit?); they are trained on, clipped to 1 after scaling", path,
                     channel_name(name, sizeof name, names, c), (unsigned long long)huge, (double)PLAUSIBLE_PIXEL_MAX,
                     (double)highest);
    }
}

/* Preprocessing as pure functions (preprocess.h): images through prep_pixel, NaN
 * counts, the scale histogram and its quantile, the unbiasing weights' arithmetic. */
#include "preprocess.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "simd.h"

AVX2_CLONES /* about 2x over SSE2 here */
long long preprocess_images(float *x, long long n, int channels, long long hw,
                            const float *scales, const unsigned char *kinds, float zero_suppress) {
    long long bad = 0;
    for (long long i = 0; i < n; i++) {
        for (int c = 0; c < channels; c++) {
            float *p = x + (i * channels + c) * hw;
            const float inv = 1.0f / scales[c];
            const int kind = kinds ? kinds[c] : CHANNEL_ENERGY;
            unsigned b = 0; /* 32-bit lanes: the loop vectorises at full width */
            for (long long k = 0; k < hw; k++) {
                float v = p[k];
                b += !(fabsf(v) <= FLT_MAX);
                p[k] = prep_pixel(v, inv, kind, zero_suppress);
            }
            bad += b;
        }
    }
    return bad;
}

AVX2_CLONES
int all_zero(const float *x, long long n) {
    uint32_t any = 0; /* the bits of every value but the sign, or'ed: vectorises */
    for (long long k = 0; k < n; k++) {
        uint32_t u;
        memcpy(&u, &x[k], 4);
        any |= u & 0x7fffffffu;
    }
    return any == 0;
}

AVX2_CLONES
long long count_nonfinite(const float *x, long long n, long long *first) {
    long long bad = 0;
    for (long long i = 0; i < n; i += 1LL << 30) { /* 32-bit lane counters, as above */
        long long end = n - i < (1LL << 30) ? n : i + (1LL << 30);
        unsigned b = 0;
        for (long long k = i; k < end; k++) b += !(fabsf(x[k]) <= FLT_MAX);
        bad += b;
    }
    if (first) {
        *first = -1;
        for (long long k = 0; bad && k < n; k++)
            if (!(fabsf(x[k]) <= FLT_MAX)) {
                *first = k;
                break;
            }
    }
    return bad;
}

int pixel_hist_init(PixelHist *h, int channels) {
    h->channels = channels;
    h->count = calloc((size_t)channels * PIXEL_HIST_BINS, sizeof *h->count);
    h->nonpos = calloc((size_t)channels, sizeof *h->nonpos);
    h->negative = calloc((size_t)channels, sizeof *h->negative);
    h->nonfinite = 0;
    h->kinds = NULL;
    if (!h->count || !h->nonpos || !h->negative) {
        pixel_hist_free(h);
        return e2e_fail("out of memory for the pixel histogram (%d channels)", channels);
    }
    return 0;
}

void pixel_hist_free(PixelHist *h) {
    free(h->count);
    free(h->nonpos);
    free(h->negative);
    h->count = h->nonpos = h->negative = NULL;
}

/* a signed channel counts |x|: its sign bit is dropped */
static inline uint32_t hist_mask(const PixelHist *h, int c) {
    return h->kinds && h->kinds[c] == CHANNEL_SIGNED ? 0x7fffffffu : 0xffffffffu;
}

/* one value of channel c into its bins (positive finite), nonpos or nonfinite */
static inline void hist_value(PixelHist *h, uint64_t *cnt, int c, uint32_t mask, float v) {
    uint32_t u;
    memcpy(&u, &v, 4);
    u &= mask;
    if ((u & 0x7fffffff) >= 0x7f800000) h->nonfinite++;
    else if (u == 0 || (u >> 31)) {
        h->nonpos[c]++;
        h->negative[c] += (u & 0x7fffffff) != 0; /* not -0.0 */
    } else {
        cnt[u >> 16]++;
    }
}

AVX2_CLONES
void pixel_hist_add(PixelHist *h, const float *x, long long n, long long hw) {
    for (long long i = 0; i < n; i++) {
        for (int c = 0; c < h->channels; c++) {
            const float *p = x + (i * h->channels + c) * hw;
            uint64_t *cnt = h->count + (size_t)c * PIXEL_HIST_BINS;
            const uint32_t mask = hist_mask(h, c);
            for (long long k = 0; k < hw; k++) hist_value(h, cnt, c, mask, p[k]);
        }
    }
}

void pixel_hist_add_values(PixelHist *h, int c, const float *v, long long n, long long zeros) {
    uint64_t *cnt = h->count + (size_t)c * PIXEL_HIST_BINS;
    const uint32_t mask = hist_mask(h, c);
    for (long long k = 0; k < n; k++) hist_value(h, cnt, c, mask, v[k]);
    h->nonpos[c] += (uint64_t)zeros;
}

static float bits_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint64_t pixel_hist_above(const PixelHist *h, int c, float v, float *highest) {
    const uint64_t *cnt = h->count + (size_t)c * PIXEL_HIST_BINS;
    uint32_t u;
    memcpy(&u, &v, 4);
    uint64_t n = 0;
    *highest = 0.0f;
    for (int b = PIXEL_HIST_BINS - 1; b >= 0; b--) {
        if (cnt[b] && *highest == 0.0f) *highest = bits_to_float((uint32_t)b << 16);
        if ((uint32_t)b >= (u >> 16)) n += cnt[b];
    }
    return n;
}

uint64_t pixel_hist_kept(const PixelHist *h, int c) {
    const uint64_t *cnt = h->count + (size_t)c * PIXEL_HIST_BINS;
    uint64_t n = 0;
    for (int b = 0; b < PIXEL_HIST_BINS; b++) n += cnt[b];
    return n;
}

float pixel_hist_quantile(const PixelHist *h, int c, double q) {
    const uint64_t *cnt = h->count + (size_t)c * PIXEL_HIST_BINS;
    uint64_t total = 0;
    for (int b = 0; b < PIXEL_HIST_BINS; b++) total += cnt[b];
    if (total == 0) return 0.0f;
    double target = q * (double)total, cum = 0.0;
    for (int b = 0; b < PIXEL_HIST_BINS; b++) {
        if (!cnt[b]) continue;
        if (cum + (double)cnt[b] >= target) {
            double lo = bits_to_float((uint32_t)b << 16);
            double hi = bits_to_float(((uint32_t)b + 1) << 16);
            double f = (target - cum) / (double)cnt[b];
            if (f < 0) f = 0;
            return (float)(lo + f * (hi - lo));
        }
        cum += (double)cnt[b];
    }
    return 0.0f; /* not reached: q <= 1 */
}

int unbias_bin(float mass, int bins, float lo, float hi) {
    float k = floorf((mass - lo) / (hi - lo) * (float)bins); /* compared before the cast: 1e28 GeV fits no int */
    return !(k >= 0.0f) ? 0 : k >= (float)bins ? bins - 1 : (int)k;
}

int unbias_bin_weights(const float *mass, long long n, int bins, float lo, float hi,
                       float max_weight, float *bin_weight) {
    if (bins < 1 || !(hi > lo))
        return e2e_fail("unbiasing needs bins >= 1 and max > min (got %d bins, [%g, %g))",
                         bins, lo, hi);
    if (n < 1) return e2e_fail("unbiasing needs at least one sample");
    long long *cnt = calloc((size_t)bins, sizeof *cnt);
    if (!cnt) return e2e_fail("out of memory for the mass histogram");
    for (long long i = 0; i < n; i++) cnt[unbias_bin(mass[i], bins, lo, hi)]++;
    int nonempty = 0, capped = 0;
    for (int k = 0; k < bins; k++) nonempty += cnt[k] > 0;
    double sum = 0.0;
    for (int k = 0; k < bins; k++) {
        double w = cnt[k] ? (double)n / ((double)nonempty * (double)cnt[k]) : 0.0;
        if (max_weight > 0 && w > max_weight) {
            w = max_weight;
            capped++;
        }
        bin_weight[k] = (float)w;
        sum += w * (double)cnt[k];
    }
    for (int k = 0; k < bins; k++) bin_weight[k] = (float)(bin_weight[k] * ((double)n / sum));
    free(cnt);
    return capped;
}

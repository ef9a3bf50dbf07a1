/* data/reader/preprocess.h, net/base/prep_pixel.h, data/reader/plausible.h and data/format/half.h on known
 * inputs: scaling, zero suppression, clipping, of energy-like and signed channels;
 * non-finite counting; empty images; float16 conversions against independent
 * definitions; the scale statistic's histogram quantile against an exact sort (of |x| for
 * a signed channel); unbiasing weights; the plausibility of masses and images; a sparse row's entry count (sparse.h). */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "error.h"
#include "half.h"
#include "plausible.h"
#include "preprocess.h"
#include "keyed_rng.h"
#include "sparse.h"

static void test_preprocess_known(void) {
    /* 2 samples x 2 channels x 4 pixels; scales 4 and 0.5 */
    const float scales[2] = {4.0f, 0.5f};
    float x[16] = {0.0f, 4e-6f, 2.0f, 8.0f,        /* sample 0, channel 0 */
                   -1.0f, 0.25f, NAN, 0.5f,         /* sample 0, channel 1 */
                   4e-4f, 4.0f, INFINITY, 3.99f,    /* sample 1, channel 0 */
                   -INFINITY, 1e-6f, 0.125f, 1e9f}; /* sample 1, channel 1 */
    const float want[16] = {0.0f, 0.0f, 0.5f, 1.0f, 0.0f, 0.5f, 0.0f, 1.0f,
                            1e-4f, 1.0f, 1.0f, 0.9975f, 0.0f, 0.0f, 0.25f, 1.0f};
    long long bad = preprocess_images(x, 2, 2, 4, scales, NULL, 1e-5f);
    CHECK(bad == 3, "non-finite count %lld, want 3 (NaN, +Inf, -Inf)", bad);
    for (int i = 0; i < 16; i++)
        CHECK(fabsf(x[i] - want[i]) <= 1e-6f * fmaxf(1.0f, want[i]), "x[%d] = %g, want %g", i, x[i], want[i]);
    /* 4e-6 / 4 = 1e-6 is below the threshold; 4e-4 / 4 = 1e-4 is above it */
    float y[2] = {4.1e-5f, 3.9e-5f};
    preprocess_images(y, 1, 1, 2, scales, NULL, 1e-5f);
    CHECK(y[0] > 0.0f && y[1] == 0.0f, "threshold applies after scaling: %g %g", y[0], y[1]);
    for (int i = 0; i < 16; i++) CHECK(x[i] >= 0.0f && x[i] <= 1.0f, "x[%d] = %g outside [0, 1]", i, x[i]);

    float z[5] = {1.0f, NAN, 2.0f, INFINITY, 3.0f};
    long long first;
    CHECK(count_nonfinite(z, 5, &first) == 2 && first == 1, "count_nonfinite: first %lld", first);
    CHECK(count_nonfinite(z, 1, &first) == 0 && first == -1, "count_nonfinite on clean data: first %lld", first);
}

/* A signed channel beside an energy-like one holding the same values, by hand: scale 0.5,
 * threshold 1e-3. Signed: v = x / 0.5, 0 where |v| < 1e-3, clipped to [-1, 1]; energy-like:
 * the same but clipped to [0, 1]. */
static void test_preprocess_signed(void) {
    const float scales[2] = {0.5f, 0.5f};
    const unsigned char kinds[2] = {CHANNEL_SIGNED, CHANNEL_ENERGY};
    const float in[8] = {-0.25f, 0.25f, -0.0004f, 0.0004f, -1.0f, 3.0f, NAN, -INFINITY};
    const float want_signed[8] = {-0.5f, 0.5f, 0.0f, 0.0f, -1.0f, 1.0f, 0.0f, -1.0f};
    const float want_energy[8] = {0.0f, 0.5f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f};
    float x[16];
    memcpy(x, in, sizeof in);
    memcpy(x + 8, in, sizeof in);
    long long bad = preprocess_images(x, 1, 2, 8, scales, kinds, 1e-3f);
    CHECK(bad == 4, "non-finite count %lld, want 4", bad);
    for (int i = 0; i < 8; i++) {
        CHECK(x[i] == want_signed[i], "signed channel: %g -> %g, want %g", in[i], x[i], want_signed[i]);
        CHECK(x[8 + i] == want_energy[i], "energy channel: %g -> %g, want %g", in[i], x[8 + i], want_energy[i]);
    }
    /* a negative deposit keeps its sign and its size: -0.3 / 0.5 = -0.6 */
    CHECK(prep_pixel(-0.3f, 2.0f, CHANNEL_SIGNED, 1e-5f) == -0.6f, "-0.3 at scale 0.5 -> -0.6");
    CHECK(prep_pixel(-0.3f, 2.0f, CHANNEL_ENERGY, 1e-5f) == 0.0f, "energy-like: -0.3 -> 0");
    /* the kinds NULL: every channel energy-like, as before there were kinds */
    memcpy(x, in, sizeof in);
    preprocess_images(x, 1, 1, 8, scales, NULL, 1e-3f);
    for (int i = 0; i < 8; i++) CHECK(x[i] == want_energy[i], "kinds NULL: %g -> %g", in[i], x[i]);

    float empty[6] = {0.0f, -0.0f, 0.0f, 0.0f, 0.0f, 0.0f}, tiny[3] = {0.0f, 0.0f, -1e-30f};
    float nan1[2] = {0.0f, NAN};
    CHECK(all_zero(empty, 6) && !all_zero(tiny, 3) && !all_zero(nan1, 2) && all_zero(tiny, 2),
          "all_zero: zeros of either sign only");
}

/* the plausibility checks (data/reader/plausible.h) on masses and image counts */
static void test_plausible(void) {
    float gev[5] = {80.0f, 172.0f, -3.0f, 9000.0f, -1.0f}, mev[5] = {80e3f, 172e3f, 10.0f, 9e6f, 125e3f};
    long long neg = 0;
    CHECK(plausible_masses(gev, 5, "a.h5", 0, &neg) == 0 && neg == 2, "GeV masses pass, 2 negative (%lld)", neg);
    CHECK(plausible_masses(mev, 5, "b.h5", 0, &neg) == -1 && strstr(e2e_error(), "b.h5: the median mass is 1.25e+05 GeV") &&
              strstr(e2e_error(), "MeV") && neg == 2,
          "MeV masses refused, with the file and the median: %s", e2e_error());
    float half[4] = {6000.0f, 7000.0f, 100.0f, 120.0f}; /* median 3550: not above 5 TeV */
    CHECK(plausible_masses(half, 4, "c.h5", 0, &neg) == 0, "half the masses above 5 TeV pass");
    const char *paths[2] = {"one.h5", "two.h5"};
    ImageCounts n[2] = {{.checked = 10, .empty = 3, .kept = 700, .negative = 9}, {.checked = 5, .kept = 40}};
    CHECK(plausible_images(paths, 2, n, 0) == 0, "some empty images, some negative pixels pass");
    n[1].empty = 5;
    n[1].kept = 0;
    CHECK(plausible_images(paths, 2, n, 0) == -1 && strstr(e2e_error(), "two.h5: every one of the 5 images"),
          "a file of empty images refused: %s", e2e_error());
    n[1].empty = 1;
    n[1].negative = 1234;
    CHECK(plausible_images(paths, 2, n, 0) == -1 && strstr(e2e_error(), "two.h5: the 5 images") &&
              strstr(e2e_error(), "no positive pixel, only zeros and 1234 negative ones"),
          "a file of nothing but zeros and negative pixels refused: %s", e2e_error());
    n[1] = (ImageCounts){0};
    CHECK(plausible_images(paths, 2, n, 0) == 0, "a file with no image read is not judged");
}

/* the histogram's counts the plausibility reads (pixel_hist_kept, negative,
 * pixel_hist_above), and plausible_channels's warnings on them, read back from stderr */
static void test_plausible_channels(void) {
    enum { HW = 6 };
    /* channel 0 energy-like, mostly negative; channel 1 signed with a huge value; channel
       2 plausible */
    float x[3 * HW] = {-1, -2, -3, 4, 0, -0.0f, -5, 6, 3e9f, 0, 0, 0, 1, 2, 3, 4, 5, 6};
    unsigned char kinds[3] = {CHANNEL_ENERGY, CHANNEL_SIGNED, CHANNEL_ENERGY};
    PixelHist h;
    CHECK(pixel_hist_init(&h, 3) == 0, "a histogram");
    h.kinds = kinds;
    pixel_hist_add(&h, x, 1, HW);
    float top = 0.0f;
    CHECK(pixel_hist_kept(&h, 0) == 1 && h.negative[0] == 3 && h.nonpos[0] == 5, "channel 0: 1 kept, 3 negative "
          "(-0.0 is not), 5 non-positive: %llu %llu %llu", (unsigned long long)pixel_hist_kept(&h, 0),
          (unsigned long long)h.negative[0], (unsigned long long)h.nonpos[0]);
    CHECK(pixel_hist_kept(&h, 1) == 3 && h.negative[1] == 0, "a signed channel keeps its non-zero values: %llu",
          (unsigned long long)pixel_hist_kept(&h, 1));
    CHECK(pixel_hist_above(&h, 1, 1e7f, &top) == 1 && top <= 3e9f && top > 2.98e9f, "one value above 1e7, the "
          "highest bin's edge %g", top);
    CHECK(pixel_hist_above(&h, 2, 1e7f, &top) == 0 && top <= 6.0f && top > 5.9f, "none in channel 2, top %g", top);
    const char *names[3] = {"ecal", "", "hcal"};
    fflush(stderr);
    FILE *saved = fdopen(dup(fileno(stderr)), "w"), *log = tmpfile();
    dup2(fileno(log), fileno(stderr));
    plausible_channels(&h, names, "p.h5", 1);
    fflush(stderr);
    dup2(fileno(saved), fileno(stderr));
    char text[4096] = "";
    rewind(log);
    size_t got = fread(text, 1, sizeof text - 1, log);
    text[got] = '\0';
    fclose(log);
    fclose(saved);
    CHECK(strstr(text, "p.h5: channel 0 ('ecal') has 3 negative pixels and 1 positive ones") &&
              strstr(text, "declare it 'signed' in channel_kinds"), "mostly negative energies warned about: %s", text);
    CHECK(strstr(text, "p.h5: channel 1 has 1 pixels above 1e+07 (up to about 2.99e+09)") && !strstr(text, "hcal"),
          "a value no detector gives warned about, a plausible channel not: %s", text);
    pixel_hist_free(&h);
}

/* the binary16 definition, written independently of half.c */
static double half_value(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double s = (h & 0x8000) ? -1.0 : 1.0;
    if (e == 31) return m ? NAN : s * INFINITY;
    return e ? s * ldexp(1024 + m, e - 25) : s * ldexp(m, -24);
}

static void test_half(void) {
    int wrong = 0, nan_wrong = 0, roundtrip = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = half_to_float((uint16_t)h);
        double want = half_value((uint16_t)h);
        if (isnan(want)) nan_wrong += !isnan(f);
        else wrong += (double)f != want || !!signbit(f) != ((h & 0x8000) != 0);
        if (!isnan(want)) roundtrip += float_to_half(f) != h;
    }
    CHECK(wrong == 0, "%d half values decode wrongly", wrong);
    CHECK(nan_wrong == 0, "%d half NaNs decode to non-NaN", nan_wrong);
    CHECK(roundtrip == 0, "%d half values do not survive float and back", roundtrip);
    /* the batch conversion (F16C on AVX2 CPUs, a tail of 3 values after the last 8) */
    uint16_t *all = malloc(65539 * sizeof *all);
    float *batch = malloc(65539 * sizeof *batch);
    for (uint32_t h = 0; h < 65539; h++) all[h] = (uint16_t)(h * 40503u); /* every value, in another order */
    half_to_float_n(all, batch, 65539);
    int batch_wrong = 0;
    for (uint32_t i = 0; i < 65539; i++) {
        float one = half_to_float(all[i]);
        batch_wrong += isnan(one) ? !isnan(batch[i]) : memcmp(&one, &batch[i], 4) != 0;
    }
    CHECK(batch_wrong == 0, "%d values differ between half_to_float_n and half_to_float", batch_wrong);
    long long nonfinite = 0;
    for (uint32_t i = 0; i < 65539; i++) nonfinite += !isfinite(half_to_float(all[i]));
    long long counted = half_count_nonfinite(all, 65539);
    CHECK(counted == nonfinite && nonfinite >= 2048, "half_count_nonfinite: %lld, decoded values say %lld", counted,
          nonfinite);
    all[5] = 0x7e00; /* a NaN added to a range that had none */
    CHECK(half_count_nonfinite(all + 5, 1) == 1 && half_count_nonfinite(all + 6, 0) == 0, "half_count_nonfinite of 1 and 0");
    free(all);
    free(batch);

    struct { float f; uint16_t h; } known[] = {
        {1.0f, 0x3c00}, {-2.0f, 0xc000}, {65504.0f, 0x7bff}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00},
        {1e9f, 0x7c00}, {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000}, {0x1.8p-25f, 0x0001}, {0x1p-14f, 0x0400},
        {1.0f + 0x1p-11f, 0x3c00}, /* tie: to even */ {1.0f + 0x3p-11f, 0x3c02}, /* tie: up to even */
        {0.1f, 0x2e66}, {-0.0f, 0x8000}, {INFINITY, 0x7c00}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        CHECK(float_to_half(known[i].f) == known[i].h, "float_to_half(%a) = 0x%04x, want 0x%04x", known[i].f,
              float_to_half(known[i].f), known[i].h);
    CHECK(isnan(half_to_float(float_to_half(NAN))), "NaN stays NaN");

    /* nearest, ties to even, for random floats in the half range */
    DRng r;
    drng_key(&r, (uint64_t[]){42}, 1);
    int not_nearest = 0;
    for (int i = 0; i < 200000; i++) {
        float f = (float)((drng_uniform(&r) * 2 - 1) * ldexp(1.0, (int)drng_below(&r, 40) - 26));
        uint16_t h = float_to_half(f);
        double got = half_value(h), err = fabs(got - f);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7c00) == 0x7c00 || ((n ^ h) & 0x8000)) continue; /* left the finite same-sign range */
            double e2 = fabs(half_value(n) - f);
            if (e2 < err || (e2 == err && (h & 1))) not_nearest++;
        }
    }
    CHECK(not_nearest == 0, "%d conversions are not round-to-nearest-even", not_nearest);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_quantile(void) {
    /* 1 channel, 20000 pixels: a quarter zero or negative, the rest exponential */
    const long long n = 20000;
    float *x = malloc(n * sizeof *x), *pos = malloc(n * sizeof *pos);
    DRng r;
    drng_key(&r, (uint64_t[]){7}, 1);
    long long np = 0;
    for (long long i = 0; i < n; i++) {
        double u = drng_uniform(&r);
        x[i] = u < 0.2 ? 0.0f : (u < 0.25 ? -1.0f : (float)drng_exp(&r, 3.0));
        if (x[i] > 0) pos[np++] = x[i];
    }
    qsort(pos, (size_t)np, sizeof *pos, cmp_float);
    PixelHist h, a, b;
    CHECK(pixel_hist_init(&h, 1) == 0 && pixel_hist_init(&a, 1) == 0 && pixel_hist_init(&b, 1) == 0, "init");
    pixel_hist_add(&h, x, 1, n);
    CHECK(h.nonpos[0] == (uint64_t)(n - np), "non-positive count %llu, want %lld", (unsigned long long)h.nonpos[0], n - np);
    const double qs[] = {0.5, 0.9, 0.999, 1.0};
    for (int i = 0; i < 4; i++) {
        float want = pos[(long long)ceil(qs[i] * np) - 1], got = pixel_hist_quantile(&h, 0, qs[i]);
        CHECK(fabsf(got - want) <= 0.0055f * want, "q%g = %g, exact %g (bins are < 0.55%% wide)", qs[i], got, want);
    }
    /* two halves added separately sum to the whole (what the MPI reduction relies on) */
    pixel_hist_add(&a, x, 1, n / 2);
    pixel_hist_add(&b, x + n / 2, 1, n - n / 2);
    int differ = 0;
    for (int k = 0; k < PIXEL_HIST_BINS; k++) differ += a.count[k] + b.count[k] != h.count[k];
    CHECK(differ == 0, "%d bins differ between the sum of halves and the whole", differ);
    float nanpix[3] = {NAN, INFINITY, 1.0f};
    pixel_hist_add(&h, nanpix, 1, 3);
    CHECK(h.nonfinite == 2, "non-finite pixels counted: %llu", (unsigned long long)h.nonfinite);
    /* a signed channel's statistic is over |x|: -1 counts as 1, beside an energy-like
     * channel of the same values, which counts only the positive ones */
    float twice[2 * 6] = {-8.0f, -4.0f, 2.0f, 0.0f, -0.0f, -1.0f, -8.0f, -4.0f, 2.0f, 0.0f, -0.0f, -1.0f};
    const unsigned char kinds[2] = {CHANNEL_SIGNED, CHANNEL_ENERGY};
    PixelHist s;
    CHECK(pixel_hist_init(&s, 2) == 0, "init");
    s.kinds = kinds;
    pixel_hist_add(&s, twice, 1, 6);
    uint64_t in_bins[2] = {0, 0};
    for (int c = 0; c < 2; c++)
        for (int k = 0; k < PIXEL_HIST_BINS; k++) in_bins[c] += s.count[(size_t)c * PIXEL_HIST_BINS + k];
    CHECK(in_bins[0] == 4 && s.nonpos[0] == 2 && in_bins[1] == 1 && s.nonpos[1] == 5,
          "signed: 4 of |x| > 0 and 2 zeros; energy: 1 positive, 5 not (%llu %llu %llu %llu)",
          (unsigned long long)in_bins[0], (unsigned long long)s.nonpos[0], (unsigned long long)in_bins[1],
          (unsigned long long)s.nonpos[1]);
    float q_signed = pixel_hist_quantile(&s, 0, 1.0), q_energy = pixel_hist_quantile(&s, 1, 1.0);
    /* the top of the bin that holds the largest value: within 1/128 above it */
    CHECK(q_signed >= 8.0f && q_signed <= 8.0f * (1 + 1.0f / 128) && q_energy >= 2.0f && q_energy <= 2.0f * (1 + 1.0f / 128),
          "the largest |x| of the signed channel %g (8), of the energy channel %g (2)", q_signed, q_energy);
    pixel_hist_free(&s);
    PixelHist empty;
    pixel_hist_init(&empty, 1);
    CHECK(pixel_hist_quantile(&empty, 0, 0.999) == 0.0f, "an empty channel has quantile 0");
    pixel_hist_free(&empty);
    pixel_hist_free(&h);
    pixel_hist_free(&a);
    pixel_hist_free(&b);
    free(x);
    free(pos);
}

static void test_unbias(void) {
    /* 4 bins of 10 over [0, 40): counts 1, 2, 0, 5 (-3 and 45 land in the edge bins) */
    const float m[8] = {-3.0f, 12.0f, 15.0f, 31.0f, 33.0f, 35.0f, 39.0f, 45.0f};
    float w[4];
    CHECK(unbias_bin(-5.0f, 4, 0.0f, 40.0f) == 0 && unbias_bin(39.9f, 4, 0.0f, 40.0f) == 3 &&
              unbias_bin(4e28f, 4, 0.0f, 40.0f) == 3 && unbias_bin(-3e37f, 4, 0.0f, 40.0f) == 0 &&
              unbias_bin(INFINITY, 4, 0.0f, 40.0f) == 3 && unbias_bin(NAN, 4, 0.0f, 40.0f) == 0,
          "masses outside the range (1e28 GeV too: fuzz_dense_reader) go to the edge bins");
    CHECK(unbias_bin_weights(m, 8, 4, 0.0f, 40.0f, 0.0f, w) == 0, "no cap, no capped bins");
    const float want[4] = {8.0f / 3.0f, 8.0f / 6.0f, 0.0f, 8.0f / 15.0f};
    for (int k = 0; k < 4; k++) CHECK(fabsf(w[k] - want[k]) < 1e-6f, "w[%d] = %g, want %g", k, w[k], want[k]);
    double mean = 0;
    for (int i = 0; i < 8; i++) mean += w[unbias_bin(m[i], 4, 0.0f, 40.0f)] / 8.0;
    CHECK(fabs(mean - 1.0) < 1e-6, "mean weight %g, want 1", mean);
    /* cap at 2: bin 0 capped, then all scaled by 8 / (2 + 8/3 + 8/3) */
    CHECK(unbias_bin_weights(m, 8, 4, 0.0f, 40.0f, 2.0f, w) == 1, "one capped bin");
    const double f = 8.0 / (2.0 + 16.0 / 3.0);
    CHECK(fabsf(w[0] - (float)(2.0 * f)) < 1e-6f && fabsf(w[3] - (float)(8.0 / 15.0 * f)) < 1e-6f,
          "capped weights %g %g", w[0], w[3]);
    CHECK(unbias_bin_weights(m, 0, 4, 0.0f, 40.0f, 0.0f, w) < 0, "no samples is an error");
    CHECK(unbias_bin_weights(m, 8, 4, 40.0f, 0.0f, 0.0f, w) < 0, "max <= min is an error");
}

/* sparse_count_entries: what sparse_encode stores (every bit pattern but +0: -0.0, NaN,
 * subnormals count), float32 and float16 rows, counted by hand */
static void test_sparse_count(void) {
    enum { C = 3, HW = 50 };
    uint32_t bits[C * HW], counts[C];
    uint16_t half[C * HW];
    static uint32_t pos[C * HW], val[C * HW];
    long long by_hand = 0, by_hand16 = 0;
    uint64_t s = 7;
    for (int i = 0; i < C * HW; i++) {
        s = drng_mix(s + (uint64_t)i);
        int kind = (int)(s % 6);
        bits[i] = kind == 0 ? 0x80000000u : kind == 1 ? 0x7fc00000u : kind == 2 ? 1u : kind == 3 ? 0x3f800000u : 0u;
        half[i] = (uint16_t)(kind == 0 ? 0x8000u : kind == 1 ? 0x7e00u : kind == 2 ? 1u : 0u);
        by_hand += bits[i] != 0;
        by_hand16 += half[i] != 0;
    }
    SparseGeom g = {C, HW, 2, 4}, g16 = {C, HW, 2, 2};
    long long n = sparse_count_entries(&g, bits), n16 = sparse_count_entries(&g16, half);
    CHECK(n == by_hand && n > 0 && n < C * HW, "float32: %lld entries counted, %lld by hand", n, by_hand);
    CHECK(n == sparse_encode(&g, bits, counts, pos, val), "float32: as many as sparse_encode stores");
    CHECK(n16 == by_hand16 && n16 == sparse_encode(&g16, half, counts, pos, val),
          "float16: %lld entries counted, %lld by hand, as sparse_encode stores", n16, by_hand16);
    memset(bits, 0, sizeof bits);
    CHECK(sparse_count_entries(&g, bits) == 0, "an empty row has no entries");
}

int main(void) {
    test_sparse_count();
    test_preprocess_known();
    test_preprocess_signed();
    test_plausible();
    test_plausible_channels();
    test_half();
    test_quantile();
    test_unbias();
    return check_main_result("test_data_preprocess");
}

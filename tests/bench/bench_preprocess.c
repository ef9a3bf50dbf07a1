/* Benchmark of the per-pixel preprocessing (not a test): one 8 x 125 x 125 jet, in cache
 * as the reader has it right after reading, through preprocess_images with every channel
 * energy-like and with 2 of 8 channels signed, beside the energy-only loop the reader ran
 * before there were channel kinds (written out here as the reference). Best of many
 * calls, so that a shared machine's noise mostly drops out; the energy-like outputs are
 * checked bitwise equal to the reference's.
 * Usage: bench_preprocess [CALLS] (default 3000) */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "preprocess.h"
#include "simd.h"

/* the reader's loop before channel kinds: y = x / s, y < threshold -> 0, y > 1 -> 1 */
AVX2_CLONES
static long long energy_only(float *x, long long n, int channels, long long hw, const float *scales, float zs) {
    long long bad = 0;
    for (long long i = 0; i < n; i++)
        for (int c = 0; c < channels; c++) {
            float *p = x + (i * channels + c) * hw;
            const float inv = 1.0f / scales[c];
            unsigned b = 0;
            for (long long k = 0; k < hw; k++) {
                float v = p[k];
                b += !(fabsf(v) <= FLT_MAX);
                float y = v * inv;
                y = y >= zs ? y : 0.0f;
                p[k] = y < 1.0f ? y : 1.0f;
            }
            bad += b;
        }
    return bad;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    const int C = 8, calls = argc > 1 ? atoi(argv[1]) : 3000;
    const long long hw = 125 * 125, total = C * hw;
    float *src = malloc(total * sizeof *src), *x = malloc(total * sizeof *x), *ref = malloc(total * sizeof *ref);
    float scales[8];
    const unsigned char signed2[8] = {CHANNEL_ENERGY, CHANNEL_SIGNED, CHANNEL_SIGNED, CHANNEL_ENERGY,
                                      CHANNEL_ENERGY, CHANNEL_ENERGY, CHANNEL_ENERGY, CHANNEL_ENERGY};
    for (int c = 0; c < C; c++) scales[c] = 0.5f + (float)c;
    srand(1);
    for (long long i = 0; i < total; i++) /* 10% non-zero, of either sign */
        src[i] = rand() % 10 ? 0.0f : ((float)rand() / (float)RAND_MAX - 0.3f) * 5.0f;
    memcpy(ref, src, total * sizeof *ref);
    energy_only(ref, 1, C, hw, scales, 1e-5f);
    memcpy(x, src, total * sizeof *x);
    preprocess_images(x, 1, C, hw, scales, NULL, 1e-5f);
    int same = !memcmp(x, ref, total * sizeof *x);
    double best[3] = {INFINITY, INFINITY, INFINITY};
    for (int it = 0; it < calls; it++)
        for (int k = 0; k < 3; k++) {
            memcpy(x, src, total * sizeof *x); /* in cache, as after a read */
            double t0 = now();
            if (k == 0) energy_only(x, 1, C, hw, scales, 1e-5f);
            else preprocess_images(x, 1, C, hw, scales, k == 2 ? signed2 : NULL, 1e-5f);
            best[k] = fmin(best[k], now() - t0);
        }
    printf("one 8 x 125 x 125 jet in cache, best of %d calls:\n", calls);
    printf("  energy-only loop before channel kinds   %7.2f us\n", best[0] * 1e6);
    printf("  preprocess_images, every channel energy %7.2f us (%.2fx; output bitwise equal: %s)\n", best[1] * 1e6,
           best[1] / best[0], same ? "yes" : "NO");
    printf("  preprocess_images, 2 of 8 signed        %7.2f us (%.2fx)\n", best[2] * 1e6, best[2] / best[0]);
    free(src), free(x), free(ref);
    return same ? 0 : 1;
}

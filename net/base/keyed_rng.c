/* Counter-based random numbers keyed by a tuple of integers (keyed_rng.h): splitmix64
 * and its finaliser; uniform, bounded, normal, exponential and Poisson draws. */
#include "keyed_rng.h"

#include <math.h>

uint64_t drng_mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define GOLDEN 0x9e3779b97f4a7c15ULL

void drng_key(DRng *r, const uint64_t *key, int n) {
    uint64_t s = 0x243f6a8885a308d3ULL; /* pi's digits: a fixed, non-zero start */
    for (int i = 0; i < n; i++) s = drng_mix(s + GOLDEN + drng_mix(key[i] + (uint64_t)(i + 1) * GOLDEN));
    r->s = s;
}

uint64_t drng_next(DRng *r) { return drng_mix(r->s += GOLDEN); }

double drng_uniform(DRng *r) { return (double)(drng_next(r) >> 11) * 0x1.0p-53; }

uint64_t drng_below(DRng *r, uint64_t n) {
    return (uint64_t)(((unsigned __int128)drng_next(r) * n) >> 64);
}

double drng_normal(DRng *r) {
    /* Box-Muller; one value per call keeps streams independent of call history */
    double u = 1.0 - drng_uniform(r), v = drng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

double drng_exp(DRng *r, double mean) { return -mean * log(1.0 - drng_uniform(r)); }

int drng_poisson(DRng *r, double lambda) {
    if (lambda > 500) { /* normal approximation far from zero */
        double x = lambda + sqrt(lambda) * drng_normal(r) + 0.5;
        return x < 0 ? 0 : (int)x;
    }
    double u = drng_uniform(r), p = exp(-lambda), cdf = p;
    int k = 0;
    while (u > cdf && k < 100000) {
        k++;
        p *= lambda / k;
        cdf += p;
        if (p == 0.0) break;
    }
    return k;
}

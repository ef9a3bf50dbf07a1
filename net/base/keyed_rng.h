/* Counter-based random numbers for data/: a stream is keyed by a tuple of integers
 * (seed, jet index) or (seed, purpose, epoch, split, ranks, rank), so any piece of the
 * data can be drawn without drawing what comes before it. The stream is splitmix64
 * (Steele, Lea, Flood 2014), keyed by folding the tuple through its finaliser. */
#ifndef E2E_DATA_KEYED_RNG_H
#define E2E_DATA_KEYED_RNG_H

#include <stdint.h>

typedef struct { uint64_t s; } DRng;

/* splitmix64's finaliser: a bijective 64-bit mix */
uint64_t drng_mix(uint64_t x);
/* a stream keyed by n integers */
void drng_key(DRng *r, const uint64_t *key, int n);
uint64_t drng_next(DRng *r);
/* uniform in [0, 1), 53 random bits */
double drng_uniform(DRng *r);
/* uniform integer in [0, n), n > 0 (Lemire's multiply-shift; bias < n / 2^64) */
uint64_t drng_below(DRng *r, uint64_t n);
double drng_normal(DRng *r);
/* exponential with the given mean */
double drng_exp(DRng *r, double mean);
/* Poisson with mean lambda (inversion; meant for lambda up to a few hundred) */
int drng_poisson(DRng *r, double lambda);

#endif

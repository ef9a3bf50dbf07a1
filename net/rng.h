/* The project's seeded random numbers for the model: xoshiro256** seeded through
 * splitmix64 (the published recipe). Same seed, same numbers, on every machine. */
#ifndef E2E_NET_RNG_H
#define E2E_NET_RNG_H

#include <stdint.h>

typedef struct { uint64_t s[4]; } Rng;

void rng_seed(Rng *r, uint64_t seed);
uint64_t rng_next(Rng *r);
/* uniform in [0, 1) with 24 random bits (every float32 value is exact) */
float rng_uniform(Rng *r);
/* uniform in [lo, hi) */
float rng_range(Rng *r, float lo, float hi);

#endif

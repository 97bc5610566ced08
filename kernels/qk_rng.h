/* Seeded, portable random numbers: every run's inputs follow from its printed seed. */
#ifndef QK_RNG_H
#define QK_RNG_H
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} qk_rng;

void qk_rng_seed(qk_rng *r, uint64_t seed);
uint64_t qk_rng_u64(qk_rng *r);
double qk_rng_uniform(qk_rng *r); /* [0, 1) with 53 random bits */
double qk_rng_normal(qk_rng *r);  /* standard normal (Box-Muller) */
/* An integer in [0, n) without modulo bias. */
uint64_t qk_rng_below(qk_rng *r, uint64_t n);

#endif

/* Inputs shared by the test suites: seeded, so a failure names its seed and reproduces. */
#ifndef QK_TEST_UTIL_H
#define QK_TEST_UTIL_H
#include "../kernels/qk_formats.h"
#include "../kernels/qk_rng.h"
#include <stddef.h>

typedef enum { ACT_NORMAL, ACT_UNIFORM20, ACT_OUTLIERS, ACT_ZERO_BLOCKS, ACT_COUNT } act_profile;
const char *act_profile_name(act_profile p);
/* n activations of profile p: N(0,1); U(-20,20); N(0,1) with 4 channels x100; N(0,1) with every
 * other 256-block all zero. */
void make_activations(qk_rng *r, act_profile p, float *x, size_t n);

/* Random but valid Q4_K blocks: every nibble, 6-bit scale and min random (so all eight scales
 * and mins of a block differ almost surely), d and dmin fp16 in [2^-12, 2^-6]. */
void make_random_q4k(qk_rng *r, qk_block_q4k *w, size_t nblocks);
/* Q4_K blocks from quantizing N(0, 0.02) weights with the reference quantizer. */
void make_quantized_q4k(qk_rng *r, qk_block_q4k *w, size_t rows, size_t cols);

/* Aligned, NaN-filled (poisoned) allocation of n floats; free with free(). */
float *alloc_poisoned(size_t n);
void poison(float *y, size_t n);

#endif

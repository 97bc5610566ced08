/* Inputs shared by the test suites: seeded, so a failure names its seed and reproduces. */
#ifndef QK_TEST_UTIL_H
#define QK_TEST_UTIL_H
#include "../kernels/qk_formats.h"
#include "../kernels/qk_rng.h"
#include <stddef.h>

/* Activation profiles are bench's (qk_act_fill), so the tests cover what users run. */
#include "../bench/act.h"

/* Random but valid Q4_K blocks: every nibble, 6-bit scale and min random (so all eight scales
 * and mins of a block differ almost surely), d and dmin fp16 in [2^-12, 2^-6]. */
void make_random_q4k(qk_rng *r, qk_block_q4k *w, size_t nblocks);
/* Q4_K blocks from quantizing N(0, 0.02) weights with the reference quantizer. */
void make_quantized_q4k(qk_rng *r, qk_block_q4k *w, size_t rows, size_t cols);

/* The edge-case series of the quantizer tests: kernels/qk_edge.h. */
#include "../kernels/qk_edge.h"

/* The variants the tests judge: the CPU table, then the GPU table, whose rows the tests run
 * through their C emulations (the same arithmetic in the same order; the real kernels are
 * compared with them bit for bit by test_gpu on a machine with a GPU). */
#include "../kernels/qk_kernel.h"
size_t qk_test_variant_count(void);
const qk_kernel *qk_test_variant(size_t i);
/* NULL when the tests can run k here (GPU rows always: their emulation). */
const char *qk_test_unsupported(const qk_kernel *k);

/* Aligned, NaN-filled (poisoned) allocation of n floats; free with free(). */
float *alloc_poisoned(size_t n);
void poison(float *y, size_t n);

#endif

/* f64 oracles and deviation metrics (DESIGN.md "Metrics"). */
#ifndef QK_ORACLE_H
#define QK_ORACLE_H
#include "qk_formats.h"
#include <stddef.h>

/* y[r] = sum_c deq64(W[r,c]) * x[c], W Q4_K rows of `cols` (multiple of 256), rows contiguous.
 * Products are exact in f64; the sum is compensated (Neumaier), so y is the exact result to
 * within a few f64 ulps. */
void qk_oracle_q4k(const qk_block_q4k *w, size_t rows, size_t cols, const double *x, double *y);

/* Activations as the oracle sees them: f32 exactly, or the exact value of a quantized vector
 * (for the algorithm-exact oracle sum deq64(W) * deq64(Q8(x))). */
void qk_activations_f64(qk_format fmt, const void *x, size_t n, double *out);

typedef struct {
    double rel_l2;        /* ||y - r|| / ||r|| */
    double max_abs;       /* max |y - r| */
    double max_rel;       /* max |y - r| / max(|y|, |r|), 0 where both are 0 */
    double one_minus_cos; /* 1 - cos(y, r), computed without cancellation */
    size_t nonfinite;     /* outputs that are NaN or inf (an unwritten, poisoned output) */
} qk_deviation;

/* Deviation of y (n floats) from the reference r. Any non-finite y makes every metric inf. */
qk_deviation qk_deviation_of(const float *y, const double *r, size_t n);

#endif

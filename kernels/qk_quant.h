/* Reference quantizers and dequantizers: the specification every variant must match. */
#ifndef QK_QUANT_H
#define QK_QUANT_H
#include "qk_formats.h"
#include <stddef.h>

/* Round to nearest, ties to even, for |x| < 2^22 (the integer rounding of ggml's quantizers). */
static inline int qk_nearest_int(float x) {
    /* adding 1.5*2^23 leaves the rounded integer in the low mantissa bits */
    union {
        float f;
        int32_t i;
    } u;
    u.f = x + 12582912.0f;
    return (u.i & 0x007fffff) - 0x00400000;
}

/* f32 -> Q4_K with the weighted scale/min search of llama.cpp's reference quantizer. n % 256 == 0.
 */
void qk_quantize_q4k_ref(const float *x, qk_block_q4k *out, size_t n);
void qk_dequantize_q4k(const qk_block_q4k *b, float *y, size_t n);
/* Exact dequantization in f64: d*sc*q - dmin*m has at most 22 significant bits. */
void qk_dequantize_q4k_f64(const qk_block_q4k *b, double *y, size_t n);

/* f32 -> Q8_K exactly as DESIGN.md states (signed max, iscale = -127/max, ties to even). */
void qk_quantize_q8k_ref(const float *x, qk_block_q8k *out, size_t n);
void qk_dequantize_q8k_f64(const qk_block_q8k *b, double *y, size_t n);

/* f32 -> Q8_1: d = amax/127, q = roundf(x/d), s = sum of x in the order of a 32-lane
 * xor-butterfly (offsets 16, 8, 4, 2, 1), which a GPU warp reduction reproduces bit for bit.
 * q is 0 where d == 0 or x/d is NaN, and clamped to [-127, 127] (only non-finite inputs reach
 * the clamp). */
void qk_quantize_q8_1_ref(const float *x, qk_block_q8_1 *out, size_t n);
void qk_dequantize_q8_1_f64(const qk_block_q8_1 *b, double *y, size_t n);
/* The butterfly sum used for Q8_1's s, exposed so emulations share it. */
float qk_q8_1_block_sum(const float x[QK8_1]);

#endif

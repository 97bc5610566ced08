/* Q8_K and Q8_1 reference quantizers and exact dequantizers. */
#include "qk_fp16.h"
#include "qk_quant.h"
#include <math.h>
#include <string.h>

void qk_quantize_q8k_ref(const float *x, qk_block_q8k *out, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        qk_block_q8k *y = &out[b];
        float amax = 0, max = 0; /* max keeps its sign: the first element of largest magnitude */
        for (int i = 0; i < QK_K; i++) {
            float ax = fabsf(x[i]);
            if (ax > amax) {
                amax = ax;
                max = x[i];
            }
        }
        if (amax == 0) {
            memset(y, 0, sizeof *y);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int i = 0; i < QK_K; i++) {
            /* finite inputs never go below -127; the lower clamp defines infinite products;
             * a NaN product is 0 (its bits differ between CPUs and GPUs, so the rounding trick
             * alone would not define it) */
            const float t = iscale * x[i];
            int v = t != t ? 0 : qk_nearest_int(t);
            y->qs[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += y->qs[16 * g + i];
            y->bsums[g] = (int16_t)s;
        }
        y->d = 1 / iscale;
    }
}

void qk_dequantize_q8k_f64(const qk_block_q8k *b, double *y, size_t n) {
    for (size_t k = 0; k < n / QK_K; k++)
        for (int i = 0; i < QK_K; i++)
            y[k * QK_K + i] = (double)b[k].d * b[k].qs[i];
}

float qk_q8_1_block_sum(const float x[QK8_1]) {
    float v[QK8_1];
    memcpy(v, x, sizeof v);
    /* lane i adds lane i^off; addition commutes, so every lane holds the same value */
    for (int off = 16; off >= 1; off >>= 1) {
        float t[QK8_1];
        for (int i = 0; i < QK8_1; i++)
            t[i] = v[i] + v[i ^ off];
        memcpy(v, t, sizeof v);
    }
    return v[0];
}

void qk_quantize_q8_1_ref(const float *x, qk_block_q8_1 *out, size_t n) {
    for (size_t b = 0; b < n / QK8_1; b++, x += QK8_1) {
        float amax = 0;
        for (int i = 0; i < QK8_1; i++) { /* NaNs never count (libm's fmaxf may return NaN
                                              for a signaling one, so it is not used) */
            const float a = fabsf(x[i]);
            amax = a > amax ? a : amax;
        }
        const float d = amax / 127;
        for (int i = 0; i < QK8_1; i++) {
            /* d == 0 with amax != 0 (amax below 127 * 2^-149) and non-finite inputs would make
             * x/d non-finite: those quantize to 0 and the result is clamped, so the cast is
             * always defined; finite inputs above that are unaffected */
            float v = d == 0 ? 0.0f : roundf(x[i] / d);
            out[b].qs[i] = (int8_t)(v != v ? 0 : v > 127 ? 127 : v < -127 ? -127 : v);
        }
        out[b].d = qk_f32_to_fp16(d);
        /* a NaN sum is stored as the canonical quiet NaN: its payload is not portable */
        const float s = qk_q8_1_block_sum(x);
        out[b].s = qk_f32_to_fp16(s != s ? NAN : s);
    }
}

void qk_dequantize_q8_1_f64(const qk_block_q8_1 *b, double *y, size_t n) {
    for (size_t k = 0; k < n / QK8_1; k++) {
        double d = qk_fp16_to_f32(b[k].d);
        for (int i = 0; i < QK8_1; i++)
            y[k * QK8_1 + i] = d * b[k].qs[i];
    }
}

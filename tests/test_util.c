#include "test_util.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_quant.h"
#include "../gpu/gpu_kernels.h"
#include "../cpu/cpu_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

void make_random_q4k(qk_rng *r, qk_block_q4k *w, size_t nblocks) {
    for (size_t b = 0; b < nblocks; b++) {
        w[b].d = qk_f32_to_fp16((float)ldexp(1 + qk_rng_uniform(r), -12 + (int)qk_rng_below(r, 6)));
        w[b].dmin =
            qk_f32_to_fp16((float)ldexp(1 + qk_rng_uniform(r), -12 + (int)qk_rng_below(r, 6)));
        for (int i = 0; i < 12; i++)
            w[b].scales[i] = (uint8_t)qk_rng_u64(r);
        for (int i = 0; i < QK_K / 2; i++)
            w[b].qs[i] = (uint8_t)qk_rng_u64(r);
    }
}

void make_quantized_q4k(qk_rng *r, qk_block_q4k *w, size_t rows, size_t cols) {
    float *f = malloc(cols * sizeof *f);
    for (size_t row = 0; row < rows; row++) {
        for (size_t i = 0; i < cols; i++)
            f[i] = (float)(0.02 * qk_rng_normal(r));
        qk_quantize_q4k_ref(f, w + row * (cols / QK_K), cols);
    }
    free(f);
}

void poison(float *y, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = NAN;
}

float *alloc_poisoned(size_t n) {
    float *y = aligned_alloc(64, (n * sizeof *y + 63) / 64 * 64);
    if (y) poison(y, n);
    return y;
}

/* Fills block b of x with the b-th edge case; returns its name. */
const char *make_edge_block(qk_rng *r, int b, float *x) {
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)qk_rng_normal(r);
    switch (b % 16) {
    case 0:
        return "normal";
    case 1:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)(40 * qk_rng_uniform(r) - 20);
        return "uniform20";
    case 2:
        memset(x, 0, QK_K * sizeof *x);
        return "all zero";
    case 3:
        for (int i = 0; i < QK_K; i++)
            x[i] = (i % 3) ? -0.0f : 0.0f;
        return "signed zeros";
    case 4:
        for (int i = 0; i < QK_K; i++)
            x[i] = -3.25f;
        return "all equal";
    case 5:
        x[200] = -50;
        return "largest magnitude negative, late";
    case 6:
        x[3] = 50, x[100] = -50;
        return "equal magnitudes, opposite signs";
    case 7: /* iscale == 1 exactly: k + 0.5 are exact ties */
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)(i % 254) - 126.5f;
        x[0] = -127;
        return "ties";
    case 8: /* values at -max round to +127, the edge of the <= 127 clamp */
        for (int i = 0; i < QK_K; i++)
            x[i] = (i & 1) ? 7.0f : -7.0f;
        return "values at +-max";
    case 9:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)ldexp(qk_rng_normal(r), -135);
        return "subnormals";
    case 10:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)ldexp(qk_rng_normal(r), 120);
        return "huge";
    case 11:
        x[77] = 1e4f;
        return "one outlier";
    case 12:
        x[5] = INFINITY;
        return "an infinity";
    case 13: { /* NaNs of other payloads and signs: their bits must not matter */
        uint32_t odd[2] = {0xffc12345u, 0x7f800001u};
        x[9] = NAN;
        memcpy(&x[10], &odd[0], 4);
        memcpy(&x[11], &odd[1], 4);
        return "NaNs";
    }
    case 14:
        memset(x, 0, QK_K * sizeof *x);
        x[255] = 1e-30f;
        return "single tiny value last";
    default:
        for (int i = 0; i < QK_K; i++)
            x[i] = nextafterf(0.5f, (float)(i & 1)) * (i - 128);
        return "near-ties";
    }
}

size_t qk_test_variant_count(void) {
    return qk_cpu_kernel_count + qk_gpu_kernel_count;
}
const qk_kernel *qk_test_variant(size_t i) {
    return i < qk_cpu_kernel_count ? &qk_cpu_kernels[i] : &qk_gpu_kernels[i - qk_cpu_kernel_count];
}
const char *qk_test_unsupported(const qk_kernel *k) {
    return k->device == QK_DEV_GPU ? NULL : qk_cpu_unsupported(k);
}

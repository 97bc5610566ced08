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

size_t qk_test_variant_count(void) {
    return qk_cpu_kernel_count + qk_gpu_kernel_count;
}
const qk_kernel *qk_test_variant(size_t i) {
    return i < qk_cpu_kernel_count ? &qk_cpu_kernels[i] : &qk_gpu_kernels[i - qk_cpu_kernel_count];
}
const char *qk_test_unsupported(const qk_kernel *k) {
    return k->device == QK_DEV_GPU ? NULL : qk_cpu_unsupported(k);
}

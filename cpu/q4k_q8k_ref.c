/* q4k_q8k_ref: the integer algorithm every q4k_q8k variant computes. Per super-block:
 * isum_j = sum q4*q8 over sub-block j, S = sum_j sc_j*isum_j, M = sum_j m_j*(bsum_2j+bsum_2j+1),
 * y += (dx*d)*S - (dx*dmin)*M in f32. */
#include "cpu_kernels.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_q4k_q8k_sums.h"

void qk_q4k_q8k_ref(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                    float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            int32_t S, M;
            qk_q4k_q8k_block_sums(&row[b], &xq[b], &S, &M);
            float d = xq[b].d * qk_fp16_to_f32(row[b].d);
            float dmin = xq[b].d * qk_fp16_to_f32(row[b].dmin);
            acc += d * (float)S - dmin * (float)M;
        }
        y[r] = acc;
    }
}

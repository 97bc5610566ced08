/* q4k_f32_ref: dequantize a super-block to f32, then a sequential f32 dot. */
#include "cpu_kernels.h"
#include "../kernels/qk_quant.h"

enum { COLS = 4 };

void qk_q4k_f32_ref(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                    float *y) {
    (void)rows;
    const float *xf = x;
    float wf[QK_K];
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            qk_dequantize_q4k(&row[b], wf, QK_K);
            for (int i = 0; i < QK_K; i++)
                acc += wf[i] * xf[b * QK_K + i];
        }
        y[r] = acc;
    }
}

/* Each super-block dequantized once per COLS columns; each column's dot is matvec's sequential
 * one, in the same order. */
void qk_q4k_f32_ref_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                           const void *const *xs, float *const *ys, size_t n) {
    (void)rows;
    float wf[QK_K];
    for (size_t c0 = 0; c0 < n; c0 += COLS) {
        const size_t nc = n - c0 < COLS ? n - c0 : COLS;
        for (size_t r = r0; r < r1; r++) {
            const qk_block_q4k *row = qk_q4k_row(w, cols, r);
            float acc[COLS] = {0};
            for (size_t b = 0; b < cols / QK_K; b++) {
                qk_dequantize_q4k(&row[b], wf, QK_K);
                for (size_t c = 0; c < nc; c++) {
                    const float *xf = (const float *)xs[c0 + c] + b * QK_K;
                    for (int i = 0; i < QK_K; i++)
                        acc[c] += wf[i] * xf[i];
                }
            }
            for (size_t c = 0; c < nc; c++)
                ys[c0 + c][r] = acc[c];
        }
    }
}

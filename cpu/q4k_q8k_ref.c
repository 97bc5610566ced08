/* q4k_q8k_ref: the integer algorithm every q4k_q8k variant computes. Per super-block:
 * isum_j = sum q4*q8 over sub-block j, S = sum_j sc_j*isum_j, M = sum_j m_j*(bsum_2j+bsum_2j+1),
 * y += (dx*d)*S - (dx*dmin)*M in f32. */
#include "cpu_kernels.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_q4k_q8k_sums.h"
#include "../kernels/qk_q4k_scales.h"

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

enum { REF_COLS = 4 };

/* Per row and super-block: the scales decoded and the nibbles unpacked once, then the integer
 * sums of up to REF_COLS columns from them (exact, so equal to qk_q4k_q8k_block_sums) and each
 * column's f32 accumulation exactly as above. */
void qk_q4k_q8k_ref_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                           const void *const *xs, float *const *ys, size_t n) {
    (void)rows;
    const size_t nb = cols / QK_K;
    for (size_t c0 = 0; c0 < n; c0 += REF_COLS) {
        const size_t nc = n - c0 < REF_COLS ? n - c0 : REF_COLS;
        const qk_block_q8k *xq[REF_COLS];
        for (size_t c = 0; c < nc; c++)
            xq[c] = xs[c0 + c];
        for (size_t r = r0; r < r1; r++) {
            const qk_block_q4k *row = qk_q4k_row(w, cols, r);
            float acc[REF_COLS] = {0};
            for (size_t b = 0; b < nb; b++) {
                uint8_t sm[16], q[QK_K]; /* sm: scales 0..7, mins 8..15; q: element order */
                qk_q4k_unpack_scales(row[b].scales, sm);
                for (int k = 0; k < 4; k++) /* 32-byte chunk k: elements 64k.. and 64k+32.. */
                    for (int l = 0; l < 32; l++) {
                        q[64 * k + l] = row[b].qs[32 * k + l] & 0xF;
                        q[64 * k + 32 + l] = row[b].qs[32 * k + l] >> 4;
                    }
                const float wd = qk_fp16_to_f32(row[b].d), wdmin = qk_fp16_to_f32(row[b].dmin);
                for (size_t c = 0; c < nc; c++) {
                    const qk_block_q8k *xb = &xq[c][b];
                    int32_t S = 0, M = 0;
                    for (int j = 0; j < 8; j++) {
                        int32_t isum = 0;
                        for (int l = 0; l < 32; l++)
                            isum += q[32 * j + l] * xb->qs[32 * j + l];
                        S += sm[j] * isum;
                        M += sm[8 + j] * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
                    }
                    float d = xb->d * wd;
                    float dmin = xb->d * wdmin;
                    acc[c] += d * (float)S - dmin * (float)M;
                }
            }
            for (size_t c = 0; c < nc; c++)
                ys[c0 + c][r] = acc[c];
        }
    }
}

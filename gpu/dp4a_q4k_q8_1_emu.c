/* Emulation of dp4a_q4k_q8_1.cu: lane 4*s + c takes chunk c of super-blocks s, s+8, ...: the
 * Q8_1 blocks 8*sb + 2c and 8*sb + 2c + 1 meet sub-blocks 2c (low nibbles) and 2c + 1 (high);
 * integer dot products and quant sums, then in f32
 *   sumd = d8a*(isum_a*sc_a) + d8b*(isum_b*sc_b),  summ = d8a*(qsum_a*m_a) + d8b*(qsum_b*m_b),
 *   acc += d*sumd - dmin*summ;
 * the lanes' sums meet in the warp butterfly. The min term uses the quants' sum, not Q8_1's
 * s field, so the result is the algorithm-exact sum deq(W) . deq(Q8_1(x)) up to rounding. */
#include "emu_warp.h"
#include "gpu_kernels.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_q4k_scales.h"

void qk_emu_dp4a_q4k_q8_1(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                          const void *x, float *y) {
    (void)rows;
    const qk_block_q8_1 *xa = x;
    const size_t nb = cols / QK_K;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc[32] = {0};
        for (int lane = 0; lane < 32; lane++) {
            const int s = lane / 4, c = lane % 4;
            for (size_t sb = (size_t)s; sb < nb; sb += 8) {
                const qk_block_q4k *b = &row[sb];
                const qk_block_q8_1 *xa0 = &xa[8 * sb + 2 * (size_t)c], *xa1 = xa0 + 1;
                uint8_t sc0, m0, sc1, m1;
                qk_q4k_scale_min(b->scales, 2 * c, &sc0, &m0);
                qk_q4k_scale_min(b->scales, 2 * c + 1, &sc1, &m1);
                const uint8_t *q = b->qs + 32 * c;
                int32_t isum0 = 0, isum1 = 0, qsum0 = 0, qsum1 = 0;
                for (int l = 0; l < 32; l++) {
                    isum0 += (q[l] & 0xF) * xa0->qs[l];
                    isum1 += (q[l] >> 4) * xa1->qs[l];
                    qsum0 += xa0->qs[l];
                    qsum1 += xa1->qs[l];
                }
                const float d8a = qk_fp16_to_f32(xa0->d), d8b = qk_fp16_to_f32(xa1->d);
                const float sumd = d8a * (float)(isum0 * sc0) + d8b * (float)(isum1 * sc1);
                const float summ = d8a * (float)(qsum0 * m0) + d8b * (float)(qsum1 * m1);
                acc[lane] += qk_fp16_to_f32(b->d) * sumd - qk_fp16_to_f32(b->dmin) * summ;
            }
        }
        y[r] = qk_emu_warp_sum(acc);
    }
}

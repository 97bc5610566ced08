/* Emulation of dp4a_q4k_q8.cu (and of dp4a_q4k_q8_e2e.cu, whose fused quantization yields the
 * same Q8_K blocks): per super-block the integer sums S and M of q4k_q8k_ref (the four lanes
 * of a super-block add theirs exactly), then lane 4*s adds (dx*d)*S - (dx*dmin)*M in f32, for
 * super-blocks s, s+8, ...; the lanes' sums meet in the warp butterfly. Rows of at most 4
 * super-blocks go several to a warp, and a row's lanes add in super-block order instead. */
#include "emu_warp.h"
#include "gpu_kernels.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_q4k_q8k_sums.h"

void qk_emu_dp4a_q4k_q8(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc[32] = {0};
        for (size_t sb = 0; sb < nb; sb++) {
            int32_t S, M;
            qk_q4k_q8k_block_sums(&row[sb], &xq[sb], &S, &M);
            const float d = xq[sb].d * qk_fp16_to_f32(row[sb].d);
            const float dmin = xq[sb].d * qk_fp16_to_f32(row[sb].dmin);
            acc[4 * (sb % 8)] += d * (float)S - dmin * (float)M;
        }
        if (nb <= 4) { /* several rows to a warp: the row's lanes add in super-block order */
            float v = acc[0];
            for (size_t sb = 1; sb < nb; sb++)
                v += acc[4 * sb];
            y[r] = v;
            continue;
        }
        y[r] = qk_emu_warp_sum(acc);
    }
}

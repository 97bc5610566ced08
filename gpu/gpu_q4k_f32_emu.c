/* Emulation of gpu_q4k_f32.cu: lane 4*s + c of a row's warp takes super-blocks s, s+8, ... and
 * in each the 32-byte chunk c (sub-blocks 2c and 2c+1); per byte l it dequantizes the low and
 * the high nibble (ds*q - dm, no contraction) and adds each times its activation with one
 * fmaf; the lanes' sums meet in the warp butterfly. */
#include "emu_warp.h"
#include "gpu_kernels.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_q4k_scales.h"
#include <math.h>

void qk_emu_gpu_q4k_f32(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x_, float *y) {
    (void)rows;
    const float *x = x_;
    const size_t nb = cols / QK_K;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc[32] = {0};
        for (int lane = 0; lane < 32; lane++) {
            const int s = lane / 4, c = lane % 4;
            for (size_t sb = (size_t)s; sb < nb; sb += 8) {
                const qk_block_q4k *b = &row[sb];
                uint8_t sc0, m0, sc1, m1;
                qk_q4k_scale_min(b->scales, 2 * c, &sc0, &m0);
                qk_q4k_scale_min(b->scales, 2 * c + 1, &sc1, &m1);
                const float d = qk_fp16_to_f32(b->d), dmin = qk_fp16_to_f32(b->dmin);
                const float ds0 = d * (float)sc0, dm0 = dmin * (float)m0;
                const float ds1 = d * (float)sc1, dm1 = dmin * (float)m1;
                const uint8_t *q = b->qs + 32 * c;
                const float *xs = x + sb * QK_K + 64 * (size_t)c;
                float a = acc[lane];
                for (int l = 0; l < 32; l++) {
                    a = fmaf(ds0 * (float)(q[l] & 0xF) - dm0, xs[l], a);
                    a = fmaf(ds1 * (float)(q[l] >> 4) - dm1, xs[32 + l], a);
                }
                acc[lane] = a;
            }
        }
        y[r] = qk_emu_warp_sum(acc);
    }
}

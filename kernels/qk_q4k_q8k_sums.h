/* The integer core of Q4_K x Q8_K for one super-block, as the reference computes it:
 * S = sum_j sc_j*isum_j (isum_j = sum of q4*q8 over sub-block j) and M = sum_j m_j*bsum_j.
 * Every q4k_q8k variant (CPU and GPU, and their emulations) must reproduce these exactly; here
 * so that cpu/ and gpu/ take them from the specification, inline (the reference's inner loop). */
#ifndef QK_Q4K_Q8K_SUMS_H
#define QK_Q4K_Q8K_SUMS_H
#include "qk_formats.h"
#include "qk_q4k_scales.h"
#include <stdint.h>

static inline void qk_q4k_q8k_block_sums(const qk_block_q4k *wb, const qk_block_q8k *xb, int32_t *S,
                                         int32_t *M) {
    int32_t s = 0, m = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, mn;
        qk_q4k_scale_min(wb->scales, j, &sc, &mn);
        const uint8_t *q = wb->qs + 32 * (j / 2);
        int shift = 4 * (j & 1), isum = 0;
        for (int l = 0; l < 32; l++)
            isum += ((q[l] >> shift) & 0xF) * xb->qs[32 * j + l];
        s += sc * isum;
        m += mn * (xb->bsums[2 * j] + xb->bsums[2 * j + 1]);
    }
    *S = s;
    *M = m;
}

#endif

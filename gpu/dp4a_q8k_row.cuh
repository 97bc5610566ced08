// The row dot product of dp4a_q4k_q8 and dp4a_q4k_q8_e2e (one warp, Q8_K activations in global
// or shared memory). Lane 4*s + c takes chunk c of super-blocks base + s: two sub-blocks'
// integer dot products with __dp4a, S = sc0*isum0 + sc1*isum1 and M = m0*bsum0 + m1*bsum1; the
// four lanes of a super-block add S and M exactly (so they are q4k_q8k_ref's integers), lane
// 4*s adds (dx*d)*S - (dx*dmin)*M to its f32 sum; then the warp butterfly.
#pragma once
#include "gpu_common.cuh"

__device__ __forceinline__ float qk_dp4a_q8k_row(const qk_block_q4k *__restrict__ row,
                                                 const qk_block_q8k *__restrict__ x8, int nb,
                                                 int lane) {
    const int s = lane >> 2, c = lane & 3;
    float acc = 0.0f;
    for (int base = 0; base < nb; base += 8) { // uniform trip count: the shuffles need all lanes
        const int sb = base + s;
        const bool active = sb < nb;
        int S = 0, M = 0;
        float dx = 0.0f;
        qk_q4k_head h = {0.0f, 0.0f, 0u, 0u, 0u};
        if (active) {
            const qk_block_q4k *b = row + sb;
            h = qk_load_head(b);
            const uint4 *qp = reinterpret_cast<const uint4 *>(b->qs + 32 * c);
            const uint4 qa = __ldg(qp), qb = __ldg(qp + 1);
            const uint32_t qw[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
            const qk_block_q8k *xb = x8 + sb;
            const int *xq = reinterpret_cast<const int *>(xb->qs + 64 * c);
            int isum0 = 0, isum1 = 0;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                isum0 = __dp4a((int)(qw[k] & 0x0F0F0F0Fu), xq[k], isum0);
                isum1 = __dp4a((int)((qw[k] >> 4) & 0x0F0F0F0Fu), xq[8 + k], isum1);
            }
            uint32_t sc0, m0, sc1, m1;
            qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c, &sc0, &m0);
            qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c + 1, &sc1, &m1);
            const int16_t *bs = xb->bsums + 4 * c;
            S = (int)sc0 * isum0 + (int)sc1 * isum1;
            M = (int)m0 * (bs[0] + bs[1]) + (int)m1 * (bs[2] + bs[3]);
            dx = xb->d;
        }
        S += __shfl_xor_sync(0xffffffffu, S, 1);
        S += __shfl_xor_sync(0xffffffffu, S, 2);
        M += __shfl_xor_sync(0xffffffffu, M, 1);
        M += __shfl_xor_sync(0xffffffffu, M, 2);
        if (active && c == 0) {
            const float d = __fmul_rn(dx, h.d), dmin = __fmul_rn(dx, h.dmin);
            acc = __fadd_rn(acc, __fsub_rn(__fmul_rn(d, (float)S), __fmul_rn(dmin, (float)M)));
        }
    }
    return qk_warp_sum(acc);
}

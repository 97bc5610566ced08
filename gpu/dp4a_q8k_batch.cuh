// The batched units of dp4a_q4k_q8 and dp4a_q4k_q8_e2e (mul_mat_id.cuh): a pass's Q8_K columns
// staged as qk_q8k_shared blocks (copied from gpu_quant_q8k's output, or quantized in the block
// for e2e). One lane takes a whole super-block (s = lane in row): its integer sums S and M are
// then q4k_q8k_ref's, as the one-token kernel's four lanes add them, with no shuffles; the lane
// adds (dx*d)*S - (dx*dmin)*M to its sum of super-blocks s, s + 8, ... A row's sums meet as in
// the one-token kernel: rows of at most 4 super-blocks (nb lanes a row) in super-block order;
// longer rows (8 lanes a row) by the butterfly over offsets 4, 2, 1, which is the one-token
// warp's butterfly over lanes 4*s (its lanes 4*s + 1..3 hold +0.0 and only add exact zeros,
// gpu_common.cuh says why). Each 32-byte chunk's nibbles are unpacked once for all columns.
// The 304-byte qk_q8k_shared stride is an odd multiple of 16 bytes modulo 128: the 16-byte
// loads of 8 consecutive super-blocks meet 8 different bank groups.
#pragma once
#include "mul_mat_id.cuh"

struct qk_batch_q8k_base {
    // an item is 144 bytes a lane: a second one in flight would leave registers for one block
    // an SM, measured slower on an H200 (e2e, 64 tokens: 100 us against 90 us)
    static constexpr int L = 1, R = 1, kBlocksPerSm = 2;
    static constexpr bool kPipeline = false;
    struct Data {
        uint4 head, qs[8];
    };
    __device__ __forceinline__ static Data load(const qk_block_q4k *b, int) {
        const uint4 *p = reinterpret_cast<const uint4 *>(b);
        Data d;
        d.head = __ldg(p);
#pragma unroll
        for (int i = 0; i < 8; i++)
            d.qs[i] = __ldg(p + 1 + i);
        return d;
    }
    __host__ __device__ static int lanes(int nb) {
        return nb <= 4 ? nb : 8;
    }
    __host__ __device__ static int rows(int nb) {
        return 32 / lanes(nb);
    }
    __host__ __device__ static size_t column_bytes(int nb) {
        return (size_t)nb * sizeof(qk_q8k_shared);
    }

    __device__ __forceinline__ static void step(const qk_batch_args &a, const uint4 *smem,
                                                const int (&)[QK_BATCH_COLS], const Data &d, int nc,
                                                int sb, int, bool active,
                                                float (&acc)[QK_BATCH_COLS]) {
        if (!active) return; // no shuffles here: the lane sits the step out
        const qk_q8k_shared *x8 = reinterpret_cast<const qk_q8k_shared *>(smem) + sb;
        // the eight 6-bit scales and mins, a byte each (qk_q4k_unpack_scales' words)
        const uint32_t w0 = d.head.y, w1 = d.head.z, w2 = d.head.w;
        const uint32_t low6 = 0x3f3f3f3fu, top2 = 0xc0c0c0c0u, nib = 0x0f0f0f0fu;
        const uint32_t scw[2] = {w0 & low6, (w2 & nib) | ((w0 & top2) >> 2)};
        const uint32_t mw[2] = {w1 & low6, ((w2 >> 4) & nib) | ((w1 & top2) >> 2)};
        int S[QK_BATCH_COLS];
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++)
            S[j] = 0;
#pragma unroll
        for (int c = 0; c < 4; c++) { // chunk c: sub-blocks 2c (low nibbles), 2c + 1 (high)
            const uint4 q0 = d.qs[2 * c], q1 = d.qs[2 * c + 1];
            const uint32_t qw[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
            int lo[8], hi[8];
#pragma unroll
            for (int k = 0; k < 8; k++) {
                lo[k] = (int)(qw[k] & 0x0F0F0F0Fu);
                hi[k] = (int)((qw[k] >> 4) & 0x0F0F0F0Fu);
            }
            const int sc0 = (int)((scw[c >> 1] >> (16 * (c & 1))) & 0xff);
            const int sc1 = (int)((scw[c >> 1] >> (16 * (c & 1) + 8)) & 0xff);
#pragma unroll
            for (int j = 0; j < QK_BATCH_COLS; j++) {
                if (j >= nc) break;
                const int4 *xq = reinterpret_cast<const int4 *>(x8[(size_t)j * a.nb].qs + 64 * c);
                int isum0 = 0, isum1 = 0;
#pragma unroll
                for (int i = 0; i < 2; i++) {
                    const int4 u = xq[i], v = xq[2 + i];
                    const int xl[4] = {u.x, u.y, u.z, u.w}, xh[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        isum0 = __dp4a(lo[4 * i + k], xl[k], isum0);
                        isum1 = __dp4a(hi[4 * i + k], xh[k], isum1);
                    }
                }
                S[j] += sc0 * isum0 + sc1 * isum1;
            }
        }
        // mins 2k and 2k + 1, each twice (bytes m, m, m', m'): __dp2a's int8 pairs for the
        // int16 pairs of bsums
        uint32_t mdup[4];
#pragma unroll
        for (int k = 0; k < 4; k++)
            mdup[k] = __byte_perm(mw[k >> 1], 0, k & 1 ? 0x3322 : 0x1100);
        const float wd = qk_h2f((uint16_t)(d.head.x & 0xffff));
        const float wdmin = qk_h2f((uint16_t)(d.head.x >> 16));
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++) {
            if (j >= nc) break;
            const qk_q8k_shared *xb = x8 + (size_t)j * a.nb;
            const int4 *bp = reinterpret_cast<const int4 *>(xb->bsums);
            const int4 b0 = bp[0], b1 = bp[1];
            const int bw[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
            int M = 0; // sub-block `sub` meets bsums 2*sub and 2*sub + 1: the halves of word sub
#pragma unroll
            for (int k = 0; k < 4; k++) {
                M = __dp2a_lo(bw[2 * k], (int)mdup[k], M);
                M = __dp2a_hi(bw[2 * k + 1], (int)mdup[k], M);
            }
            const float dx = xb->d;
            const float dw = __fmul_rn(dx, wd), dmw = __fmul_rn(dx, wdmin);
            acc[j] =
                __fadd_rn(acc[j], __fsub_rn(__fmul_rn(dw, (float)S[j]), __fmul_rn(dmw, (float)M)));
        }
    }

    __device__ __forceinline__ static float reduce(float v, int nb, int) {
        if (nb > 4) {
#pragma unroll
            for (int off = 4; off > 0; off >>= 1)
                v += __shfl_xor_sync(0xffffffffu, v, off);
            return v;
        }
        float sum = v;
        for (int j = 1; j < nb; j++)
            sum = __fadd_rn(sum, __shfl_down_sync(0xffffffffu, v, j));
        return sum;
    }
};

template <class V>
static cudaError_t qk_batch_launch_q8k(const qk_gpu_args &a, const void *x, cudaStream_t st) {
    const int pass = qk_batch_cols_per_pass(V::column_bytes(a.nb));
    if (!pass) return cudaErrorInvalidConfiguration;
    return qk_batch_launch<V>(a, x, pass, st);
}

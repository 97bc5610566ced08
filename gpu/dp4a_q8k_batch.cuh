// The batched units of dp4a_q4k_q8 and dp4a_q4k_q8_e2e (mul_mat_id.cuh): a pass's Q8_K columns
// staged as qk_q8k_shared blocks (copied from gpu_quant_q8k's output, or quantized in the block
// for e2e), then per column the arithmetic of qk_dp4a_q8k_step, with the weights' nibbles and
// scales unpacked once for all columns; the lane layout and the reductions of dp4a_q8k_row.cuh.
#pragma once
#include "mul_mat_id.cuh"

struct qk_batch_q8k_base {
    __host__ __device__ static int lanes(int nb) { return 4 * nb; }
    __host__ __device__ static int rows(int nb) { return qk_dp4a_rows_per_warp(nb); }
    __host__ __device__ static size_t column_bytes(int nb) {
        return (size_t)nb * sizeof(qk_q8k_shared);
    }

    __device__ __forceinline__ static void step(const qk_batch_args &a, const uint4 *smem,
                                                const int (&)[QK_BATCH_COLS], const qk_q4k_lane &d,
                                                int nc, int sb, int c, bool active,
                                                float (&acc)[QK_BATCH_COLS]) {
        const qk_q8k_shared *x8 = reinterpret_cast<const qk_q8k_shared *>(smem);
        const uint32_t qw[8] = {d.qa.x, d.qa.y, d.qa.z, d.qa.w, d.qb.x, d.qb.y, d.qb.z, d.qb.w};
        int lo[8], hi[8];
#pragma unroll
        for (int k = 0; k < 8; k++) {
            lo[k] = (int)(qw[k] & 0x0F0F0F0Fu);
            hi[k] = (int)((qw[k] >> 4) & 0x0F0F0F0Fu);
        }
        uint32_t sc[2], m[2];
        qk_chunk_scales(d.head.y, d.head.z, d.head.w, c, sc, m);
        const float wd = qk_h2f((uint16_t)(d.head.x & 0xffff));
        const float wdmin = qk_h2f((uint16_t)(d.head.x >> 16));
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++) {
            if (j >= nc) break;
            const qk_q8k_shared *xb = x8 + (size_t)j * a.nb + sb;
            int S = 0, M = 0;
            float dx = 0.0f;
            if (active) {
                const int4 *xq = reinterpret_cast<const int4 *>(xb->qs + 64 * c);
                int xs[16];
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int4 v = xq[i];
                    xs[4 * i] = v.x, xs[4 * i + 1] = v.y, xs[4 * i + 2] = v.z, xs[4 * i + 3] = v.w;
                }
                int isum0 = 0, isum1 = 0;
#pragma unroll
                for (int k = 0; k < 8; k++) {
                    isum0 = __dp4a(lo[k], xs[k], isum0);
                    isum1 = __dp4a(hi[k], xs[8 + k], isum1);
                }
                const int16_t *bs = xb->bsums + 4 * c;
                S = (int)sc[0] * isum0 + (int)sc[1] * isum1;
                M = (int)m[0] * (bs[0] + bs[1]) + (int)m[1] * (bs[2] + bs[3]);
                dx = xb->d;
            }
            S += __shfl_xor_sync(0xffffffffu, S, 1);
            S += __shfl_xor_sync(0xffffffffu, S, 2);
            M += __shfl_xor_sync(0xffffffffu, M, 1);
            M += __shfl_xor_sync(0xffffffffu, M, 2);
            if (active && c == 0) {
                const float dw = __fmul_rn(dx, wd), dmw = __fmul_rn(dx, wdmin);
                acc[j] =
                    __fadd_rn(acc[j], __fsub_rn(__fmul_rn(dw, (float)S), __fmul_rn(dmw, (float)M)));
            }
        }
    }

    // one row a warp: the butterfly; grouped rows: lane 4*sb's sums in super-block order
    template <bool G> __device__ __forceinline__ static float reduce(float v, int nb, int) {
        if constexpr (!G) {
            return qk_warp_sum(v);
        } else {
            float sum = v;
            for (int j = 1; j < nb; j++)
                sum = __fadd_rn(sum, __shfl_down_sync(0xffffffffu, v, 4 * j));
            return sum;
        }
    }
};

template <class V>
static cudaError_t qk_batch_launch_q8k(const qk_gpu_args &a, const void *x, cudaStream_t st) {
    const int pass = qk_batch_cols_per_pass(V::column_bytes(a.nb));
    if (!pass) return cudaErrorInvalidConfiguration;
    return qk_dp4a_rows_per_warp(a.nb) > 1 ? qk_batch_launch<V, true>(a, x, pass, st)
                                           : qk_batch_launch<V, false>(a, x, pass, st);
}

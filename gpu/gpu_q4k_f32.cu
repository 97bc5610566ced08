// gpu_q4k_f32: Q4_K weights x f32 activations, dequantization fused (the common CUDA path).
// One warp per row; lane 4*s + c takes the 32-byte chunk c (sub-blocks 2c, 2c + 1) of
// super-blocks s, s + 8, ...; per byte l: w = ds*q - dm for the low and the high nibble, each
// added with one fmaf; then the warp butterfly. gpu_q4k_f32_emu.c does the same in C. Rows of
// at most 4 super-blocks go several to a warp (G; gpu_common.cuh says why the bits are the same).
// Where x fits, the block first copies it into shared memory, padded by one float4 every 16
// (read straight from global memory, a warp's 32 lanes touch 32 cache lines per load, 256
// bytes apart; padded, each quarter-warp reads eight different banks). One wave of blocks
// whose warps walk rows (g, g + stride, ...), so x is copied once per block.
#include "gpu_common.cuh"
#include "gpu_launch.cuh"
#include "mul_mat_id.cuh"
#include "persistent_grid.cuh"

constexpr size_t QK_F32_SHARED_X_MAX = 48 * 1024; // no opt-in needed below this

// The padded float4 index of x's float4 i.
__device__ __forceinline__ int qk_f32_padded(int i) {
    return i + i / 16;
}

// q (0..15) as a float, exactly, without the quarter-rate integer conversion: the bits of
// 2^23 + q, minus 2^23.
__device__ __forceinline__ float qk_nibble_f32(uint32_t q) {
    return __fsub_rn(__uint_as_float(0x4B000000u | q), 8388608.0f);
}

template <bool S, bool G>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_gpu_q4k_f32_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                          qk_fastdiv rows, int nb, int total, const float *__restrict__ x,
                          float *__restrict__ y) {
    extern __shared__ float4 qk_f32_x[];
    if constexpr (S) {
        for (int i = threadIdx.x; i < nb * (QK_K / 4); i += blockDim.x)
            qk_f32_x[qk_f32_padded(i)] = __ldg(reinterpret_cast<const float4 *>(x) + i);
        __syncthreads();
    }
    // G: `per` lanes a row (a power of two), 32 / per rows a warp; else the whole warp a row
    const int lane = threadIdx.x & 31, per = G ? qk_row_lanes(nb) : 32, li = lane & (per - 1);
    const int s = li >> 2, c = li & 3, rpw = 32 / per, units = (total + rpw - 1) / rpw;
    for (int u = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32; u < units;
         u += gridDim.x * QK_GPU_WARPS) { // the whole warp
        const int g = u * rpw + lane / per;
        const qk_block_q4k *row = qk_gpu_row(w, ids, rows, nb, g < total ? g : total - 1);
        float acc = 0.0f;
        for (int sb = g < total ? s : nb; sb < nb; sb += 8) {
            const qk_block_q4k *b = row + sb;
            const qk_q4k_head h = qk_load_head(b);
            uint32_t sc[2], m[2];
            // the branching decoder: the branch-free qk_chunk_scales raises this kernel from 38
            // to 44 registers, and its top-8 time by 11 % (NVIDIA H200, 2026-11-26)
            qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c, &sc[0], &m[0]);
            qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c + 1, &sc[1], &m[1]);
            const float ds0 = __fmul_rn(h.d, (float)sc[0]), dm0 = __fmul_rn(h.dmin, (float)m[0]);
            const float ds1 = __fmul_rn(h.d, (float)sc[1]), dm1 = __fmul_rn(h.dmin, (float)m[1]);
            uint4 qa, qb;
            qk_load_chunk(b, c, &qa, &qb);
            const uint32_t qw[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
            const int x4 = sb * (QK_K / 4) + 16 * c; // this lane's first float4 of x
#pragma unroll
            for (int k = 0; k < 8; k++) { // bytes 4k .. 4k+3
                float4 lo, hi;
                if constexpr (S) {
                    lo = qk_f32_x[qk_f32_padded(x4 + k)];
                    hi = qk_f32_x[qk_f32_padded(x4 + 8 + k)];
                } else {
                    lo = __ldg(reinterpret_cast<const float4 *>(x) + x4 + k);
                    hi = __ldg(reinterpret_cast<const float4 *>(x) + x4 + 8 + k);
                }
                const float xl[4] = {lo.x, lo.y, lo.z, lo.w}, xh[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
                for (int t = 0; t < 4; t++) {
                    const uint32_t byte = (qw[k] >> (8 * t)) & 0xff;
                    acc =
                        fmaf(__fsub_rn(__fmul_rn(ds0, qk_nibble_f32(byte & 0xF)), dm0), xl[t], acc);
                    acc =
                        fmaf(__fsub_rn(__fmul_rn(ds1, qk_nibble_f32(byte >> 4)), dm1), xh[t], acc);
                }
            }
        }
        acc = G ? qk_group_sum(acc, per) : qk_warp_sum(acc);
        if (li == 0 && g < total) y[g] = acc;
    }
}

template <bool S, bool G>
static cudaError_t launch(const qk_gpu_args &a, size_t smem, cudaStream_t st) {
    static qk_grid_cache cache;
    const int rpw = 32 / (G ? qk_row_lanes(a.nb) : 32);
    int grid;
    cudaError_t e = qk_persistent_grid(cache, qk_gpu_q4k_f32_kernel<S, G>, smem,
                                       (a.total + rpw - 1) / rpw, &grid);
    if (e != cudaSuccess) return e;
    qk_gpu_q4k_f32_kernel<S, G><<<grid, QK_GPU_WARPS * 32, smem, st>>>(
        a.w, a.ids, qk_fastdiv_make((uint32_t)a.rows), a.nb, a.total, a.x_f32, a.y);
    return cudaGetLastError();
}

cudaError_t qk_launch_gpu_q4k_f32(const qk_gpu_args &a, cudaStream_t st) {
    const size_t float4s = (size_t)a.nb * (QK_K / 4), smem = (float4s + float4s / 16) * 16;
    if (smem > QK_F32_SHARED_X_MAX) return launch<false, false>(a, 0, st); // nb > 4 there
    return a.nb <= 4 ? launch<true, true>(a, smem, st) : launch<true, false>(a, smem, st);
}

// The batched unit, MUL_MAT_ID (mul_mat_id.cuh): S, a leader block copies its pass's columns
// into shared memory padded as above, when 8 of them fit; else the columns are read from
// global memory. Per super-block share, each weight is dequantized once and then meets every
// column with one fmaf, in the order above.
template <bool S> struct qk_batch_f32 {
    // lane 4*s + c: chunk c of super-blocks s, s + 8, ...; short rows several to a warp
    static constexpr int L = 4, R = 2, kBlocksPerSm = 2;
    static constexpr bool kPipeline = true;
    using Data = qk_q4k_lane;
    __device__ __forceinline__ static Data load(const qk_block_q4k *b, int c) {
        return qk_load_lane(b, c);
    }
    __host__ __device__ static int lanes(int nb) { return qk_row_lanes(nb); }
    __host__ __device__ static int rows(int nb) { return 32 / qk_row_lanes(nb); }
    __host__ __device__ static size_t column_bytes(int nb) {
        const size_t float4s = (size_t)nb * (QK_K / 4);
        return S ? (float4s + float4s / 16) * sizeof(float4) : 0;
    }

    __device__ __forceinline__ static void stage(const qk_batch_args &a, const int *slots, int nc,
                                                 uint4 *smem) {
        if constexpr (S) {
            constexpr int U = 4; // loads in flight per thread
            const int n4 = a.nb * (QK_K / 4), padded = n4 + n4 / 16, total = nc * n4;
            const float4 *x = static_cast<const float4 *>(a.x);
            float4 *out = reinterpret_cast<float4 *>(smem);
            for (int i0 = threadIdx.x; i0 < total; i0 += U * QK_GPU_WARPS * 32) {
                float4 v[U];
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int i = i0 + u * QK_GPU_WARPS * 32, j = i / n4;
                    if (i < total)
                        v[u] = __ldg(x + (size_t)(slots[j] / a.n_ids) * n4 + (i - j * n4));
                }
#pragma unroll
                for (int u = 0; u < U; u++) {
                    const int i = i0 + u * QK_GPU_WARPS * 32, j = i / n4;
                    if (i < total) out[j * padded + qk_f32_padded(i - j * n4)] = v[u];
                }
            }
        }
    }

    __device__ __forceinline__ static void step(const qk_batch_args &a, const uint4 *smem,
                                                const int (&toks)[QK_BATCH_COLS],
                                                const qk_q4k_lane &d, int nc, int sb, int c,
                                                bool active, float (&acc)[QK_BATCH_COLS]) {
        if (!active) return; // no shuffles here: the lane sits the step out
        const int n4 = a.nb * (QK_K / 4), padded = n4 + n4 / 16;
        const float4 *xs = reinterpret_cast<const float4 *>(smem);
        uint32_t sc[2], m[2];
        qk_chunk_scales(d.head.y, d.head.z, d.head.w, c, sc, m);
        const float wd = qk_h2f((uint16_t)(d.head.x & 0xffff));
        const float wdmin = qk_h2f((uint16_t)(d.head.x >> 16));
        const float ds0 = __fmul_rn(wd, (float)sc[0]), dm0 = __fmul_rn(wdmin, (float)m[0]);
        const float ds1 = __fmul_rn(wd, (float)sc[1]), dm1 = __fmul_rn(wdmin, (float)m[1]);
        const uint32_t qw[8] = {d.qa.x, d.qa.y, d.qa.z, d.qa.w, d.qb.x, d.qb.y, d.qb.z, d.qb.w};
        const int x4 = sb * (QK_K / 4) + 16 * c; // this lane's first float4 of a column
#pragma unroll
        for (int k = 0; k < 8; k++) { // bytes 4k .. 4k+3
            float wl[4], wh[4];
#pragma unroll
            for (int t = 0; t < 4; t++) {
                const uint32_t byte = (qw[k] >> (8 * t)) & 0xff;
                wl[t] = __fsub_rn(__fmul_rn(ds0, qk_nibble_f32(byte & 0xF)), dm0);
                wh[t] = __fsub_rn(__fmul_rn(ds1, qk_nibble_f32(byte >> 4)), dm1);
            }
#pragma unroll
            for (int j = 0; j < QK_BATCH_COLS; j++) {
                if (j >= nc) break;
                float4 lo, hi;
                if constexpr (S) {
                    lo = xs[j * padded + qk_f32_padded(x4 + k)];
                    hi = xs[j * padded + qk_f32_padded(x4 + 8 + k)];
                } else {
                    const float4 *x = static_cast<const float4 *>(a.x) + (size_t)toks[j] * n4;
                    lo = __ldg(x + x4 + k);
                    hi = __ldg(x + x4 + 8 + k);
                }
                const float xl[4] = {lo.x, lo.y, lo.z, lo.w}, xh[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
                for (int t = 0; t < 4; t++) {
                    acc[j] = fmaf(wl[t], xl[t], acc[j]);
                    acc[j] = fmaf(wh[t], xh[t], acc[j]);
                }
            }
        }
    }

    // the butterfly over the row's lanes (over the whole warp: qk_warp_sum's)
    __device__ __forceinline__ static float reduce(float v, int, int per) {
        return qk_group_sum(v, per);
    }
};

cudaError_t qk_launch_batch_gpu_q4k_f32(const qk_gpu_args &a, cudaStream_t st) {
    if (qk_batch_cols_per_pass(qk_batch_f32<true>::column_bytes(a.nb)) == QK_BATCH_COLS)
        return qk_batch_launch<qk_batch_f32<true>>(a, a.x_f32, QK_BATCH_COLS, st);
    return qk_batch_launch<qk_batch_f32<false>>(a, a.x_f32, QK_BATCH_COLS, st);
}

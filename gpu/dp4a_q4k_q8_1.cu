// dp4a_q4k_q8_1: Q4_K x Q8_1 (llama.cpp's CUDA activation format) with __dp4a; the timed
// unit is gpu_quant_q8_1 + this matvec. Lane 4*s + c takes chunk c of super-blocks s, s + 8,
// ...: Q8_1 blocks 8*sb + 2c and 8*sb + 2c + 1 meet sub-blocks 2c (low nibbles) and 2c + 1
// (high); integer dot products and quant sums by __dp4a, then the f32 formula of
// dp4a_q4k_q8_1_emu.c; then the warp butterfly. Rows of at most 4 super-blocks go several to a
// warp (G; gpu_common.cuh says why the bits are the same).
#include "gpu_launch.cuh"
#include "mul_mat_id.cuh"

template <bool G>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_dp4a_q4k_q8_1_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                            qk_fastdiv rows, int nb, int total,
                            const qk_block_q8_1 *__restrict__ xa, float *__restrict__ y) {
    // G: `per` lanes a row (a power of two), 32 / per rows a warp; else the whole warp a row
    const int lane = threadIdx.x & 31, per = G ? qk_row_lanes(nb) : 32, li = lane & (per - 1);
    const int rpw = 32 / per, u = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (u * rpw >= total) return; // the whole warp
    const int g = u * rpw + lane / per, s = li >> 2, c = li & 3;
    const qk_block_q4k *row = qk_gpu_row(w, ids, rows, nb, g < total ? g : total - 1);
    float acc = 0.0f;
    for (int sb = g < total ? s : nb; sb < nb; sb += 8) {
        const qk_block_q4k *b = row + sb;
        const qk_q4k_head h = qk_load_head(b);
        uint4 qa, qb;
        qk_load_chunk(b, c, &qa, &qb);
        const uint32_t qw[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
        const qk_block_q8_1 *x0 = xa + 8 * (size_t)sb + 2 * c, *x1 = x0 + 1;
        const int *q0 = reinterpret_cast<const int *>(x0->qs),
                  *q1 = reinterpret_cast<const int *>(x1->qs);
        int isum0 = 0, isum1 = 0, qsum0 = 0, qsum1 = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int a0 = __ldg(q0 + k), a1 = __ldg(q1 + k);
            isum0 = __dp4a((int)(qw[k] & 0x0F0F0F0Fu), a0, isum0);
            isum1 = __dp4a((int)((qw[k] >> 4) & 0x0F0F0F0Fu), a1, isum1);
            qsum0 = __dp4a(0x01010101, a0, qsum0);
            qsum1 = __dp4a(0x01010101, a1, qsum1);
        }
        uint32_t sc[2], m[2];
        qk_chunk_scales(h.w0, h.w1, h.w2, c, sc, m);
        const float d8a = qk_h2f(x0->d), d8b = qk_h2f(x1->d);
        const float sumd = __fadd_rn(__fmul_rn(d8a, (float)(isum0 * (int)sc[0])),
                                     __fmul_rn(d8b, (float)(isum1 * (int)sc[1])));
        const float summ = __fadd_rn(__fmul_rn(d8a, (float)(qsum0 * (int)m[0])),
                                     __fmul_rn(d8b, (float)(qsum1 * (int)m[1])));
        acc = __fadd_rn(acc, __fsub_rn(__fmul_rn(h.d, sumd), __fmul_rn(h.dmin, summ)));
    }
    acc = G ? qk_group_sum(acc, per) : qk_warp_sum(acc);
    if (li == 0 && g < total) y[g] = acc;
}

cudaError_t qk_launch_dp4a_q4k_q8_1(const qk_gpu_args &a, cudaStream_t st) {
    cudaError_t e = qk_launch_gpu_quant_q8_1(a.x_f32, a.x_q, a.nb * QK_K, st);
    if (e != cudaSuccess) return e;
    const bool grouped = a.nb <= 4;
    const int rpw = 32 / qk_row_lanes(a.nb), units = (a.total + rpw - 1) / rpw;
    const int grid = (units + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    auto kernel = grouped ? qk_dp4a_q4k_q8_1_kernel<true> : qk_dp4a_q4k_q8_1_kernel<false>;
    kernel<<<grid, QK_GPU_WARPS * 32, 0, st>>>(a.w, a.ids, qk_fastdiv_make((uint32_t)a.rows), a.nb,
                                               a.total, static_cast<const qk_block_q8_1 *>(a.x_q),
                                               a.y);
    return cudaGetLastError();
}

// The batched unit: gpu_quant_q8_1 over every token, then MUL_MAT_ID (mul_mat_id.cuh). A leader
// block stages its pass's columns a super-block at a time: the eight Q8_1 blocks' quants
// contiguous and 16-byte aligned (a lane's 64 in four 16-byte loads) beside their eight d; then
// per column the arithmetic above, the weights' nibbles and scales unpacked once.
struct __align__(16) qk_q8_1_shared {
    uint16_t d[8]; // fp16, of Q8_1 blocks 8*sb .. 8*sb + 7
    int8_t qs[QK_K];
};

struct qk_batch_q8_1 {
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
        return (size_t)nb * sizeof(qk_q8_1_shared);
    }

    __device__ __forceinline__ static void stage(const qk_batch_args &a, const int *slots, int nc,
                                                 uint4 *smem) {
        // a super-block's eight Q8_1 blocks are W words (per block: d and s, then 8 of quants)
        constexpr int U = 4, W = 8 * sizeof(qk_block_q8_1) / 4, D = 16 / 4;
        const int *xa = static_cast<const int *>(a.x);
        int *out = reinterpret_cast<int *>(smem);
        const int total = nc * a.nb * W;
        for (int i0 = threadIdx.x; i0 < total; i0 += U * QK_GPU_WARPS * 32) {
            int v[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int i = i0 + u * QK_GPU_WARPS * 32, blk = i / W, j = blk / a.nb;
                const size_t src = ((size_t)(slots[j] / a.n_ids) * a.nb + (blk - j * a.nb)) * W;
                if (i < total) v[u] = __ldg(xa + src + (i - blk * W));
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int i = i0 + u * QK_GPU_WARPS * 32, blk = i / W, w = i - blk * W;
                const int q = w / 9, k = w - q * 9; // Q8_1 block q, its word k
                if (i >= total) continue;
                int *o = out + blk * (int)(sizeof(qk_q8_1_shared) / 4);
                if (k) // quants: after the eight d (D words), block q's 8 words
                    o[D + q * 8 + k - 1] = v[u];
                else // d: the low half of the block's first word
                    reinterpret_cast<uint16_t *>(o)[q] = (uint16_t)(v[u] & 0xffff);
            }
        }
    }

    __device__ __forceinline__ static void step(const qk_batch_args &a, const uint4 *smem,
                                                const int (&)[QK_BATCH_COLS], const qk_q4k_lane &d,
                                                int nc, int sb, int c, bool active,
                                                float (&acc)[QK_BATCH_COLS]) {
        if (!active) return; // no shuffles here: the lane sits the step out
        const qk_q8_1_shared *xs = reinterpret_cast<const qk_q8_1_shared *>(smem);
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
            const qk_q8_1_shared *xb = xs + (size_t)j * a.nb + sb;
            const int4 *xq = reinterpret_cast<const int4 *>(xb->qs + 64 * c);
            int q[16];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int4 v = xq[i];
                q[4 * i] = v.x, q[4 * i + 1] = v.y, q[4 * i + 2] = v.z, q[4 * i + 3] = v.w;
            }
            int isum0 = 0, isum1 = 0, qsum0 = 0, qsum1 = 0;
#pragma unroll
            for (int k = 0; k < 8; k++) {
                isum0 = __dp4a(lo[k], q[k], isum0);
                isum1 = __dp4a(hi[k], q[8 + k], isum1);
                qsum0 = __dp4a(0x01010101, q[k], qsum0);
                qsum1 = __dp4a(0x01010101, q[8 + k], qsum1);
            }
            const uint32_t d2 = *reinterpret_cast<const uint32_t *>(xb->d + 2 * c);
            const float d8a = qk_h2f((uint16_t)(d2 & 0xffff)), d8b = qk_h2f((uint16_t)(d2 >> 16));
            const float sumd = __fadd_rn(__fmul_rn(d8a, (float)(isum0 * (int)sc[0])),
                                         __fmul_rn(d8b, (float)(isum1 * (int)sc[1])));
            const float summ = __fadd_rn(__fmul_rn(d8a, (float)(qsum0 * (int)m[0])),
                                         __fmul_rn(d8b, (float)(qsum1 * (int)m[1])));
            acc[j] = __fadd_rn(acc[j], __fsub_rn(__fmul_rn(wd, sumd), __fmul_rn(wdmin, summ)));
        }
    }

    // the butterfly over the row's lanes (over the whole warp: qk_warp_sum's)
    __device__ __forceinline__ static float reduce(float v, int, int per) {
        return qk_group_sum(v, per);
    }
};

cudaError_t qk_launch_batch_dp4a_q4k_q8_1(const qk_gpu_args &a, cudaStream_t st) {
    cudaError_t e = qk_launch_gpu_quant_q8_1(a.x_f32, a.x_q, a.n_tokens * a.nb * QK_K, st);
    if (e != cudaSuccess) return e;
    const int pass = qk_batch_cols_per_pass(qk_batch_q8_1::column_bytes(a.nb));
    if (!pass) return cudaErrorInvalidConfiguration;
    return qk_batch_launch<qk_batch_q8_1>(a, a.x_q, pass, st);
}

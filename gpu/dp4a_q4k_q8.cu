// dp4a_q4k_q8: Q4_K x Q8_K with __dp4a. The timed unit is gpu_quant_q8k's launch followed by
// this matvec's (as llama.cpp's CUDA backend quantizes to Q8_1 before mul_mat_vec_q). All
// selected experts in one launch (expert ids on the device); one wave of blocks whose warps
// walk rows with their next loads in flight (dp4a_q8k_row.cuh; dp4a_q4k_q8_emu.c emulates it).
#include "dp4a_q8k_batch.cuh"
#include "dp4a_q8k_row.cuh"
#include "gpu_launch.cuh"
#include "persistent_grid.cuh"

template <int R, bool G>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_dp4a_q4k_q8_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                          qk_fastdiv rows, int nb, int total, const qk_block_q8k *__restrict__ x8,
                          float *__restrict__ y) {
    const int lane = threadIdx.x & 31;
    const qk_walk k =
        qk_make_walk<G>(w, ids, rows, nb, total, blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32,
                        gridDim.x * QK_GPU_WARPS);
    qk_q4k_lane first[R];
    qk_dp4a_q8k_load<R, G>(k, 0, lane, first);
    qk_dp4a_q8k_walk<R, G>(k, lane, first, x8, y);
}

int qk_dp4a_units(const qk_gpu_args &a) {
    const int group = qk_dp4a_rows_per_warp(a.nb);
    return (a.total + group - 1) / group;
}

template <int R, bool G> static cudaError_t launch(const qk_gpu_args &a, cudaStream_t st) {
    static qk_grid_cache cache;
    int grid;
    cudaError_t e = qk_persistent_grid(cache, qk_dp4a_q4k_q8_kernel<R, G>, 0,
                                       (qk_dp4a_units(a) + R - 1) / R, &grid);
    if (e != cudaSuccess) return e;
    qk_dp4a_q4k_q8_kernel<R, G><<<grid, QK_GPU_WARPS * 32, 0, st>>>(
        a.w, a.ids, qk_fastdiv_make((uint32_t)a.rows), a.nb, a.total,
        static_cast<const qk_block_q8k *>(a.x_q), a.y);
    return cudaGetLastError();
}

cudaError_t qk_launch_dp4a_q4k_q8(const qk_gpu_args &a, cudaStream_t st) {
    cudaError_t e = qk_launch_gpu_quant_q8k(a.x_f32, a.x_q, a.nb * QK_K, st);
    if (e != cudaSuccess) return e;
    const bool grouped = qk_dp4a_rows_per_warp(a.nb) > 1;
    if (qk_gpu_rows_in_flight(a.total) == 2)
        return grouped ? launch<2, true>(a, st) : launch<2, false>(a, st);
    return grouped ? launch<1, true>(a, st) : launch<1, false>(a, st);
}

// The batched unit: gpu_quant_q8k over every token, then MUL_MAT_ID (dp4a_q8k_batch.cuh), each
// leader block copying its pass's Q8_K columns into the 16-byte aligned qk_q8k_shared layout,
// a word a thread (the 292-byte blocks are only 4-byte aligned), several loads in flight.
struct qk_batch_q8k_copy : qk_batch_q8k_base {
    __device__ __forceinline__ static void stage(const qk_batch_args &a, const int *slots, int nc,
                                                 uint4 *smem) {
        constexpr int U = 4, W = sizeof(qk_block_q8k) / 4; // words of a block: d, qs, bsums
        const int *x8 = static_cast<const int *>(a.x);
        int *out = reinterpret_cast<int *>(smem);
        const int total = nc * a.nb * W;
        for (int i0 = threadIdx.x; i0 < total; i0 += U * QK_GPU_WARPS * 32) {
            int v[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int i = i0 + u * QK_GPU_WARPS * 32, blk = i / W, j = blk / a.nb;
                const size_t src = ((size_t)(slots[j] / a.n_ids) * a.nb + (blk - j * a.nb)) * W;
                if (i < total) v[u] = __ldg(x8 + src + (i - blk * W));
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int i = i0 + u * QK_GPU_WARPS * 32, blk = i / W, w = i - blk * W;
                // qk_q8k_shared: d, three unused words, then qs and bsums as in the block
                if (i < total) out[blk * (int)(sizeof(qk_q8k_shared) / 4) + (w ? w + 3 : 0)] = v[u];
            }
        }
    }
};

cudaError_t qk_launch_batch_dp4a_q4k_q8(const qk_gpu_args &a, cudaStream_t st) {
    cudaError_t e = qk_launch_gpu_quant_q8k(a.x_f32, a.x_q, a.n_tokens * a.nb * QK_K, st);
    if (e != cudaSuccess) return e;
    return qk_batch_launch_q8k<qk_batch_q8k_copy>(a, a.x_q, st);
}

// dp4a_q4k_q8_e2e: dp4a_q4k_q8 with the activation quantization fused into the one launch.
// Each warp first issues the loads of its first row's weights, then the block quantizes x into
// shared memory (one warp per Q8_K block, q8k_warp.cuh: the values gpu_quant_q8k writes, in the
// 16-byte aligned qk_q8k_shared layout), so the weights arrive while x is quantized; then the
// warps walk their rows with the row code of dp4a_q4k_q8. One wave of blocks: x is quantized
// once per block, not once per row.
#include "dp4a_q8k_batch.cuh"
#include "dp4a_q8k_row.cuh"
#include "gpu_launch.cuh"
#include "persistent_grid.cuh"
#include "q8k_warp.cuh"

template <int R, bool G>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_dp4a_q4k_q8_e2e_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                              qk_fastdiv rows, int nb, int total, const float *__restrict__ x,
                              float *__restrict__ y) {
    extern __shared__ qk_q8k_shared qk_e2e_x8[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    const qk_walk k = qk_make_walk<G>(w, ids, rows, nb, total, blockIdx.x * QK_GPU_WARPS + warp,
                                      gridDim.x * QK_GPU_WARPS);
    qk_q4k_lane first[R];
    qk_dp4a_q8k_load<R, G>(k, 0, lane, first); // in flight while x is quantized
    for (int blk = warp; blk < nb; blk += QK_GPU_WARPS)
        qk_quantize_q8k_block_warp(x + (size_t)blk * QK_K, qk_e2e_x8 + blk, lane);
    __syncthreads();
    qk_dp4a_q8k_walk<R, G>(k, lane, first, qk_e2e_x8, y);
}

template <int R, bool G> static cudaError_t launch(const qk_gpu_args &a, cudaStream_t st) {
    static qk_grid_cache cache;
    const size_t smem = (size_t)a.nb * sizeof(qk_q8k_shared);
    int grid;
    // R rows per warp at a time: the grid needs R times fewer warps for one pass
    cudaError_t e = qk_persistent_grid(cache, qk_dp4a_q4k_q8_e2e_kernel<R, G>, smem,
                                       (qk_dp4a_units(a) + R - 1) / R, &grid);
    if (e != cudaSuccess) return e;
    qk_dp4a_q4k_q8_e2e_kernel<R, G><<<grid, QK_GPU_WARPS * 32, smem, st>>>(
        a.w, a.ids, qk_fastdiv_make((uint32_t)a.rows), a.nb, a.total, a.x_f32, a.y);
    return cudaGetLastError();
}

cudaError_t qk_launch_dp4a_q4k_q8_e2e(const qk_gpu_args &a, cudaStream_t st) {
    const bool grouped = qk_dp4a_rows_per_warp(a.nb) > 1;
    if (qk_gpu_rows_in_flight(a.total) == 2)
        return grouped ? launch<2, true>(a, st) : launch<2, false>(a, st);
    return grouped ? launch<1, true>(a, st) : launch<1, false>(a, st);
}

// The batched unit, one launch: each leader block quantizes its pass's columns into shared
// memory (a warp a Q8_K block, as above; the first weights already in flight), then
// MUL_MAT_ID (dp4a_q8k_batch.cuh).
struct qk_batch_q8k_quant : qk_batch_q8k_base {
    __device__ __forceinline__ static void stage(const qk_batch_args &a, const int *slots, int nc,
                                                 uint4 *smem) {
        constexpr int U = 4; // blocks a warp loads before it quantizes them
        const float *x = static_cast<const float *>(a.x);
        qk_q8k_shared *out = reinterpret_cast<qk_q8k_shared *>(smem);
        const int lane = threadIdx.x & 31, total = nc * a.nb;
        for (int i0 = threadIdx.x / 32; i0 < total; i0 += U * QK_GPU_WARPS) {
            qk_q8k_lane_values v[U];
#pragma unroll
            for (int u = 0; u < U; u++) {
                const int i = i0 + u * QK_GPU_WARPS, j = i / a.nb, b = i - j * a.nb;
                if (i < total)
                    v[u] = qk_q8k_load_lane(x + ((size_t)(slots[j] / a.n_ids) * a.nb + b) * QK_K,
                                            lane);
            }
#pragma unroll
            for (int u = 0; u < U; u++)
                if (i0 + u * QK_GPU_WARPS < total)
                    qk_quantize_q8k_values_warp(v[u], out + i0 + u * QK_GPU_WARPS, lane);
        }
    }
};

cudaError_t qk_launch_batch_dp4a_q4k_q8_e2e(const qk_gpu_args &a, cudaStream_t st) {
    return qk_batch_launch_q8k<qk_batch_q8k_quant>(a, a.x_f32, st);
}

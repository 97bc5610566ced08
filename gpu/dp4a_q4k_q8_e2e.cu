// dp4a_q4k_q8_e2e: dp4a_q4k_q8 with the activation quantization fused into the one launch.
// Each block first quantizes x into shared memory (one warp per Q8_K block, q8k_warp.cuh:
// the same bytes gpu_quant_q8k writes), then its warps walk rows g = warp, warp + all warps,
// ... with the row dot product of dp4a_q4k_q8. The grid is one wave of resident blocks (or
// fewer when there are fewer rows), so x is quantized once per block, not once per row.
#include "dp4a_q8k_row.cuh"
#include "gpu_launch.cuh"
#include "q8k_warp.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_dp4a_q4k_q8_e2e_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                              int rows, int nb, int total, const float *__restrict__ x,
                              float *__restrict__ y) {
    extern __shared__ qk_block_q8k qk_e2e_x8[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    for (int blk = warp; blk < nb; blk += QK_GPU_WARPS)
        qk_quantize_q8k_block_warp(x + (size_t)blk * QK_K, qk_e2e_x8 + blk, lane);
    __syncthreads();
    for (int g = blockIdx.x * QK_GPU_WARPS + warp; g < total; g += gridDim.x * QK_GPU_WARPS) {
        const float acc = qk_dp4a_q8k_row(qk_gpu_row(w, ids, rows, nb, g), qk_e2e_x8, nb, lane);
        if (lane == 0) y[g] = acc;
    }
}

cudaError_t qk_launch_dp4a_q4k_q8_e2e(const qk_gpu_args &a, cudaStream_t st) {
    static int resident = 0, sms = 0; // blocks per SM at this shared size, SM count
    static size_t resident_smem = 0;
    const size_t smem = (size_t)a.nb * sizeof(qk_block_q8k);
    cudaError_t e;
    if (resident == 0 || resident_smem != smem) {
        int dev;
        if ((e = cudaGetDevice(&dev)) != cudaSuccess) return e;
        if ((e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) != cudaSuccess)
            return e;
        if ((e = cudaFuncSetAttribute(qk_dp4a_q4k_q8_e2e_kernel,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)) !=
            cudaSuccess)
            return e;
        if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                 &resident, qk_dp4a_q4k_q8_e2e_kernel, QK_GPU_WARPS * 32, smem)) != cudaSuccess)
            return e;
        if (resident < 1) return cudaErrorInvalidConfiguration;
        resident_smem = smem;
    }
    const int needed = (a.total + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    const int grid = needed < resident * sms ? needed : resident * sms;
    qk_dp4a_q4k_q8_e2e_kernel<<<grid, QK_GPU_WARPS * 32, smem, st>>>(a.w, a.ids, a.rows, a.nb,
                                                                     a.total, a.x_f32, a.y);
    return cudaGetLastError();
}

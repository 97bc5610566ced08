// gpu_quant_q8k: f32 -> Q8_K on the GPU, one warp per 256-element block, bit-identical to
// quant_q8k_ref on every input (q8k_warp.cuh says how).
#include "gpu_launch.cuh"
#include "q8k_warp.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_gpu_quant_q8k_kernel(const float *__restrict__ x, qk_block_q8k *__restrict__ out, int nb) {
    const int blk = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (blk >= nb) return;
    qk_quantize_q8k_block_warp(x + (size_t)blk * QK_K, out + blk, threadIdx.x & 31);
}

cudaError_t qk_launch_gpu_quant_q8k(const float *x, void *out, int n, cudaStream_t st) {
    const int nb = n / QK_K, grid = (nb + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    qk_gpu_quant_q8k_kernel<<<grid, QK_GPU_WARPS * 32, 0, st>>>(x, static_cast<qk_block_q8k *>(out),
                                                                nb);
    return cudaGetLastError();
}

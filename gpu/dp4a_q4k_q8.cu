// dp4a_q4k_q8: Q4_K x Q8_K with __dp4a. The timed unit is gpu_quant_q8k's launch followed by
// this matvec's (as llama.cpp's CUDA backend quantizes to Q8_1 before mul_mat_vec_q). One warp
// per row, all selected experts in one launch (expert ids on the device). The row dot product
// is dp4a_q8k_row.cuh; dp4a_q4k_q8_emu.c emulates it.
#include "dp4a_q8k_row.cuh"
#include "gpu_launch.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_dp4a_q4k_q8_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                          int rows, int nb, int total, const qk_block_q8k *__restrict__ x8,
                          float *__restrict__ y) {
    const int g = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (g >= total) return;
    const int lane = threadIdx.x & 31;
    const float acc = qk_dp4a_q8k_row(qk_gpu_row(w, ids, rows, nb, g), x8, nb, lane);
    if (lane == 0) y[g] = acc;
}

cudaError_t qk_launch_dp4a_q4k_q8(const qk_gpu_args &a, cudaStream_t st) {
    cudaError_t e = qk_launch_gpu_quant_q8k(a.x_f32, a.x_q, a.nb * QK_K, st);
    if (e != cudaSuccess) return e;
    const int grid = (a.total + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    qk_dp4a_q4k_q8_kernel<<<grid, QK_GPU_WARPS * 32, 0, st>>>(
        a.w, a.ids, a.rows, a.nb, a.total, static_cast<const qk_block_q8k *>(a.x_q), a.y);
    return cudaGetLastError();
}

// gpu_quant_q8_1: f32 -> Q8_1 on the GPU, one warp per 32-element block, bit-identical to
// qk_quantize_q8_1_ref: amax by fmaxf from 0 (NaN never wins, as in the sequential loop; max
// is order-free), d = amax/127, q = roundf(x/d) with the reference's rules for d == 0 and
// non-finite values, s by the same xor butterfly qk_q8_1_block_sum defines (a NaN sum stored
// as the canonical quiet NaN, as the reference does).
#include "gpu_launch.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_gpu_quant_q8_1_kernel(const float *__restrict__ x, qk_block_q8_1 *__restrict__ out,
                             int nblocks) {
    const int blk = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (blk >= nblocks) return;
    const int lane = threadIdx.x & 31;
    const float v = x[(size_t)blk * QK8_1 + lane];
    float amax = fmaxf(0.0f, fabsf(v));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float d = __fdiv_rn(amax, 127.0f);
    const float r = d == 0.0f ? 0.0f : roundf(__fdiv_rn(v, d));
    out[blk].qs[lane] = (int8_t)(r != r ? 0 : r > 127 ? 127 : r < -127 ? -127 : r);
    const float s = qk_warp_sum(v);
    if (lane == 0) {
        out[blk].d = qk_f2h(d);
        out[blk].s = qk_f2h(s != s ? __int_as_float(0x7fc00000) : s); // the canonical NaN
    }
}

cudaError_t qk_launch_gpu_quant_q8_1(const float *x, void *out, int n, cudaStream_t st) {
    const int nblocks = n / QK8_1, grid = (nblocks + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    qk_gpu_quant_q8_1_kernel<<<grid, QK_GPU_WARPS * 32, 0, st>>>(
        x, static_cast<qk_block_q8_1 *>(out), nblocks);
    return cudaGetLastError();
}

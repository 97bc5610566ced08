// gpu_quant_q8_1: f32 -> Q8_1 on the GPU, one warp per 32-element block, bit-identical to
// qk_quantize_q8_1_ref: amax as the largest non-NaN |x| (order-free), d = amax/127, q = roundf(x/d)
// with the reference's rules for d == 0 and non-finite values, s by the same xor butterfly
// qk_q8_1_block_sum defines (a NaN sum stored as the canonical quiet NaN, as the reference does).
#include "gpu_launch.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_gpu_quant_q8_1_kernel(const float *__restrict__ x, qk_block_q8_1 *__restrict__ out,
                             int nblocks) {
    const int blk = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (blk >= nblocks) return;
    const int lane = threadIdx.x & 31;
    const float v = x[(size_t)blk * QK8_1 + lane];
    const float av = fabsf(v);
    float amax = av > 0.0f ? av : 0.0f; // NaN never counts, as in the reference
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float o = __shfl_xor_sync(0xffffffffu, amax, off);
        amax = o > amax ? o : amax;
    }
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

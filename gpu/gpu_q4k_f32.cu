// gpu_q4k_f32: Q4_K weights x f32 activations, dequantization fused (the common CUDA path).
// One warp per row; lane 4*s + c takes the 32-byte chunk c (sub-blocks 2c, 2c + 1) of
// super-blocks s, s + 8, ...; per byte l: w = ds*q - dm for the low and the high nibble, each
// added with one fmaf; then the warp butterfly. gpu_q4k_f32_emu.c does the same in C.
#include "gpu_common.cuh"
#include "gpu_launch.cuh"

__global__ void __launch_bounds__(QK_GPU_WARPS * 32)
    qk_gpu_q4k_f32_kernel(const qk_block_q4k *__restrict__ w, const int32_t *__restrict__ ids,
                          qk_fastdiv rows, int nb, int total, const float *__restrict__ x,
                          float *__restrict__ y) {
    const int g = blockIdx.x * QK_GPU_WARPS + threadIdx.x / 32;
    if (g >= total) return; // the whole warp
    const int lane = threadIdx.x & 31, s = lane >> 2, c = lane & 3;
    const qk_block_q4k *row = qk_gpu_row(w, ids, rows, nb, g);
    float acc = 0.0f;
    for (int sb = s; sb < nb; sb += 8) {
        const qk_block_q4k *b = row + sb;
        const qk_q4k_head h = qk_load_head(b);
        uint32_t sc[2], m[2];
        // the branching decoder: the branch-free qk_chunk_scales raises this kernel from 38 to
        // 44 registers, and its top-8 time by 11 % (NVIDIA H200, 2026-11-26)
        qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c, &sc[0], &m[0]);
        qk_q4k_scale_min_words(h.w0, h.w1, h.w2, 2 * c + 1, &sc[1], &m[1]);
        const float ds0 = __fmul_rn(h.d, (float)sc[0]), dm0 = __fmul_rn(h.dmin, (float)m[0]);
        const float ds1 = __fmul_rn(h.d, (float)sc[1]), dm1 = __fmul_rn(h.dmin, (float)m[1]);
        uint4 qa, qb;
        qk_load_chunk(b, c, &qa, &qb);
        const uint32_t qw[8] = {qa.x, qa.y, qa.z, qa.w, qb.x, qb.y, qb.z, qb.w};
        const float4 *xp = reinterpret_cast<const float4 *>(x + (size_t)sb * QK_K + 64 * c);
#pragma unroll
        for (int k = 0; k < 8; k++) { // bytes 4k .. 4k+3
            const float4 lo = __ldg(xp + k), hi = __ldg(xp + 8 + k);
            const float xl[4] = {lo.x, lo.y, lo.z, lo.w}, xh[4] = {hi.x, hi.y, hi.z, hi.w};
#pragma unroll
            for (int t = 0; t < 4; t++) {
                const uint32_t byte = (qw[k] >> (8 * t)) & 0xff;
                acc = fmaf(__fsub_rn(__fmul_rn(ds0, (float)(byte & 0xF)), dm0), xl[t], acc);
                acc = fmaf(__fsub_rn(__fmul_rn(ds1, (float)(byte >> 4)), dm1), xh[t], acc);
            }
        }
    }
    acc = qk_warp_sum(acc);
    if (lane == 0) y[g] = acc;
}

cudaError_t qk_launch_gpu_q4k_f32(const qk_gpu_args &a, cudaStream_t st) {
    const int grid = (a.total + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    qk_gpu_q4k_f32_kernel<<<grid, QK_GPU_WARPS * 32, 0, st>>>(
        a.w, a.ids, qk_fastdiv_make((uint32_t)a.rows), a.nb, a.total, a.x_f32, a.y);
    return cudaGetLastError();
}

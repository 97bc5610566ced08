// One warp quantizes one Q8_K block of 256 f32 exactly as kernels/qk_q8.c's reference does
// (gpu_quant_q8k and the fused dp4a_q4k_q8_e2e use it). Lane l holds elements 32k + l; each
// lane scans its own in index order with the reference's strict '>' (NaN never wins), then the
// warp keeps the largest magnitude and, among equals, the smallest index: the reference's
// "first element of largest magnitude". Every float operation is the reference's (no
// contraction), so the bytes are identical.
#pragma once
#include "gpu_common.cuh"
#include <limits.h>

__device__ __forceinline__ void
qk_quantize_q8k_block_warp(const float *__restrict__ x, qk_block_q8k *__restrict__ out, int lane) {
    float v[8];
    float amax = 0.0f, mx = 0.0f;
    int idx = INT_MAX;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        v[k] = x[32 * k + lane];
        const float ax = fabsf(v[k]);
        if (ax > amax) amax = ax, mx = v[k], idx = 32 * k + lane;
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) {
        const float oa = __shfl_xor_sync(0xffffffffu, amax, off);
        const float om = __shfl_xor_sync(0xffffffffu, mx, off);
        const int oi = __shfl_xor_sync(0xffffffffu, idx, off);
        if (oa > amax || (oa == amax && oi < idx)) amax = oa, mx = om, idx = oi;
    }
    if (amax == 0.0f) { // the reference's all-zero block: every byte 0
#pragma unroll
        for (int k = 0; k < 8; k++)
            out->qs[32 * k + lane] = 0;
        if (lane < 16) out->bsums[lane] = 0;
        if (lane == 0) out->d = 0.0f;
        return;
    }
    const float iscale = __fdiv_rn(-127.0f, mx);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        // qk_nearest_int: add 1.5*2^23, the integer is in the low mantissa bits; a NaN
        // product is 0 (the reference's rule: NaN bits differ between CPU and GPU)
        const float p = __fmul_rn(iscale, v[k]);
        const float t = __fadd_rn(p, 12582912.0f);
        int q = (__float_as_int(t) & 0x007fffff) - 0x00400000;
        q = p != p ? 0 : q > 127 ? 127 : q < -128 ? -128 : q;
        out->qs[32 * k + lane] = (int8_t)q;
        // bsums: group 2k is lanes 0-15, group 2k+1 lanes 16-31 (integer sums, exact)
        int sum = q;
        sum += __shfl_xor_sync(0xffffffffu, sum, 8);
        sum += __shfl_xor_sync(0xffffffffu, sum, 4);
        sum += __shfl_xor_sync(0xffffffffu, sum, 2);
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        if ((lane & 15) == 0) out->bsums[2 * k + (lane >> 4)] = (int16_t)sum;
    }
    if (lane == 0) out->d = __fdiv_rn(1.0f, iscale);
}

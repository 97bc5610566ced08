// One warp quantizes one Q8_K block of 256 f32 exactly as kernels/qk_q8.c's reference does
// (gpu_quant_q8k and the fused dp4a_q4k_q8_e2e use it). Lane l holds elements 4l..4l+3 and
// 128+4l..128+4l+3 (two 16-byte loads). The reference's "first element of largest magnitude"
// is found with two warp reductions: the largest |x| (non-negative floats order as their bits;
// NaN never counts, as the reference's strict '>' skips it), then the smallest index holding it.
// Every float operation is the reference's (no contraction), so the bytes are identical.
#pragma once
#include "gpu_common.cuh"

// A Q8_K block as the fused kernel keeps it in shared memory: qk_block_q8k's values, the quants
// 16-byte aligned (a matvec lane reads its 64 with four 16-byte loads, not sixteen 4-byte ones).
struct __align__(16) qk_q8k_shared {
    float d;
    int32_t unused[3];
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
};

// B: qk_block_q8k (gpu_quant_q8k) or qk_q8k_shared (dp4a_q4k_q8_e2e); the same values in both.
// Lane l's 8 values of the block at x: elements 4l..4l+3 and 128+4l..128+4l+3.
struct qk_q8k_lane_values {
    float4 a, b;
};
__device__ __forceinline__ qk_q8k_lane_values qk_q8k_load_lane(const float *__restrict__ x,
                                                               int lane) {
    return {__ldg(reinterpret_cast<const float4 *>(x) + lane),
            __ldg(reinterpret_cast<const float4 *>(x + 128) + lane)};
}

// The block from the lanes' values (qk_q8k_load_lane): a caller that quantizes several blocks
// per warp issues all their loads first.
template <typename B>
__device__ __forceinline__ void qk_quantize_q8k_values_warp(const qk_q8k_lane_values &in,
                                                            B *__restrict__ out, int lane) {
    const float4 a = in.a, b = in.b;
    const float v[8] = {a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w};
    float amax = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const float ax = fabsf(v[i]);
        if (ax > amax) amax = ax;
    }
    const float gmax = __uint_as_float(__reduce_max_sync(0xffffffffu, __float_as_uint(amax)));
    int *qs = reinterpret_cast<int *>(out->qs);
    if (gmax == 0.0f) { // the reference's all-zero block: every byte 0
        qs[lane] = 0;
        qs[32 + lane] = 0;
        if ((lane & 3) == 0) out->bsums[lane >> 2] = out->bsums[8 + (lane >> 2)] = 0;
        if (lane == 0) out->d = 0.0f;
        return;
    }
    unsigned first = 0xffffffffu; // this lane's first element of magnitude gmax, in index order
    float mine = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const unsigned idx = (i < 4 ? 0u : 128u) + 4u * (unsigned)lane + (unsigned)(i & 3);
        if (first == 0xffffffffu && fabsf(v[i]) == gmax) first = idx, mine = v[i];
    }
    first = __reduce_min_sync(0xffffffffu, first);
    const float mx = __shfl_sync(0xffffffffu, mine, (int)((first & 127u) >> 2));
    const float iscale = __fdiv_rn(-127.0f, mx);
    int packed[2] = {0, 0}, sums[2] = {0, 0};
#pragma unroll
    for (int i = 0; i < 8; i++) {
        // qk_nearest_int: add 1.5*2^23, the integer is in the low mantissa bits; a NaN
        // product is 0 (the reference's rule: NaN bits differ between CPU and GPU)
        const float p = __fmul_rn(iscale, v[i]);
        const float t = __fadd_rn(p, 12582912.0f);
        int q = (__float_as_int(t) & 0x007fffff) - 0x00400000;
        q = p != p ? 0 : q > 127 ? 127 : q < -128 ? -128 : q;
        packed[i >> 2] |= (q & 0xff) << (8 * (i & 3));
        sums[i >> 2] += q;
    }
    qs[lane] = packed[0];
    qs[32 + lane] = packed[1];
    // bsums: 16 elements are 4 lanes' 4 (integer sums, exact)
#pragma unroll
    for (int h = 0; h < 2; h++) {
        sums[h] += __shfl_xor_sync(0xffffffffu, sums[h], 1);
        sums[h] += __shfl_xor_sync(0xffffffffu, sums[h], 2);
    }
    if ((lane & 3) == 0) {
        out->bsums[lane >> 2] = (int16_t)sums[0];
        out->bsums[8 + (lane >> 2)] = (int16_t)sums[1];
    }
    if (lane == 0) out->d = __fdiv_rn(1.0f, iscale);
}

template <typename B>
__device__ __forceinline__ void qk_quantize_q8k_block_warp(const float *__restrict__ x,
                                                           B *__restrict__ out, int lane) {
    qk_quantize_q8k_values_warp(qk_q8k_load_lane(x, lane), out, lane);
}

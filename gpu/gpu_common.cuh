// What every kernel file of gpu/ shares: the block formats and the one Q4_K scale decoder of
// kernels/, fp16 helpers, the warp reduction whose order the emulations copy, and the row
// mapping of the multi-expert launches.
#pragma once
#include "../kernels/qk_formats.h"
#include "../kernels/qk_q4k_scales.h"
#include "qk_fastdiv.h"
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

constexpr int QK_GPU_WARPS = 8; // warps per block: one row (or quantized block) per warp

__device__ __forceinline__ float qk_h2f(uint16_t h) {
    return __half2float(__ushort_as_half(h));
}

// f32 -> fp16 bits exactly as kernels/qk_fp16.c does: RNE (the hardware's), and its NaN rule.
__device__ __forceinline__ uint16_t qk_f2h(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)(((u >> 16) & 0x8000) | 0x7e00 | ((u >> 13) & 0x3ff));
    return __half_as_ushort(__float2half_rn(f));
}

// The xor butterfly over offsets 16, 8, 4, 2, 1 (gpu/emu_warp.h emulates it).
__device__ __forceinline__ float qk_warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Rows of at most 4 super-blocks leave most of a warp's lanes idle: gpu_q4k_f32 and
// dp4a_q4k_q8_1 then give each row a group of 4, 8 or 16 lanes (4 per super-block, rounded up
// to a power of two) and a warp 32 / that many rows. A group's lanes meet in the butterfly over
// the group's offsets only. The emulations keep the warp-wide butterfly of one row per warp,
// whose first levels add the other lanes' +0.0: the same bits, because a lane's sum is never
// -0.0 (it starts at +0.0, and a sum that rounds to zero is +0.0), so those adds are exact.
__host__ __device__ __forceinline__ int qk_row_lanes(int nb) {
    return nb > 4 ? 32 : nb > 2 ? 16 : nb > 1 ? 8 : 4;
}
__device__ __forceinline__ float qk_group_sum(float v, int lanes) {
    for (int off = lanes / 2; off > 0; off >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// Row g of the launch: row g % rows of expert ids[g / rows] (experts contiguous in w); the
// division by multiply-high (qk_fastdiv.h), as a walking warp maps a row per step.
__device__ __forceinline__ const qk_block_q4k *qk_gpu_row(const qk_block_q4k *w, const int32_t *ids,
                                                          qk_fastdiv rows, int nb, int g) {
    const uint32_t e = qk_fastdiv_div(rows, (uint32_t)g);
    return w + ((size_t)ids[e] * rows.d + ((uint32_t)g - e * rows.d)) * nb;
}

// The 16-byte head of a Q4_K block: d, dmin and the three words of packed scales.
struct qk_q4k_head {
    float d, dmin;
    uint32_t w0, w1, w2;
};
__device__ __forceinline__ qk_q4k_head qk_load_head(const qk_block_q4k *b) {
    uint4 h = __ldg(reinterpret_cast<const uint4 *>(b));
    return {qk_h2f((uint16_t)(h.x & 0xffff)), qk_h2f((uint16_t)(h.x >> 16)), h.y, h.z, h.w};
}

// Lane c's 32-byte chunk of a super-block's quants (sub-blocks 2c: low nibbles, 2c+1: high) as
// two 16-byte loads; and those two sub-blocks' 6-bit scales and mins from the head's words,
// branch-free (the DP4A kernels: measured faster on an H200 than qk_q4k_scale_min_words, whose
// branch on the sub-block diverges across the lanes; gpu_q4k_f32 keeps that one, see there).
__device__ __forceinline__ void qk_load_chunk(const qk_block_q4k *b, int c, uint4 *qa, uint4 *qb) {
    const uint4 *qp = reinterpret_cast<const uint4 *>(b->qs + 32 * c);
    *qa = __ldg(qp);
    *qb = __ldg(qp + 1);
}
__device__ __forceinline__ void qk_chunk_scales(uint32_t w0, uint32_t w1, uint32_t w2, int c,
                                                uint32_t sc[2], uint32_t m[2]) {
    qk_q4k_scale_min_pair(w0, w1, w2, c, sc, m);
}

// Rows a warp of the DP4A Q8_K kernels loads at a time (the results are the same bits either
// way): 2 when the launch's rows fit in about one wave of warps (measured faster on an H100 for
// the top-8 work: all rows' loads go out at once), 1 for longer streams (all 128 experts: the
// lower register count keeps more warps resident).
int qk_gpu_rows_in_flight(int total_rows);

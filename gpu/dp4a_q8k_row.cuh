// The rows of dp4a_q4k_q8 and dp4a_q4k_q8_e2e (one warp; Q8_K activations in global or shared
// memory). Lanes 4*s .. 4*s + 3 take super-block base + s: each lane its part of the integer
// sums S = sum sc_j*isum_j (by __dp4a) and M = sum m_j*bsum_j; the four lanes add theirs
// exactly (so S and M are q4k_q8k_ref's integers), lane 4*s adds (dx*d)*S - (dx*dmin)*M to its
// f32 sum; at the end of a row, the warp butterfly (dp4a_q4k_q8_emu.c emulates this order). A
// warp walks its rows (g, g + stride, ...) R at a time in steps of 8 super-blocks, one batch's
// loads in flight while the other batch computes.
#pragma once
#include "gpu_common.cuh"

// One lane's share of a super-block: the 16-byte head and two 16-byte pieces of the quants,
// bytes [16c, 16c + 16) and [64 + 16c, 64 + 16c + 16): so each load instruction of the warp
// reads whole 32-byte sectors (64 contiguous bytes per super-block), none twice.
struct qk_q4k_lane {
    uint4 head, qa, qb;
};

__device__ __forceinline__ qk_q4k_lane qk_load_lane(const qk_block_q4k *b, int c) {
    const uint4 *qp = reinterpret_cast<const uint4 *>(b->qs) + c;
    return {__ldg(reinterpret_cast<const uint4 *>(b)), __ldg(qp), __ldg(qp + 4)};
}

// Sub-block j's 16 elements from byte 16*h of its 32-byte chunk: 4 __dp4a on one uint4 of
// nibbles (shift 0 or 4) and 16 int8 activations.
__device__ __forceinline__ int qk_dp4a16(uint4 q, int shift, const int *__restrict__ xq) {
    int s = __dp4a((int)((q.x >> shift) & 0x0F0F0F0Fu), xq[0], 0);
    s = __dp4a((int)((q.y >> shift) & 0x0F0F0F0Fu), xq[1], s);
    s = __dp4a((int)((q.z >> shift) & 0x0F0F0F0Fu), xq[2], s);
    return __dp4a((int)((q.w >> shift) & 0x0F0F0F0Fu), xq[3], s);
}

// Lane c of a super-block: its part of S (sub-blocks 2a, 2a+1 from piece qa and 4+2a, 5+2a
// from piece qb, a = c/2, elements 16h..16h+15, h = c%2) and the min terms of sub-blocks 2c,
// 2c+1. The four lanes' integers add up to q4k_q8k_ref's S and M exactly.
__device__ __forceinline__ void qk_dp4a_q8k_step(const qk_q4k_lane &d,
                                                 const qk_block_q8k *__restrict__ xb, bool active,
                                                 int c, float &acc) {
    int S = 0, M = 0;
    float dx = 0.0f;
    if (active) {
        const int a = c >> 1, h = c & 1;
        const int *xq = reinterpret_cast<const int *>(xb->qs);
        const int j0 = 2 * a, j2 = 4 + 2 * a; // sub-blocks of the low nibbles of qa and qb
        const int i0 = 4 * (2 * j0 + h), i2 = 4 * (2 * j2 + h); // int index of element 32j+16h
        const int isum0 = qk_dp4a16(d.qa, 0, xq + i0), isum1 = qk_dp4a16(d.qa, 4, xq + i0 + 8);
        const int isum2 = qk_dp4a16(d.qb, 0, xq + i2), isum3 = qk_dp4a16(d.qb, 4, xq + i2 + 8);
        uint32_t sc0, sc1, sc2, sc3, mc0, mc1, unused;
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, j0, &sc0, &unused);
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, j0 + 1, &sc1, &unused);
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, j2, &sc2, &unused);
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, j2 + 1, &sc3, &unused);
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, 2 * c, &unused, &mc0);
        qk_q4k_scale_min_words(d.head.y, d.head.z, d.head.w, 2 * c + 1, &unused, &mc1);
        const int16_t *bs = xb->bsums + 4 * c;
        S = (int)sc0 * isum0 + (int)sc1 * isum1 + (int)sc2 * isum2 + (int)sc3 * isum3;
        M = (int)mc0 * (bs[0] + bs[1]) + (int)mc1 * (bs[2] + bs[3]);
        dx = xb->d;
    }
    S += __shfl_xor_sync(0xffffffffu, S, 1);
    S += __shfl_xor_sync(0xffffffffu, S, 2);
    M += __shfl_xor_sync(0xffffffffu, M, 1);
    M += __shfl_xor_sync(0xffffffffu, M, 2);
    if (active && c == 0) {
        const float dw = __fmul_rn(dx, qk_h2f((uint16_t)(d.head.x & 0xffff)));
        const float dmw = __fmul_rn(dx, qk_h2f((uint16_t)(d.head.x >> 16)));
        acc = __fadd_rn(acc, __fsub_rn(__fmul_rn(dw, (float)S), __fmul_rn(dmw, (float)M)));
    }
}

// A warp's work: rows g0, g0 + stride, ... < total, each in steps of 8 super-blocks; item t is
// step t % steps of the warp's row t / steps.
struct qk_walk {
    const qk_block_q4k *w;
    const int32_t *ids;
    int rows, nb, total, g0, stride, steps;
    __device__ __forceinline__ int row_of(int t) const { return g0 + (t / steps) * stride; }
    __device__ __forceinline__ bool valid(int t) const { return row_of(t) < total; }
};

__device__ __forceinline__ qk_walk qk_make_walk(const qk_block_q4k *w, const int32_t *ids, int rows,
                                                int nb, int total, int g0, int stride) {
    return {w, ids, rows, nb, total, g0, stride, (nb + 7) / 8};
}

// Issues the loads of items t0 .. t0 + R - 1 (R rows in flight per warp when steps == 1).
template <int R>
__device__ __forceinline__ void qk_dp4a_q8k_load(const qk_walk &k, int t0, int lane,
                                                 qk_q4k_lane (&d)[R]) {
    const int s = lane >> 2, c = lane & 3;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int t = t0 + r, g = k.row_of(t), base = (t % k.steps) * 8;
        d[r] = {};
        if (g < k.total && base + s < k.nb)
            d[r] = qk_load_lane(qk_gpu_row(k.w, k.ids, k.rows, k.nb, g) + base + s, c);
    }
}

// The arithmetic of items t0 .. t0 + R - 1; a row's last step reduces and stores it.
template <int R>
__device__ __forceinline__ void
qk_dp4a_q8k_compute(const qk_walk &k, int t0, int lane, const qk_q4k_lane (&d)[R],
                    const qk_block_q8k *__restrict__ x8, float *__restrict__ y, float &acc) {
    const int s = lane >> 2, c = lane & 3;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int t = t0 + r, g = k.row_of(t), base = (t % k.steps) * 8;
        if (g >= k.total) return; // uniform across the warp
        const int sb = base + s;
        qk_dp4a_q8k_step(d[r], x8 + sb, sb < k.nb, c, acc);
        if (base + 8 >= k.nb) {
            const float v = qk_warp_sum(acc);
            if (lane == 0) y[g] = v;
            acc = 0.0f;
        }
    }
}

// The whole walk, two batches of R items in turn: one batch's loads in flight while the other
// is computed. `a` holds qk_dp4a_q8k_load(k, 0, ...), issued by the caller as early as it can.
template <int R>
__device__ __forceinline__ void qk_dp4a_q8k_walk(const qk_walk &k, int lane, qk_q4k_lane (&a)[R],
                                                 const qk_block_q8k *__restrict__ x8,
                                                 float *__restrict__ y) {
    qk_q4k_lane b[R];
    float acc = 0.0f;
    for (int t0 = 0; k.valid(t0); t0 += 2 * R) {
        qk_dp4a_q8k_load<R>(k, t0 + R, lane, b);
        qk_dp4a_q8k_compute<R>(k, t0, lane, a, x8, y, acc);
        if (!k.valid(t0 + R)) break;
        qk_dp4a_q8k_load<R>(k, t0 + 2 * R, lane, a);
        qk_dp4a_q8k_compute<R>(k, t0 + R, lane, b, x8, y, acc);
    }
}

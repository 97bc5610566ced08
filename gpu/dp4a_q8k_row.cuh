// The rows of dp4a_q4k_q8 and dp4a_q4k_q8_e2e (one warp; Q8_K activations in global or shared
// memory). Lane 4*s + c takes chunk c of super-block base + s: two sub-blocks' integer dot
// products with __dp4a, S = sc0*isum0 + sc1*isum1 and M = m0*bsum0 + m1*bsum1; the four lanes
// of a super-block add S and M exactly (so they are q4k_q8k_ref's integers), lane 4*s adds
// (dx*d)*S - (dx*dmin)*M to its f32 sum; at the end of a row, the warp butterfly
// (dp4a_q4k_q8_emu.c emulates this order). A warp walks its rows (g, g + stride, ...) R at a
// time in steps of 8 super-blocks, one batch's loads in flight while the other computes; rows
// of at most 4 super-blocks go several to a warp (qk_dp4a_rows_per_warp).
#pragma once
#include "gpu_common.cuh"

// One lane's share of a super-block: the 16-byte head and its 32-byte chunk of quants.
struct qk_q4k_lane {
    uint4 head, qa, qb;
    int g, base; // the row and the step this data belongs to (g >= total: none)
};

__device__ __forceinline__ qk_q4k_lane qk_load_lane(const qk_block_q4k *b, int c) {
    qk_q4k_lane d = {__ldg(reinterpret_cast<const uint4 *>(b)), {}, {}, 0, 0};
    qk_load_chunk(b, c, &d.qa, &d.qb);
    return d;
}

template <typename B>
__device__ __forceinline__ void qk_dp4a_q8k_step(const qk_q4k_lane &d, const B *__restrict__ xb,
                                                 bool active, int c, float &acc) {
    int S = 0, M = 0;
    float dx = 0.0f;
    if (active) {
        const uint32_t qw[8] = {d.qa.x, d.qa.y, d.qa.z, d.qa.w, d.qb.x, d.qb.y, d.qb.z, d.qb.w};
        // lane c's 64 activation quants: B is qk_block_q8k (global memory, 4-byte loads) or the
        // fused kernel's qk_q8k_shared, 16-byte aligned: four 16-byte loads
        const int *xq = reinterpret_cast<const int *>(xb->qs + 64 * c);
        int xs[16];
        if constexpr (alignof(B) >= 16) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const int4 v = reinterpret_cast<const int4 *>(xq)[i];
                xs[4 * i] = v.x, xs[4 * i + 1] = v.y, xs[4 * i + 2] = v.z, xs[4 * i + 3] = v.w;
            }
        }
        int isum0 = 0, isum1 = 0;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const int a0 = alignof(B) >= 16 ? xs[k] : xq[k];
            const int a1 = alignof(B) >= 16 ? xs[8 + k] : xq[8 + k];
            isum0 = __dp4a((int)(qw[k] & 0x0F0F0F0Fu), a0, isum0);
            isum1 = __dp4a((int)((qw[k] >> 4) & 0x0F0F0F0Fu), a1, isum1);
        }
        uint32_t sc[2], m[2];
        qk_chunk_scales(d.head.y, d.head.z, d.head.w, c, sc, m);
        const int16_t *bs = xb->bsums + 4 * c;
        S = (int)sc[0] * isum0 + (int)sc[1] * isum1;
        M = (int)m[0] * (bs[0] + bs[1]) + (int)m[1] * (bs[2] + bs[3]);
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

// Rows of at most 4 super-blocks would leave most lanes idle: a warp then takes group = 8 / nb
// rows at a time, lanes 4*nb*i .. 4*nb*i + 4*nb - 1 for its i-th row, and a row's
// contributions are added in super-block order by shuffles within its lanes.
__host__ __device__ __forceinline__ int qk_dp4a_rows_per_warp(int nb) {
    return nb <= 4 ? 8 / nb : 1;
}

// A warp's work: units g0, g0 + stride, ... < units, each `group` rows (1 when nb > 4) taken in
// steps of 8 super-blocks; item t is step t % steps of the warp's unit t / steps.
struct qk_walk {
    const qk_block_q4k *w;
    const int32_t *ids;
    qk_fastdiv rows;
    int nb, total, g0, stride, steps, group, units;
    __device__ __forceinline__ int unit_of(int t) const {
        return g0 + (steps == 1 ? t : t / steps) * stride;
    }
    __device__ __forceinline__ bool valid(int t) const { return unit_of(t) < units; }
};

template <bool G>
__device__ __forceinline__ qk_walk qk_make_walk(const qk_block_q4k *w, const int32_t *ids,
                                                qk_fastdiv rows, int nb, int total, int g0,
                                                int stride) {
    const int group = G ? qk_dp4a_rows_per_warp(nb) : 1;
    return {w, ids, rows, nb, total, g0, stride, (nb + 7) / 8, group, (total + group - 1) / group};
}

// This lane's row and super-block for unit u at step base (row >= total: none). G: the grouped
// walk (nb <= 4), a separate instantiation so the one-row path keeps its code and registers.
template <bool G>
__device__ __forceinline__ void qk_walk_lane(const qk_walk &k, int u, int base, int lane, int *row,
                                             int *sb) {
    if constexpr (!G) {
        *row = u;
        *sb = base + (lane >> 2);
    } else {
        const int per = 4 * k.nb, i = lane / per;
        *row = i < k.group ? u * k.group + i : k.total;
        *sb = (lane % per) >> 2;
    }
}

// Issues the loads of items t0 .. t0 + R - 1 (R units in flight per warp when steps == 1).
template <int R, bool G>
__device__ __forceinline__ void qk_dp4a_q8k_load(const qk_walk &k, int t0, int lane,
                                                 qk_q4k_lane (&d)[R]) {
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int t = t0 + r, u = k.unit_of(t), base = k.steps == 1 ? 0 : (t % k.steps) * 8;
        int row, sb;
        qk_walk_lane<G>(k, u, base, lane, &row, &sb);
        d[r] = {};
        if (u < k.units && row < k.total && sb < k.nb)
            d[r] = qk_load_lane(qk_gpu_row(k.w, k.ids, k.rows, k.nb, row) + sb, lane & 3);
        d[r].g = u;
        d[r].base = base;
    }
}

// The arithmetic of a loaded batch; a row's last step reduces and stores it: the warp butterfly
// (one row per warp), or the sum in super-block order within the row's lanes (grouped rows).
template <int R, bool G, typename B>
__device__ __forceinline__ void
qk_dp4a_q8k_compute(const qk_walk &k, int lane, const qk_q4k_lane (&d)[R], const B *__restrict__ x8,
                    float *__restrict__ y, float &acc) {
    const int c = lane & 3;
#pragma unroll
    for (int r = 0; r < R; r++) {
        const int u = d[r].g, base = d[r].base;
        if (u >= k.units) return; // uniform across the warp
        int row, sb;
        qk_walk_lane<G>(k, u, base, lane, &row, &sb);
        const bool active = row < k.total && sb < k.nb;
        qk_dp4a_q8k_step(d[r], x8 + sb, active, c, acc);
        if (base + 8 < k.nb) continue; // the row goes on in the next step
        if constexpr (!G) {
            const float v = qk_warp_sum(acc);
            if (lane == 0) y[u] = v;
        } else {
            float v = acc; // lane 4*sb holds super-block sb's contribution
            for (int j = 1; j < k.nb; j++)
                v = __fadd_rn(v, __shfl_down_sync(0xffffffffu, acc, 4 * j));
            if (active && sb == 0 && c == 0) y[row] = v;
        }
        acc = 0.0f;
    }
}

// The whole walk, two batches of R items in turn: one batch's loads in flight while the other
// is computed. `a` holds qk_dp4a_q8k_load(k, 0, ...), issued by the caller as early as it can.
template <int R, bool G, typename B>
__device__ __forceinline__ void qk_dp4a_q8k_walk(const qk_walk &k, int lane, qk_q4k_lane (&a)[R],
                                                 const B *__restrict__ x8, float *__restrict__ y) {
    qk_q4k_lane b[R];
    float acc = 0.0f;
    for (int t0 = 0; k.valid(t0); t0 += 2 * R) {
        qk_dp4a_q8k_load<R, G>(k, t0 + R, lane, b);
        qk_dp4a_q8k_compute<R, G>(k, lane, a, x8, y, acc);
        if (!k.valid(t0 + R)) break;
        qk_dp4a_q8k_load<R, G>(k, t0 + 2 * R, lane, a);
        qk_dp4a_q8k_compute<R, G>(k, lane, b, x8, y, acc);
    }
}

// The batched unit of the matvec variants (MUL_MAT_ID for several tokens): one launch in which
// each block takes one slot (token t's i-th expert id, slot t*n_ids + i) and one tile of rows.
// The grouping of slots by expert comes from the ids on the device: a block works only when its
// slot is the first with its expert (the group's leader), and then gathers, in slot order, every
// slot routed to that expert; the other blocks leave after that one scan of the ids. A leader
// block stages up to 8 of its columns' activations in shared memory in the variant's layout
// (quantizing them, for e2e), then its warps walk the tile's rows: each weight block is loaded
// once and meets every staged column; beyond 8 columns, further passes over the tile. Each
// column's arithmetic, lane layout and reduction are those of the variant's one-token kernel,
// so its outputs are the emulation's per slot. A variant supplies a policy V:
//   lanes(nb), rows(nb)  (host and device) the lanes per row and rows per warp when rows are
//                        short (G: nb <= 4); otherwise a warp takes one row in steps of 8
//                        super-blocks, lane 4*s + c on chunk c of super-block base + s
//   column_bytes(nb)          shared memory a staged column takes (0: none staged)
//   stage(a, slots, nc, smem) block-wide: columns 0..nc-1 (slot slots[j], token
//                             slots[j] / n_ids) into smem
//   step(a, smem, toks, d, nc, sb, c, active, acc)  a lane's loaded share of a super-block
//                             times columns 0..nc-1 (token toks[j]) into acc[j]
//   reduce<G>(v, nb, per)     a row's sum of one column, read at the row's first lane
#pragma once
#include "dp4a_q8k_row.cuh"
#include "gpu_launch.cuh"
#include "q8k_warp.cuh"

constexpr int QK_BATCH_COLS = 8; // columns a weight block meets per pass
// Shared memory for a pass's staged columns: at most this, so that two blocks fit an SM.
constexpr size_t QK_BATCH_STAGE_BYTES = 96 * 1024;

// Columns a pass stages at column_bytes each (0: not even one fits).
inline int qk_batch_cols_per_pass(size_t column_bytes) {
    if (!column_bytes) return QK_BATCH_COLS;
    const size_t n = QK_BATCH_STAGE_BYTES / column_bytes;
    return n < (size_t)QK_BATCH_COLS ? (int)n : QK_BATCH_COLS;
}
// Whether the batched launches take rows of nb super-blocks (Q8_K columns are the largest
// staged ones; gpu_q4k_f32 reads f32 columns from global memory when they do not fit).
inline bool qk_batch_fits(int nb) {
    return qk_batch_cols_per_pass((size_t)nb * sizeof(qk_q8k_shared)) > 0;
}

struct qk_batch_args {
    const qk_block_q4k *w; // the experts' plain Q4_K rows, contiguous
    const int32_t *ids;    // n_slots expert ids (device), slot t*n_ids + i
    int rows, nb, n_slots, n_ids;
    int units_per_warp, tiles; // a block's tile: QK_GPU_WARPS * units_per_warp units
    int cols_per_pass, early;  // early: the first weights are loaded before the routing
    const void *x;             // the activations as the variant reads them (device)
    float *y;                  // y[slot * rows + r]
};

// The block's routing: -1 unless `slot` is the first slot of its expert e, else the number of
// slots routed to e, written to list in slot order. Every thread of the block calls it.
__device__ __forceinline__ int qk_batch_route(const int32_t *__restrict__ ids, int n_slots,
                                              int slot, int e, int *list, int *warp_counts) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int total = 0, earlier = 0;
    for (int base = 0; base < n_slots; base += QK_GPU_WARPS * 32) { // uniform
        const int j = base + threadIdx.x;
        const bool match = j < n_slots && __ldg(ids + j) == e;
        earlier |= match && j < slot;
        const unsigned later = __ballot_sync(0xffffffffu, match && j >= slot);
        if (lane == 0) warp_counts[warp] = __popc(later);
        __syncthreads();
        int before = total;
#pragma unroll
        for (int w = 0; w < QK_GPU_WARPS; w++) {
            const int n = warp_counts[w];
            before += w < warp ? n : 0;
            total += n;
        }
        if (later >> lane & 1) list[before + __popc(later & ((1u << lane) - 1))] = j;
        __syncthreads(); // warp_counts is read before the next chunk writes it
    }
    return __syncthreads_or(earlier) ? -1 : total;
}

template <class V, bool G>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32) qk_batch_kernel(const qk_batch_args a) {
    extern __shared__ uint4 qk_batch_smem[]; // staged columns, then the slot list
    __shared__ int warp_counts[QK_GPU_WARPS];
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    const int slot = blockIdx.x / a.tiles, tile = blockIdx.x - slot * a.tiles;
    const int expert = __ldg(a.ids + slot), nb = a.nb;
    const qk_block_q4k *we = a.w + (size_t)expert * a.rows * nb;
    // this lane's place: row `sub` of a unit of rpw rows, chunk c of super-block base + s
    const int per = G ? V::lanes(nb) : 32, rpw = G ? V::rows(nb) : 1;
    const int sub = G ? lane / per : 0, li = lane - sub * per, s = li >> 2, c = li & 3;
    const int steps = G ? 1 : (nb + 7) / 8, units = (a.rows + rpw - 1) / rpw;
    const int unit0 = tile * QK_GPU_WARPS * a.units_per_warp + warp;
    int mine = unit0 < units ? (units - unit0 + QK_GPU_WARPS - 1) / QK_GPU_WARPS : 0;
    mine = mine < a.units_per_warp ? mine : a.units_per_warp;
    const int items = mine * steps; // (unit, step) pairs, uniform across the warp
    auto place = [&](int t, int *row, int *sb) {
        const int i = steps == 1 ? t : t / steps;
        *row = (unit0 + i * QK_GPU_WARPS) * rpw + sub;
        *sb = (t - i * steps) * 8 + s;
    };
    auto load = [&](int t) {
        int row, sb;
        place(t, &row, &sb);
        qk_q4k_lane d = {};
        if (sub < rpw && row < a.rows && sb < nb) d = qk_load_lane(we + (size_t)row * nb + sb, c);
        return d;
    };
    qk_q4k_lane cur = {};
    if (a.early && items) cur = load(0); // in flight during the routing and the staging
    int *list = reinterpret_cast<int *>(reinterpret_cast<char *>(qk_batch_smem) +
                                        V::column_bytes(nb) * a.cols_per_pass);
    const int n = qk_batch_route(a.ids, a.n_slots, slot, expert, list, warp_counts);
    if (n < 0) return; // the whole block: another block leads this expert
    for (int p0 = 0; p0 < n; p0 += a.cols_per_pass) {
        const int nc = n - p0 < a.cols_per_pass ? n - p0 : a.cols_per_pass;
        int toks[QK_BATCH_COLS];
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++)
            toks[j] = j < nc ? list[p0 + j] / a.n_ids : 0;
        if (p0) __syncthreads(); // the last pass's columns are read
        V::stage(a, list + p0, nc, qk_batch_smem);
        __syncthreads();
        if (p0 || !a.early) cur = items ? load(0) : qk_q4k_lane{};
        float acc[QK_BATCH_COLS];
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++)
            acc[j] = 0.0f;
        for (int t = 0; t < items; t++) {
            const qk_q4k_lane next = t + 1 < items ? load(t + 1) : qk_q4k_lane{};
            int row, sb;
            place(t, &row, &sb);
            const bool valid = sub < rpw && row < a.rows;
            V::step(a, qk_batch_smem, toks, cur, nc, sb, c, valid && sb < nb, acc);
            if (sb - s + 8 >= nb) { // the row's last step: its sums, one column at a time
#pragma unroll
                for (int j = 0; j < QK_BATCH_COLS; j++) {
                    if (j >= nc) break;
                    const float v = V::template reduce<G>(acc[j], nb, per);
                    if (valid && li == 0) a.y[(size_t)list[p0 + j] * a.rows + row] = v;
                    acc[j] = 0.0f;
                }
            }
            cur = next;
        }
    }
}

// The launch: shape from what the host knows without the routing (slots, experts, rows); the
// tile grows with the rows the batch may touch, so that leader blocks fill the GPU.
template <class V, bool G>
cudaError_t qk_batch_launch(const qk_gpu_args &g, const void *x, int cols_per_pass,
                            cudaStream_t st) {
    static int sms, smem_set, smem_max;
    cudaError_t e;
    if (!sms) {
        int dev;
        if ((e = cudaGetDevice(&dev)) != cudaSuccess ||
            (e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev)) !=
                cudaSuccess ||
            (e = cudaDeviceGetAttribute(&smem_max, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev)) !=
                cudaSuccess)
            return e;
    }
    const int slots = g.n_tokens * g.n_ids, nb = g.nb;
    const int rpw = G ? V::rows(nb) : 1, units = (g.rows + rpw - 1) / rpw;
    const long groups = slots < g.n_experts ? slots : g.n_experts;
    long per_warp = groups * units / ((long)sms * 32); // about half the GPU's warps
    per_warp = per_warp < 1 ? 1 : per_warp > 8 ? 8 : per_warp;
    const int tile_units = QK_GPU_WARPS * (int)per_warp;
    const int tiles = (units + tile_units - 1) / tile_units;
    if ((long)slots * tiles > 0x7fffffffL) return cudaErrorInvalidConfiguration;
    const int pass = cols_per_pass < slots ? cols_per_pass : slots;
    const size_t smem = V::column_bytes(nb) * pass + (size_t)slots * sizeof(int);
    if (smem > (size_t)smem_max) return cudaErrorInvalidConfiguration;
    if (smem > 48 * 1024 && (int)smem > smem_set) {
        if ((e = cudaFuncSetAttribute(qk_batch_kernel<V, G>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)) !=
            cudaSuccess)
            return e;
        smem_set = (int)smem;
    }
    const qk_batch_args a = {g.w,           g.ids, g.rows, nb,          slots, g.n_ids,
                             (int)per_warp, tiles, pass,   slots <= 64, x,     g.y};
    qk_batch_kernel<V, G><<<slots * tiles, QK_GPU_WARPS * 32, smem, st>>>(a);
    return cudaGetLastError();
}

// The batched unit of the matvec variants (MUL_MAT_ID for several tokens): one launch whose
// blocks each take one group of slots (the slots routed to one expert; slot t*n_ids + i is token
// t's i-th id) and one tile of that expert's rows. The grouping comes from the ids on the
// device, inside the unit: with few slots a block per slot, working only when its slot is the
// first with its expert (its weights already loading meanwhile); with many, a block per rank of
// an expert among those used (a flag a possible expert), so that no block is launched only to find
// it leads nothing. Either way the block then gathers, in slot order, every slot routed to its
// expert. It stages up to 8 of those columns' activations in shared memory in the variant's
// layout (quantizing them, for e2e), then its warps walk the tile's rows: each weight block is
// loaded once and meets every staged column; beyond 8 columns, further passes over the tile.
// Each column's arithmetic and reduction order are those of the variant's one-token kernel, so
// its outputs are the emulation's per slot. A variant supplies a policy V:
//   L, Data, load(b, c)     lanes per super-block; what lane c of them loads of block b
//   R                       items a batch loads (two batches: one loads, one is computed)
//   kBlocksPerSm, kPipeline  blocks an SM must hold (the register budget); whether a warp
//                           has a second batch in flight
//   lanes(nb), rows(nb)     (host and device) lanes per row, rows per warp; a row's lanes take
//                           super-blocks base + s, s = lane-in-row / L, in steps of lanes / L
//   column_bytes(nb)        shared memory a staged column takes (0: none staged)
//   stage(a, slots, nc, smem)  block-wide: columns 0..nc-1 (slot slots[j], token
//                           slots[j] / n_ids) into smem
//   step(a, smem, toks, d, nc, sb, c, active, acc)  a lane's loaded share of a super-block
//                           times columns 0..nc-1 (token toks[j]) into acc[j]
//   reduce(v, nb, per)      a row's sum of one column, read at the row's first lane
#pragma once
#include "dp4a_q8k_row.cuh" // qk_q4k_lane, qk_load_lane: the share of 4 lanes a super-block
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
    int rows, nb, n_slots, n_ids, n_experts;
    int units_per_warp, tiles; // a block's tile: QK_GPU_WARPS * units_per_warp units
    int cols_per_pass;
    int by_slot;   // blocks by slot (leaders work); else by the rank of an expert among those used
    const void *x; // the activations as the variant reads them (device)
    float *y;      // y[slot * rows + r]
};

// The slots from `from` on routed to expert e, in slot order, into list; -1 when a slot before
// `from` is routed to e too (its block leads e). Every thread of the block calls it.
__device__ __forceinline__ int qk_batch_gather(const int32_t *__restrict__ ids, int n_slots,
                                               int from, int e, int *list, int *warp_counts) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    int total = 0, earlier = 0;
    for (int base = 0; base < n_slots; base += QK_GPU_WARPS * 32) { // uniform
        const int j = base + threadIdx.x;
        const bool match = j < n_slots && __ldg(ids + j) == e;
        earlier |= match && j < from;
        const unsigned later = __ballot_sync(0xffffffffu, match && j >= from);
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

// The g-th smallest expert id used by any slot (-1: fewer are used), from a byte a possible
// expert in shared memory (used: (n_experts + 3) / 4 words), set by plain stores (a bitmap's
// atomics would serialize on its few words). Every thread of the block calls it.
__device__ __forceinline__ int qk_batch_rank_expert(const int32_t *__restrict__ ids, int n_slots,
                                                    int n_experts, int g, uint32_t *used,
                                                    int *found) {
    const int words = (n_experts + 3) / 4, lane = threadIdx.x & 31;
    for (int i = threadIdx.x; i < words; i += blockDim.x)
        used[i] = 0;
    if (threadIdx.x == 0) *found = -1;
    __syncthreads();
    for (int j = threadIdx.x; j < n_slots; j += blockDim.x)
        reinterpret_cast<unsigned char *>(used)[__ldg(ids + j)] = 1;
    __syncthreads();
    if (threadIdx.x < 32) { // one warp: the word holding the g-th used expert, by prefix counts
        int before = 0;
        for (int w0 = 0; w0 < words; w0 += 32) {
            const uint32_t word = w0 + lane < words ? used[w0 + lane] : 0u;
            const int count = __popc(word); // its bytes are 0 or 1
            int incl = count;
#pragma unroll
            for (int o = 1; o < 32; o <<= 1) {
                const int v = __shfl_up_sync(0xffffffffu, incl, o);
                incl += lane >= o ? v : 0;
            }
            int k = g - before - (incl - count); // the k-th used expert of this lane's word
            if (k >= 0 && k < count)
                for (int b = 0; b < 4; b++)
                    if (word >> (8 * b) & 1 && k-- == 0) *found = (w0 + lane) * 4 + b;
            before += __shfl_sync(0xffffffffu, incl, 31);
            if (before > g) break; // uniform
        }
    }
    __syncthreads();
    return *found;
}

template <class V>
__global__ void __launch_bounds__(QK_GPU_WARPS * 32, V::kBlocksPerSm)
    qk_batch_kernel(const qk_batch_args a) {
    constexpr int R = V::R; // items a batch (kPipeline: one batch loads while one is computed)
    extern __shared__ uint4 qk_batch_smem[]; // staged columns, the slot list, the used flags
    __shared__ int warp_counts[QK_GPU_WARPS], found;
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    const int block = blockIdx.x / a.tiles, tile = blockIdx.x - block * a.tiles, nb = a.nb;
    // this lane's place: row `sub` of a unit of rpw rows, share c of super-block base + s
    const int per = V::lanes(nb), rpw = V::rows(nb), width = per / V::L;
    const int sub = lane / per, li = lane - sub * per, s = li / V::L, c = li - s * V::L;
    const int steps = (nb + width - 1) / width, units = (a.rows + rpw - 1) / rpw;
    const int unit0 = tile * QK_GPU_WARPS * a.units_per_warp + warp;
    int mine = unit0 < units ? (units - unit0 + QK_GPU_WARPS - 1) / QK_GPU_WARPS : 0;
    mine = mine < a.units_per_warp ? mine : a.units_per_warp;
    const int items = mine * steps; // (unit, step) pairs, uniform across the warp
    auto place = [&](int t, int *row, int *sb) {
        const int i = steps == 1 ? t : t / steps;
        *row = (unit0 + i * QK_GPU_WARPS) * rpw + sub;
        *sb = (t - i * steps) * width + s;
    };
    const qk_block_q4k *we = nullptr;
    auto load = [&](int t0, typename V::Data(&d)[R]) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            int row, sb;
            place(t0 + r, &row, &sb);
            d[r] = {};
            if (t0 + r < items && sub < rpw && row < a.rows && sb < nb)
                d[r] = V::load(we + (size_t)row * nb + sb, c);
        }
    };
    char *smem = reinterpret_cast<char *>(qk_batch_smem);
    int *list = reinterpret_cast<int *>(smem + V::column_bytes(nb) * a.cols_per_pass);
    typename V::Data A[R], B[V::kPipeline ? R : 1];
    int n, expert;
    if (a.by_slot) { // the block's slot is known: its weights load during the routing
        expert = __ldg(a.ids + block);
        we = a.w + (size_t)expert * a.rows * nb;
        load(0, A);
        n = qk_batch_gather(a.ids, a.n_slots, block, expert, list, warp_counts);
    } else {
        expert = qk_batch_rank_expert(a.ids, a.n_slots, a.n_experts, block,
                                      reinterpret_cast<uint32_t *>(list + a.n_slots), &found);
        if (expert < 0) return; // the whole block: fewer experts are used
        we = a.w + (size_t)expert * a.rows * nb;
        load(0, A);
        n = qk_batch_gather(a.ids, a.n_slots, 0, expert, list, warp_counts);
    }
    if (n < 0) return; // the whole block: another block leads this expert
    // one batch of R items: the step, and at a row's last step its sums, a column at a time
    auto compute = [&](int t0, const typename V::Data(&d)[R], int p0, int nc,
                       const int(&toks)[QK_BATCH_COLS], float(&acc)[QK_BATCH_COLS]) {
#pragma unroll
        for (int r = 0; r < R; r++) {
            if (t0 + r >= items) return; // uniform across the warp
            int row, sb;
            place(t0 + r, &row, &sb);
            const bool valid = sub < rpw && row < a.rows;
            V::step(a, qk_batch_smem, toks, d[r], nc, sb, c, valid && sb < nb, acc);
            if (sb - s + width < nb) continue; // the row goes on in the next step
#pragma unroll
            for (int j = 0; j < QK_BATCH_COLS; j++) {
                if (j >= nc) break;
                const float v = V::reduce(acc[j], nb, per);
                if (valid && li == 0) a.y[(size_t)list[p0 + j] * a.rows + row] = v;
                acc[j] = 0.0f;
            }
        }
    };
    for (int p0 = 0; p0 < n; p0 += a.cols_per_pass) {
        const int nc = n - p0 < a.cols_per_pass ? n - p0 : a.cols_per_pass;
        int toks[QK_BATCH_COLS];
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++)
            toks[j] = j < nc ? list[p0 + j] / a.n_ids : 0;
        if (p0) {
            load(0, A);      // in flight during the staging
            __syncthreads(); // the last pass's columns are read
        }
        V::stage(a, list + p0, nc, qk_batch_smem);
        __syncthreads();
        float acc[QK_BATCH_COLS];
#pragma unroll
        for (int j = 0; j < QK_BATCH_COLS; j++)
            acc[j] = 0.0f;
        if constexpr (V::kPipeline) {
            for (int t0 = 0; t0 < items; t0 += 2 * R) {
                load(t0 + R, B);
                compute(t0, A, p0, nc, toks, acc);
                if (t0 + R >= items) break;
                load(t0 + 2 * R, A);
                compute(t0 + R, B, p0, nc, toks, acc);
            }
        } else { // one batch at a time: the other warps hide its loads
            for (int t0 = 0; t0 < items; t0 += R) {
                if (t0) load(t0, A);
                compute(t0, A, p0, nc, toks, acc);
            }
        }
    }
}

// The launch: shape from what the host knows without the routing (slots, experts, rows); the
// tile grows with the rows the batch may touch, so that leader blocks fill the GPU.
template <class V>
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
    const int rpw = V::rows(nb), units = (g.rows + rpw - 1) / rpw;
    const long groups = slots < g.n_experts ? slots : g.n_experts;
    long per_warp = groups * units / ((long)sms * 32); // about half the GPU's warps
    per_warp = per_warp < 2 ? 2 : per_warp > 8 ? 8 : per_warp;
    const int tile_units = QK_GPU_WARPS * (int)per_warp;
    const int tiles = (units + tile_units - 1) / tile_units;
    // few slots: a block per slot, its weights loading during the routing; many: a block per
    // rank of the experts that may be used, no block launched only to find it leads nothing
    const bool by_slot = slots <= 64;
    const long blocks = (by_slot ? slots : groups) * (long)tiles;
    if (blocks > 0x7fffffffL) return cudaErrorInvalidConfiguration;
    const int pass = cols_per_pass < slots ? cols_per_pass : slots;
    const size_t smem = V::column_bytes(nb) * pass + (size_t)slots * sizeof(int) +
                        (by_slot ? 0 : (size_t)(g.n_experts + 3) / 4 * sizeof(uint32_t));
    if (smem > (size_t)smem_max) return cudaErrorInvalidConfiguration;
    if (smem > 48 * 1024 && (int)smem > smem_set) {
        if ((e = cudaFuncSetAttribute(qk_batch_kernel<V>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem)) !=
            cudaSuccess)
            return e;
        smem_set = (int)smem;
    }
    const qk_batch_args a = {g.w,           g.ids, g.rows, nb,      slots, g.n_ids, g.n_experts,
                             (int)per_warp, tiles, pass,   by_slot, x,     g.y};
    qk_batch_kernel<V><<<(int)blocks, QK_GPU_WARPS * 32, smem, st>>>(a);
    return cudaGetLastError();
}

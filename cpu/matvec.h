/* The row-parallel driver: any matvec variant over one matrix or over k selected experts, on
 * the threads of a pool. */
#ifndef QK_MATVEC_H
#define QK_MATVEC_H
#include "../kernels/qk_kernel.h"
#include "threadpool.h"
#include <stdint.h>

/* Weights of n_experts matrices (rows x cols each) in the layout a variant reads. */
typedef struct {
    void *data; /* the plain Q4_K bytes (borrowed) or the packed copy (owned) */
    int owned;
    size_t expert_bytes; /* distance between consecutive experts */
    size_t rows, cols, n_experts;
} qk_weights;

/* Lays out n_experts contiguous plain Q4_K matrices for kernel k: borrows them when k reads
 * plain rows, else packs a copy (untimed, once). Returns 0, or -1 when out of memory, when k's
 * packed_size is 0, or when packed_size x n_experts does not fit a size_t. */
int qk_weights_prepare(const qk_kernel *k, const qk_block_q4k *plain, size_t rows, size_t cols,
                       size_t n_experts, qk_weights *out);
void qk_weights_release(qk_weights *w);

/* y[i*rows + r] = row r of expert ids[i] . x, for i < n_ids (ids may repeat). With ids == NULL,
 * n_ids must be 1 and expert 0 is used. x is in k's activation format. */
void qk_matvec_experts(qk_pool *pool, const qk_kernel *k, const qk_weights *w, const int32_t *ids,
                       size_t n_ids, const void *x, float *y);

/* The row ranges thread ti of nt computes in qk_matvec_experts, in order: fn(ctx, i, r0, r1)
 * for output block i (expert ids[i]) and rows [r0, r1). */
void qk_matvec_ranges(size_t row_group, size_t rows, size_t n_ids, int ti, int nt,
                      void (*fn)(void *ctx, size_t i, size_t r0, size_t r1), void *ctx);

/* The unit the CPU anchor times: quantize x once with `quant` (NULL for f32 variants), then
 * qk_matvec_experts. xq must hold cols activations in k's format. */
void qk_moe_forward(qk_pool *pool, const qk_kernel *quant, const qk_kernel *k, const qk_weights *w,
                    const int32_t *ids, size_t n_ids, const float *x, void *xq, float *y);

#endif

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

/* MUL_MAT_ID for a batch of tokens: n_tokens tokens, token t routed to the k experts
 * ids[t*k .. t*k + k) (indices into the weights; they may repeat, within a token and across
 * tokens): y[(t*k + j)*rows + r] = row r of expert ids[t*k + j] . x_t. Each expert touched is
 * read once for all the slots routed to it (k's matmul for two or more, else its matvec once
 * per slot). The grouping by expert is built inside the unit (as ggml builds it from its ids
 * tensor), in the batch's own memory: nothing is allocated while it runs. */
typedef struct {
    size_t n_tokens, k, n_experts; /* n_experts: the weights' count (ids < n_experts) */
    size_t n_groups;               /* experts touched by the last run */
    int32_t *group_expert;         /* [n_tokens * k]: the expert of group g */
    uint32_t *group_start;         /* [n_tokens * k + 1]: group g's slots in `slots` */
    uint32_t *slots;               /* [n_tokens * k]: slot indices t*k + j, grouped by expert */
    int32_t *group_of;             /* [n_experts]: the group of each expert, -1 untouched */
    const void **xs;               /* [n_tokens * k]: each grouped slot's activations */
    float **ys;                    /* [n_tokens * k]: each grouped slot's outputs */
} qk_moe_batch;
/* 0, or -1 when out of memory (or the sizes overflow). */
int qk_moe_batch_init(qk_moe_batch *b, size_t n_tokens, size_t k, size_t n_experts);
void qk_moe_batch_free(qk_moe_batch *b);
/* Groups ids (n_tokens * k, each < n_experts) by expert, in the order each expert is first
 * used; xq_stride: bytes between consecutive tokens' activations; y as above. */
void qk_moe_batch_route(qk_moe_batch *b, const int32_t *ids, const void *xq, size_t xq_stride,
                        float *y, size_t rows);
/* The unit for a batch: every token's x (n_tokens x cols f32, token-major) quantized by `quant`
 * into xq (n_tokens rows of qk_format_bytes(k's activation format, cols)), or read as f32
 * (quant NULL: xq unused); the routing; then each expert group's rows, split over the pool. */
void qk_moe_forward_batch(qk_pool *pool, const qk_kernel *quant, const qk_kernel *k,
                          const qk_weights *w, qk_moe_batch *b, const int32_t *ids, const float *x,
                          void *xq, float *y);
/* The row ranges thread ti of nt computes in qk_moe_forward_batch: fn(ctx, g, r0, r1) for expert
 * group g of the last route and rows [r0, r1); the threads' shares are equal in cost, a row
 * group of an expert with n tokens weighing 2 + n. */
void qk_moe_batch_ranges(const qk_moe_batch *b, size_t row_group, size_t rows, int ti, int nt,
                         void (*fn)(void *ctx, size_t g, size_t r0, size_t r1), void *ctx);

#endif

#include "matvec.h"
#include "huge_alloc.h"
#include <stdint.h>
#include <stdlib.h>

int qk_weights_prepare(const qk_kernel *k, const qk_block_q4k *plain, size_t rows, size_t cols,
                       size_t n_experts, qk_weights *out) {
    out->rows = rows;
    out->cols = cols;
    out->n_experts = n_experts;
    size_t plain_bytes = rows * (cols / QK_K) * sizeof(qk_block_q4k);
    if (!k->pack) {
        out->data = (void *)plain;
        out->owned = 0;
        out->expert_bytes = plain_bytes;
        return 0;
    }
    out->expert_bytes = k->packed_size(rows, cols);
    if (!out->expert_bytes || (n_experts && out->expert_bytes > SIZE_MAX / n_experts)) return -1;
    out->data = qk_alloc_huge(out->expert_bytes * n_experts);
    if (!out->data) return -1;
    out->owned = 1;
    for (size_t e = 0; e < n_experts; e++)
        k->pack((const char *)plain + e * plain_bytes, rows, cols,
                (char *)out->data + e * out->expert_bytes);
    return 0;
}

void qk_weights_release(qk_weights *w) {
    if (w->owned) free(w->data);
    w->data = NULL;
    w->owned = 0;
}

typedef struct {
    const qk_kernel *k;
    const qk_weights *w;
    const int32_t *ids;
    size_t n_ids;
    const void *x;
    float *y;
} job;

/* Thread ti takes an equal share of the (expert, row group) units, in order. */
void qk_matvec_ranges(size_t group, size_t rows, size_t n_ids, int ti, int nt,
                      void (*fn)(void *ctx, size_t i, size_t r0, size_t r1), void *ctx) {
    const size_t groups = (rows + group - 1) / group, units = groups * n_ids;
    size_t u0 = units * (size_t)ti / (size_t)nt, u1 = units * (size_t)(ti + 1) / (size_t)nt;
    while (u0 < u1) {
        size_t i = u0 / groups, g0 = u0 % groups;
        size_t g1 = (u1 - i * groups) < groups ? u1 - i * groups : groups;
        size_t r0 = g0 * group, r1 = g1 * group < rows ? g1 * group : rows;
        fn(ctx, i, r0, r1);
        u0 = i * groups + g1;
    }
}

static void run_range(void *arg, size_t i, size_t r0, size_t r1) {
    const job *j = arg;
    size_t e = j->ids ? (size_t)j->ids[i] : 0, rows = j->w->rows;
    j->k->matvec((const char *)j->w->data + e * j->w->expert_bytes, rows, j->w->cols, r0, r1, j->x,
                 j->y + i * rows);
}

static void run_share(void *arg, int ti, int nt) {
    const job *j = arg;
    qk_matvec_ranges(j->k->row_group, j->w->rows, j->n_ids, ti, nt, run_range, arg);
}

void qk_matvec_experts(qk_pool *pool, const qk_kernel *k, const qk_weights *w, const int32_t *ids,
                       size_t n_ids, const void *x, float *y) {
    job j = {k, w, ids, n_ids, x, y};
    qk_pool_run(pool, run_share, &j);
}

void qk_moe_forward(qk_pool *pool, const qk_kernel *quant, const qk_kernel *k, const qk_weights *w,
                    const int32_t *ids, size_t n_ids, const float *x, void *xq, float *y) {
    const void *act = x;
    if (quant) {
        quant->quantize(x, xq, w->cols);
        act = xq;
    }
    qk_matvec_experts(pool, k, w, ids, n_ids, act, y);
}

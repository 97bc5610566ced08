#include "matvec.h"
#include "huge_alloc.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int qk_moe_batch_init(qk_moe_batch *b, size_t n_tokens, size_t k, size_t n_experts) {
    memset(b, 0, sizeof *b);
    size_t n = n_tokens * k;
    if (!n_tokens || !k || n / k != n_tokens || n >= UINT32_MAX || !n_experts) return -1;
    b->n_tokens = n_tokens, b->k = k, b->n_experts = n_experts;
    b->group_expert = malloc(n * sizeof *b->group_expert);
    b->group_start = malloc((n + 1) * sizeof *b->group_start);
    b->slots = malloc(n * sizeof *b->slots);
    b->group_of = malloc(n_experts * sizeof *b->group_of);
    b->xs = malloc(n * sizeof *b->xs);
    b->ys = malloc(n * sizeof *b->ys);
    if (!b->group_expert || !b->group_start || !b->slots || !b->group_of || !b->xs || !b->ys) {
        qk_moe_batch_free(b);
        return -1;
    }
    for (size_t e = 0; e < n_experts; e++)
        b->group_of[e] = -1;
    return 0;
}

void qk_moe_batch_free(qk_moe_batch *b) {
    free(b->group_expert), free(b->group_start), free(b->slots), free(b->group_of);
    free((void *)b->xs), free(b->ys);
    memset(b, 0, sizeof *b);
}

void qk_moe_batch_route(qk_moe_batch *b, const int32_t *ids, const void *xq, size_t xq_stride,
                        float *y, size_t rows) {
    const size_t n = b->n_tokens * b->k;
    size_t groups = 0;
    for (size_t s = 0; s < n; s++) { /* count each expert's slots, groups in order of first use */
        int32_t e = ids[s];
        if (b->group_of[e] < 0) {
            b->group_of[e] = (int32_t)groups;
            b->group_expert[groups] = e;
            b->group_start[++groups] = 0;
        }
        b->group_start[b->group_of[e] + 1]++;
    }
    b->group_start[0] = 0;
    for (size_t g = 0; g < groups; g++)
        b->group_start[g + 1] += b->group_start[g];
    for (size_t s = 0; s < n; s++) { /* place the slots, then restore the starts */
        uint32_t at = b->group_start[b->group_of[ids[s]]]++;
        b->slots[at] = (uint32_t)s;
        b->xs[at] = (const char *)xq + (s / b->k) * xq_stride;
        b->ys[at] = y + s * rows;
    }
    for (size_t g = groups; g > 0; g--)
        b->group_start[g] = b->group_start[g - 1];
    b->group_start[0] = 0;
    for (size_t g = 0; g < groups; g++)
        b->group_of[b->group_expert[g]] = -1;
    b->n_groups = groups;
}

typedef struct {
    const qk_kernel *k;
    const qk_weights *w;
    const qk_moe_batch *b;
} batch_job;

static void run_group_range(void *arg, size_t g, size_t r0, size_t r1) {
    const batch_job *j = arg;
    const qk_moe_batch *b = j->b;
    const void *we = (const char *)j->w->data + (size_t)b->group_expert[g] * j->w->expert_bytes;
    size_t s0 = b->group_start[g], n = b->group_start[g + 1] - s0;
    if (j->k->matmul && n > 1) { /* one column: the matvec itself, as for a single token */
        j->k->matmul(we, j->w->rows, j->w->cols, r0, r1, b->xs + s0, b->ys + s0, n);
        return;
    }
    for (size_t c = 0; c < n; c++)
        j->k->matvec(we, j->w->rows, j->w->cols, r0, r1, b->xs[s0 + c], b->ys[s0 + c]);
}

/* A row group of an expert with n tokens costs about READ_COST + n column-passes: reading and
 * unpacking its weights once weighs about as much as two columns' arithmetic (single thread,
 * 768x2048: q4k_q8k_vnni_r8 20.7 us for one column, 83 us for 8; q4k_f32_avx512 85 and 264). */
enum { READ_COST = 2 };

void qk_moe_batch_ranges(const qk_moe_batch *b, size_t row_group, size_t rows, int ti, int nt,
                         void (*fn)(void *ctx, size_t g, size_t r0, size_t r1), void *ctx) {
    /* Thread ti takes the units (group, row group) whose cost interval starts in its equal share
     * of the total cost, in order: an expert serving many tokens weighs more (skewed routing) */
    const size_t units = (rows + row_group - 1) / row_group;
    size_t total = 0;
    for (size_t g = 0; g < b->n_groups; g++)
        total += units * (READ_COST + b->group_start[g + 1] - b->group_start[g]);
    const size_t c0 = total * (size_t)ti / (size_t)nt, c1 = total * (size_t)(ti + 1) / (size_t)nt;
    size_t at = 0; /* the cost before group g */
    for (size_t g = 0; g < b->n_groups && at < c1; g++) {
        const size_t unit_cost = READ_COST + b->group_start[g + 1] - b->group_start[g];
        const size_t end = at + units * unit_cost;
        if (end > c0) { /* units k with at + k * unit_cost in [c0, c1) */
            size_t k0 = c0 > at ? (c0 - at + unit_cost - 1) / unit_cost : 0;
            size_t k1 = c1 > at ? (c1 - at + unit_cost - 1) / unit_cost : 0;
            k1 = k1 < units ? k1 : units;
            if (k0 < k1) fn(ctx, g, k0 * row_group, k1 * row_group < rows ? k1 * row_group : rows);
        }
        at = end;
    }
}

static void run_batch_share(void *arg, int ti, int nt) {
    const batch_job *j = arg;
    qk_moe_batch_ranges(j->b, j->k->row_group, j->w->rows, ti, nt, run_group_range, arg);
}

void qk_moe_forward_batch(qk_pool *pool, const qk_kernel *quant, const qk_kernel *k,
                          const qk_weights *w, qk_moe_batch *b, const int32_t *ids, const float *x,
                          void *xq, float *y) {
    const void *act = x;
    size_t stride = w->cols * sizeof *x;
    if (quant) {
        stride = qk_format_bytes(quant->act_format, w->cols);
        for (size_t t = 0; t < b->n_tokens; t++)
            quant->quantize(x + t * w->cols, (char *)xq + t * stride, w->cols);
        act = xq;
    }
    qk_moe_batch_route(b, ids, act, stride, y, w->rows);
    batch_job j = {k, w, b};
    qk_pool_run(pool, run_batch_share, &j);
}

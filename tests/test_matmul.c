/* The several-column paths (qk_kernel.matmul) of every variant that has one, CPU rows and the GPU
 * rows' emulations: each column bit-identical to the variant's matvec on that column alone, for
 * any column count, row range and duplicated activations, writing only its rows; and the batch
 * MUL_MAT_ID driver (qk_moe_forward_batch) bit-identical to one matvec per routed slot, with and
 * without a matmul. */
#include "qk_test.h"
#include "test_util.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/matvec.h"
#include "../kernels/qk_quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_N = 16, PAD = 16 /* poisoned floats after each column's rows */ };

static const size_t COLS[] = {256, 2048};
static const size_t ROWS[] = {37, 64}; /* 37: not a multiple of 2, 4 or 8 (partial row groups) */
static const size_t NS[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 16};

/* x (cols f32) in format fmt, by the reference quantizers; out holds qk_format_bytes(fmt, cols) */
static void activations(qk_format fmt, const float *x, size_t cols, void *out) {
    if (fmt == QK_FMT_Q8_K)
        qk_quantize_q8k_ref(x, out, cols);
    else if (fmt == QK_FMT_Q8_1)
        qk_quantize_q8_1_ref(x, out, cols);
    else
        memcpy(out, x, cols * sizeof *x);
}

/* The row ranges judged: r0 a multiple of row_group; r1 the last row or not, inside a group or
 * on its boundary. */
static size_t row_ranges(size_t rows, size_t group, size_t r0s[8], size_t r1s[8]) {
    const size_t last = (rows - 1) / group * group; /* the last group's first row */
    const size_t cand[][2] = {
        {0, rows},          {group, rows},          {0, rows - 3}, {last, rows},
        {group, group + 1}, {2 * group, 3 * group}, {0, 1},
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof cand / sizeof cand[0]; i++)
        if (cand[i][0] < cand[i][1] && cand[i][1] <= rows) {
            r0s[n] = cand[i][0];
            r1s[n++] = cand[i][1];
        }
    return n;
}

/* Every column of k->matmul on [r0, r1) against k->matvec on that column alone, bit for bit;
 * outside [r0, r1) (and past the rows) the poison must stay. Returns the failing columns. */
static int judge_range(const qk_kernel *k, const void *w, size_t rows, size_t cols, size_t r0,
                       size_t r1, const void *const *xs, size_t n, float *const *ys, float *want) {
    for (size_t c = 0; c < n; c++)
        poison(ys[c], rows + PAD);
    k->matmul(w, rows, cols, r0, r1, xs, ys, n);
    int bad = 0;
    for (size_t c = 0; c < n; c++) {
        poison(want, rows);
        k->matvec(w, rows, cols, r0, r1, xs[c], want);
        int ok = !memcmp(ys[c] + r0, want + r0, (r1 - r0) * sizeof *want);
        for (size_t i = 0; i < rows + PAD; i++)
            if (i < r0 || i >= r1) ok &= isnan(ys[c][i]) != 0;
        if (!ok && bad++ < 2)
            printf("  %s %zux%zu rows [%zu, %zu) n=%zu: column %zu differs from matvec or writes "
                   "outside its rows\n",
                   k->name, rows, cols, r0, r1, n, c);
    }
    return bad;
}

static void test_matmul_vs_matvec(void) {
    qk_rng r;
    qk_rng_seed(&r, 1801);
    int covered = 0;
    for (size_t v = 0; v < qk_test_variant_count(); v++) {
        const qk_kernel *k = qk_test_variant(v);
        if (k->op != QK_OP_MATVEC || !k->matmul) continue;
        const char *why = qk_test_unsupported(k);
        if (why) {
            printf("skip %s: %s\n", k->name, why);
            continue;
        }
        covered++;
        for (size_t ci = 0; ci < sizeof COLS / sizeof COLS[0]; ci++)
            for (size_t ri = 0; ri < sizeof ROWS / sizeof ROWS[0]; ri++) {
                const size_t cols = COLS[ci], rows = ROWS[ri], nb = cols / QK_K;
                qk_block_q4k *plain = malloc(rows * nb * sizeof *plain);
                make_random_q4k(&r, plain, rows * nb);
                qk_weights wl;
                CHECK(qk_weights_prepare(k, plain, rows, cols, 1, &wl) == 0, "prepare %s", k->name);
                /* MAX_N distinct random activation columns */
                const size_t xbytes = qk_format_bytes(k->act_format, cols);
                char *act = malloc(MAX_N * xbytes);
                float *x = malloc(cols * sizeof *x);
                for (size_t c = 0; c < MAX_N; c++) {
                    qk_act_fill(&r, (qk_act_profile)(c % QK_ACT_COUNT), x, cols);
                    activations(k->act_format, x, cols, act + c * xbytes);
                }
                float *ys[MAX_N], *want = alloc_poisoned(rows);
                for (size_t c = 0; c < MAX_N; c++)
                    ys[c] = alloc_poisoned(rows + PAD);
                size_t r0s[8], r1s[8];
                const size_t nr = row_ranges(rows, k->row_group, r0s, r1s);
                for (size_t ni = 0; ni < sizeof NS / sizeof NS[0]; ni++)
                    for (int dup = 0; dup < 2; dup++) {
                        /* dup: columns repeat earlier ones (tokens with the same activations),
                         * adjacent and not, the first column at the end */
                        const size_t n = NS[ni];
                        const void *xs[MAX_N];
                        for (size_t c = 0; c < n; c++) {
                            size_t src = dup ? (c % 3 == 2 ? c - 1 : c / 2) : c;
                            if (dup && c + 1 == n && n > 1) src = 0;
                            xs[c] = act + src * xbytes;
                        }
                        for (size_t i = 0; i < nr; i++)
                            CHECK(!judge_range(k, wl.data, rows, cols, r0s[i], r1s[i], xs, n, ys,
                                               want),
                                  "%s %zux%zu rows [%zu, %zu), n = %zu%s: matmul vs matvec",
                                  k->name, rows, cols, r0s[i], r1s[i], n,
                                  dup ? ", duplicated columns" : "");
                    }
                for (size_t c = 0; c < MAX_N; c++)
                    free(ys[c]);
                free(want);
                free(x);
                free(act);
                qk_weights_release(&wl);
                free(plain);
            }
    }
    /* the four q4k_q8k CPU variants have one; one of them runs on every x86-64 CPU */
    CHECK(covered >= 1, "no variant with a matmul ran");
}

/* qk_moe_forward_batch for a batch of tokens, k = 8 experts of 16 each, ids repeating within a
 * token (slots 1 and 7) and expert 5 shared by all tokens, against one matvec per slot on its
 * token's activations (quantized by the same quantizer): bit-identical, every output written,
 * with 1 and 3 threads, run twice on one qk_moe_batch. */
static void judge_batch(const qk_kernel *k, const qk_block_q4k *plain, size_t rows, size_t cols,
                        size_t n_experts, qk_rng *r) {
    enum { K = 8, SHARED = 5 };
    static const size_t TOKENS[] = {1, 2, 8, 64};
    const qk_kernel *quant =
        k->act_format == QK_FMT_F32 ? NULL : qk_cpu_best_quantizer(k->act_format);
    const size_t xbytes = qk_format_bytes(k->act_format, cols);
    qk_weights wl;
    CHECK(qk_weights_prepare(k, plain, rows, cols, n_experts, &wl) == 0, "prepare %s", k->name);
    for (size_t ti = 0; ti < sizeof TOKENS / sizeof TOKENS[0]; ti++) {
        const size_t nt = TOKENS[ti], slots = nt * K;
        float *x = malloc(nt * cols * sizeof *x);
        char *xq = malloc(nt * xbytes), *xq_want = malloc(nt * xbytes);
        int32_t *ids = malloc(slots * sizeof *ids);
        float *y = alloc_poisoned(slots * rows), *want = alloc_poisoned(slots * rows);
        for (size_t t = 0; t < nt; t++) {
            qk_act_fill(r, (qk_act_profile)(t % QK_ACT_COUNT), x + t * cols, cols);
            if (quant)
                quant->quantize(x + t * cols, xq_want + t * xbytes, cols);
            else
                memcpy(xq_want + t * xbytes, x + t * cols, xbytes);
            for (size_t j = 0; j < K; j++)
                ids[t * K + j] = (int32_t)qk_rng_below(r, n_experts);
            ids[t * K] = SHARED;
            ids[t * K + 7] = ids[t * K + 1];
        }
        for (size_t s = 0; s < slots; s++)
            k->matvec((const char *)wl.data + (size_t)ids[s] * wl.expert_bytes, rows, cols, 0, rows,
                      xq_want + s / K * xbytes, want + s * rows);
        qk_moe_batch b;
        CHECK(qk_moe_batch_init(&b, nt, K, n_experts) == 0, "batch init");
        for (int threads = 1; threads <= 3; threads += 2) {
            qk_pool *pool = qk_pool_create(threads);
            for (int rep = 0; rep < 2; rep++) {
                poison(y, slots * rows);
                qk_moe_forward_batch(pool, quant, k, &wl, &b, ids, x, xq, y);
                CHECK(!memcmp(y, want, slots * rows * sizeof *y),
                      "%s%s, %zu tokens, %d threads, run %d: batch differs from a matvec per slot",
                      k->name, k->matmul ? "" : " (no matmul)", nt, threads, rep);
            }
            qk_pool_destroy(pool);
        }
        qk_moe_batch_free(&b);
        free(x);
        free(xq);
        free(xq_want);
        free(ids);
        free(y);
        free(want);
    }
    qk_weights_release(&wl);
}

static void test_batch_driver(void) {
    enum { E = 16, ROWS_B = 37, COLS_B = 512 };
    qk_rng r;
    qk_rng_seed(&r, 1802);
    qk_block_q4k *plain = malloc((size_t)E * ROWS_B * (COLS_B / QK_K) * sizeof *plain);
    make_random_q4k(&r, plain, (size_t)E * ROWS_B * (COLS_B / QK_K));
    /* the fastest CPU variant with a matmul that runs here (the table lists them slowest
     * first), and the same variant without it: the driver's matvec-per-slot path */
    const qk_kernel *with = NULL;
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        if (k->op == QK_OP_MATVEC && k->matmul && !qk_cpu_unsupported(k)) with = k;
    }
    CHECK(with != NULL, "no CPU variant with a matmul runs here");
    if (with) {
        printf("batch driver: %s with and without its matmul\n", with->name);
        judge_batch(with, plain, ROWS_B, COLS_B, E, &r);
        qk_kernel without = *with;
        without.matmul = NULL;
        judge_batch(&without, plain, ROWS_B, COLS_B, E, &r);
    }
    /* and a table row without one, where the table still has such a row */
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        if (k->op == QK_OP_MATVEC && !k->matmul && !qk_cpu_unsupported(k)) {
            printf("batch driver: %s (no matmul)\n", k->name);
            judge_batch(k, plain, ROWS_B, COLS_B, E, &r);
            break;
        }
    }
    free(plain);
}

/* The batch's thread shares (weighted by cost): every row of every expert group once, in row
 * groups, for any routing (one expert serving every token twice included) and thread count. */
typedef struct {
    unsigned char *seen; /* [group][row] */
    size_t rows, row_group;
    int bad;
} share_check;
static void mark_share(void *ctx, size_t g, size_t r0, size_t r1) {
    share_check *c = ctx;
    if (r0 >= r1 || r1 > c->rows || r0 % c->row_group || (r1 % c->row_group && r1 != c->rows))
        c->bad = 1;
    for (size_t r = r0; r < r1 && r < c->rows; r++)
        c->seen[g * c->rows + r]++;
}
static void test_batch_shares(void) {
    qk_rng r;
    qk_rng_seed(&r, 77);
    enum { E = 40, K = 8 };
    static const size_t tokens[] = {1, 2, 8, 64}, rowss[] = {1, 7, 37, 768}, groups[] = {1, 4, 8};
    int32_t ids[64 * K];
    for (size_t ti = 0; ti < sizeof tokens / sizeof *tokens; ti++)
        for (int skew = 0; skew < 2; skew++) {
            const size_t nt = tokens[ti];
            qk_moe_batch b;
            CHECK(qk_moe_batch_init(&b, nt, K, E) == 0, "batch init");
            for (size_t i = 0; i < nt * K; i++) /* skewed: expert 3 in every token, twice */
                ids[i] = skew && i % K < 2 ? 3 : (int32_t)qk_rng_below(&r, E);
            float y;
            qk_moe_batch_route(&b, ids, ids, 0, &y, 0);
            for (size_t ri = 0; ri < sizeof rowss / sizeof *rowss; ri++)
                for (size_t gi = 0; gi < sizeof groups / sizeof *groups; gi++)
                    for (int threads = 1; threads <= 7; threads++) {
                        share_check c = {calloc(b.n_groups * rowss[ri], 1), rowss[ri], groups[gi],
                                         0};
                        for (int t = 0; t < threads; t++)
                            qk_moe_batch_ranges(&b, groups[gi], rowss[ri], t, threads, mark_share,
                                                &c);
                        int once = !c.bad;
                        for (size_t i = 0; i < b.n_groups * rowss[ri]; i++)
                            once &= c.seen[i] == 1;
                        CHECK(once,
                              "%zu tokens%s, %zu rows in groups of %zu, %d threads: a row "
                              "computed twice, never, or out of its row group",
                              nt, skew ? " (skewed)" : "", rowss[ri], groups[gi], threads);
                        free(c.seen);
                    }
            qk_moe_batch_free(&b);
        }
}

int main(void) {
    test_matmul_vs_matvec();
    test_batch_driver();
    test_batch_shares();
    return qk_test_finish("matmul");
}

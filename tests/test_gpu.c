/* On a machine with a CUDA GPU: every GPU variant's real kernel against its C emulation, bit
 * for bit (multi-expert launches with repeated ids, shapes with 1..56 super-blocks per row,
 * every activation profile), the fused e2e against quantize + matvec, and the GPU quantizers
 * against the references on the edge-case series. Without a GPU it says why and runs nothing:
 * the emulations are judged by the kernels and quantizers suites on every machine. */
#include "qk_test.h"
#include "test_util.h"
#include "../gpu/gpu_kernels.h"
#include "../gpu/qk_fastdiv.h"
#include "../kernels/qk_quant.h"
#include <stdlib.h>
#include <string.h>

/* Runs k on the GPU over the experts `ids` and compares with the emulation; returns the number
 * of outputs that differ in any bit (-1 when the GPU run failed). */
static long compare_matvec(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                           size_t n_experts, const int32_t *ids, size_t n_ids, const float *x) {
    char err[512];
    qk_gpu_case *c =
        qk_gpu_case_create(k, w, rows, cols, n_experts, ids, n_ids, x, err, sizeof err);
    if (!c) {
        printf("  %s: %s\n", k->name, err);
        return -1;
    }
    float *got = alloc_poisoned(n_ids * rows), *want = alloc_poisoned(n_ids * rows);
    long bad = -1;
    if (qk_gpu_case_run(c, got, err, sizeof err) == 0) {
        void *xq = malloc(qk_format_bytes(k->act_format, cols));
        const void *act = x;
        if (k->act_format == QK_FMT_Q8_K) qk_quantize_q8k_ref(x, xq, cols), act = xq;
        if (k->act_format == QK_FMT_Q8_1) qk_quantize_q8_1_ref(x, xq, cols), act = xq;
        const size_t per_expert = rows * (cols / QK_K);
        for (size_t i = 0; i < n_ids; i++)
            k->matvec(w + (size_t)ids[i] * per_expert, rows, cols, 0, rows, act, want + i * rows);
        bad = 0;
        for (size_t i = 0; i < n_ids * rows; i++)
            bad += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
        if (bad)
            for (size_t i = 0; i < n_ids * rows; i++)
                if (memcmp(&got[i], &want[i], sizeof got[i])) {
                    printf("  %s: first difference at output %zu: gpu %.9g emulation %.9g\n",
                           k->name, i, got[i], want[i]);
                    break;
                }
        free(xq);
    } else {
        printf("  %s: %s\n", k->name, err);
    }
    free(got), free(want);
    qk_gpu_case_destroy(c);
    return bad;
}

static int quick; /* QK_GPU_TEST_QUICK=1: a subset, for compute-sanitizer's slow runs */

static void test_matvecs(void) {
    static const struct {
        size_t rows, cols;
    } shapes[] = {{768, 2048}, {2048, 768}, {7, 14336}, {13, 256}, {5, 768},
                  {33, 2304},  {6, 512},    {9, 1024}}; /* 8, 3, 56, 1, 3, 9, 2, 4 super-blocks */
    const int32_t ids[] = {3, 0, 3, 1};                 /* a repeated expert */
    qk_rng r;
    qk_rng_seed(&r, 4242);
    for (size_t s = 0; s < (quick ? 2 : sizeof shapes / sizeof shapes[0]); s++) {
        const size_t rows = shapes[s].rows, cols = shapes[s].cols, n_experts = 4;
        qk_block_q4k *w = malloc(n_experts * rows * (cols / QK_K) * sizeof *w);
        if (s % 2)
            make_random_q4k(&r, w, n_experts * rows * (cols / QK_K));
        else
            make_quantized_q4k(&r, w, n_experts * rows, cols);
        float *x = malloc(cols * sizeof *x);
        for (int p = 0; p < (quick ? 2 : QK_ACT_COUNT); p++) {
            qk_act_fill(&r, (qk_act_profile)p, x, cols);
            for (size_t i = 0; i < qk_gpu_kernel_count; i++) {
                const qk_kernel *k = &qk_gpu_kernels[i];
                if (k->op != QK_OP_MATVEC) continue;
                long bad = compare_matvec(k, w, rows, cols, n_experts, ids, 4, x);
                CHECK(bad == 0,
                      "%s on 4 experts of %zux%zu, %s: %ld outputs differ from the "
                      "emulation",
                      k->name, rows, cols, qk_act_name((qk_act_profile)p), bad);
            }
        }
        free(w), free(x);
    }
}

static void test_quantizers(void) {
    enum { NB = 16, N = NB * QK_K };
    qk_rng r;
    qk_rng_seed(&r, 999);
    float *x = malloc(N * sizeof *x);
    const char *names[NB];
    for (int round = 0; round < (quick ? 2 : 20); round++) {
        for (int b = 0; b < NB; b++)
            names[b] = make_edge_block(&r, b, x + b * QK_K);
        for (size_t i = 0; i < qk_gpu_kernel_count; i++) {
            const qk_kernel *k = &qk_gpu_kernels[i];
            if (k->op != QK_OP_QUANTIZE) continue;
            const size_t bytes = qk_format_bytes(k->act_format, N);
            unsigned char *want = malloc(bytes), *got = malloc(bytes);
            memset(want, 0x5a, bytes);
            memset(got, 0xa5, bytes);
            if (k->act_format == QK_FMT_Q8_K)
                qk_quantize_q8k_ref(x, (qk_block_q8k *)want, N);
            else
                qk_quantize_q8_1_ref(x, (qk_block_q8_1 *)want, N);
            char err[512];
            int32_t id = 0;
            qk_block_q4k dummy;
            memset(&dummy, 0, sizeof dummy);
            qk_gpu_case *c = qk_gpu_case_create(k, &dummy, 0, N, 0, &id, 1, x, err, sizeof err);
            int ok = c && qk_gpu_case_run(c, got, err, sizeof err) == 0;
            CHECK(ok, "%s: %s", k->name, err);
            if (ok) {
                const size_t per = bytes / NB; /* bytes per 256 inputs */
                for (int b = 0; b < NB; b++)
                    CHECK(!memcmp(want + b * per, got + b * per, per),
                          "%s differs from the reference on block '%s' (round %d)", k->name,
                          names[b], round);
            }
            qk_gpu_case_destroy(c);
            free(want), free(got);
        }
    }
    free(x);
}

/* The fused launch quantizes to the same bytes and runs the same dot products. */
static void test_e2e_equals_two_launches(void) {
    enum { ROWS = 768, COLS = 2048, E = 8 };
    qk_rng r;
    qk_rng_seed(&r, 7);
    qk_block_q4k *w = malloc((size_t)E * ROWS * (COLS / QK_K) * sizeof *w);
    make_random_q4k(&r, w, (size_t)E * ROWS * (COLS / QK_K));
    float x[COLS];
    qk_act_fill(&r, QK_ACT_OUTLIERS, x, COLS);
    int32_t ids[E] = {7, 2, 5, 2, 0, 1, 6, 3};
    float *a = alloc_poisoned(E * ROWS), *b = alloc_poisoned(E * ROWS);
    char err[512];
    qk_gpu_case *two = qk_gpu_case_create(qk_gpu_kernel("dp4a_q4k_q8"), w, ROWS, COLS, E, ids, E, x,
                                          err, sizeof err);
    qk_gpu_case *one = qk_gpu_case_create(qk_gpu_kernel("dp4a_q4k_q8_e2e"), w, ROWS, COLS, E, ids,
                                          E, x, err, sizeof err);
    int ok = two && one && !qk_gpu_case_run(two, a, err, sizeof err) &&
             !qk_gpu_case_run(one, b, err, sizeof err);
    CHECK(ok, "e2e vs two launches: %s", err);
    if (ok) CHECK(!memcmp(a, b, E * ROWS * sizeof *a), "e2e differs from quantize + matvec");
    qk_gpu_case_destroy(two);
    qk_gpu_case_destroy(one);
    free(a), free(b), free(w);
}

/* The kernels' row -> expert division, on the host (the same code): edge divisors and
 * numerators exhaustively near each multiple, random pairs otherwise. */
static void test_fastdiv(void) {
    static const uint32_t ds[] = {
        1,       2,    3,    5,    7,    64,    96,    127,   128,      768,
        1536,    2048, 2047, 4096, 6144, 65535, 65536, 65537, 1u << 30, (1u << 31) - 1,
        1u << 31};
    long bad = 0, checked = 0;
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        const qk_fastdiv f = qk_fastdiv_make(ds[i]);
        for (uint64_t q = 0; q < 4096; q++)
            for (int e = -2; e <= 2; e++) {
                const int64_t n = (int64_t)(q * ds[i]) + e;
                if (n < 0 || n > UINT32_MAX) continue;
                bad += qk_fastdiv_div(f, (uint32_t)n) != (uint32_t)n / ds[i];
                checked++;
            }
        bad += qk_fastdiv_div(f, UINT32_MAX) != UINT32_MAX / ds[i];
    }
    uint64_t s = 0x9e3779b97f4a7c15u;
    for (int t = 0; t < 1000000; t++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        const uint32_t d = (uint32_t)(s >> 33) % (1u << 31) + 1, n = (uint32_t)s;
        bad += qk_fastdiv_div(qk_fastdiv_make(d), n) != n / d;
        checked++;
    }
    CHECK(bad == 0, "fast division: %ld of %ld quotients wrong", bad, checked);
}

int main(void) {
    test_fastdiv();
    const char *why = qk_gpu_unsupported();
    if (why) {
        printf("gpu: not run here: %s (the emulations are judged by the kernels and quantizers "
               "suites)\n",
               why);
        return qk_test_finish("gpu");
    }
    const char *q = getenv("QK_GPU_TEST_QUICK");
    quick = q && *q == '1';
    test_matvecs();
    test_quantizers();
    test_e2e_equals_two_launches();
    return qk_test_finish("gpu");
}

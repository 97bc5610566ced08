/* The row-parallel driver: any thread count, k experts of E with repeated ids, bit-identical to
 * calling the variant directly on each expert; the run-time ISA selection; the pool's parking. */
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#include "qk_test.h"
#include "test_util.h"
#include "../cpu/cpu_features.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/matvec.h"
#include "../kernels/qk_quant.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_experts(void) {
    enum { E = 16, ROWS = 100, COLS = 768, NB = COLS / QK_K };
    const int32_t ids[] = {3, 15, 3, 0, 7, 7, 7, 12, 1}; /* repeats on purpose */
    const size_t K = sizeof ids / sizeof ids[0];
    qk_rng r;
    qk_rng_seed(&r, 99);
    qk_block_q4k *w = malloc((size_t)E * ROWS * NB * sizeof *w);
    make_random_q4k(&r, w, (size_t)E * ROWS * NB);
    float x[COLS];
    qk_act_fill(&r, QK_ACT_OUTLIERS, x, COLS);
    qk_block_q8k xq[NB], xq_ref[NB];
    qk_quantize_q8k_ref(x, xq_ref, COLS);
    float *want = alloc_poisoned(K * ROWS), *got = alloc_poisoned(K * ROWS);
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        if (k->op != QK_OP_MATVEC || qk_cpu_unsupported(k)) continue;
        const qk_kernel *quant =
            k->act_format == QK_FMT_Q8_K ? qk_cpu_kernel("quant_q8k_ref") : NULL;
        qk_weights wl;
        CHECK(qk_weights_prepare(k, w, ROWS, COLS, E, &wl) == 0, "prepare %s", k->name);
        const void *act = quant ? (const void *)xq_ref : (const void *)x;
        poison(want, K * ROWS);
        for (size_t j = 0; j < K; j++)
            k->matvec((const char *)wl.data + (size_t)ids[j] * wl.expert_bytes, ROWS, COLS, 0, ROWS,
                      act, want + j * ROWS);
        for (int threads = 1; threads <= 3; threads++) {
            qk_pool *pool = qk_pool_create(threads);
            for (int rep = 0; rep < 3; rep++) {
                poison(got, K * ROWS);
                qk_moe_forward(pool, quant, k, &wl, ids, K, x, xq, got);
                CHECK(!memcmp(want, got, K * ROWS * sizeof *got),
                      "%s, %d threads: driver output differs from direct calls", k->name, threads);
            }
            qk_pool_destroy(pool);
        }
        /* repeated ids give identical slices */
        CHECK(!memcmp(got, got + 2 * ROWS, ROWS * sizeof *got) &&
                  !memcmp(got + 4 * ROWS, got + 6 * ROWS, ROWS * sizeof *got),
              "%s: a repeated expert id gave different outputs", k->name);
        qk_weights_release(&wl);
    }
    /* single matrix, ids == NULL, 37 rows: not a multiple of 2, 4 or 8 (partial row groups) */
    qk_pool *pool = qk_pool_create(2);
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        if (k->op != QK_OP_MATVEC || qk_cpu_unsupported(k)) continue;
        const void *act = k->act_format == QK_FMT_Q8_K ? (const void *)xq_ref : (const void *)x;
        qk_weights wl;
        CHECK(qk_weights_prepare(k, w, 37, COLS, 1, &wl) == 0, "prepare %s", k->name);
        poison(got, 37);
        poison(want, 37);
        qk_matvec_experts(pool, k, &wl, NULL, 1, act, got);
        k->matvec(wl.data, 37, COLS, 0, 37, act, want);
        CHECK(!memcmp(want, got, 37 * sizeof *got), "%s: single-matrix driver run", k->name);
        qk_weights_release(&wl);
    }
    qk_pool_destroy(pool);
    free(w);
    free(want);
    free(got);
}

static void test_isa_selection(void) {
    const char *hidden = getenv("QK_DISABLE_ISA");
    uint32_t isa = qk_cpu_isa();
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        const char *why = qk_cpu_unsupported(k);
        CHECK((why == NULL) == ((k->isa & ~isa) == 0), "%s: support must follow CPUID", k->name);
        if (why) printf("  %s skipped: %s\n", k->name, why);
    }
    CHECK(qk_cpu_unsupported(qk_cpu_kernel("q4k_q8k_ref")) == NULL, "scalar runs everywhere");
    if (hidden && strstr(hidden, "avx512")) {
        CHECK(!(isa & QK_ISA_AVX512), "QK_DISABLE_ISA=%s must hide AVX-512", hidden);
        const char *why = qk_cpu_unsupported(qk_cpu_kernel("q4k_q8k_vnni"));
        CHECK(why && strstr(why, "avx512"), "q4k_q8k_vnni must say what it needs");
    }
}

static void count_job(void *arg, int ti, int nt) {
    (void)nt;
    atomic_fetch_add((_Atomic int *)arg, 1 + ti);
}
static double process_cpu_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* qk_pool_park: once it returns the workers sleep (a MOE plug-in's threads get the CPUs): over
 * 50 ms the process spends almost no CPU time, where spinning workers would spend ~1.7 ms each
 * after the job; the next job wakes them all. */
static void test_park(void) {
    for (int threads = 1; threads <= 3; threads++) {
        qk_pool *pool = qk_pool_create(threads);
        _Atomic int sum = 0;
        qk_pool_run(pool, count_job, (void *)&sum);
        qk_pool_park(pool);
        double cpu0 = process_cpu_s();
        struct timespec nap = {0, 50000000};
        nanosleep(&nap, NULL);
        double spent = process_cpu_s() - cpu0;
        CHECK(spent < 0.5e-3 * threads, "%d threads: %.2f ms of CPU while parked", threads,
              1e3 * spent);
        qk_pool_run(pool, count_job, (void *)&sum);
        CHECK(sum == threads * (threads + 1), "%d threads: a job after parking ran on %d", threads,
              sum);
        qk_pool_destroy(pool);
    }
}

int main(void) {
    test_park();
    test_isa_selection();
    test_experts();
    return qk_test_finish("matvec");
}

/* On a machine with a CUDA GPU: every GPU variant's real kernel against its C emulation, bit
 * for bit (multi-expert launches with repeated ids, shapes with 1..56 super-blocks per row,
 * every activation profile), batches of 2, 8 and 64 tokens (MUL_MAT_ID) slot by slot, the fused e2e
 * against quantize + matvec, and the GPU quantizers against the references on the edge-case series;
 * then the timing (issue 13): cold samples held by the blocking kernel and within 1 us of CUPTI's
 * kernel time, decode between hot and cold over more than 3x the L2, the read-only roof not slower
 * than the unit, NVML's clock. Without a GPU it says why and runs nothing: the emulations are
 * judged by the kernels and quantizers suites on every machine. QK_GPU_TEST_REPORT=N (e.g. 200)
 * adds the figures of bench/gpu_rigor_check.sh, N samples a median. */
#define _POSIX_C_SOURCE 200809L
#include "qk_test.h"
#include "test_util.h"
#include "../gpu/gpu_kernels.h"
#include "../gpu/qk_fastdiv.h"
#include "../kernels/qk_quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Runs k on the GPU over n_tokens tokens (token t: activations x + t*cols, expert ids
 * ids + t*n_ids) and compares each slot's outputs with the emulation of that slot alone (its
 * expert times its token's activations, quantized by the reference); returns the number of
 * outputs that differ in any bit (-1 when the GPU run failed). Each run starts from poisoned
 * outputs (qk_gpu_case_run), twice, so that a second run cannot pass on the first's results. */
static long compare_batch(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                          size_t n_experts, const int32_t *ids, size_t n_tokens, size_t n_ids,
                          const float *x) {
    char err[512];
    qk_gpu_case *c =
        qk_gpu_case_create(k, w, rows, cols, n_experts, ids, n_tokens, n_ids, x, err, sizeof err);
    if (!c) {
        printf("  %s: %s\n", k->name, err);
        return -1;
    }
    const size_t n_out = n_tokens * n_ids * rows;
    float *got = alloc_poisoned(n_out), *want = alloc_poisoned(n_out);
    const size_t xq_bytes = qk_format_bytes(k->act_format, cols);
    void *xq = malloc(xq_bytes);
    const size_t per_expert = rows * (cols / QK_K);
    for (size_t t = 0; t < n_tokens; t++) {
        const float *xt = x + t * cols;
        const void *act = xt;
        if (k->act_format == QK_FMT_Q8_K) qk_quantize_q8k_ref(xt, xq, cols), act = xq;
        if (k->act_format == QK_FMT_Q8_1) qk_quantize_q8_1_ref(xt, xq, cols), act = xq;
        for (size_t i = 0; i < n_ids; i++) {
            const size_t slot = t * n_ids + i;
            k->matvec(w + (size_t)ids[slot] * per_expert, rows, cols, 0, rows, act,
                      want + slot * rows);
        }
    }
    free(xq);
    long bad = -1;
    for (int run = 0; run < 2; run++) {
        memset(got, 0xa5, n_out * sizeof *got);
        if (qk_gpu_case_run(c, got, err, sizeof err)) {
            printf("  %s: %s\n", k->name, err);
            bad = -1;
            break;
        }
        bad = 0;
        for (size_t i = 0; i < n_out; i++)
            bad += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
        if (bad) {
            for (size_t i = 0; i < n_out; i++)
                if (memcmp(&got[i], &want[i], sizeof got[i])) {
                    printf("  %s: first difference at slot %zu row %zu: gpu %.9g emulation "
                           "%.9g\n",
                           k->name, i / rows, i % rows, got[i], want[i]);
                    break;
                }
            break;
        }
    }
    free(got), free(want);
    qk_gpu_case_destroy(c);
    return bad;
}

static long compare_matvec(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                           size_t n_experts, const int32_t *ids, size_t n_ids, const float *x) {
    return compare_batch(k, w, rows, cols, n_experts, ids, 1, n_ids, x);
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

/* Several tokens (MUL_MAT_ID for a batch): every GPU matvec variant at 1, 2, 8 and 64 tokens of
 * 8 expert ids each, each slot bit-identical to the emulation of that slot alone. Every token
 * lists expert 1 (one expert shared by the whole batch: 64 columns, several passes of 8) and
 * one expert twice; the shapes take the grouped rows (1..4 super-blocks), one step of 8 and
 * several, rows that leave the last tile partial, and 56 super-blocks (Q8 columns staged 5 to
 * a pass, f32 columns read from global memory). */
static void test_batched(void) {
    static const struct {
        size_t rows, cols, n_experts;
    } shapes[] = {{45, 2048, 16}, {37, 768, 12},  {13, 256, 9},   {9, 1024, 10},
                  {6, 512, 16},   {33, 2304, 11}, {7, 14336, 10}, {300, 2048, 64}};
    static const size_t tokens[] = {1, 2, 8, 64};
    enum { K = 8 };
    qk_rng r;
    qk_rng_seed(&r, 1818);
    const size_t n_shapes = quick ? 2 : sizeof shapes / sizeof shapes[0];
    for (size_t s = 0; s < n_shapes; s++) {
        const size_t rows = shapes[s].rows, cols = shapes[s].cols, n_experts = shapes[s].n_experts;
        const size_t nblocks = n_experts * rows * (cols / QK_K);
        qk_block_q4k *w = malloc(nblocks * sizeof *w);
        if (s % 2)
            make_random_q4k(&r, w, nblocks);
        else
            make_quantized_q4k(&r, w, n_experts * rows, cols);
        for (size_t ti = 0; ti < sizeof tokens / sizeof tokens[0]; ti++) {
            const size_t n_tokens = tokens[ti];
            if (quick && n_tokens == 64 && s) continue; /* one shape keeps the rank routing */
            float *x = malloc(n_tokens * cols * sizeof *x);
            int32_t *ids = malloc(n_tokens * K * sizeof *ids);
            for (size_t t = 0; t < n_tokens; t++) {
                qk_act_fill(&r, (qk_act_profile)((t + s) % QK_ACT_COUNT), x + t * cols, cols);
                int32_t *id = ids + t * K;
                for (int i = 0; i < K; i++)
                    id[i] = (int32_t)qk_rng_below(&r, n_experts);
                id[3 + qk_rng_below(&r, 2)] = 1; /* every token */
                id[K - 1 - t % 3] = id[t % 3];   /* twice in this token */
            }
            for (size_t i = 0; i < qk_gpu_kernel_count; i++) {
                const qk_kernel *k = &qk_gpu_kernels[i];
                if (k->op != QK_OP_MATVEC) continue;
                const long bad = compare_batch(k, w, rows, cols, n_experts, ids, n_tokens, K, x);
                CHECK(bad == 0,
                      "%s, %zu tokens x %d ids of %zu experts of %zux%zu: %ld outputs differ from "
                      "the emulation",
                      k->name, n_tokens, K, n_experts, rows, cols, bad);
            }
            free(x), free(ids);
        }
        free(w);
    }
}

/* What the batched cases refuse, each in one line: a quantizer with several tokens, an id out
 * of range. */
static void test_batched_refusals(void) {
    float x[2 * QK_K];
    for (int i = 0; i < 2 * QK_K; i++)
        x[i] = (float)(i % 7) - 3.0f;
    qk_block_q4k w[2];
    memset(w, 0, sizeof w);
    const int32_t ids[2] = {0, 2};
    char err[512] = "";
    qk_gpu_case *c = qk_gpu_case_create(qk_gpu_kernel("gpu_quant_q8k"), w, 0, QK_K, 0, ids, 2, 1, x,
                                        err, sizeof err);
    CHECK(!c && strstr(err, "one token"), "a quantizer with 2 tokens: %s", c ? "accepted" : err);
    qk_gpu_case_destroy(c);
    c = qk_gpu_case_create(qk_gpu_kernel("dp4a_q4k_q8_e2e"), w, 1, QK_K, 2, ids, 2, 1, x, err,
                           sizeof err);
    CHECK(!c && strstr(err, "expert id 2"), "an id out of range: %s", c ? "accepted" : err);
    qk_gpu_case_destroy(c);
}

static void test_quantizers(void) {
    enum { NB = 16, N = NB * QK_K };
    qk_rng r;
    qk_rng_seed(&r, 999);
    float *x = malloc(N * sizeof *x);
    const char *names[NB];
    for (int round = 0; round < (quick ? 2 : 20); round++) {
        for (int b = 0; b < NB; b++)
            names[b] = qk_edge_block(&r, b, x + b * QK_K);
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
            qk_gpu_case *c = qk_gpu_case_create(k, &dummy, 0, N, 0, &id, 1, 1, x, err, sizeof err);
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
    qk_gpu_case *two = qk_gpu_case_create(qk_gpu_kernel("dp4a_q4k_q8"), w, ROWS, COLS, E, ids, 1, E,
                                          x, err, sizeof err);
    qk_gpu_case *one = qk_gpu_case_create(qk_gpu_kernel("dp4a_q4k_q8_e2e"), w, ROWS, COLS, E, ids,
                                          1, E, x, err, sizeof err);
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

/* ---- timing (issue 13) ---- */
static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double median(const double *v, int n) {
    if (n < 1) return 0;
    double *t = malloc((size_t)n * sizeof *t);
    memcpy(t, v, (size_t)n * sizeof *t);
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    const double m = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    free(t);
    return m;
}

/* n samples of one temperature: medians of the event and CUPTI times, how many were held, the
 * SM clock's range over them. */
typedef struct {
    double event, kernel, clock_min, clock_med, clock_max;
    int held, n, units, copies, kernels;
} series;
typedef int (*time_fn)(void *obj, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                       size_t err_size);
static int time_case(void *c, qk_gpu_temp t, int n, qk_gpu_sample *s, char *e, size_t es) {
    return qk_gpu_case_time(c, t, n, s, e, es);
}
static int time_read(void *r, qk_gpu_temp t, int n, qk_gpu_sample *s, char *e, size_t es) {
    return qk_gpu_read_time(r, t, n, s, e, es);
}
static int take(time_fn f, void *obj, qk_gpu_temp temp, int count, int n, series *out) {
    double *ev = malloc((size_t)n * sizeof *ev), *ke = malloc((size_t)n * sizeof *ke),
           *cl = malloc((size_t)n * sizeof *cl);
    char err[512];
    memset(out, 0, sizeof *out);
    qk_gpu_sample s;
    int rc = 0;
    for (int w = 0; w < 3 && !rc; w++) /* warm-up: graphs, copies, clocks */
        rc = f(obj, temp, count, &s, err, sizeof err);
    for (int i = 0; i < n && !rc; i++) {
        rc = f(obj, temp, count, &s, err, sizeof err);
        ev[i] = s.event_s, ke[i] = s.kernel_s, cl[i] = s.sm_clock_mhz;
        out->held += s.held;
    }
    if (rc) {
        printf("  timing: %s\n", err);
    } else {
        out->n = n;
        out->event = median(ev, n), out->kernel = median(ke, n);
        out->clock_med = median(cl, n);
        out->clock_min = out->clock_max = cl[0];
        for (int i = 1; i < n; i++) {
            if (cl[i] < out->clock_min) out->clock_min = cl[i];
            if (cl[i] > out->clock_max) out->clock_max = cl[i];
        }
        out->units = s.units, out->copies = s.copies, out->kernels = s.kernels;
    }
    free(ev), free(ke), free(cl);
    return rc;
}

/* The unit: top-8 experts of the 768x2048 gate projection, all different. */
enum { T_ROWS = 768, T_COLS = 2048, T_E = 8 };
static qk_gpu_case *timing_case(const char *name, qk_block_q4k *w, const float *x) {
    static const int32_t ids[T_E] = {5, 2, 7, 0, 3, 6, 1, 4};
    char err[512];
    qk_gpu_case *c = qk_gpu_case_create(qk_gpu_kernel(name), w, T_ROWS, T_COLS, T_E, ids, 1, T_E, x,
                                        err, sizeof err);
    CHECK(c, "%s: %s", name, err);
    return c;
}
/* The timing tests' weights (T_E experts, seeded) and activations x (T_COLS values). */
static qk_block_q4k *timing_data(float *x) {
    qk_rng r;
    qk_rng_seed(&r, 13);
    qk_block_q4k *w = malloc((size_t)T_E * T_ROWS * (T_COLS / QK_K) * sizeof *w);
    make_random_q4k(&r, w, (size_t)T_E * T_ROWS * (T_COLS / QK_K));
    qk_act_fill(&r, QK_ACT_NORMAL, x, T_COLS);
    return w;
}
/* What one unit moves (bench's byte count): the weights, f32 x, y. */
static size_t unit_bytes(const qk_gpu_case *c) {
    return qk_gpu_case_weight_bytes(c) + T_COLS * sizeof(float) +
           (size_t)T_E * T_ROWS * sizeof(float);
}

static void test_timing(void) {
    const int n = 50;
    float x[T_COLS];
    qk_block_q4k *w = timing_data(x);
    qk_gpu_case *c = timing_case("dp4a_q4k_q8_e2e", w, x);
    char err[512];
    if (!c) goto done;
    const size_t l2 = qk_gpu_l2_bytes(), wb = qk_gpu_case_weight_bytes(c);
    CHECK(wb == (size_t)T_E * T_ROWS * (T_COLS / QK_K) * sizeof(qk_block_q4k),
          "weight bytes of a unit: %zu", wb);

    series cold, hot, decode;
    CHECK(qk_gpu_set_hold(1) == 1, "holding is on by default");
    if (take(time_case, c, QK_GPU_COLD, 1, n, &cold) ||
        take(time_case, c, QK_GPU_HOT, 100, n, &hot) ||
        take(time_case, c, QK_GPU_DECODE, 1, n, &decode)) {
        CHECK(0, "timing the e2e unit failed");
        goto done;
    }
    printf("  e2e top-8 768x2048: cold %.2f us (kernel %.2f, %d/%d held), hot %.2f us, decode "
           "%.2f us (%d units over %d copies of %zu bytes, L2 %zu)\n",
           cold.event * 1e6, cold.kernel * 1e6, cold.held, n, hot.event * 1e6, decode.event * 1e6,
           decode.units, decode.copies, wb, l2);
    CHECK(cold.held >= n - n / 10, "cold: only %d of %d samples held by the blocking kernel",
          cold.held, n);
    CHECK(cold.units == 1 && hot.units == 100 && cold.copies == 1, "units: cold %d, hot %d",
          cold.units, hot.units);
    if (cold.kernel > 0) /* the flush's and the blocking kernel's records are not the unit's */
        CHECK(cold.kernels == 1 && hot.kernels == 1 && decode.kernels == 1,
              "e2e: %d, %d, %d kernel records a unit (cold, hot, decode)", cold.kernels,
              hot.kernels, decode.kernels);
    if (cold.kernel > 0) /* the differencing may come out a little under CUPTI's record */
        CHECK(fabs(cold.event - cold.kernel) <= 1e-6,
              "cold: events %.2f us, CUPTI kernel %.2f us: more than 1 us apart", cold.event * 1e6,
              cold.kernel * 1e6);
    else
        printf("  no CUPTI: the 1 us bar is not checked\n");
    CHECK(decode.held >= n - n / 10, "decode: only %d of %d samples held", decode.held, n);
    CHECK(hot.held >= n - n / 10, "hot: only %d of %d samples held", hot.held, n);
    CHECK((double)decode.copies * (double)wb > 3.0 * (double)l2 && decode.units >= decode.copies,
          "decode: %d units over %d copies of %zu bytes: not more than 3x the L2 (%zu)",
          decode.units, decode.copies, wb, l2);
    CHECK(decode.event >= 0.9 * hot.event && decode.event <= 1.2 * cold.event,
          "decode %.2f us a unit: not between hot %.2f and cold %.2f", decode.event * 1e6,
          hot.event * 1e6, cold.event * 1e6);

    /* the read-only roof over the unit's bytes */
    qk_gpu_read *rd = qk_gpu_read_create(unit_bytes(c), err, sizeof err);
    CHECK(rd, "read roof: %s", err);
    series rcold, rhot, rdecode;
    if (rd && !take(time_read, rd, QK_GPU_COLD, 1, n, &rcold) &&
        !take(time_read, rd, QK_GPU_HOT, 100, n, &rhot) &&
        !take(time_read, rd, QK_GPU_DECODE, 1, n, &rdecode)) {
        printf("  read roof over %zu bytes: cold %.2f us, hot %.2f us, decode %.2f us\n",
               unit_bytes(c), rcold.event * 1e6, rhot.event * 1e6, rdecode.event * 1e6);
        CHECK(rcold.event <= cold.event,
              "read roof cold %.2f us: slower than the cold e2e unit (%.2f us)", rcold.event * 1e6,
              cold.event * 1e6);
        CHECK(rdecode.event <= decode.event,
              "read roof decode %.2f us: slower than the e2e decode unit (%.2f us)",
              rdecode.event * 1e6, decode.event * 1e6);
        if (rcold.kernel > 0)
            CHECK(rcold.kernels == 1 && rhot.kernels == 1 && rdecode.kernels == 1,
                  "read: %d, %d, %d kernel records a unit (cold, hot, decode)", rcold.kernels,
                  rhot.kernels, rdecode.kernels);
    } else {
        CHECK(0, "timing the read roof failed");
    }
    qk_gpu_read_destroy(rd);

    /* NVML: the clock of each sample, and now, within the maximum */
    const double max = qk_gpu_sm_clock_max_mhz();
    if (max > 0) {
        const double now = qk_gpu_sm_clock_mhz();
        CHECK(now > 0 && now <= max, "NVML SM clock %.0f MHz, maximum %.0f", now, max);
        CHECK(cold.clock_min > 0 && cold.clock_max <= max && hot.clock_min > 0 &&
                  hot.clock_max <= max,
              "SM clock during samples %.0f..%.0f MHz, maximum %.0f", cold.clock_min, hot.clock_max,
              max);
        printf("  SM clock during cold samples %.0f..%.0f MHz, hot %.0f..%.0f, maximum %.0f\n",
               cold.clock_min, cold.clock_max, hot.clock_min, hot.clock_max, max);
    } else {
        printf("  NVML unavailable: the clock checks are skipped\n");
        CHECK(qk_gpu_sm_clock_mhz() == 0 && cold.clock_max == 0, "no NVML: clocks read 0");
    }

    /* holding off: the timing before issue 13, never called held */
    qk_gpu_sample s;
    CHECK(qk_gpu_set_hold(0) == 1, "set_hold returns the previous setting");
    CHECK(!qk_gpu_case_time(c, QK_GPU_COLD, 1, &s, err, sizeof err) && !s.held && s.event_s > 0,
          "cold without holding: %s", err);
    CHECK(qk_gpu_set_hold(1) == 0, "set_hold returns the previous setting");

    /* decode needs weights */
    {
        int32_t id = 0;
        qk_block_q4k dummy;
        memset(&dummy, 0, sizeof dummy);
        qk_gpu_case *q = qk_gpu_case_create(qk_gpu_kernel("gpu_quant_q8k"), &dummy, 0, T_COLS, 0,
                                            &id, 1, 1, x, err, sizeof err);
        CHECK(q && qk_gpu_case_time(q, QK_GPU_DECODE, 1, &s, err, sizeof err) == -1 &&
                  strstr(err, "no weights"),
              "decode of a quantizer: '%s'", err);
        qk_gpu_case_destroy(q);
    }
    /* the timed unit still computes the same y */
    {
        float *a = alloc_poisoned(T_E * T_ROWS), *b = alloc_poisoned(T_E * T_ROWS);
        CHECK(!qk_gpu_case_run(c, a, err, sizeof err) &&
                  !qk_gpu_case_time(c, QK_GPU_DECODE, 1, &s, err, sizeof err) &&
                  !qk_gpu_case_output(c, b, err, sizeof err) &&
                  !memcmp(a, b, (size_t)T_E * T_ROWS * sizeof *a),
              "y after decode (over weight copies) differs from y of one run: %s", err);
        free(a), free(b);
    }
done:
    qk_gpu_case_destroy(c);
    free(w);
}

/* The timing of a batch (8 tokens x 8 ids over 32 experts of 768x2048, every token listing
 * expert 0), every matvec variant: its weight bytes are the distinct experts of the whole batch;
 * hot, cold and decode samples are taken, with one kernel record a launch of the unit (two for
 * the variants that quantize in a launch of their own); decode reads more than 3x the L2; and
 * the outputs after each timing are those of one run. */
static void test_batched_timing(void) {
    enum { NT = 8, E = 32, N = 5 };
    qk_rng r;
    qk_rng_seed(&r, 77);
    const size_t nblocks = (size_t)E * T_ROWS * (T_COLS / QK_K);
    qk_block_q4k *w = malloc(nblocks * sizeof *w);
    make_random_q4k(&r, w, nblocks);
    float *x = malloc((size_t)NT * T_COLS * sizeof *x);
    qk_act_fill(&r, QK_ACT_NORMAL, x, (size_t)NT * T_COLS);
    int32_t ids[NT * 8];
    int seen[E] = {0}, distinct = 0;
    for (int t = 0; t < NT; t++)
        for (int i = 0; i < 8; i++) {
            const int32_t e = i == 0 ? 0 : (int32_t)qk_rng_below(&r, E);
            ids[t * 8 + i] = e;
            distinct += !seen[e];
            seen[e] = 1;
        }
    const size_t per_expert = (size_t)T_ROWS * (T_COLS / QK_K) * sizeof(qk_block_q4k);
    const size_t n_out = (size_t)NT * 8 * T_ROWS, l2 = qk_gpu_l2_bytes();
    float *a = alloc_poisoned(n_out), *b = alloc_poisoned(n_out);
    char err[512];
    for (size_t i = 0; i < qk_gpu_kernel_count; i++) {
        const qk_kernel *k = &qk_gpu_kernels[i];
        if (k->op != QK_OP_MATVEC) continue;
        qk_gpu_case *c =
            qk_gpu_case_create(k, w, T_ROWS, T_COLS, E, ids, NT, 8, x, err, sizeof err);
        CHECK(c, "%s, %d tokens: %s", k->name, NT, err);
        if (!c) continue;
        CHECK(qk_gpu_case_weight_bytes(c) == (size_t)distinct * per_expert,
              "%s: weight bytes %zu, not the %d distinct experts' %zu", k->name,
              qk_gpu_case_weight_bytes(c), distinct, (size_t)distinct * per_expert);
        const int launches = k->act_format == QK_FMT_Q8_K && strstr(k->name, "e2e") ? 1
                             : k->act_format == QK_FMT_F32                          ? 1
                                                                                    : 2;
        CHECK(!qk_gpu_case_run(c, a, err, sizeof err), "%s: %s", k->name, err);
        static const qk_gpu_temp temps[] = {QK_GPU_HOT, QK_GPU_COLD, QK_GPU_DECODE};
        static const char *names[] = {"hot", "cold", "decode"};
        series t[3];
        for (int m = 0; m < 3; m++) {
            const int ok =
                !take(time_case, c, temps[m], temps[m] == QK_GPU_HOT ? 100 : 1, N, &t[m]);
            CHECK(ok && t[m].event > 0, "%s, %d tokens: %s timing failed", k->name, NT, names[m]);
            if (!ok) continue;
            if (t[m].kernel > 0)
                CHECK(t[m].kernels == launches, "%s %s: %d kernel records a unit, not %d", k->name,
                      names[m], t[m].kernels, launches);
            memset(b, 0xa5, n_out * sizeof *b);
            CHECK(!qk_gpu_case_output(c, b, err, sizeof err) && !memcmp(a, b, n_out * sizeof *a),
                  "%s: y after %s timing differs from y of one run", k->name, names[m]);
        }
        CHECK((double)t[2].copies * (double)qk_gpu_case_weight_bytes(c) > 3.0 * (double)l2,
              "%s decode: %d copies of %zu bytes: not more than 3x the L2 (%zu)", k->name,
              t[2].copies, qk_gpu_case_weight_bytes(c), l2);
        printf("  %s, %d tokens x 8 ids (%d experts): hot %.2f us, cold %.2f us, decode %.2f us "
               "a unit\n",
               k->name, NT, distinct, t[0].event * 1e6, t[1].event * 1e6, t[2].event * 1e6);
        qk_gpu_case_destroy(c);
    }
    free(a), free(b), free(w), free(x);
}

/* ---- the figures of bench/gpu_rigor_check.sh (QK_GPU_TEST_REPORT=N) ---- */
static void keep_name(const char *key, const char *value, void *ctx) {
    if (!strcmp(key, "gpu_name")) snprintf(ctx, 128, "%s", value);
}
static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static void row(const char *what, const series *s, double bytes) {
    printf("%-44s %9.2f %9.2f %8.2f %5d/%-4d %5d %6d", what, s->event * 1e6, s->kernel * 1e6,
           (s->event - s->kernel) * 1e6, s->held, s->n, s->units, s->copies);
    if (bytes > 0)
        printf(" %8.0f %8.0f", bytes / s->event * 1e-9,
               s->kernel > 0 ? bytes / s->kernel * 1e-9 : 0);
    else
        printf(" %8s %8s", "", "");
    printf("  %4.0f..%4.0f\n", s->clock_min, s->clock_max);
}

static void report(int n) {
    char name[128] = "?", err[512];
    qk_gpu_fingerprint(keep_name, name);
    const size_t l2 = qk_gpu_l2_bytes();
    printf("\n== issue 13 figures: %s, L2 %zu bytes, medians of %d samples ==\n", name, l2, n);
    float x[T_COLS];
    qk_block_q4k *w = timing_data(x);
    printf("%-44s %9s %9s %8s %10s %5s %6s %8s %8s  %s\n", "what (top-8 768x2048)", "event_us",
           "kernel_us", "gap_us", "held", "units", "copies", "GB/s_ev", "GB/s_ker", "SM MHz");
    static const char *names[] = {"dp4a_q4k_q8_e2e", "dp4a_q4k_q8"};
    size_t bytes = 0;
    for (int v = 0; v < 2; v++) {
        qk_gpu_case *c = timing_case(names[v], w, x);
        if (!c) continue;
        bytes = unit_bytes(c);
        series s;
        char what[96];
        for (int round = 0; round < 2; round++) /* before, after, and again: the drift */
            for (int hold = 0; hold < 2; hold++) {
                qk_gpu_set_hold(hold);
                if (take(time_case, c, QK_GPU_COLD, 1, n, &s)) break;
                snprintf(what, sizeof what, "%s cold, %s", names[v],
                         hold ? "held (after)" : "not held (main)");
                row(what, &s, (double)bytes);
            }
        qk_gpu_set_hold(1);
        if (!take(time_case, c, QK_GPU_HOT, 100, n, &s)) {
            snprintf(what, sizeof what, "%s hot (graph of 100)", names[v]);
            row(what, &s, (double)bytes);
        }
        if (!take(time_case, c, QK_GPU_DECODE, 1, n, &s)) {
            snprintf(what, sizeof what, "%s decode", names[v]);
            row(what, &s, (double)bytes);
        }
        qk_gpu_case_destroy(c);
    }
    free(w);

    /* the read-only roof: the unit's bytes and 1 GiB, beside the copy */
    const size_t sizes[] = {bytes, (size_t)1 << 30, 16};
    const char *labels[] = {"read roof, the e2e unit's bytes", "read roof, 1 GiB",
                            "read roof, 16 bytes (the launch floor)"};
    for (int z = 0; z < 3; z++) {
        qk_gpu_read *rd = qk_gpu_read_create(sizes[z], err, sizeof err);
        if (!rd) {
            printf("%s: %s\n", labels[z], err);
            continue;
        }
        const int m = sizes[z] > ((size_t)64 << 20) ? 20 : n;
        static const char *tn[] = {"hot", "cold", "decode"};
        for (int t = 0; t < (z == 2 ? 2 : 3); t++) { /* 16 bytes: no decode (copies) */
            series s;
            if (take(time_read, rd, (qk_gpu_temp)t,
                     t == QK_GPU_HOT ? (sizes[z] > l2 ? 10 : 100) : 1, m, &s))
                continue;
            char what[96];
            snprintf(what, sizeof what, "%s %s", labels[z], tn[t]);
            row(what, &s, (double)sizes[z]);
        }
        if (z == 0 || z == 1) { /* the kernel's shape: loads in flight per thread x blocks per SM */
            printf("  shape sweep (%s, event GB/s, median of 20): loads x blocks/SM:",
                   z ? "hot" : "cold");
            for (int u = 1; u <= 8; u *= 2)
                for (int b = 2; b <= 8; b *= 2) {
                    series s;
                    qk_gpu_read_shape(rd, u, b);
                    if (!take(time_read, rd, z ? QK_GPU_HOT : QK_GPU_COLD, z ? 10 : 1, 20, &s))
                        printf(" %dx%d %.0f", u, b, (double)sizes[z] / s.event * 1e-9);
                }
            printf("\n");
            qk_gpu_read_shape(rd, 4, 8);
        }
        qk_gpu_read_destroy(rd);
    }
    printf("device-to-device copy, 1 GiB, read+write counted, best of 10: %.0f GB/s\n",
           qk_gpu_copy_bandwidth((size_t)1 << 30, 10) * 1e-9);

    /* NVML */
    const double max = qk_gpu_sm_clock_max_mhz();
    const int reads = 1000;
    double t0 = now_s(), sum = 0;
    for (int i = 0; i < reads; i++)
        sum += qk_gpu_sm_clock_mhz();
    const double per = (now_s() - t0) / reads;
    printf("NVML: SM clock read %.1f us a call (mean of %d), now %.0f MHz (mean %.0f), maximum "
           "%.0f MHz\n",
           per * 1e6, reads, qk_gpu_sm_clock_mhz(), sum / reads, max);
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
    test_batched();
    test_batched_refusals();
    test_quantizers();
    test_e2e_equals_two_launches();
    if (!quick) test_timing();
    if (!quick) test_batched_timing();
    const char *rep = getenv("QK_GPU_TEST_REPORT");
    if (rep && atoi(rep) > 0) report(atoi(rep));
    return qk_test_finish("gpu");
}

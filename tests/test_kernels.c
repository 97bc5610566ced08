/* Every CPU matvec variant against the f64 oracles on fresh random inputs, plus the checks that
 * catch the bug families of DESIGN.md: wrong scale/sub-block pairing, unwritten outputs, integer
 * sums that differ between ISAs. */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "qk_test.h"
#include "scales_simd.h"
#include "test_util.h"
#include "../cpu/cpu_features.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/matvec.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_oracle.h"
#include "../kernels/qk_q4k_q8k_sums.h"
#include "../kernels/qk_q4k_scales.h"
#include "../kernels/qk_quant.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Documented bounds (README "Numerical contracts of the CPU variants").
 * f32 activations, vs the f64 oracle: f32 accumulation only.
 * Q8_K activations, vs the algorithm-exact oracle sum deq64(W)*deq64(Q8_K(x)): accumulation only;
 * vs the f64 oracle: Q8_K's quantization error, which depends on the activations' spread. */
static const double F32_REL_L2 = 2e-5;
static const double Q8_EXACT_REL_L2 = 2e-5;
static double q8_quant_rel_l2(qk_act_profile p) {
    /* a x100 outlier sets its block's Q8_K scale, leaving the other 255 values a few levels:
     * one 256-wide row measured 0.31, wide matrices ~0.04; the heavy-tailed swiglu and
     * lognormal profiles do the same on a smaller scale (0.015-0.035 measured); the normal
     * profiles stay < 0.01 */
    if (p == QK_ACT_OUTLIERS) return 0.5;
    if (p == QK_ACT_SWIGLU || p == QK_ACT_LOGNORMAL) return 0.1;
    return 0.03;
}

typedef struct {
    size_t rows, cols;
    int quantized; /* weights from the Q4_K quantizer (else random blocks) */
} shape;
static const shape SHAPES[] = {
    {1, 256, 0}, {7, 768, 1}, {768, 2048, 0}, {7, 14336, 0}, {2048, 768, 1}, {13, 2048, 0},
};

typedef struct {
    int failures;
    qk_deviation vs_f64, vs_exact;
} verdict;

/* Runs k on W (rows x cols plain Q4_K) and x, with poisoned outputs, and judges it against the
 * oracles with the bounds above. The same function judges the deliberately wrong kernels. */
static verdict judge(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                     const float *x, qk_act_profile p, int verbose) {
    verdict v = {0};
    qk_weights wl;
    if (qk_weights_prepare(k, w, rows, cols, 1, &wl)) {
        v.failures = 1;
        return v;
    }
    float *y = alloc_poisoned(rows);
    double *xr = malloc(cols * sizeof *xr), *yr = malloc(rows * sizeof *yr);
    void *xq = malloc(qk_format_bytes(k->act_format, cols));
    const void *act = x;
    if (k->act_format == QK_FMT_Q8_K) {
        qk_quantize_q8k_ref(x, xq, cols);
        act = xq;
    } else if (k->act_format == QK_FMT_Q8_1) {
        qk_quantize_q8_1_ref(x, xq, cols);
        act = xq;
    }
    k->matvec(wl.data, rows, cols, 0, rows, act, y);
    qk_activations_f64(QK_FMT_F32, x, cols, xr);
    qk_oracle_q4k(w, rows, cols, xr, yr);
    v.vs_f64 = qk_deviation_of(y, yr, rows);
    if (k->act_format == QK_FMT_F32) {
        v.failures += !(v.vs_f64.rel_l2 <= F32_REL_L2);
    } else {
        qk_activations_f64(k->act_format, xq, cols, xr);
        qk_oracle_q4k(w, rows, cols, xr, yr);
        v.vs_exact = qk_deviation_of(y, yr, rows);
        v.failures += !(v.vs_exact.rel_l2 <= Q8_EXACT_REL_L2);
        v.failures += !(v.vs_f64.rel_l2 <= q8_quant_rel_l2(p));
    }
    v.failures += v.vs_f64.nonfinite > 0;
    if (verbose || v.failures)
        printf("  %-18s %5zux%-5zu %-11s rel_l2 %.2e max_rel %.2e 1-cos %.2e | exact-oracle "
               "rel_l2 %.2e%s\n",
               k->name, rows, cols, qk_act_name(p), v.vs_f64.rel_l2, v.vs_f64.max_rel,
               v.vs_f64.one_minus_cos, v.vs_exact.rel_l2, v.failures ? "  <-- FAIL" : "");
    qk_weights_release(&wl);
    free(y);
    free(xr);
    free(yr);
    free(xq);
    return v;
}

static void test_all_variants_vs_oracle(void) {
    qk_rng r;
    qk_rng_seed(&r, 20261126);
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        const shape *sh = &SHAPES[s];
        qk_block_q4k *w = malloc(sh->rows * (sh->cols / QK_K) * sizeof *w);
        if (sh->quantized)
            make_quantized_q4k(&r, w, sh->rows, sh->cols);
        else
            make_random_q4k(&r, w, sh->rows * (sh->cols / QK_K));
        float *x = malloc(sh->cols * sizeof *x);
        for (int p = 0; p < QK_ACT_COUNT; p++) {
            qk_act_fill(&r, (qk_act_profile)p, x, sh->cols);
            for (size_t i = 0; i < qk_test_variant_count(); i++) {
                const qk_kernel *k = qk_test_variant(i);
                if (k->op != QK_OP_MATVEC) continue;
                const char *why = qk_test_unsupported(k);
                if (why) {
                    if (s == 0 && p == 0) printf("skip %s: %s\n", k->name, why);
                    continue;
                }
                verdict v = judge(k, w, sh->rows, sh->cols, x, (qk_act_profile)p, sh->rows == 768);
                CHECK(v.failures == 0, "%s on %zux%zu, %s activations", k->name, sh->rows, sh->cols,
                      qk_act_name((qk_act_profile)p));
            }
        }
        free(w);
        free(x);
    }
}

/* Integer-exact inputs: sets d = dmin = 1 in w (rows x nb blocks), fills xq (nb blocks) with
 * d = 1, quants in [-span, span] and their bsums (and x, if not NULL, with the same values as
 * f32), and want[row] with the integer sum over blocks of S - M (qk_q4k_q8k_block_sums). */
static void exact_inputs(qk_rng *r, qk_block_q4k *w, size_t rows, size_t nb, int span,
                         qk_block_q8k *xq, float *x, double *want) {
    for (size_t i = 0; i < rows * nb; i++)
        w[i].d = w[i].dmin = qk_f32_to_fp16(1.0f);
    for (size_t b = 0; b < nb; b++) {
        xq[b].d = 1.0f;
        for (int i = 0; i < QK_K; i++) {
            xq[b].qs[i] = (int8_t)((int)qk_rng_below(r, (uint64_t)(2 * span + 1)) - span);
            if (x) x[b * QK_K + i] = xq[b].qs[i];
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int i = 0; i < 16; i++)
                sum += xq[b].qs[16 * g + i];
            xq[b].bsums[g] = (int16_t)sum;
        }
    }
    for (size_t row = 0; row < rows; row++) {
        int64_t total = 0;
        for (size_t b = 0; b < nb; b++) {
            int32_t S, M;
            qk_q4k_q8k_block_sums(&w[row * nb + b], &xq[b], &S, &M);
            total += (int64_t)S - M;
        }
        want[row] = (double)total;
    }
}

/* With d = dmin = 1, Q8_K d = 1 and small quants, every float operation of every q4k_q8k
 * variant is exact (all partial sums stay below 2^24): the outputs must equal the integer
 * sum(S - M) exactly. This is how "integer sums identical to q4k_q8k_ref" is tested. */
static void test_integer_sums_exact(void) {
    enum { ROWS = 13, COLS = 2048, NB = COLS / QK_K };
    qk_rng r;
    qk_rng_seed(&r, 77);
    qk_block_q4k *w = malloc(ROWS * NB * sizeof *w);
    qk_block_q8k xq[NB];
    make_random_q4k(&r, w, ROWS * NB);
    double want[ROWS];
    exact_inputs(&r, w, ROWS, NB, 8, xq, NULL, want);
    for (size_t i = 0; i < qk_test_variant_count(); i++) {
        const qk_kernel *k = qk_test_variant(i);
        if (k->op != QK_OP_MATVEC || k->act_format != QK_FMT_Q8_K || qk_test_unsupported(k))
            continue;
        qk_weights wl;
        qk_weights_prepare(k, w, ROWS, COLS, 1, &wl);
        float *y = alloc_poisoned(ROWS);
        k->matvec(wl.data, ROWS, COLS, 0, ROWS, xq, y);
        int bad = 0;
        for (int row = 0; row < ROWS; row++)
            bad += (double)y[row] != want[row];
        CHECK(bad == 0, "%s: %d of %d rows differ from the exact integer sums", k->name, bad, ROWS);
        free(y);
        qk_weights_release(&wl);
    }
    free(w);
}

/* The SIMD scale decoders (cpu/q4k_scales_simd.h) against qk_q4k_scale_min, lane by lane, on
 * the 12 scale bytes: every bit alone, every bit cleared from all 0xFF, all 0x00, all 0xFF (the
 * whole header 0x00 / 0xFF there), then random ones. d and dmin are random elsewhere (the decoder
 * must ignore them), and the lanes hold different patterns (each edge pattern visits every lane),
 * so a lane mix-up fails. Each width runs only where the CPU has its ISA. */
enum { EDGE_PATTERNS = 96 + 96 + 2 };
static void scale_pattern(qk_rng *r, int t, uint8_t hdr[16]) {
    for (int i = 0; i < 16; i++)
        hdr[i] = (uint8_t)qk_rng_u64(r);
    uint8_t *s = hdr + 4;
    if (t < 96) {
        memset(s, 0, 12);
        s[t / 8] = (uint8_t)(1u << (t % 8));
    } else if (t < 192) {
        memset(s, 0xFF, 12);
        s[(t - 96) / 8] &= (uint8_t) ~(1u << ((t - 96) % 8));
    } else if (t < EDGE_PATTERNS) {
        memset(hdr, t == 192 ? 0x00 : 0xFF, 16);
    }
}
static int scale_lanes_bad(const uint8_t *hdr, const uint8_t *out, int lanes) {
    int bad = 0;
    for (int l = 0; l < lanes; l++)
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            qk_q4k_scale_min(hdr + 16 * l + 4, j, &sc, &m);
            bad += out[16 * l + j] != sc || out[16 * l + 8 + j] != m;
        }
    return bad;
}
static void test_simd_scale_decoders(void) {
    const uint32_t isa = qk_cpu_isa();
    const struct {
        const char *name;
        uint32_t isa;
        int lanes;
        void (*decode)(const uint8_t *, uint8_t *);
    } dec[] = {
        {"qk_q4k_unpack_scales2", QK_ISA_AVX2, 2, qk_test_unpack_scales2},
        {"qk_q4k_unpack_scales4", QK_ISA_AVX512, 4, qk_test_unpack_scales4},
    };
    for (size_t i = 0; i < sizeof dec / sizeof dec[0]; i++) {
        if (dec[i].isa & ~isa) {
            printf("skip %s: needs %s\n", dec[i].name, qk_cpu_missing_isa(dec[i].isa));
            continue;
        }
        qk_rng r;
        qk_rng_seed(&r, 12);
        int bad = 0;
        for (int t = 0; t < EDGE_PATTERNS + 200000; t++) {
            uint8_t hdr[64], out[64];
            for (int l = 0; l < dec[i].lanes; l++)
                scale_pattern(&r, t < EDGE_PATTERNS ? (t + 53 * l) % EDGE_PATTERNS : t,
                              hdr + 16 * l);
            dec[i].decode(hdr, out);
            bad += scale_lanes_bad(hdr, out, dec[i].lanes);
        }
        CHECK(bad == 0, "%s: %d scales or mins differ from qk_q4k_scale_min", dec[i].name, bad);
    }
}

/* --- row ranges, small and wide shapes, the end of the matrix at a guard page --- */

/* bytes whose end is the start of a PROT_NONE page: a load past it faults (a software prefetch
 * does not). Free with guarded_free(p, bytes). */
static void *guarded_alloc(size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
    char *base =
        mmap(NULL, body + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    if (mprotect(base + body, page, PROT_NONE)) return NULL;
    return base + body - bytes;
}
static void guarded_free(void *p, size_t bytes) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), body = (bytes + page - 1) / page * page;
    munmap((char *)p + bytes - body, body + page);
}

/* Runs k on every row range [r0, r1) of its row_group's contract (r0 a multiple of it) and
 * counts the ranges whose rows differ from want (bit for bit, or by value if !bits: +0 = -0) or
 * that write outside the range (the output is poisoned). */
static int ranges_bad(const qk_kernel *k, const void *w, size_t rows, size_t cols, const void *act,
                      const float *want, int bits) {
    int bad = 0;
    float *y = alloc_poisoned(rows);
    for (size_t r0 = 0; r0 < rows; r0 += k->row_group)
        for (size_t r1 = r0 + 1; r1 <= rows; r1++) {
            poison(y, rows);
            k->matvec(w, rows, cols, r0, r1, act, y);
            int ok = 1;
            for (size_t i = 0; i < rows; i++)
                if (i < r0 || i >= r1)
                    ok &= isnan(y[i]);
                else
                    ok &= bits ? !memcmp(&y[i], &want[i], sizeof *y) : y[i] == want[i];
            if (!ok && bad++ < 3)
                printf("  %s %zux%zu: rows [%zu, %zu) wrong\n", k->name, rows, cols, r0, r1);
        }
    free(y);
    return bad;
}

static const size_t EDGE_COLS[] = {256, 512, 768, 17920}; /* 17920: q4k_f32_avx2's 2nd slice */

/* Every CPU matvec variant on rows = 1..9 at EDGE_COLS, every row range, with the matrix and the
 * activations each ending at a guard page:
 * - exact: d = dmin = 1, Q8_K d = 1, x = its quants in [-2, 2] (f32 for the f32 variants): every
 *   f32 operation of every variant is exact, so each row equals the integer sum S - M of
 *   q4k_q8k_ref (qk_q4k_q8k_block_sums), and q4k_f32_ref's output;
 * - random blocks and normal activations: every range's rows bit-identical to the full range's
 *   (a row does not depend on its group), and up to 768 columns the full range within the oracle
 *   bounds (judge). Not at 17920: a few rows of a dot over 70 random super-blocks cancel so much
 *   that rel_l2 measures the row, not the kernel (1x17920: q4k_f32_ref itself 2.1e-5 against the
 *   f64 oracle, Q8_K's quantization 7.6e-2); the exact pass covers those. */
static void test_row_ranges(void) {
    qk_rng r;
    qk_rng_seed(&r, 4096);
    for (size_t c = 0; c < sizeof EDGE_COLS / sizeof EDGE_COLS[0]; c++)
        for (size_t rows = 1; rows <= 9; rows++) {
            const size_t cols = EDGE_COLS[c], nb = cols / QK_K;
            const size_t wbytes = rows * nb * sizeof(qk_block_q4k);
            qk_block_q4k *w = guarded_alloc(wbytes);
            float *x = guarded_alloc(cols * sizeof *x);
            qk_block_q8k *xq = guarded_alloc(nb * sizeof *xq);
            float *want = malloc(rows * sizeof *want), *full = alloc_poisoned(rows);
            double *want64 = malloc(rows * sizeof *want64);
            if (!w || !x || !xq) {
                CHECK(0, "guarded allocation of %zux%zu", rows, cols);
                return;
            }
            for (int pass = 0; pass < 2; pass++) {
                const int exact = pass == 0;
                make_random_q4k(&r, w, rows * nb);
                if (exact) {
                    exact_inputs(&r, w, rows, nb, 2, xq, x, want64);
                    for (size_t row = 0; row < rows; row++)
                        want[row] = (float)want64[row]; /* |sum| < 2^24: exact */
                } else {
                    qk_act_fill(&r, QK_ACT_NORMAL, x, cols);
                    qk_quantize_q8k_ref(x, xq, cols);
                }
                for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
                    const qk_kernel *k = &qk_cpu_kernels[i];
                    if (k->op != QK_OP_MATVEC || qk_cpu_unsupported(k)) continue;
                    const void *act = k->act_format == QK_FMT_Q8_K ? (const void *)xq : x;
                    if (!exact && cols <= 768) {
                        verdict v = judge(k, w, rows, cols, x, QK_ACT_NORMAL, 0);
                        CHECK(v.failures == 0, "%s on %zux%zu vs the oracles", k->name, rows, cols);
                    }
                    qk_weights wl;
                    CHECK(qk_weights_prepare(k, w, rows, cols, 1, &wl) == 0, "prepare %s", k->name);
                    if (!exact) {
                        poison(full, rows);
                        k->matvec(wl.data, rows, cols, 0, rows, act, full);
                    }
                    int bad = ranges_bad(k, wl.data, rows, cols, act, exact ? want : full, !exact);
                    CHECK(bad == 0, "%s %zux%zu, %s: %d row ranges wrong", k->name, rows, cols,
                          exact ? "exact integer sums" : "vs the full range", bad);
                    qk_weights_release(&wl);
                }
            }
            guarded_free(w, wbytes);
            guarded_free(x, cols * sizeof *x);
            guarded_free(xq, nb * sizeof *xq);
            free(want);
            free(want64);
            free(full);
        }
}

/* --- deliberately wrong kernels (tests only): the suite must flag each one --- */

/* Pairs scale j with sub-block j^1 (the AVX2 bug of DESIGN.md). */
static void wrong_scale_pairing(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                                const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            int32_t S = 0, M = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                qk_q4k_scale_min(row[b].scales, j ^ 1, &sc, &m);
                int isum = 0;
                for (int l = 0; l < 32; l++)
                    isum += ((row[b].qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0xF) *
                            xq[b].qs[32 * j + l];
                S += sc * isum;
                M += m * (xq[b].bsums[2 * j] + xq[b].bsums[2 * j + 1]);
            }
            acc +=
                xq[b].d * qk_fp16_to_f32(row[b].d) * S - xq[b].d * qk_fp16_to_f32(row[b].dmin) * M;
        }
        y[r] = acc;
    }
}

/* Uses only the first sub-block's scale and ignores the mins (the GPU bug of DESIGN.md). */
static void wrong_first_scale_no_mins(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                                      const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        float acc = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            uint8_t sc, m;
            qk_q4k_scale_min(row[b].scales, 0, &sc, &m);
            int isum = 0;
            for (int j = 0; j < 8; j++)
                for (int l = 0; l < 32; l++)
                    isum += ((row[b].qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0xF) *
                            xq[b].qs[32 * j + l];
            acc += xq[b].d * qk_fp16_to_f32(row[b].d) * sc * isum;
        }
        y[r] = acc;
    }
}

/* Correct, but never writes the last row of a range. */
static void wrong_skips_last_row(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                                 const void *x, float *y) {
    if (r1 > r0) qk_q4k_q8k_ref(w, rows, cols, r0, r1 - 1, x, y);
}

static void test_wrong_kernels_are_flagged(void) {
    const qk_kernel wrong[] = {
        {"wrong_scale_pairing", QK_DEV_CPU, QK_OP_MATVEC, QK_FMT_Q4_K, QK_FMT_Q8_K, 0,
         wrong_scale_pairing, NULL, 1, NULL, NULL, "test only", NULL, NULL, NULL, NULL},
        {"wrong_first_scale", QK_DEV_CPU, QK_OP_MATVEC, QK_FMT_Q4_K, QK_FMT_Q8_K, 0,
         wrong_first_scale_no_mins, NULL, 1, NULL, NULL, "test only", NULL, NULL, NULL, NULL},
        {"wrong_skips_row", QK_DEV_CPU, QK_OP_MATVEC, QK_FMT_Q4_K, QK_FMT_Q8_K, 0,
         wrong_skips_last_row, NULL, 1, NULL, NULL, "test only", NULL, NULL, NULL, NULL},
    };
    qk_rng r;
    qk_rng_seed(&r, 31);
    enum { ROWS = 64, COLS = 2048 };
    qk_block_q4k *w = malloc(ROWS * (COLS / QK_K) * sizeof *w);
    make_random_q4k(&r, w, ROWS * (COLS / QK_K)); /* all 8 scales and 8 mins differ */
    float x[COLS];
    qk_act_fill(&r, QK_ACT_NORMAL, x, COLS);
    printf("deliberately wrong kernels (each must FAIL):\n");
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        verdict v = judge(&wrong[i], w, ROWS, COLS, x, QK_ACT_NORMAL, 1);
        CHECK(v.failures > 0, "the suite did not flag %s", wrong[i].name);
    }
    free(w);
}

int main(void) {
    test_simd_scale_decoders();
    test_all_variants_vs_oracle();
    test_integer_sums_exact();
    test_row_ranges();
    test_wrong_kernels_are_flagged();
    return qk_test_finish("kernels");
}

/* Formats and reference quantizers: fp16, Q4_K scale packing, Q4_K quantizer quality, the exact
 * semantics of the Q8_K and Q8_1 reference quantizers. */
#include "qk_test.h"
#include "test_util.h"
#include "../cpu/cpu_features.h"
#include "../kernels/qk_kernel.h"
#include "../kernels/qk_fp16.h"
#include "../kernels/qk_oracle.h"
#include "../kernels/qk_q4k_scales.h"
#include "../kernels/qk_quant.h"
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* The hardware (F16C) conversions as the independent reference; this function alone is built
 * with -mf16c and runs only where CPUID says F16C exists. */
__attribute__((target("f16c"))) static void test_fp16_against_f16c(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float ref = _cvtsh_ss((unsigned short)h), got = qk_fp16_to_f32((uint16_t)h);
        if (fbits(ref) != fbits(got) && !(isnan(ref) && isnan(got))) bad++;
    }
    CHECK(bad == 0, "fp16->f32 differs from F16C on %d of 65536 halves", bad);
    qk_rng r;
    qk_rng_seed(&r, 11);
    bad = 0;
    for (int i = 0; i < 2000000; i++) {
        float f;
        uint32_t u = (uint32_t)qk_rng_u64(&r);
        /* bias half the samples into the fp16 range, where rounding matters */
        if (i & 1) u = (u & 0x80000000u) | (0x33000000u + (u & 0x0fffffffu) % 0x15000000u);
        memcpy(&f, &u, 4);
        if (isnan(f)) continue;
        unsigned short ref = _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
        if (ref != qk_f32_to_fp16(f)) bad++;
    }
    CHECK(bad == 0, "f32->fp16 differs from F16C on %d of 2M floats", bad);
}

static void test_fp16(void) {
    struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},
        {-0.0f, 0x8000},
        {1.0f, 0x3c00},
        {65504.0f, 0x7bff},
        {65519.99f, 0x7bff},
        {65520.0f, 0x7c00}, /* tie -> inf */
        {0x1p-24f, 0x0001},
        {0x1p-25f, 0x0000},   /* tie to even: 0 */
        {0x1.8p-24f, 0x0002}, /* 1.5 ulp: tie to even 2 */
        {0x1p-14f, 0x0400},
        {0x1.ffcp-15f, 0x0400}, /* largest subnormal rounds up */
        {1.0f + 0x1p-11f, 0x3c00},
        {1.0f + 0x3p-11f, 0x3c02}, /* ties to even */
        {INFINITY, 0x7c00},
        {-INFINITY, 0xfc00},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(qk_f32_to_fp16(cases[i].f) == cases[i].h, "fp16(%a) = %04x, want %04x", cases[i].f,
              qk_f32_to_fp16(cases[i].f), cases[i].h);
    CHECK(isnan(qk_fp16_to_f32(qk_f32_to_fp16(NAN))), "NaN must stay NaN");
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN payloads are quietened */
        if (qk_f32_to_fp16(qk_fp16_to_f32((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "fp16 -> f32 -> fp16 must round-trip every non-NaN half (%d bad)", bad);
    if (qk_cpu_isa() & QK_ISA_AVX2)
        test_fp16_against_f16c();
    else
        printf("note: no F16C here; fp16 checked against the table of cases only\n");
}

static void test_scale_unpack(void) {
    qk_rng r;
    qk_rng_seed(&r, 3);
    int bad = 0;
    for (int t = 0; t < 200000; t++) {
        uint8_t s[12], all[16];
        for (int i = 0; i < 12; i++)
            s[i] = (uint8_t)qk_rng_u64(&r);
        if (t < 96) { /* every single bit alone */
            memset(s, 0, sizeof s);
            s[t / 8] = (uint8_t)(1u << (t % 8));
        }
        qk_q4k_unpack_scales(s, all);
        uint32_t w0, w1, w2;
        memcpy(&w0, s, 4), memcpy(&w1, s + 4, 4), memcpy(&w2, s + 8, 4);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            uint32_t scw, mw;
            qk_q4k_scale_min(s, j, &sc, &m);
            qk_q4k_scale_min_words(w0, w1, w2, j, &scw, &mw); /* the GPU kernels' form */
            if (sc != all[j] || m != all[8 + j] || sc > 63 || m > 63 || scw != sc || mw != m) bad++;
        }
        for (int c = 0; c < 4; c++) { /* the GPU lanes' branch-free pair form */
            uint32_t scp[2], mp[2];
            qk_q4k_scale_min_pair(w0, w1, w2, c, scp, mp);
            for (int h = 0; h < 2; h++)
                if (scp[h] != all[2 * c + h] || mp[h] != all[8 + 2 * c + h]) bad++;
        }
    }
    CHECK(bad == 0, "word-wise scale decoders disagree with the per-sub-block decoder (%d)", bad);
    /* a hand-packed block: sc_j = 10+j+40*(j>=4), m_j = 50-j */
    uint8_t s[12] = {10, 11, 12, 13, 50, 49, 48, 47, 0, 0, 0, 0};
    for (int j = 4; j < 8; j++) {
        int sc = 10 + j + 40, m = 50 - j;
        s[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((m >> 4) << 6);
    }
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        qk_q4k_scale_min(s, j, &sc, &m);
        CHECK(sc == 10 + j + 40 * (j >= 4) && m == 50 - j, "sub-block %d: sc %d m %d", j, sc, m);
    }
}

static void test_q4k_quantizer(void) {
    qk_rng r;
    qk_rng_seed(&r, 5);
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    double *y64 = malloc(N * sizeof *y64);
    qk_block_q4k *q = malloc(N / QK_K * sizeof *q);
    for (int i = 0; i < N; i++)
        x[i] = (float)qk_rng_normal(&r);
    qk_quantize_q4k_ref(x, q, N);
    qk_dequantize_q4k(q, y, N);
    qk_dequantize_q4k_f64(q, y64, N);
    double e2 = 0, x2 = 0;
    int f32_vs_f64 = 0, full_range = 0;
    for (int i = 0; i < N; i++) {
        e2 += (y64[i] - x[i]) * (y64[i] - x[i]);
        x2 += (double)x[i] * x[i];
        if (fabs(y[i] - y64[i]) > 1e-6 * (fabs(y64[i]) + 1)) f32_vs_f64++;
    }
    for (int b = 0; b < N / QK_K; b++) {
        uint8_t sm[16];
        qk_q4k_unpack_scales(q[b].scales, sm);
        for (int j = 0; j < 8; j++)
            full_range += sm[j] == 63;
    }
    /* 4-bit quantization of a Gaussian with searched scale/min: ~9 % relative RMS error;
     * a plain min/max rounding gives ~11 %, a broken packing far more */
    double rel = sqrt(e2 / x2);
    printf("q4_K reference quantizer on N(0,1): relative RMS error %.4f\n", rel);
    CHECK(rel < 0.10 && rel > 0.03, "Q4_K quantization error %.4f out of range", rel);
    CHECK(f32_vs_f64 == 0, "f32 and f64 dequantization disagree on %d elements", f32_vs_f64);
    CHECK(full_range >= N / QK_K, "each block's largest scale should quantize to 63");
    /* all-zero and constant blocks */
    for (int i = 0; i < QK_K; i++)
        x[i] = 0;
    for (int i = QK_K; i < 2 * QK_K; i++)
        x[i] = 0.75f;
    qk_quantize_q4k_ref(x, q, 2 * QK_K);
    qk_dequantize_q4k_f64(q, y64, 2 * QK_K);
    int zero_ok = 1, const_ok = 1;
    for (int i = 0; i < QK_K; i++)
        zero_ok &= y64[i] == 0;
    for (int i = QK_K; i < 2 * QK_K; i++)
        const_ok &= fabs(y64[i] - 0.75) < 0.75 / 16;
    CHECK(zero_ok, "an all-zero block must dequantize to zeros");
    CHECK(const_ok, "a constant block must stay within one quantization step");
    free(x);
    free(y);
    free(y64);
    free(q);
}

/* Q8_K: recompute each block independently in the documented semantics */
static void check_q8k_block(const float *x, const char *what) {
    qk_block_q8k q;
    qk_quantize_q8k_ref(x, &q, QK_K);
    float amax = 0, max = 0;
    for (int i = 0; i < QK_K; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    int ok = 1;
    if (amax == 0) {
        ok = q.d == 0;
        for (int i = 0; i < QK_K; i++)
            ok &= q.qs[i] == 0;
        for (int g = 0; g < 16; g++)
            ok &= q.bsums[g] == 0;
    } else {
        float iscale = -127.0f / max;
        ok = q.d == 1 / iscale;
        for (int i = 0; i < QK_K; i++) {
            double v = rint((double)(iscale * x[i])); /* rint: ties to even */
            if (v > 127) v = 127;
            ok &= q.qs[i] == (int)v;
        }
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += q.qs[16 * g + i];
            ok &= q.bsums[g] == s;
        }
    }
    CHECK(ok, "Q8_K reference semantics: %s", what);
}

static void test_q8k_reference(void) {
    float x[QK_K];
    qk_rng r;
    qk_rng_seed(&r, 8);
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)qk_rng_normal(&r);
    check_q8k_block(x, "normal");
    x[17] = -9.0f;
    check_q8k_block(x, "largest magnitude negative");
    {
        qk_block_q8k q;
        qk_quantize_q8k_ref(x, &q, QK_K);
        CHECK(q.qs[17] == -127 && q.d > 0, "negative max: q=-127 at the max, d>0 (got %d, %g)",
              q.qs[17], q.d);
    }
    x[40] = 9.0f; /* same magnitude later, opposite sign: the first one decides */
    check_q8k_block(x, "tie in magnitude, first wins");
    memset(x, 0, sizeof x);
    check_q8k_block(x, "all zero");
    for (int i = 0; i < QK_K; i++)
        x[i] = (i & 1) ? -0.0f : 0.0f;
    check_q8k_block(x, "signed zeros");
    for (int i = 0; i < QK_K; i++)
        x[i] = 2.5f;
    check_q8k_block(x, "all equal");
    /* max = -127 makes iscale exactly 1, so k+0.5 are exact ties */
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)(i % 100) - 49.5f;
    x[0] = -127.0f;
    check_q8k_block(x, "ties to even");
    {
        qk_block_q8k q;
        qk_quantize_q8k_ref(x, &q, QK_K);
        CHECK(q.qs[1] == -48 && q.qs[2] == -48,
              "ties to even: -48.5 -> -48 and -47.5 -> -48, got %d %d", q.qs[1], q.qs[2]);
    }
    /* tiny but normal: iscale = -127/max stays finite up to max ~ 2^-120 (for subnormal blocks
     * it overflows to inf and the reference's output is defined only by its arithmetic, which
     * test_quantizers holds every variant to) */
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)ldexp(qk_rng_normal(&r), -118);
    check_q8k_block(x, "tiny inputs");
}

static void test_q8_1_reference(void) {
    qk_rng r;
    qk_rng_seed(&r, 9);
    float x[QK8_1];
    for (int t = 0; t < 1000; t++) {
        for (int i = 0; i < QK8_1; i++)
            x[i] = (float)(qk_rng_normal(&r) * (t % 7 + 1));
        if (t % 10 == 0) memset(x, 0, sizeof x);
        qk_block_q8_1 q;
        qk_quantize_q8_1_ref(x, &q, QK8_1);
        float amax = 0;
        for (int i = 0; i < QK8_1; i++)
            amax = fmaxf(amax, fabsf(x[i]));
        float d = amax / 127;
        int ok = q.d == qk_f32_to_fp16(d);
        for (int i = 0; i < QK8_1; i++) {
            double v = amax == 0 ? 0 : round((double)(x[i] / d)); /* round: ties away */
            ok &= q.qs[i] == (int)v;
        }
        double s = 0;
        for (int i = 0; i < QK8_1; i++)
            s += x[i];
        ok &= fabs(qk_fp16_to_f32(q.s) - s) <= 1e-3 * (fabs(s) + 1);
        CHECK(ok, "Q8_1 reference semantics, trial %d", t);
        if (!ok) break;
    }
    /* butterfly order: 1e8 + 1 - 1e8 ... differs from a sequential sum on purpose */
    for (int i = 0; i < QK8_1; i++)
        x[i] = 0;
    x[0] = 1e8f;
    x[1] = 1.0f;
    x[16] = -1e8f;
    CHECK(qk_q8_1_block_sum(x) == 1.0f, "butterfly sum pairs lane 0 with lane 16 first");
}

int main(void) {
    test_fp16();
    test_scale_unpack();
    test_q4k_quantizer();
    test_q8k_reference();
    test_q8_1_reference();
    return qk_test_finish("formats");
}

/* Every Q8_K quantizer variant must be bit-identical to quant_q8k_ref on every input. */
#include "qk_test.h"
#include "test_util.h"
#include "../cpu/cpu_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NB = 16, N = NB * QK_K };

/* Fills block b of x with the b-th edge case; returns its name. */
static const char *edge_case(qk_rng *r, int b, float *x) {
    for (int i = 0; i < QK_K; i++)
        x[i] = (float)qk_rng_normal(r);
    switch (b % 16) {
    case 0:
        return "normal";
    case 1:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)(40 * qk_rng_uniform(r) - 20);
        return "uniform20";
    case 2:
        memset(x, 0, QK_K * sizeof *x);
        return "all zero";
    case 3:
        for (int i = 0; i < QK_K; i++)
            x[i] = (i % 3) ? -0.0f : 0.0f;
        return "signed zeros";
    case 4:
        for (int i = 0; i < QK_K; i++)
            x[i] = -3.25f;
        return "all equal";
    case 5:
        x[200] = -50;
        return "largest magnitude negative, late";
    case 6:
        x[3] = 50, x[100] = -50;
        return "equal magnitudes, opposite signs";
    case 7: /* iscale == 1 exactly: k + 0.5 are exact ties */
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)(i % 254) - 126.5f;
        x[0] = -127;
        return "ties";
    case 8: /* values at -max round to +127, the edge of the <= 127 clamp */
        for (int i = 0; i < QK_K; i++)
            x[i] = (i & 1) ? 7.0f : -7.0f;
        return "values at +-max";
    case 9:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)ldexp(qk_rng_normal(r), -135);
        return "subnormals";
    case 10:
        for (int i = 0; i < QK_K; i++)
            x[i] = (float)ldexp(qk_rng_normal(r), 120);
        return "huge";
    case 11:
        x[77] = 1e4f;
        return "one outlier";
    case 12:
        x[5] = INFINITY;
        return "an infinity";
    case 13:
        x[9] = NAN;
        return "a NaN";
    case 14:
        memset(x, 0, QK_K * sizeof *x);
        x[255] = 1e-30f;
        return "single tiny value last";
    default:
        for (int i = 0; i < QK_K; i++)
            x[i] = nextafterf(0.5f, (float)(i & 1)) * (i - 128);
        return "near-ties";
    }
}

int main(void) {
    qk_rng r;
    qk_rng_seed(&r, 1234);
    float *x = malloc(N * sizeof *x);
    qk_block_q8k *ref = malloc(NB * sizeof *ref), *got = malloc(NB * sizeof *got);
    const char *names[NB];
    for (int round = 0; round < 50; round++) {
        for (int b = 0; b < NB; b++)
            names[b] = edge_case(&r, b, x + b * QK_K);
        memset(ref, 0x5a, NB * sizeof *ref);
        qk_quant_q8k_ref(x, ref, N);
        for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
            const qk_kernel *k = &qk_cpu_kernels[i];
            if (k->op != QK_OP_QUANTIZE || k->act_format != QK_FMT_Q8_K) continue;
            const char *why = qk_cpu_unsupported(k);
            if (why) {
                if (round == 0) printf("skip %s: %s\n", k->name, why);
                continue;
            }
            memset(got, 0xa5, NB * sizeof *got); /* poison: every byte must be written */
            k->quantize(x, got, N);
            for (int b = 0; b < NB; b++)
                CHECK(!memcmp(&ref[b], &got[b], sizeof ref[b]),
                      "%s differs from quant_q8k_ref on block '%s' (round %d)", k->name, names[b],
                      round);
        }
    }
    /* the reference itself on the edge cases: the max element maps to -127 */
    edge_case(&r, 5, x);
    qk_quant_q8k_ref(x, ref, QK_K);
    CHECK(ref[0].qs[200] == -127 && ref[0].d > 0, "negative max must give q=-127 and d>0");
    edge_case(&r, 8, x);
    qk_quant_q8k_ref(x, ref, QK_K);
    CHECK(ref[0].qs[0] == -127 && ref[0].qs[1] == 127, "values at -max quantize to +127");
    free(x);
    free(ref);
    free(got);
    return qk_test_finish("quantizers");
}

/* Every Q8_K quantizer variant (and the GPU quantizer's emulation) must be bit-identical to
 * quant_q8k_ref on every input. */
#include "qk_test.h"
#include "test_util.h"
#include "../cpu/cpu_kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NB = 16, N = NB * QK_K };

int main(void) {
    qk_rng r;
    qk_rng_seed(&r, 1234);
    float *x = malloc(N * sizeof *x);
    qk_block_q8k *ref = malloc(NB * sizeof *ref), *got = malloc(NB * sizeof *got);
    const char *names[NB];
    for (int round = 0; round < 50; round++) {
        for (int b = 0; b < NB; b++)
            names[b] = qk_edge_block(&r, b, x + b * QK_K);
        memset(ref, 0x5a, NB * sizeof *ref);
        qk_quant_q8k_ref(x, ref, N);
        for (size_t i = 0; i < qk_test_variant_count(); i++) {
            const qk_kernel *k = qk_test_variant(i);
            if (k->op != QK_OP_QUANTIZE || k->act_format != QK_FMT_Q8_K) continue;
            const char *why = qk_test_unsupported(k);
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
    qk_edge_block(&r, 5, x);
    qk_quant_q8k_ref(x, ref, QK_K);
    CHECK(ref[0].qs[200] == -127 && ref[0].d > 0, "negative max must give q=-127 and d>0");
    qk_edge_block(&r, 8, x);
    qk_quant_q8k_ref(x, ref, QK_K);
    CHECK(ref[0].qs[0] == -127 && ref[0].qs[1] == 127, "values at -max quantize to +127");
    free(x);
    free(ref);
    free(got);
    return qk_test_finish("quantizers");
}

#include "synth.h"
#include "../kernels/qk_quant.h"
#include "../kernels/qk_rng.h"
#include <math.h>
#include <stdlib.h>

int qk_synth_expert(uint64_t seed, int expert, size_t rows, size_t cols, qk_block_q4k *out) {
    qk_rng r;
    qk_rng_seed(&r, seed * 1000003u + (uint64_t)expert);
    float *colscale = malloc(cols * sizeof *colscale), *row = malloc(cols * sizeof *row);
    if (!colscale || !row) {
        free(colscale), free(row);
        return -1;
    }
    for (size_t c = 0; c < cols; c++)
        colscale[c] = (float)exp(0.2 * qk_rng_normal(&r));
    for (size_t i = 0; i < rows; i++) {
        double rs = 0.02 * exp(0.2 * qk_rng_normal(&r));
        for (size_t c = 0; c < cols; c++)
            row[c] = (float)(rs * colscale[c] * qk_rng_normal(&r) * exp(0.35 * qk_rng_normal(&r)));
        qk_quantize_q4k_ref(row, out + i * (cols / QK_K), cols);
    }
    free(colscale);
    free(row);
    return 0;
}

size_t qk_distinct_experts(const int32_t *ids, size_t n, int32_t *local, int32_t *distinct) {
    size_t n_distinct = 0;
    for (size_t i = 0; i < n; i++) {
        size_t d = 0;
        while (d < n_distinct && distinct[d] != ids[i])
            d++;
        if (d == n_distinct) distinct[n_distinct++] = ids[i];
        local[i] = (int32_t)d;
    }
    return n_distinct;
}

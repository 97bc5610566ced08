#include "act.h"
#include "../kernels/qk_formats.h"
#include <math.h>
#include <string.h>

static const char *const names[QK_ACT_COUNT] = {"normal", "uniform20", "outliers",
                                                "swiglu", "lognormal", "zero_blocks"};

const char *qk_act_name(qk_act_profile p) {
    return p < QK_ACT_COUNT ? names[p] : "?";
}

int qk_act_from_name(const char *name) {
    for (int p = 0; p < QK_ACT_COUNT; p++)
        if (!strcmp(name, names[p])) return p;
    return -1;
}

const char *qk_act_names(void) {
    return "normal, uniform20, outliers, swiglu, lognormal, zero_blocks";
}

void qk_act_fill(qk_rng *r, qk_act_profile p, float *x, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (p) {
        case QK_ACT_UNIFORM20:
            x[i] = (float)(40 * qk_rng_uniform(r) - 20);
            break;
        case QK_ACT_SWIGLU: {
            double g = qk_rng_normal(r), u = qk_rng_normal(r);
            x[i] = (float)(g / (1 + exp(-g)) * u);
            break;
        }
        case QK_ACT_LOGNORMAL: {
            double m = exp(qk_rng_normal(r));
            x[i] = (float)(qk_rng_u64(r) & 1 ? m : -m);
            break;
        }
        default:
            x[i] = (float)qk_rng_normal(r);
        }
    }
    if (p == QK_ACT_OUTLIERS) /* one channel in 512 (at least one), 50-100x */
        for (size_t k = 0; k < (n + 511) / 512; k++)
            x[qk_rng_below(r, n)] *= (float)(50 + 50 * qk_rng_uniform(r));
    if (p == QK_ACT_ZERO_BLOCKS)
        for (size_t b = 0; b < n / QK_K; b += 2)
            memset(x + b * QK_K, 0, QK_K * sizeof *x);
}

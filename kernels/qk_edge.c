/* The edge-case series every quantizer must agree on (kernels/qk_edge.h). */
#include "qk_edge.h"
#include <math.h>
#include <string.h>

const char *qk_edge_block(qk_rng *r, int b, float *x) {
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
    case 13: { /* NaNs of other payloads and signs: their bits must not matter */
        uint32_t odd[2] = {0xffc12345u, 0x7f800001u};
        x[9] = NAN;
        memcpy(&x[10], &odd[0], 4);
        memcpy(&x[11], &odd[1], 4);
        return "NaNs";
    }
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

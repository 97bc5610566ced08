/* A quantizer plug-in for the tests: f32 -> Q8_K as the reference (DESIGN.md "Formats"), or,
 * built with -DROUND_HALF_AWAY, rounding ties away from zero (a different variant, which bench
 * must report as not bit-identical: the edge cases hold exact ties), or, with -DOVERRUN, writing
 * one block past its output (bench refuses it). */
#include "qkbench_plugin.h"
#include <math.h>
#include <string.h>

enum { QK_K = 256 };
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8k;

static int nearest(float t) {
#ifdef ROUND_HALF_AWAY
    return t != t ? 0 : t > 1e9f ? 127 : t < -1e9f ? -128 : (int)roundf(t);
#else
    union {
        float f;
        int32_t i;
    } u = {.f = t + 12582912.0f}; /* ties to even, as ggml's nearest_int */
    return t != t ? 0 : (u.i & 0x007fffff) - 0x00400000;
#endif
}

static void quantize_q8k(const float *x, void *out, size_t n) {
    block_q8k *y = out;
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K, y++) {
        float amax = 0, max = 0;
        for (int i = 0; i < QK_K; i++)
            if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
        if (amax == 0) {
            memset(y, 0, sizeof *y);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int i = 0; i < QK_K; i++) {
            int v = nearest(iscale * x[i]);
            y->qs[i] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += y->qs[16 * g + i];
            y->bsums[g] = (int16_t)s;
        }
        y->d = 1 / iscale;
    }
#ifdef OVERRUN
    memset(y, 0x11, sizeof *y);
#endif
}

#if defined(OVERRUN)
#define NAME "quant_plugin_q8k_overrun"
#elif defined(ROUND_HALF_AWAY)
#define NAME "quant_plugin_q8k_away"
#else
#define NAME "quant_plugin_q8k"
#endif
static const qkb_variant variants[] = {{
    .name = NAME,
    .device = QKB_DEVICE_CPU,
    .kind = QKB_KIND_QUANTIZE,
    .weight_format = "f32",
    .act_format = "q8_K",
    .summary = "test plug-in: f32 -> Q8_K",
    .quantize = quantize_q8k,
}};

static const qkb_plugin plugin = {QKB_PLUGIN_ABI, NAME, "1", 1, variants};

const qkb_plugin *qkbench_plugin(const qkb_host *h) {
    (void)h;
    return &plugin;
}

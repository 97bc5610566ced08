/* A quantizer plug-in for the tests: f32 -> Q8_K by the spec's reference quantizer
 * (kernels/qk_q8.c, compiled into this module), or, built with -DROUND_HALF_AWAY, the same with
 * exact ties rounded away from zero (a different variant, which bench must report as not
 * bit-identical: the edge cases hold exact ties), or, with -DOVERRUN, writing one block past its
 * output (bench refuses it). */
#include "qk_quant.h"
#include "qkbench_plugin.h"
#include <math.h>
#include <string.h>

#ifdef ROUND_HALF_AWAY
/* The reference rounds ties to even; here a tie t = k + 0.5 goes away from zero instead: the
 * quants (and their group sums) where the two differ are moved one step. */
static void round_ties_away(const float *x, qk_block_q8k *y) {
    float amax = 0, max = 0;
    for (int i = 0; i < QK_K; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), max = x[i];
    if (amax == 0) return;
    const float iscale = -127.0f / max;
    for (int i = 0; i < QK_K; i++) {
        const float t = iscale * x[i];
        if (!isfinite(t) || t - floorf(t) != 0.5f) continue;
        int away = (int)roundf(t), step = away - y->qs[i];
        if (away > 127 || away < -128 || !step) continue;
        y->qs[i] = (int8_t)away;
        y->bsums[i / 16] = (int16_t)(y->bsums[i / 16] + step);
    }
}
#endif

static void quantize_q8k(const float *x, void *out, size_t n) {
    qk_block_q8k *y = out;
    qk_quantize_q8k_ref(x, y, n);
#ifdef ROUND_HALF_AWAY
    for (size_t b = 0; b < n / QK_K; b++)
        round_ties_away(x + b * QK_K, &y[b]);
#endif
#ifdef OVERRUN
    memset(&y[n / QK_K], 0x11, sizeof *y);
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

/* A deliberately wrong plug-in (DESIGN.md "Why it exists": an engine's GPU kernel ignored the
 * Q4_K mins): weight = d*sc*q, the dmin*m term dropped. It runs and is measured like any
 * variant; plot/contracts.py must flag it (its formats, q4_K x f32, carry the f32 bound). */
#include "qkbench_plugin.h"

enum { QK_K = 256 };

static const qkb_host *host;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12], qs[QK_K / 2];
} block_q4k;

static float fp16_to_f32(uint16_t h) { /* normal and zero values (the test's weights) */
    int e = (h >> 10) & 31, m = h & 1023;
    float v = e ? (1.0f + m / 1024.0f) * (float)(1u << e) / 32768.0f : m / 16777216.0f;
    return h >> 15 ? -v : v;
}

static void wrong_no_mins(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                          const void *x, float *y) {
    (void)rows;
    const block_q4k *blocks = w;
    const float *xf = x;
    for (size_t r = r0; r < r1; r++) {
        float sum = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            const block_q4k *blk = &blocks[r * (cols / QK_K) + b];
            for (int j = 0; j < 8; j++) {
                uint8_t sc, m;
                host->q4k_scale_min(blk->scales, j, &sc, &m); /* m: ignored, the bug */
                const float d = fp16_to_f32(blk->d) * sc;
                for (int l = 0; l < 32; l++) {
                    int q = (blk->qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 15;
                    sum += d * q * xf[b * QK_K + 32 * j + l];
                }
            }
        }
        y[r] = sum;
    }
}

static const qkb_variant variants[] = {{
    .name = "wrong_q4k_f32_no_mins",
    .device = QKB_DEVICE_CPU,
    .kind = QKB_KIND_MATVEC,
    .weight_format = "q4_K",
    .act_format = "f32",
    .summary = "deliberately wrong (a test): Q4_K x f32 without the mins",
    .matvec = wrong_no_mins,
}};

static const qkb_plugin plugin = {QKB_PLUGIN_ABI, "wrong_mins", "1", 1, variants};

const qkb_plugin *qkbench_plugin(const qkb_host *h) {
    host = h;
    return &plugin;
}

/* The template of a qkbench plug-in: one Q4_K x f32 matvec variant. Each row's super-blocks are
 * dequantized by the host's exact helper, then dotted with x in f32, in order. Build it as a
 * shared library against kernels/qkbench_plugin.h alone; run `bench --plugin ./qkb_example.so
 * --kernel example_q4k_f32`. */
#include "qkbench_plugin.h"

enum { QK_K = 256, BLOCK_BYTES = 144 }; /* a Q4_K super-block: 256 weights in 144 bytes */

static const qkb_host *host; /* lent by bench for the whole run */

/* y[r] = row r of w . x for r0 <= r < r1 (w: rows x cols plain Q4_K, x: cols f32). */
static void example_q4k_f32(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                            const void *x, float *y) {
    (void)rows;
    const unsigned char *blocks = w;
    const float *xf = x;
    float deq[QK_K];
    for (size_t r = r0; r < r1; r++) {
        float sum = 0;
        for (size_t b = 0; b < cols / QK_K; b++) {
            host->dequantize_q4k(blocks + (r * (cols / QK_K) + b) * BLOCK_BYTES, deq, QK_K);
            for (int i = 0; i < QK_K; i++)
                sum += deq[i] * xf[b * QK_K + i];
        }
        y[r] = sum;
    }
}

static const qkb_variant variants[] = {{
    .name = "example_q4k_f32",
    .device = QKB_DEVICE_CPU,
    .kind = QKB_KIND_MATVEC,
    .weight_format = "q4_K",
    .act_format = "f32",
    .summary = "example plug-in: the host's Q4_K dequantization, then a sequential f32 dot",
    .matvec = example_q4k_f32,
}};

static const qkb_plugin plugin = {QKB_PLUGIN_ABI, "example", "1.0", 1, variants};

const qkb_plugin *qkbench_plugin(const qkb_host *h) {
    host = h;
    return &plugin;
}

/* Matvec plug-ins that misbehave, one per build (-DCASE_<NAME>; tests/CMakeLists.txt builds
 * each as qkb_evil_<name>.so), for the checks bench makes of what a plug-in does rather than
 * what it registers: writes outside [r0, r1), packed sizes of 0 or 2^62, crashes, stdout from
 * a constructor, names bench reserves, a version that would make the JSON ambiguous. The
 * arithmetic, where there is some, is the example plug-in's (correct). */
#include "qkbench_plugin.h"
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { QK_K = 256, BLOCK_BYTES = 144 };
static const qkb_host *host;
static volatile uintptr_t nowhere = 64; /* unmapped: a crash no compiler or sanitizer foresees */

__attribute__((unused)) static void dot_rows(const void *w, size_t cols, size_t r0, size_t r1,
                                             const void *x, float *y) {
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

static void matvec(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                   float *y) {
    (void)rows;
#if defined(CASE_OOB_AFTER) /* also y[r1]: one past its range (past the output at the end) */
    dot_rows(w, cols, r0, r1, x, y);
    y[r1] = 1.0f;
#elif defined(CASE_OOB_BEFORE) /* also y[-1]: before the output */
    dot_rows(w, cols, r0, r1, x, y);
    y[-1] = 0.0f;
#elif defined(CASE_ALL_ROWS)   /* every row on every thread */
    (void)r0, (void)r1;
    dot_rows(w, cols, 0, rows, x, y);
#elif defined(CASE_CRASH_MATVEC)
    (void)w, (void)cols, (void)x, (void)y, (void)r1;
    if (r0 == 0) *(int *)nowhere = 1;
#else
    dot_rows(w, cols, r0, r1, x, y);
#endif
}

#if defined(CASE_PACK_ZERO) || defined(CASE_PACK_HUGE)
static size_t packed_size(size_t rows, size_t cols) {
    (void)rows, (void)cols;
#if defined(CASE_PACK_ZERO)
    return 0;
#else
    return (size_t)1 << 62;
#endif
}
static void pack(const void *plain, size_t rows, size_t cols, void *out) {
    memcpy(out, plain, rows * (cols / QK_K) * BLOCK_BYTES);
}
#define PACK .packed_size = packed_size, .pack = pack,
#else
#define PACK
#endif

#if defined(CASE_NAME_COLD)
#define NAME "cold"
#elif defined(CASE_NAME_K8)
#define NAME "k8"
#elif defined(CASE_NAME_SHAPE)
#define NAME "256x1024"
#elif defined(CASE_NAME_ORACLE)
#define NAME "oracle_f64"
#elif defined(CASE_NAME_ACTIVATIONS)
#define NAME "activations"
#elif defined(CASE_NAME_LONG)
#define NAME "evil_a_name_of_sixty_three_characters_xxxxxxxxxxxxxxxxxxxxxxxxx"
#else
#define NAME "evil_matvec"
#endif
#if defined(CASE_VERSION_SEMICOLON)
#define VERSION "1; other 2 (/tmp/x.so)"
#else
#define VERSION "1.0-rc1+g00"
#endif
#if defined(CASE_PLUGIN_NAME_QUOTE)
#define PLUGIN_NAME "it's"
#elif defined(CASE_PLUGIN_NAME_DUP)
#define PLUGIN_NAME "example"
#else
#define PLUGIN_NAME "evil"
#endif

static const qkb_variant variants[] = {
    {.name = NAME,
     .device = QKB_DEVICE_CPU,
     .kind = QKB_KIND_MATVEC,
     .weight_format = "q4_K",
     .act_format = "f32",
     .summary = "test plug-in: a matvec that misbehaves (tests/plugins/evil_matvec.c)",
     .matvec = matvec,
     PACK}};

static const qkb_plugin plugin = {QKB_PLUGIN_ABI, PLUGIN_NAME, VERSION, 1, variants};

#if defined(CASE_CTOR_STDOUT)
__attribute__((constructor)) static void hello(void) {
    printf("a constructor writing to stdout\n");
}
#endif

const qkb_plugin *qkbench_plugin(const qkb_host *h);
const qkb_plugin *qkbench_plugin(const qkb_host *h) {
#if defined(CASE_CRASH_ENTRY)
    *(int *)nowhere = 1;
#endif
#if defined(CASE_CTOR_STDOUT)
    printf("an entry point writing to stdout\n");
#endif
    host = h;
    return &plugin;
}

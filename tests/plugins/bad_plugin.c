/* The plug-ins bench must refuse, one per build (-DCASE_<NAME>; tests/CMakeLists.txt builds each
 * as qkb_bad_<name>.so): each breaks one rule of kernels/qkbench_plugin.h. Also CASE_CUDA_MOE, a
 * valid CUDA MOE variant without device code, with a sync (listed; skipped without a GPU; its
 * create says it cannot run). */
#include "qkbench_plugin.h"
#include <stdio.h>

/* one build uses some of these, another others */

__attribute__((unused)) static void matvec(const void *w, size_t rows, size_t cols, size_t r0,
                                           size_t r1, const void *x, float *y) {
    (void)w, (void)rows, (void)cols, (void)x;
    for (size_t r = r0; r < r1; r++)
        y[r] = 0;
}
__attribute__((unused)) static void *create(const qkb_moe_case *c, char *err, size_t err_size) {
    (void)c;
    snprintf(err, err_size, "a test plug-in without device code");
    return NULL;
}
__attribute__((unused)) static int run(void *s, char *err, size_t err_size) {
    (void)s, (void)err, (void)err_size;
    return -1;
}
__attribute__((unused)) static int output(void *s, float *y, char *err, size_t err_size) {
    (void)s, (void)y, (void)err, (void)err_size;
    return -1;
}
__attribute__((unused)) static int sync_queue(void *s, char *err, size_t err_size) {
    (void)s, (void)err, (void)err_size;
    return 0;
}
__attribute__((unused)) static void destroy(void *s) {
    (void)s;
}

#define MATVEC(NAME, DEVICE, KIND, W, A, FN)                                                       \
    {                                                                                              \
        .name = NAME, .device = DEVICE, .kind = KIND, .weight_format = W, .act_format = A,         \
        .summary = "a test plug-in", .matvec = FN                                                  \
    }
#define MOE(NAME, DEVICE, RUN, SYNC)                                                               \
    {                                                                                              \
        .name = NAME, .device = DEVICE, .kind = QKB_KIND_MOE, .weight_format = "q4_K",             \
        .act_format = "q8_1", .summary = "a test plug-in", .create = create, .run = RUN,           \
        .output = output, .destroy = destroy, .sync = SYNC                                         \
    }

#ifdef CASE_PARK_ONLY
static void idle(void *state) {
    (void)state;
}
#endif

static const qkb_variant variants[] = {
#if defined(CASE_BAD_NAME)
    MATVEC("Bad-Name", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#elif defined(CASE_CLASH_BUILTIN)
    MATVEC("q4k_f32_ref", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#elif defined(CASE_CLASH_EXAMPLE)
    MATVEC("example_q4k_f32", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#elif defined(CASE_UNKNOWN_KIND)
    MATVEC("bad_kind", QKB_DEVICE_CPU, 7, "q4_K", "f32", matvec),
#elif defined(CASE_UNKNOWN_DEVICE)
    MATVEC("bad_device", 5, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#elif defined(CASE_UNKNOWN_FORMAT)
    MATVEC("bad_format", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "q5_0", matvec),
#elif defined(CASE_NULL_MATVEC)
    MATVEC("null_matvec", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "f32", NULL),
#elif defined(CASE_NULL_RUN)
    MOE("null_run", QKB_DEVICE_CPU, NULL, NULL),
#elif defined(CASE_Q8_WEIGHTS)
    MATVEC("q8_weights", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q8_K", "f32", matvec),
#elif defined(CASE_CUDA_MATVEC)
    MATVEC("cuda_matvec", QKB_DEVICE_CUDA, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#elif defined(CASE_CUDA_MOE)
    MOE("cuda_moe_no_device_code", QKB_DEVICE_CUDA, run, sync_queue),
#elif defined(CASE_CPU_SYNC)
    MOE("cpu_moe_sync", QKB_DEVICE_CPU, run, sync_queue),
#elif defined(CASE_PARK_ONLY)
    {.name = "park_only",
     .device = QKB_DEVICE_CPU,
     .kind = QKB_KIND_MOE,
     .weight_format = "q4_K",
     .act_format = "q8_1",
     .summary = "a test plug-in",
     .create = create,
     .run = run,
     .output = output,
     .destroy = destroy,
     .park = idle},
#else
    MATVEC("bad_plugin_variant", QKB_DEVICE_CPU, QKB_KIND_MATVEC, "q4_K", "f32", matvec),
#endif
};

#if defined(CASE_ZERO_VARIANTS)
#define N_VARIANTS 0
#elif defined(CASE_ABSURD_VARIANTS)
#define N_VARIANTS ((size_t)1 << 40)
#else
#define N_VARIANTS (sizeof variants / sizeof variants[0])
#endif
#if defined(CASE_ABI)
#define ABI (QKB_PLUGIN_ABI + 1)
#else
#define ABI QKB_PLUGIN_ABI
#endif
#if defined(CASE_PLUGIN_NAME)
#define PLUGIN_NAME "a name; with spaces"
#else
#define PLUGIN_NAME "bad_plugin"
#endif

__attribute__((unused)) static const qkb_plugin plugin = {ABI, PLUGIN_NAME, "1", N_VARIANTS,
                                                          variants};

#if defined(CASE_NO_ENTRY)
const qkb_plugin *not_the_entry_point(const qkb_host *h);
const qkb_plugin *not_the_entry_point(const qkb_host *h) {
#else
const qkb_plugin *qkbench_plugin(const qkb_host *h);
const qkb_plugin *qkbench_plugin(const qkb_host *h) {
#endif
    (void)h;
#if defined(CASE_NULL_ENTRY)
    return NULL;
#else
    return &plugin;
#endif
}

/* The GPU runtime of a build without CUDA (nvcc not found, or -DQK_CUDA=OFF): GPU variants are
 * listed and skipped with this reason; their emulations still run. */
#include "gpu_kernels.h"
#include <stdio.h>
#include <string.h>

static const char *const reason = "built without CUDA (nvcc was not found at configure time)";

const char *qk_gpu_unsupported(void) {
    return reason;
}
int qk_gpu_open(char *err, size_t err_size) {
    snprintf(err, err_size, "%s", reason);
    return -1;
}
void qk_gpu_fingerprint(qk_gpu_kv_fn emit, void *ctx) {
    emit("gpu", reason, ctx);
}
double qk_gpu_copy_bandwidth(size_t bytes, int reps) {
    (void)bytes, (void)reps;
    return 0;
}
qk_gpu_case *qk_gpu_case_create(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                                size_t n_experts, const int32_t *ids, size_t n_tokens, size_t n_ids,
                                const float *x, char *err, size_t err_size) {
    (void)k, (void)w, (void)rows, (void)cols, (void)n_experts, (void)ids, (void)n_tokens,
        (void)n_ids, (void)x;
    snprintf(err, err_size, "%s", reason);
    return NULL;
}
void qk_gpu_case_destroy(qk_gpu_case *c) {
    (void)c;
}
int qk_gpu_case_run(qk_gpu_case *c, void *out_host, char *err, size_t err_size) {
    (void)c, (void)out_host;
    snprintf(err, err_size, "%s", reason);
    return -1;
}
int qk_gpu_case_output(qk_gpu_case *c, float *out_host, char *err, size_t err_size) {
    (void)c, (void)out_host;
    snprintf(err, err_size, "%s", reason);
    return -1;
}
int qk_gpu_case_time(qk_gpu_case *c, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    (void)c, (void)temp, (void)count;
    if (out) memset(out, 0, sizeof *out);
    snprintf(err, err_size, "%s", reason);
    return -1;
}
size_t qk_gpu_case_weight_bytes(const qk_gpu_case *c) {
    (void)c;
    return 0;
}
size_t qk_gpu_l2_bytes(void) {
    return 0;
}
int qk_gpu_set_hold(int on) {
    static int hold = 1; /* kept, so that the setting reads back as with CUDA */
    const int was = hold;
    hold = on != 0;
    return was;
}
double qk_gpu_sm_clock_mhz(void) {
    return 0;
}
double qk_gpu_sm_clock_max_mhz(void) {
    return 0;
}
qk_gpu_read *qk_gpu_read_create(size_t bytes, char *err, size_t err_size) {
    (void)bytes;
    snprintf(err, err_size, "%s", reason);
    return NULL;
}
void qk_gpu_read_destroy(qk_gpu_read *r) {
    (void)r;
}
int qk_gpu_read_time(qk_gpu_read *r, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    (void)r, (void)temp, (void)count;
    if (out) memset(out, 0, sizeof *out);
    snprintf(err, err_size, "%s", reason);
    return -1;
}
int qk_gpu_read_shape(qk_gpu_read *r, int loads_per_thread, int blocks_per_sm) {
    (void)r, (void)loads_per_thread, (void)blocks_per_sm;
    return -1;
}
int qk_gpu_kernel_window(int (*fn)(void *arg), void *arg, double *kernel_s, int *kernels) {
    (void)fn, (void)arg;
    *kernel_s = 0;
    *kernels = 0;
    return 1;
}

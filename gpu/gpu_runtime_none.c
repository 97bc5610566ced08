/* The GPU runtime of a build without CUDA (nvcc not found, or -DQK_CUDA=OFF): GPU variants are
 * listed and skipped with this reason; their emulations still run. */
#include "gpu_kernels.h"
#include <stdio.h>

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
                                size_t n_experts, const int32_t *ids, size_t n_ids, const float *x,
                                char *err, size_t err_size) {
    (void)k, (void)w, (void)rows, (void)cols, (void)n_experts, (void)ids, (void)n_ids, (void)x;
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
int qk_gpu_case_time(qk_gpu_case *c, int cold, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    (void)c, (void)cold, (void)count, (void)out;
    snprintf(err, err_size, "%s", reason);
    return -1;
}

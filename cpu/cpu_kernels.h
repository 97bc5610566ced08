/* The CPU variants, each callable directly, and their descriptor table. */
#ifndef QK_CPU_KERNELS_H
#define QK_CPU_KERNELS_H
#include "../kernels/qk_kernel.h"

#define QK_MATVEC_ARGS                                                                             \
    const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x, float *y
#define QK_MATMUL_ARGS                                                                             \
    const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *const *xs,          \
        float *const *ys, size_t n

void qk_q4k_f32_ref(QK_MATVEC_ARGS);
void qk_q4k_f32_avx2(QK_MATVEC_ARGS);
void qk_q4k_f32_avx512(QK_MATVEC_ARGS);
void qk_q4k_q8k_ref(QK_MATVEC_ARGS);
void qk_q4k_q8k_maddubs(QK_MATVEC_ARGS);
void qk_q4k_q8k_vnni(QK_MATVEC_ARGS);
void qk_q4k_q8k_vnni_r8(QK_MATVEC_ARGS);
/* The several-column paths (qk_matmul_fn): each column bit-identical to the variant's matvec. */
void qk_q4k_f32_ref_matmul(QK_MATMUL_ARGS);
void qk_q4k_f32_avx2_matmul(QK_MATMUL_ARGS);
void qk_q4k_f32_avx512_matmul(QK_MATMUL_ARGS);
void qk_q4k_q8k_ref_matmul(QK_MATMUL_ARGS);
void qk_q4k_q8k_maddubs_matmul(QK_MATMUL_ARGS);
void qk_q4k_q8k_vnni_matmul(QK_MATMUL_ARGS);
void qk_q4k_q8k_vnni_r8_matmul(QK_MATMUL_ARGS);
size_t qk_q4k_r8_packed_size(size_t rows, size_t cols);
void qk_q4k_r8_pack(const void *w, size_t rows, size_t cols, void *out);

void qk_quant_q8k_ref(const float *x, void *out, size_t n);
void qk_quant_q8k_avx2(const float *x, void *out, size_t n);
void qk_quant_q8k_avx512(const float *x, void *out, size_t n);

extern const qk_kernel qk_cpu_kernels[];
extern const size_t qk_cpu_kernel_count;

/* Looks a CPU variant up by exact name; NULL if none. */
const qk_kernel *qk_cpu_kernel(const char *name);
/* The fastest quantizer to `fmt` this CPU runs (the table lists them slowest first). */
const qk_kernel *qk_cpu_best_quantizer(qk_format fmt);
/* NULL when this CPU runs k, else the reason it cannot (e.g. "needs avx512_vnni"). */
const char *qk_cpu_unsupported(const qk_kernel *k);

#endif

/* The one table of GPU variants. Adding a variant: its .cu file (kernel + launch in
 * gpu_runtime.cu's dispatch), its emulation, and one row here. */
#include "gpu_kernels.h"
#include "../kernels/qk_quant.h"
#include <string.h>

static const qk_gpu_launch f32 = {QK_GPU_MATVEC_F32}, q8k = {QK_GPU_MATVEC_Q8K},
                           q8_1 = {QK_GPU_MATVEC_Q8_1}, e2e = {QK_GPU_MATVEC_Q8K_E2E},
                           quant_q8k = {QK_GPU_QUANT_Q8K}, quant_q8_1 = {QK_GPU_QUANT_Q8_1};

#define GPU_MATVEC(NAME, ACT, EMU, LAUNCH, SUMMARY)                                                \
    {                                                                                              \
#NAME, QK_DEV_GPU, QK_OP_MATVEC, QK_FMT_Q4_K, ACT, QK_ISA_CUDA, EMU, NULL, 1, NULL, NULL,  \
            SUMMARY, &LAUNCH, NULL, NULL, NULL                                                     \
    }
#define GPU_QUANT(NAME, OUT, EMU, LAUNCH, SUMMARY)                                                 \
    {                                                                                              \
#NAME, QK_DEV_GPU, QK_OP_QUANTIZE, QK_FMT_F32, OUT, QK_ISA_CUDA, NULL, EMU, 1, NULL, NULL, \
            SUMMARY, &LAUNCH, NULL, NULL, NULL                                                     \
    }

const qk_kernel qk_gpu_kernels[] = {
    GPU_MATVEC(gpu_q4k_f32, QK_FMT_F32, qk_emu_gpu_q4k_f32, f32,
               "CUDA: Q4_K x f32, dequantization fused, FMA per weight, one warp per row"),
    GPU_MATVEC(dp4a_q4k_q8, QK_FMT_Q8_K, qk_emu_dp4a_q4k_q8, q8k,
               "CUDA: Q4_K x Q8_K with __dp4a, integer sums of q4k_q8k_ref; quantize + matvec"),
    GPU_MATVEC(dp4a_q4k_q8_1, QK_FMT_Q8_1, qk_emu_dp4a_q4k_q8_1, q8_1,
               "CUDA: Q4_K x Q8_1 (llama.cpp's activation format) with __dp4a"),
    GPU_MATVEC(dp4a_q4k_q8_e2e, QK_FMT_Q8_K, qk_emu_dp4a_q4k_q8, e2e,
               "CUDA: dp4a_q4k_q8 with the Q8_K quantization fused into the one launch"),
    GPU_QUANT(gpu_quant_q8k, QK_FMT_Q8_K, qk_emu_gpu_quant_q8k, quant_q8k,
              "CUDA: f32 -> Q8_K, one warp per block, bit-identical to quant_q8k_ref"),
    GPU_QUANT(gpu_quant_q8_1, QK_FMT_Q8_1, qk_emu_gpu_quant_q8_1, quant_q8_1,
              "CUDA: f32 -> Q8_1, one warp per block, bit-identical to the Q8_1 reference"),
};
const size_t qk_gpu_kernel_count = sizeof qk_gpu_kernels / sizeof qk_gpu_kernels[0];

const qk_kernel *qk_gpu_kernel(const char *name) {
    for (size_t i = 0; i < qk_gpu_kernel_count; i++)
        if (!strcmp(qk_gpu_kernels[i].name, name)) return &qk_gpu_kernels[i];
    return NULL;
}

void qk_emu_gpu_quant_q8k(const float *x, void *out, size_t n) {
    qk_quantize_q8k_ref(x, out, n);
}
void qk_emu_gpu_quant_q8_1(const float *x, void *out, size_t n) {
    qk_quantize_q8_1_ref(x, out, n);
}

/* The one table of CPU variants. Adding a variant: its file plus one row here. */
#include "cpu_kernels.h"
#include "cpu_features.h"
#include <stdio.h>
#include <string.h>

#define MATVEC(NAME, ACT, ISA, GROUP, PSIZE, PACK, MATMUL, SUMMARY)                                \
    {                                                                                              \
#NAME, QK_DEV_CPU, QK_OP_MATVEC, QK_FMT_Q4_K, ACT, ISA, qk_##NAME, NULL, GROUP, PSIZE,     \
            PACK, SUMMARY, NULL, NULL, NULL, MATMUL                                                \
    }
#define QUANT(NAME, OUT, ISA, SUMMARY)                                                             \
    {                                                                                              \
#NAME, QK_DEV_CPU, QK_OP_QUANTIZE, QK_FMT_F32, OUT, ISA, NULL, qk_##NAME, 1, NULL, NULL,   \
            SUMMARY, NULL, NULL, NULL, NULL                                                        \
    }

const qk_kernel qk_cpu_kernels[] = {
    MATVEC(q4k_f32_ref, QK_FMT_F32, 0, 1, NULL, NULL, qk_q4k_f32_ref_matmul,
           "scalar: dequantize a super-block to f32, sequential f32 dot"),
    MATVEC(q4k_f32_avx2, QK_FMT_F32, QK_ISA_AVX2, 1, NULL, NULL, qk_q4k_f32_avx2_matmul,
           "AVX2: factored d*sc*sum(q*x) - dmin*m*sum(x), nibbles by vpmovzxbd + vcvtdq2ps, "
           "4 rows per pass, sub-block sums of x once per call"),
    MATVEC(q4k_f32_avx512, QK_FMT_F32, QK_ISA_AVX512, 1, NULL, NULL, qk_q4k_f32_avx512_matmul,
           "AVX-512: nibble to weight by vpermps from a 16-entry table d*sc*q - dmin*m per "
           "sub-block, one FMA per 16 weights, 4 rows per pass"),
    MATVEC(q4k_q8k_ref, QK_FMT_Q8_K, 0, 1, NULL, NULL, qk_q4k_q8k_ref_matmul,
           "scalar integer reference: S = sum sc*isum, M = sum m*bsum per super-block"),
    MATVEC(q4k_q8k_maddubs, QK_FMT_Q8_K, QK_ISA_AVX2, 1, NULL, NULL, qk_q4k_q8k_maddubs_matmul,
           "AVX2 on plain Q4_K rows: vpmaddubsw nibble x int8, vpmaddwd by a vpshufb'd scale "
           "vector, 4 rows per pass, scales decoded in SIMD"),
    MATVEC(q4k_q8k_vnni, QK_FMT_Q8_K, QK_ISA_AVX512_VNNI, 1, NULL, NULL, qk_q4k_q8k_vnni_matmul,
           "AVX-512 VNNI on plain Q4_K rows: vpdpbusd, vpackssdw, one vpdpwssd per 4 "
           "sub-blocks, 4 rows per pass, scales decoded in SIMD"),
    MATVEC(q4k_q8k_vnni_r8, QK_FMT_Q8_K, QK_ISA_AVX512_VNNI, 8, qk_q4k_r8_packed_size,
           qk_q4k_r8_pack, qk_q4k_q8k_vnni_r8_matmul,
           "AVX-512 VNNI on 8 rows interleaved (own layout, packed once): one scale vector per "
           "sub-block for 8 rows"),
    QUANT(quant_q8k_ref, QK_FMT_Q8_K, 0, "scalar reference Q8_K quantizer"),
    QUANT(quant_q8k_avx2, QK_FMT_Q8_K, QK_ISA_AVX2, "AVX2 Q8_K quantizer, bit-identical to ref"),
    QUANT(quant_q8k_avx512, QK_FMT_Q8_K, QK_ISA_AVX512,
          "AVX-512 Q8_K quantizer, bit-identical to ref"),
};
const size_t qk_cpu_kernel_count = sizeof qk_cpu_kernels / sizeof qk_cpu_kernels[0];

const qk_kernel *qk_cpu_kernel(const char *name) {
    for (size_t i = 0; i < qk_cpu_kernel_count; i++)
        if (!strcmp(qk_cpu_kernels[i].name, name)) return &qk_cpu_kernels[i];
    return NULL;
}

const char *qk_cpu_unsupported(const qk_kernel *k) {
    static _Thread_local char why[64];
    const char *miss = qk_cpu_missing_isa(k->isa);
    if (!*miss) return NULL;
    snprintf(why, sizeof why, "needs %s", miss);
    return why;
}

const qk_kernel *qk_cpu_best_quantizer(qk_format fmt) {
    const qk_kernel *best = NULL;
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        if (k->op == QK_OP_QUANTIZE && k->act_format == fmt && !qk_cpu_unsupported(k)) best = k;
    }
    return best;
}

/* The kernel descriptor: one row per variant in cpu/ and gpu/ tables; bench/ and tests join them.
 */
#ifndef QK_KERNEL_H
#define QK_KERNEL_H
#include "qk_formats.h"
#include "qkbench_plugin.h"
#include <stddef.h>
#include <stdint.h>

QK_EXTERN_C_BEGIN
typedef enum { QK_DEV_CPU = 0, QK_DEV_GPU } qk_device;
/* QK_OP_MOE: the whole unit (every selected expert, the activations' quantization) run by a
 * plug-in with its own threads or on its device (kernels/qkbench_plugin.h, QKB_KIND_MOE). */
typedef enum { QK_OP_MATVEC = 0, QK_OP_QUANTIZE, QK_OP_MOE } qk_op;

/* Instruction sets a variant needs; the CPU side checks them with CPUID at run time. */
enum {
    QK_ISA_AVX2 = 1u << 0,        /* AVX2 + FMA + F16C, OS-enabled YMM state */
    QK_ISA_AVX512 = 1u << 1,      /* AVX-512 F, BW, DQ, VL, OS-enabled ZMM state */
    QK_ISA_AVX512_VNNI = 1u << 2, /* AVX-512 VNNI (vpdpbusd, vpdpwssd) */
    QK_ISA_CUDA = 1u << 3,        /* a CUDA device */
};

/* y[r] = dot(row r of W, x) for r0 <= r < r1, writing exactly those y[r]. W is the whole
 * rows x cols matrix in the variant's weight layout (plain Q4_K rows, or the layout its `pack`
 * made); x holds `cols` activations in its activation format; cols is a multiple of 256 and
 * r0 a multiple of row_group. */
typedef void (*qk_matvec_fn)(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                             const void *x, float *y);
/* Several activation columns at once, each weight block read once for all of them (the tokens
 * of a batch routed to one expert): for c < n, ys[c][r] = dot(row r of W, xs[c]) for
 * r0 <= r < r1, writing exactly those. xs[c] holds cols activations in the variant's format,
 * ys[c] that column's rows outputs. Each column's output is bit-identical to matvec's on that
 * column alone (the same arithmetic in the same order). Any n >= 1. */
typedef void (*qk_matmul_fn)(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                             const void *const *xs, float *const *ys, size_t n);
/* A weight layout of the variant's own, made once before timing (as llama.cpp's CPU_REPACK). */
typedef size_t (*qk_packed_size_fn)(size_t rows, size_t cols);
typedef void (*qk_pack_fn)(const void *plain, size_t rows, size_t cols, void *out);
/* out = quantize(x[0..n)) in the variant's output format, n a multiple of its block. */
typedef void (*qk_quantize_fn)(const float *x, void *out, size_t n);

typedef struct qk_kernel {
    const char *name;
    qk_device device;
    qk_op op;
    qk_format weight_format;       /* matvec: weights; quantize: input (f32) */
    qk_format act_format;          /* matvec: activations; quantize: output */
    uint32_t isa;                  /* QK_ISA_* bits required */
    qk_matvec_fn matvec;           /* op == QK_OP_MATVEC */
    qk_quantize_fn quantize;       /* op == QK_OP_QUANTIZE */
    size_t row_group;              /* rows computed together; row ranges split on its multiples */
    qk_packed_size_fn packed_size; /* NULL: the kernel reads plain Q4_K rows */
    qk_pack_fn pack;
    const char *summary; /* one line: what it computes and how */
    /* GPU variants: gpu/'s launch description (opaque here). For them matvec / quantize hold
     * the C emulation: the same arithmetic in the same order, run on the CPU. */
    const void *gpu;
    /* Plug-in variants: the plug-in's own description (a MOE variant's callbacks live there)
     * and where it came from (bench/plugin.h, opaque here); NULL for the built-in ones. */
    const qkb_variant *ext;
    const struct qk_plugin *plugin;
    /* op == QK_OP_MATVEC, optional: the several-column path (NULL: matvec once per column). GPU
     * variants leave it NULL: each column of their batched kernels is their one-column
     * emulation's arithmetic, bit for bit (tests/test_gpu.c). */
    qk_matmul_fn matmul;
} qk_kernel;
QK_EXTERN_C_END

#endif

/* Block formats, byte-exact with GGUF / ggml. See DESIGN.md "Formats". */
#ifndef QK_FORMATS_H
#define QK_FORMATS_H

#include <stddef.h>
#include <stdint.h>

/* The headers CUDA code includes (this one, qk_q4k_scales.h, qk_kernel.h) are C and C++. */
#ifdef __cplusplus
#define QK_STATIC_ASSERT static_assert
#define QK_EXTERN_C_BEGIN extern "C" {
#define QK_EXTERN_C_END }
#else
#define QK_STATIC_ASSERT _Static_assert
#define QK_EXTERN_C_BEGIN
#define QK_EXTERN_C_END
#endif
#ifdef __CUDACC__
#define QK_HOST_DEVICE __host__ __device__
#else
#define QK_HOST_DEVICE
#endif

#define QK_K 256   /* elements per Q4_K / Q8_K super-block */
#define QK8_1 32   /* elements per Q8_1 block */
#define QK_K_SUB 8 /* 32-element sub-blocks per Q4_K super-block */

/* Q4_K: weight = d*sc*q - dmin*m per 32-element sub-block; 144 bytes. */
typedef struct {
    uint16_t d;           /* fp16 super-block scale of the 6-bit scales */
    uint16_t dmin;        /* fp16 super-block scale of the 6-bit mins */
    uint8_t scales[12];   /* eight 6-bit scales and eight 6-bit mins, packed */
    uint8_t qs[QK_K / 2]; /* chunk c (32 bytes): low nibble = elem 64c+l, high = 64c+32+l */
} qk_block_q4k;

/* Q8_K: x ~= d*q; 292 bytes. */
typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16]; /* sums of consecutive 16 quants */
} qk_block_q8k;

/* Q8_1: x ~= d*q, s = sum of the f32 inputs; 36 bytes. */
typedef struct {
    uint16_t d; /* fp16 */
    uint16_t s; /* fp16 */
    int8_t qs[QK8_1];
} qk_block_q8_1;

QK_STATIC_ASSERT(sizeof(qk_block_q4k) == 144, "Q4_K block must be 144 bytes");
QK_STATIC_ASSERT(sizeof(qk_block_q8k) == 292, "Q8_K block must be 292 bytes");
QK_STATIC_ASSERT(sizeof(qk_block_q8_1) == 36, "Q8_1 block must be 36 bytes");

typedef enum { QK_FMT_F32 = 0, QK_FMT_Q4_K, QK_FMT_Q8_K, QK_FMT_Q8_1, QK_FMT_COUNT } qk_format;

/* Row r of a plain Q4_K matrix with `cols` columns. */
static inline QK_HOST_DEVICE const qk_block_q4k *qk_q4k_row(const void *w, size_t cols, size_t r) {
    return (const qk_block_q4k *)w + r * (cols / QK_K);
}

QK_EXTERN_C_BEGIN
const char *qk_format_name(qk_format f);
/* Bytes taken by n elements (n a multiple of the block size) of format f. */
size_t qk_format_bytes(qk_format f, size_t n);
/* Elements per block of format f (1 for f32). */
int qk_format_block(qk_format f);
QK_EXTERN_C_END

#endif

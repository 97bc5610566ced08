/* q4k_f32_avx512: fused dequantization + FMA on f32 activations in 16 lanes, 4 rows per pass.
 *
 * Nibble to weight through a table: vpermps reads only the low 4 bits of each index dword, so
 * with the sub-block's 16 possible weights T[q] = d*sc*q - dmin*m in one register (one FMA per
 * sub-block), vpmovzxbd of 16 quant bytes followed by vpermps gives 16 low-nibble weights, and
 * vpsrld 4 then vpermps the high ones: no mask, no int-to-float conversion, and the mins come
 * with the weights. Then one FMA per 16 weights, two accumulators per row. The 6-bit scales of
 * the 4 rows are decoded together, one row per 128-bit lane (qk_q4k_unpack_scales4 of
 * q4k_scales_simd.h). */
#include "cpu_kernels.h"
#include "q4k_scales_simd.h"
#include <immintrin.h>

enum { ROWS = 4 };

/* The compiler would turn the broadcasts of a just-stored array into register shuffles (16 per
 * row and super-block, on the shuffle port the table lookups need); this makes it load them:
 * a broadcast from memory costs a load only. */
#define FROM_MEMORY(a) __asm__("" : "+m"(a))

/* One row's super-block: acc += sum_l w_l*x_l. f: the row's {d*sc_j, dmin*m_j} (j = 0..7). */
static inline void row_dot(const uint8_t *q, const float *xb, const float f[16], __m512 *acc0,
                           __m512 *acc1) {
    const __m512 q16 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512 a0 = *acc0, a1 = *acc1;
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m512 tl =
            _mm512_fmsub_ps(q16, _mm512_set1_ps(f[2 * c]), _mm512_set1_ps(f[8 + 2 * c]));
        const __m512 th =
            _mm512_fmsub_ps(q16, _mm512_set1_ps(f[2 * c + 1]), _mm512_set1_ps(f[9 + 2 * c]));
        const __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 32 * c)));
        const __m512i i1 =
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 32 * c + 16)));
        const float *xc = xb + 64 * c;
        a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i0, tl), _mm512_loadu_ps(xc), a0);
        a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(i1, tl), _mm512_loadu_ps(xc + 16), a1);
        a0 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(i0, 4), th),
                             _mm512_loadu_ps(xc + 32), a0);
        a1 = _mm512_fmadd_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(i1, 4), th),
                             _mm512_loadu_ps(xc + 48), a1);
    }
    *acc0 = a0;
    *acc1 = a1;
}

void qk_q4k_f32_avx512(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                       float *y) {
    (void)rows;
    const float *xf = x;
    const size_t nb = cols / QK_K;
    const __m512i d_pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        /* a short last group repeats its last row; only the real rows are written */
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m512 acc[ROWS][2];
        for (int i = 0; i < ROWS; i++)
            acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const float *xb = xf + b * QK_K;
            __m512i h = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)&row[0][b]));
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[1][b]), 1);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[2][b]), 2);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[3][b]), 3);
            const __m512i sm = qk_q4k_unpack_scales4(h);
            /* {d(r), dmin(r)} of the 4 rows */
            const __m512 dd = _mm512_castps256_ps512(
                _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(d_pick, h))));
            /* the next group's rows (contiguous after these), 1/nb of them per super-block */
            const char *next = (const char *)row[0] + ROWS * (nb + b) * sizeof(qk_block_q4k);
            for (size_t k = 0; k < ROWS * sizeof(qk_block_q4k); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
                /* row r: {d*sc_j, dmin*m_j} as 16 floats, read back by broadcasts */
#define ROW(r)                                                                                     \
    do {                                                                                           \
        float f[16];                                                                               \
        const __m512 dv = _mm512_permutexvar_ps(                                                   \
            _mm512_setr_epi32(2 * (r), 2 * (r), 2 * (r), 2 * (r), 2 * (r), 2 * (r), 2 * (r),       \
                              2 * (r), 2 * (r) + 1, 2 * (r) + 1, 2 * (r) + 1, 2 * (r) + 1,         \
                              2 * (r) + 1, 2 * (r) + 1, 2 * (r) + 1, 2 * (r) + 1),                 \
            dd);                                                                                   \
        _mm512_storeu_ps(f, _mm512_mul_ps(dv, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(             \
                                                  _mm512_extracti32x4_epi32(sm, r)))));            \
        FROM_MEMORY(f);                                                                            \
        row_dot(row[r][b].qs, xb, f, &acc[r][0], &acc[r][1]);                                      \
    } while (0)
            ROW(0);
            ROW(1);
            ROW(2);
            ROW(3);
#undef ROW
        }
        for (size_t i = 0; i < ROWS && rg + i < r1; i++)
            y[rg + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][0], acc[i][1]));
    }
}

/* q4k_f32_avx512: fused dequantization + FMA on f32 activations in 16 lanes, 4 rows per pass.
 *
 * Nibble to weight through a table: vpermps reads only the low 4 bits of each index dword, so
 * with the sub-block's 16 possible weights T[q] = d*sc*q - dmin*m in one register (one FMA per
 * sub-block), vpmovzxbd of 16 quant bytes followed by vpermps gives 16 low-nibble weights, and
 * vpsrld 4 then vpermps the high ones: no mask, no int-to-float conversion, and the mins come
 * with the weights. Then one FMA per 16 weights, two accumulators per row. The 6-bit scales of
 * the 4 rows are decoded together, one row per 128-bit lane (qk_q4k_unpack_scales4 of
 * q4k_scales_simd.h).
 *
 * Several columns (matmul): one pass decodes a row's scales, builds its tables and looks its
 * weights up once for up to COLS columns, each with its own two accumulators; matvec is the
 * one-column pass, so every column's arithmetic is matvec's, in the same order. */
#include "cpu_kernels.h"
#include "q4k_scales_simd.h"
#include <immintrin.h>

enum { ROWS = 4, COLS = 8 };

/* Expanded once per column count, so that the column loops unroll and each (row, column)
 * accumulator is a register or a fixed stack slot. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The compiler would turn the broadcasts of a just-stored array into register shuffles (16 per
 * row and super-block, on the shuffle port the table lookups need); this makes it load them:
 * a broadcast from memory costs a load only. */
#define FROM_MEMORY(a) __asm__("" : "+m"(a))

/* One row's super-block for nc columns: acc[c] += sum_l w_l*xb[c][l], each 16 weights looked
 * up once and multiplied into every column. f: the row's {d*sc_j, dmin*m_j} (j = 0..7). */
static ALWAYS_INLINE void row_dot(const uint8_t *q, const float *const *xb, size_t nc,
                                  const float f[16], __m512 acc[][2]) {
    const __m512 q16 = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        const __m512 tl =
            _mm512_fmsub_ps(q16, _mm512_set1_ps(f[2 * c]), _mm512_set1_ps(f[8 + 2 * c]));
        const __m512 th =
            _mm512_fmsub_ps(q16, _mm512_set1_ps(f[2 * c + 1]), _mm512_set1_ps(f[9 + 2 * c]));
        const __m512i i0 = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 32 * c)));
        const __m512i i1 =
            _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(q + 32 * c + 16)));
        const __m512 w0 = _mm512_permutexvar_ps(i0, tl), w1 = _mm512_permutexvar_ps(i1, tl);
        const __m512 w2 = _mm512_permutexvar_ps(_mm512_srli_epi32(i0, 4), th);
        const __m512 w3 = _mm512_permutexvar_ps(_mm512_srli_epi32(i1, 4), th);
#pragma GCC unroll 8
        for (size_t k = 0; k < nc; k++) {
            const float *xc = xb[k] + 64 * c;
            acc[k][0] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(xc), acc[k][0]);
            acc[k][1] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(xc + 16), acc[k][1]);
            acc[k][0] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xc + 32), acc[k][0]);
            acc[k][1] = _mm512_fmadd_ps(w3, _mm512_loadu_ps(xc + 48), acc[k][1]);
        }
    }
}

/* ys[k][r] = dot(row r, xs[k]) for r0 <= r < r1, k < nc <= COLS */
static ALWAYS_INLINE void rows_pass(const void *w, size_t cols, size_t r0, size_t r1,
                                    const float *const *xs, float *const *ys, size_t nc) {
    const size_t nb = cols / QK_K;
    const __m512i d_pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        /* a short last group repeats its last row; only the real rows are written */
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m512 acc[ROWS][COLS][2];
        for (int i = 0; i < ROWS; i++)
#pragma GCC unroll 8
            for (size_t k = 0; k < nc; k++)
                acc[i][k][0] = acc[i][k][1] = _mm512_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const float *xb[COLS];
#pragma GCC unroll 8
            for (size_t k = 0; k < nc; k++)
                xb[k] = xs[k] + b * QK_K;
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
        row_dot(row[r][b].qs, xb, nc, f, acc[r]);                                                  \
    } while (0)
            ROW(0);
            ROW(1);
            ROW(2);
            ROW(3);
#undef ROW
        }
        for (size_t i = 0; i < ROWS && rg + i < r1; i++)
#pragma GCC unroll 8
            for (size_t k = 0; k < nc; k++)
                ys[k][rg + i] = _mm512_reduce_add_ps(_mm512_add_ps(acc[i][k][0], acc[i][k][1]));
    }
}

/* One function per column count, each with its loops unrolled */
#define PASS(N)                                                                                    \
    static void rows_pass_##N(const void *w, size_t cols, size_t r0, size_t r1,                    \
                              const float *const *xs, float *const *ys) {                          \
        rows_pass(w, cols, r0, r1, xs, ys, N);                                                     \
    }
PASS(1)
PASS(2)
PASS(3)
PASS(4)
PASS(5)
PASS(6)
PASS(7)
PASS(8)
#undef PASS

void qk_q4k_f32_avx512(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                       float *y) {
    (void)rows;
    const float *xs[1] = {x};
    float *ys[1] = {y};
    rows_pass_1(w, cols, r0, r1, xs, ys);
}

void qk_q4k_f32_avx512_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                              const void *const *xs, float *const *ys, size_t n) {
    (void)rows;
    static void (*const pass[COLS + 1])(const void *, size_t, size_t, size_t, const float *const *,
                                        float *const *) = {
        NULL,        rows_pass_1, rows_pass_2, rows_pass_3, rows_pass_4,
        rows_pass_5, rows_pass_6, rows_pass_7, rows_pass_8,
    };
    for (size_t c = 0; c < n; c += COLS) {
        const float *x[COLS];
        const size_t nc = n - c < COLS ? n - c : COLS;
        for (size_t k = 0; k < nc; k++)
            x[k] = xs[c + k];
        pass[nc](w, cols, r0, r1, x, ys + c);
    }
}

/* q4k_f32_avx2: fused dequantization + FMA on f32 activations in 8 lanes, 4 rows per pass, in
 * the factored form y = sum_j d*sc_j*(sum q*x) - dmin*m_j*(sum x).
 *
 * AVX2's vpermps has 8-entry tables, too small for a nibble, so a nibble becomes a float by
 * vpmovzxbd (8 quant bytes from memory, one byte per dword), vpand 15 or vpsrld 4, vcvtdq2ps;
 * then one FMA per 8 products into the sub-block's sum, and one FMA by d*sc_j per sub-block.
 * The activations' sums per sub-block are computed once per call for all rows (in slices of
 * SLICE super-blocks, on the stack), so the mins cost one FMA per row and super-block. The
 * 6-bit scales are decoded in SIMD, two rows per vector (qk_q4k_unpack_scales2 of
 * q4k_scales_simd.h).
 *
 * Several columns (matmul): one pass decodes a row's scales and converts its nibbles to floats
 * once for up to COLS columns, each with its own accumulator and its own sub-block sums of x;
 * matvec is the one-column pass, so every column's arithmetic is matvec's, in the same order.
 * COLS = 4: each column keeps two partial sums live through a sub-block pair, and AVX2 has 16
 * vector registers. */
#include "cpu_kernels.h"
#include "simd_hsum.h"
#include "q4k_scales_simd.h"
#include <immintrin.h>

enum { ROWS = 4, SLICE = 64, COLS = 4 };

/* Expanded once per column count, so that the column loops unroll and each (row, column)
 * accumulator is a register or a fixed stack slot. */
#define ALWAYS_INLINE inline __attribute__((always_inline))

/* Forces the broadcasts of a just-stored array to load from it (a load each) rather than be
 * turned into register shuffles by the compiler (a shuffle-port uop each). */
#define FROM_MEMORY(a) __asm__("" : "+m"(a))

/* The 8 sub-block sums of x[0..256), in order */
static inline __m256 subblock_sums(const float *x) {
    __m256 s[8];
    for (int j = 0; j < 8; j++) {
        const float *p = x + 32 * j;
        s[j] = _mm256_add_ps(_mm256_add_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)),
                             _mm256_add_ps(_mm256_loadu_ps(p + 16), _mm256_loadu_ps(p + 24)));
    }
    /* two levels of hadd leave lane halves' partial sums of s0..3 | s0..3 and s4..7 | s4..7 */
    __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(s[0], s[1]), _mm256_hadd_ps(s[2], s[3]));
    __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(s[4], s[5]), _mm256_hadd_ps(s[6], s[7]));
    return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20),
                         _mm256_permute2f128_ps(t0, t1, 0x31));
}

/* 8 quant bytes from memory: their low nibbles (lo) and high nibbles (hi) as floats */
static inline void nibbles8(const uint8_t *q, __m256 *lo, __m256 *hi) {
    const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)q));
    *lo = _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    *hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(v, 4));
}

/* One row's super-block for nc columns: acc[k] += sum_j s_j * sum(q*xb[k]) over sub-block j,
 * then acc[k] -= dm * xsb[k] (s: d*sc_j; dm: dmin*m_j; xsb[k]: column k's sub-block sums), each
 * 8 nibbles converted once and multiplied into every column. */
static ALWAYS_INLINE void row_dot(const uint8_t *q, const float *const *xb, size_t nc,
                                  const float s[8], __m256 dm, const float *const *xsb,
                                  __m256 *acc) {
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m256 lo, hi, pl[COLS], ph[COLS];
        nibbles8(q + 32 * c, &lo, &hi);
#pragma GCC unroll 4
        for (size_t k = 0; k < nc; k++) {
            const float *xc = xb[k] + 64 * c;
            pl[k] = _mm256_mul_ps(lo, _mm256_loadu_ps(xc));
            ph[k] = _mm256_mul_ps(hi, _mm256_loadu_ps(xc + 32));
        }
#pragma GCC unroll 3
        for (int j = 1; j < 4; j++) {
            nibbles8(q + 32 * c + 8 * j, &lo, &hi);
#pragma GCC unroll 4
            for (size_t k = 0; k < nc; k++) {
                const float *xc = xb[k] + 64 * c;
                pl[k] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(xc + 8 * j), pl[k]);
                ph[k] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(xc + 32 + 8 * j), ph[k]);
            }
        }
#pragma GCC unroll 4
        for (size_t k = 0; k < nc; k++) {
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(s[2 * c]), pl[k], acc[k]);
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(s[2 * c + 1]), ph[k], acc[k]);
        }
    }
#pragma GCC unroll 4
    for (size_t k = 0; k < nc; k++)
        acc[k] = _mm256_fnmadd_ps(dm, _mm256_loadu_ps(xsb[k]), acc[k]);
}

/* Rows r0..r1 over super-blocks [b0, b0+nb) of rows nbr super-blocks long, for nc <= COLS
 * columns; adds to ys if add */
static ALWAYS_INLINE void slice(const qk_block_q4k *w, size_t nbr, size_t b0, size_t nb, size_t r0,
                                size_t r1, const float *const *xs, float *const *ys, size_t nc,
                                int add) {
    float xsum[COLS][SLICE][8];
#pragma GCC unroll 4
    for (size_t k = 0; k < nc; k++)
        for (size_t b = 0; b < nb; b++)
            _mm256_storeu_ps(xsum[k][b], subblock_sums(xs[k] + (b0 + b) * QK_K));
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        /* a short last group repeats its last row; only the real rows are written */
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = w + (rg + i < r1 ? rg + i : r1 - 1) * nbr + b0;
        __m256 acc[ROWS][COLS];
        for (int i = 0; i < ROWS; i++)
#pragma GCC unroll 4
            for (size_t k = 0; k < nc; k++)
                acc[i][k] = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const float *xb[COLS], *xsb[COLS];
#pragma GCC unroll 4
            for (size_t k = 0; k < nc; k++) {
                xb[k] = xs[k] + (b0 + b) * QK_K;
                xsb[k] = xsum[k][b];
            }
            const __m256i u01 = qk_q4k_unpack_scales2(
                _mm256_loadu2_m128i((const __m128i *)&row[1][b], (const __m128i *)&row[0][b]));
            const __m256i u23 = qk_q4k_unpack_scales2(
                _mm256_loadu2_m128i((const __m128i *)&row[3][b], (const __m128i *)&row[2][b]));
            /* the next group's rows (1/nb of them per super-block) */
            const char *next = (const char *)(row[0] + ROWS * nbr) + ROWS * b * sizeof(*w);
            for (size_t k = 0; k < ROWS * sizeof(*w); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
#define ROW(r, u, lane)                                                                            \
    do {                                                                                           \
        const __m128i ur = _mm256_extracti128_si256(u, lane);                                      \
        const __m256 d = _mm256_set1_ps(_cvtsh_ss(row[r][b].d));                                   \
        const __m256 dmin = _mm256_set1_ps(_cvtsh_ss(row[r][b].dmin));                             \
        float s[8];                                                                                \
        _mm256_storeu_ps(s, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(ur))));       \
        FROM_MEMORY(s);                                                                            \
        const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(ur, 8)));          \
        row_dot(row[r][b].qs, xb, nc, s, _mm256_mul_ps(dmin, m), xsb, acc[r]);                     \
    } while (0)
            ROW(0, u01, 0);
            ROW(1, u01, 1);
            ROW(2, u23, 0);
            ROW(3, u23, 1);
#undef ROW
        }
        for (size_t i = 0; i < ROWS && rg + i < r1; i++)
#pragma GCC unroll 4
            for (size_t k = 0; k < nc; k++)
                ys[k][rg + i] = (add ? ys[k][rg + i] : 0.0f) + qk_hsum8(acc[i][k]);
    }
}

/* ys[k][r] = dot(row r, xs[k]) for r0 <= r < r1, k < nc <= COLS */
static ALWAYS_INLINE void rows_pass(const void *w, size_t cols, size_t r0, size_t r1,
                                    const float *const *xs, float *const *ys, size_t nc) {
    const size_t nb = cols / QK_K;
    for (size_t b0 = 0; b0 < nb; b0 += SLICE)
        slice(w, nb, b0, nb - b0 < SLICE ? nb - b0 : SLICE, r0, r1, xs, ys, nc, b0 > 0);
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
#undef PASS

void qk_q4k_f32_avx2(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                     float *y) {
    (void)rows;
    const float *xs[1] = {x};
    float *ys[1] = {y};
    rows_pass_1(w, cols, r0, r1, xs, ys);
}

void qk_q4k_f32_avx2_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                            const void *const *xs, float *const *ys, size_t n) {
    (void)rows;
    static void (*const pass[COLS + 1])(const void *, size_t, size_t, size_t, const float *const *,
                                        float *const *) = {NULL, rows_pass_1, rows_pass_2,
                                                           rows_pass_3, rows_pass_4};
    for (size_t c = 0; c < n; c += COLS) {
        const float *x[COLS];
        const size_t nc = n - c < COLS ? n - c : COLS;
        for (size_t k = 0; k < nc; k++)
            x[k] = xs[c + k];
        pass[nc](w, cols, r0, r1, x, ys + c);
    }
}

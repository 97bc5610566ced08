/* q4k_q8k_vnni: AVX-512 VNNI on plain Q4_K rows, 4 rows per pass.
 *
 * A 64-byte load holds two 32-byte chunks; its low nibbles are sub-blocks {2c, 2c+2} and its
 * high nibbles {2c+1, 2c+3}, so the activations are loaded once per super-block in that order
 * (two 32-byte halves) and serve the 4 rows. vpdpbusd gives s32 lanes of 4 nibble*s8 products
 * (|lane| <= 4*15*127, fits s16); vpackssdw packs a low and a high vector into s16 pairs of one
 * sub-block each, and one vpdpwssd by a vector of word scales multiplies and accumulates 4
 * sub-blocks at once: 4 vpdpbusd + 2 vpdpwssd per row and super-block, no dependency chain
 * longer than two. The 6-bit scales of the 4 rows are decoded together, one row per 128-bit
 * lane (qk_q4k_unpack_scales4 of q4k_scales_simd.h); each row's word scales are 2 vpshufb of its
 * lane. M = sum m*bsum for the 4 rows is one vpmaddwd. The integer S and M equal q4k_q8k_ref's. */
#include "cpu_kernels.h"
#include "q4k_scales_simd.h"
#include <immintrin.h>

enum { ROWS = 4 };

/* Activations of sub-blocks {j, j+2} as the nibbles of a 64-byte quant load pair them. */
static inline __m512i x_pair(const int8_t *xs, int j) {
    return _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(xs + 32 * j))),
        _mm256_loadu_si256((const __m256i *)(xs + 32 * j + 64)), 1);
}

/* One row's S for one super-block, as 16 s32 lanes converted to f32 (sr: the row's decoded
 * scale bytes in every 128-bit lane). */
static inline __m512 row_sum(const uint8_t *q, __m512i xl0, __m512i xh0, __m512i xl1, __m512i xh1,
                             __m512i sr, __m512i sc01, __m512i sc45) {
    const __m512i nib = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();
    const __m512i v0 = _mm512_loadu_si512(q), v1 = _mm512_loadu_si512(q + 64);
    __m512i pl0 = _mm512_dpbusd_epi32(z, _mm512_and_si512(v0, nib), xl0);
    __m512i ph0 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(v0, 4), nib), xh0);
    __m512i pl1 = _mm512_dpbusd_epi32(z, _mm512_and_si512(v1, nib), xl1);
    __m512i ph1 = _mm512_dpbusd_epi32(z, _mm512_and_si512(_mm512_srli_epi16(v1, 4), nib), xh1);
    __m512i sumi =
        _mm512_dpwssd_epi32(z, _mm512_packs_epi32(pl0, ph0), _mm512_shuffle_epi8(sr, sc01));
    sumi = _mm512_dpwssd_epi32(sumi, _mm512_packs_epi32(pl1, ph1), _mm512_shuffle_epi8(sr, sc45));
    return _mm512_cvtepi32_ps(sumi);
}

void qk_q4k_q8k_vnni(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                     float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    /* vpackssdw(lo, hi) puts, in 128-bit lanes 0-1 (2-3), words of sub-block 2c (2c+2) then
     * 2c+1 (2c+3): word scales {sc, 0} picked from the row's decoded bytes */
    const __m128i w01 = _mm_setr_epi8(0, -1, 0, -1, 0, -1, 0, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512i sc01 =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(w01)),
                           _mm256_broadcastsi128_si256(_mm_add_epi16(w01, _mm_set1_epi16(2))), 1);
    const __m512i sc45 = _mm512_add_epi8(sc01, _mm512_set1_epi16(4));
    /* the mins, bytes 8..15 of a lane, as words */
    const __m512i mins_w = _mm512_broadcast_i32x4(
        _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    const __m512i d_pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i dmin_lanes = _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        /* a short last group repeats its last row; only the real rows are written */
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m512 acc[ROWS];
        for (int i = 0; i < ROWS; i++)
            acc[i] = _mm512_setzero_ps();
        __m512 macc = _mm512_setzero_ps(); /* lanes 4r..4r+3: row r's dmin*M */
        for (size_t b = 0; b < nb; b++) {
            const qk_block_q8k *xb = &xq[b];
            const __m512i xl0 = x_pair(xb->qs, 0), xh0 = x_pair(xb->qs, 1);
            const __m512i xl1 = x_pair(xb->qs, 4), xh1 = x_pair(xb->qs, 5);
            __m512i h = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)&row[0][b]));
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[1][b]), 1);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[2][b]), 2);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[3][b]), 3);
            const __m512i sm = qk_q4k_unpack_scales4(h);
            /* {d(r), dmin(r)} of the 4 rows times the activations' d */
            const __m512 dd = _mm512_castps256_ps512(_mm256_mul_ps(
                _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(d_pick, h))),
                _mm256_set1_ps(xb->d)));
            /* M: the 8 sub-block sums of the activations (pairs of bsums) times the mins */
            const __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                              _mm_loadu_si128((const __m128i *)(xb->bsums + 8)));
            const __m512i msum =
                _mm512_madd_epi16(_mm512_shuffle_epi8(sm, mins_w), _mm512_broadcast_i32x4(bs));
            macc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_permutexvar_ps(dmin_lanes, dd),
                                   macc);
            /* row r: its lane of decoded scales in all four lanes, its d in all 16 */
#define ROW(r)                                                                                     \
    acc[r] = _mm512_fmadd_ps(row_sum(row[r][b].qs, xl0, xh0, xl1, xh1,                             \
                                     _mm512_shuffle_i32x4(sm, sm, 0x55 * (r)), sc01, sc45),        \
                             _mm512_permutexvar_ps(_mm512_set1_epi32(2 * (r)), dd), acc[r])
            /* the next group's rows (contiguous after these), 1/nb of them per super-block:
             * the hardware prefetcher alone left the loads waiting on L3 */
            const char *next = (const char *)row[0] + ROWS * (nb + b) * sizeof(qk_block_q4k);
            for (size_t k = 0; k < ROWS * sizeof(qk_block_q4k); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
            ROW(0);
            ROW(1);
            ROW(2);
            ROW(3);
#undef ROW
        }
        float m[16];
        _mm512_storeu_ps(m, macc);
        for (size_t i = 0; i < ROWS && rg + i < r1; i++)
            y[rg + i] = _mm512_reduce_add_ps(acc[i]) -
                        ((m[4 * i] + m[4 * i + 1]) + (m[4 * i + 2] + m[4 * i + 3]));
    }
}

enum { MAX_COLS = 4 };

/* The matvec above for nc columns at once: per group of 4 rows and super-block, the scales
 * decoded and d, dmin converted once; per row, the quant loads split into nibbles and the word
 * scales shuffled once for all nc columns, whose activation pairs are built once per
 * super-block (on the stack, read as memory operands). Each column's integer lanes equal the
 * matvec's (same instructions, exact sums) and its f32 operations are the matvec's in the same
 * order. nc is a constant in each caller (the loops over columns unroll). */
static inline __attribute__((always_inline)) void matmul_cols(const void *w, size_t cols, size_t r0,
                                                              size_t r1,
                                                              const qk_block_q8k *const xq[],
                                                              float *const *ys, const int nc) {
    const size_t nb = cols / QK_K;
    const __m512i nib = _mm512_set1_epi8(0x0F), z = _mm512_setzero_si512();
    const __m128i w01 = _mm_setr_epi8(0, -1, 0, -1, 0, -1, 0, -1, 1, -1, 1, -1, 1, -1, 1, -1);
    const __m512i sc01 =
        _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(w01)),
                           _mm256_broadcastsi128_si256(_mm_add_epi16(w01, _mm_set1_epi16(2))), 1);
    const __m512i sc45 = _mm512_add_epi8(sc01, _mm512_set1_epi16(4));
    const __m512i mins_w = _mm512_broadcast_i32x4(
        _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    const __m512i d_pick = _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i dmin_lanes = _mm512_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3, 5, 5, 5, 5, 7, 7, 7, 7);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m512 acc[ROWS][MAX_COLS], macc[MAX_COLS];
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
#pragma GCC unroll 4
            for (int i = 0; i < ROWS; i++)
                acc[i][c] = _mm512_setzero_ps();
            macc[c] = _mm512_setzero_ps();
        }
        for (size_t b = 0; b < nb; b++) {
            __m512i h = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)&row[0][b]));
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[1][b]), 1);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[2][b]), 2);
            h = _mm512_inserti32x4(h, _mm_loadu_si128((const __m128i *)&row[3][b]), 3);
            const __m512i sm = qk_q4k_unpack_scales4(h);
            const __m256 dh =
                _mm256_cvtph_ps(_mm512_castsi512_si128(_mm512_permutexvar_epi32(d_pick, h)));
            const __m512i mins = _mm512_shuffle_epi8(sm, mins_w);
            __m512 dd[MAX_COLS];
            __m512i xp[MAX_COLS][4]; /* x_pair of sub-blocks 0, 1, 4, 5 */
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const qk_block_q8k *xb = &xq[c][b];
                xp[c][0] = x_pair(xb->qs, 0), xp[c][1] = x_pair(xb->qs, 1);
                xp[c][2] = x_pair(xb->qs, 4), xp[c][3] = x_pair(xb->qs, 5);
                dd[c] = _mm512_castps256_ps512(_mm256_mul_ps(dh, _mm256_set1_ps(xb->d)));
                const __m128i bs =
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                   _mm_loadu_si128((const __m128i *)(xb->bsums + 8)));
                const __m512i msum = _mm512_madd_epi16(mins, _mm512_broadcast_i32x4(bs));
                macc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum),
                                          _mm512_permutexvar_ps(dmin_lanes, dd[c]), macc[c]);
            }
            const char *next = (const char *)row[0] + ROWS * (nb + b) * sizeof(qk_block_q4k);
            for (size_t k = 0; k < ROWS * sizeof(qk_block_q4k); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
            const __m512i lanes[ROWS] = {
                _mm512_shuffle_i32x4(sm, sm, 0x00), _mm512_shuffle_i32x4(sm, sm, 0x55),
                _mm512_shuffle_i32x4(sm, sm, 0xAA), _mm512_shuffle_i32x4(sm, sm, 0xFF)};
#pragma GCC unroll 4
            for (int r = 0; r < ROWS; r++) {
                /* row r's lane of decoded scales in all four lanes, as word scales */
                const __m512i sr = lanes[r];
                const __m512i s01 = _mm512_shuffle_epi8(sr, sc01);
                const __m512i s45 = _mm512_shuffle_epi8(sr, sc45);
                const __m512i v0 = _mm512_loadu_si512(row[r][b].qs);
                const __m512i v1 = _mm512_loadu_si512(row[r][b].qs + 64);
                const __m512i l0 = _mm512_and_si512(v0, nib);
                const __m512i h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), nib);
                const __m512i l1 = _mm512_and_si512(v1, nib);
                const __m512i h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), nib);
#pragma GCC unroll 4
                for (int c = 0; c < nc; c++) {
                    const __m512i pl0 = _mm512_dpbusd_epi32(z, l0, xp[c][0]);
                    const __m512i ph0 = _mm512_dpbusd_epi32(z, h0, xp[c][1]);
                    const __m512i pl1 = _mm512_dpbusd_epi32(z, l1, xp[c][2]);
                    const __m512i ph1 = _mm512_dpbusd_epi32(z, h1, xp[c][3]);
                    __m512i sumi = _mm512_dpwssd_epi32(z, _mm512_packs_epi32(pl0, ph0), s01);
                    sumi = _mm512_dpwssd_epi32(sumi, _mm512_packs_epi32(pl1, ph1), s45);
                    acc[r][c] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(sumi),
                        _mm512_permutexvar_ps(_mm512_set1_epi32(2 * r), dd[c]), acc[r][c]);
                }
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            float m[16];
            _mm512_storeu_ps(m, macc[c]);
            for (size_t i = 0; i < ROWS && rg + i < r1; i++)
                ys[c][rg + i] = _mm512_reduce_add_ps(acc[i][c]) -
                                ((m[4 * i] + m[4 * i + 1]) + (m[4 * i + 2] + m[4 * i + 3]));
        }
    }
}

void qk_q4k_q8k_vnni_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                            const void *const *xs, float *const *ys, size_t n) {
    for (size_t c0 = 0; c0 < n; c0 += MAX_COLS) {
        const size_t nc = n - c0 < MAX_COLS ? n - c0 : MAX_COLS;
        const qk_block_q8k *xq[MAX_COLS];
        for (size_t c = 0; c < nc; c++)
            xq[c] = xs[c0 + c];
        switch (nc) {
        case 1:
            qk_q4k_q8k_vnni(w, rows, cols, r0, r1, xs[c0], ys[c0]);
            break;
        case 2:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 2);
            break;
        case 3:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 3);
            break;
        default:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 4);
            break;
        }
    }
}

/* q4k_q8k_maddubs: AVX2 on plain Q4_K rows, 4 rows per pass. vpmaddubsw multiplies u8 nibbles
 * by s8 activations into s16 pairs (at most 2*15*127, no saturation), vpmaddwd by a vector of the
 * sub-block's scale gives s32 lanes whose total is S; the mins use Q8_K's bsums. The 6-bit
 * scales are decoded in SIMD, two rows per 256-bit vector (qk_q4k_unpack_scales2 of
 * q4k_scales_simd.h), and each sub-block's scale vector is one vpshufb of the row's decoded bytes
 * (no scalar unpack, no stack round trip); d and dmin of the 4 rows convert in one vcvtph2ps, and M
 * for two rows is one vpmaddwd. The next group's rows are prefetched. Integer S and M equal
 * q4k_q8k_ref's. */
#include "cpu_kernels.h"
#include "simd_hsum.h"
#include "q4k_scales_simd.h"
#include <immintrin.h>
#include <string.h>

enum { ROWS = 4 };

/* vpshufb masks: scale j of a lane's decoded bytes as 16 words */
#define SCALE_WORDS(j) _mm256_set1_epi16((short)(0xFF00 | (j)))

/* One row's S for one super-block as 8 s32 lanes (sr: the row's decoded bytes in both lanes) */
static inline __m256i row_sum(const uint8_t *q, const int8_t *xs, __m256i sr) {
    const __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i s[4];
#pragma GCC unroll 4 /* constant masks, s[] in registers */
    for (int c = 0; c < 4; c++) {
        const __m256i v = _mm256_loadu_si256((const __m256i *)(q + 32 * c));
        const __m256i pl = _mm256_maddubs_epi16(_mm256_and_si256(v, nib),
                                                _mm256_loadu_si256((const __m256i *)(xs + 64 * c)));
        const __m256i ph =
            _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v, 4), nib),
                                 _mm256_loadu_si256((const __m256i *)(xs + 64 * c + 32)));
        s[c] = _mm256_add_epi32(
            _mm256_madd_epi16(pl, _mm256_shuffle_epi8(sr, SCALE_WORDS(2 * c))),
            _mm256_madd_epi16(ph, _mm256_shuffle_epi8(sr, SCALE_WORDS(2 * c + 1))));
    }
    return _mm256_add_epi32(_mm256_add_epi32(s[0], s[1]), _mm256_add_epi32(s[2], s[3]));
}

void qk_q4k_q8k_maddubs(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    /* the mins, bytes 8..15 of a lane, as words */
    const __m256i mins_w = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        /* a short last group repeats its last row; only the real rows are written */
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m256 acc[ROWS];
        for (int i = 0; i < ROWS; i++)
            acc[i] = _mm256_setzero_ps();
        __m256 macc01 = _mm256_setzero_ps(), macc23 = _mm256_setzero_ps(); /* 4 lanes per row */
        for (size_t b = 0; b < nb; b++) {
            const qk_block_q8k *xb = &xq[b];
            const __m256i h01 =
                _mm256_loadu2_m128i((const __m128i *)&row[1][b], (const __m128i *)&row[0][b]);
            const __m256i h23 =
                _mm256_loadu2_m128i((const __m128i *)&row[3][b], (const __m128i *)&row[2][b]);
            const __m256i u01 = qk_q4k_unpack_scales2(h01), u23 = qk_q4k_unpack_scales2(h23);
            /* {d(r), dmin(r)} of the 4 rows (the first dword of each header), times the
             * activations' d */
            int32_t dw[ROWS];
            for (int r = 0; r < ROWS; r++)
                memcpy(&dw[r], &row[r][b], 4);
            const __m256 dd = _mm256_mul_ps(
                _mm256_cvtph_ps(_mm_setr_epi32(dw[0], dw[1], dw[2], dw[3])), _mm256_set1_ps(xb->d));
            /* M: the 8 sub-block sums of the activations (pairs of bsums) times the mins */
            const __m256i bs = _mm256_broadcastsi128_si256(
                _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                               _mm_loadu_si128((const __m128i *)(xb->bsums + 8))));
            macc01 = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_shuffle_epi8(u01, mins_w), bs)),
                _mm256_permutevar8x32_ps(dd, _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3)), macc01);
            macc23 = _mm256_fmadd_ps(
                _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_shuffle_epi8(u23, mins_w), bs)),
                _mm256_permutevar8x32_ps(dd, _mm256_setr_epi32(5, 5, 5, 5, 7, 7, 7, 7)), macc23);
            /* the next group's rows (contiguous after these), 1/nb of them per super-block:
             * the hardware prefetcher alone left the loads waiting on L3 */
            const char *next = (const char *)row[0] + ROWS * (nb + b) * sizeof(qk_block_q4k);
            for (size_t k = 0; k < ROWS * sizeof(qk_block_q4k); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
                /* row r: its lane of decoded bytes in both lanes, its d in all 8 */
#define ROW(r, u, lanes)                                                                           \
    acc[r] = _mm256_fmadd_ps(                                                                      \
        _mm256_cvtepi32_ps(row_sum(row[r][b].qs, xb->qs, _mm256_permute2x128_si256(u, u, lanes))), \
        _mm256_permutevar8x32_ps(dd, _mm256_set1_epi32(2 * (r))), acc[r])
            ROW(0, u01, 0x00);
            ROW(1, u01, 0x11);
            ROW(2, u23, 0x00);
            ROW(3, u23, 0x11);
#undef ROW
        }
        float m[16];
        _mm256_storeu_ps(m, macc01);
        _mm256_storeu_ps(m + 8, macc23);
        for (size_t i = 0; i < ROWS && rg + i < r1; i++)
            y[rg + i] =
                qk_hsum8(acc[i]) - ((m[4 * i] + m[4 * i + 1]) + (m[4 * i + 2] + m[4 * i + 3]));
    }
}

enum { MAX_COLS = 4 };

/* The matvec above for nc columns at once: per group of 4 rows and super-block, the scales
 * decoded, d and dmin converted, and per row each 32-byte quant load split into nibbles and its
 * two scale vectors shuffled once for all nc columns. Each column's integer lanes equal the
 * matvec's (exact sums) and its f32 operations are the matvec's in the same order: dd = (d,
 * dmin) x the column's d, lane by lane, then the same FMAs and the same final reduction. nc is
 * a constant in each caller (the loops over columns unroll). */
static inline __attribute__((always_inline)) void matmul_cols(const void *w, size_t cols, size_t r0,
                                                              size_t r1,
                                                              const qk_block_q8k *const xq[],
                                                              float *const *ys, const int nc) {
    const size_t nb = cols / QK_K;
    const __m256i nib = _mm256_set1_epi8(0x0F);
    const __m256i mins_w = _mm256_broadcastsi128_si256(
        _mm_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1));
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        const qk_block_q4k *row[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            row[i] = qk_q4k_row(w, cols, rg + i < r1 ? rg + i : r1 - 1);
        __m256 acc[ROWS][MAX_COLS], macc01[MAX_COLS], macc23[MAX_COLS];
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
#pragma GCC unroll 4
            for (int i = 0; i < ROWS; i++)
                acc[i][c] = _mm256_setzero_ps();
            macc01[c] = macc23[c] = _mm256_setzero_ps();
        }
        for (size_t b = 0; b < nb; b++) {
            const __m256i h01 =
                _mm256_loadu2_m128i((const __m128i *)&row[1][b], (const __m128i *)&row[0][b]);
            const __m256i h23 =
                _mm256_loadu2_m128i((const __m128i *)&row[3][b], (const __m128i *)&row[2][b]);
            const __m256i u01 = qk_q4k_unpack_scales2(h01), u23 = qk_q4k_unpack_scales2(h23);
            int32_t dw[ROWS];
#pragma GCC unroll 4
            for (int r = 0; r < ROWS; r++)
                memcpy(&dw[r], &row[r][b], 4);
            const __m256 dh = _mm256_cvtph_ps(_mm_setr_epi32(dw[0], dw[1], dw[2], dw[3]));
            const __m256i m01 = _mm256_shuffle_epi8(u01, mins_w);
            const __m256i m23 = _mm256_shuffle_epi8(u23, mins_w);
            __m256 dd[MAX_COLS];
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) {
                const qk_block_q8k *xb = &xq[c][b];
                dd[c] = _mm256_mul_ps(dh, _mm256_set1_ps(xb->d));
                const __m256i bs = _mm256_broadcastsi128_si256(
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                   _mm_loadu_si128((const __m128i *)(xb->bsums + 8))));
                macc01[c] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(_mm256_madd_epi16(m01, bs)),
                    _mm256_permutevar8x32_ps(dd[c], _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3)),
                    macc01[c]);
                macc23[c] = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(_mm256_madd_epi16(m23, bs)),
                    _mm256_permutevar8x32_ps(dd[c], _mm256_setr_epi32(5, 5, 5, 5, 7, 7, 7, 7)),
                    macc23[c]);
            }
            const char *next = (const char *)row[0] + ROWS * (nb + b) * sizeof(qk_block_q4k);
            for (size_t k = 0; k < ROWS * sizeof(qk_block_q4k); k += 64)
                _mm_prefetch(next + k, _MM_HINT_T0);
#pragma GCC unroll 4
            for (int r = 0; r < ROWS; r++) {
                /* row r's lane of decoded bytes in both lanes */
                const __m256i u = r < 2 ? u01 : u23;
                const __m256i sr = (r & 1) ? _mm256_permute2x128_si256(u, u, 0x11)
                                           : _mm256_permute2x128_si256(u, u, 0x00);
                __m256i s[MAX_COLS];
#pragma GCC unroll 4
                for (int c = 0; c < nc; c++)
                    s[c] = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++) {
                    const __m256i v = _mm256_loadu_si256((const __m256i *)(row[r][b].qs + 32 * k));
                    const __m256i lo = _mm256_and_si256(v, nib);
                    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), nib);
                    const __m256i sl = _mm256_shuffle_epi8(sr, SCALE_WORDS(2 * k));
                    const __m256i sh = _mm256_shuffle_epi8(sr, SCALE_WORDS(2 * k + 1));
#pragma GCC unroll 4
                    for (int c = 0; c < nc; c++) {
                        const int8_t *x = xq[c][b].qs + 64 * k;
                        const __m256i pl =
                            _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x));
                        const __m256i ph =
                            _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 32)));
                        s[c] = _mm256_add_epi32(s[c], _mm256_add_epi32(_mm256_madd_epi16(pl, sl),
                                                                       _mm256_madd_epi16(ph, sh)));
                    }
                }
#pragma GCC unroll 4
                for (int c = 0; c < nc; c++)
                    acc[r][c] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(s[c]),
                        _mm256_permutevar8x32_ps(dd[c], _mm256_set1_epi32(2 * r)), acc[r][c]);
            }
        }
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) {
            float m[16];
            _mm256_storeu_ps(m, macc01[c]);
            _mm256_storeu_ps(m + 8, macc23[c]);
            for (size_t i = 0; i < ROWS && rg + i < r1; i++)
                ys[c][rg + i] = qk_hsum8(acc[i][c]) -
                                ((m[4 * i] + m[4 * i + 1]) + (m[4 * i + 2] + m[4 * i + 3]));
        }
    }
}

void qk_q4k_q8k_maddubs_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                               const void *const *xs, float *const *ys, size_t n) {
    for (size_t c0 = 0; c0 < n; c0 += MAX_COLS) {
        const size_t nc = n - c0 < MAX_COLS ? n - c0 : MAX_COLS;
        const qk_block_q8k *xq[MAX_COLS];
        for (size_t c = 0; c < nc; c++)
            xq[c] = xs[c0 + c];
        switch (nc) {
        case 1:
            qk_q4k_q8k_maddubs(w, rows, cols, r0, r1, xs[c0], ys[c0]);
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

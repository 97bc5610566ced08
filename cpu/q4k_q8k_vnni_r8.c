/* q4k_q8k_vnni_r8: AVX-512 VNNI on a weight layout of our own: 8 rows interleaved per
 * super-block, packed once before timing (as llama.cpp's CPU_REPACK is).
 *
 * Each 64-byte quant vector holds, for sub-block j, 8 elements of each of 8 rows: s32 lane
 * 2r+g covers elements 4g..4g+3 of row r, low nibbles for one 8-element slice and high nibbles
 * for the next. So one 8-byte broadcast of the activations serves all 8 rows, and one scale
 * vector ({sc(r), sc(r)} per lane pair) serves the whole sub-block: the per-row shuffles of the
 * plain layout disappear. The integer S and M equal q4k_q8k_ref's. */
#include "cpu_kernels.h"
#include "../kernels/qk_q4k_scales.h"
#include <immintrin.h>
#include <string.h>

enum { R = 8 };

/* The layout is one stream of blocks: the block 8 ahead (9.3 KB) is prefetched. Once a batch's
 * experts outgrow the L2 (8 tokens: 52 experts, 46 MB), the hardware prefetcher alone left this
 * single stream waiting on L3: 8 tokens took 3.4 ms hot, 1.2-1.7 ms with it (2 blocks ahead
 * about the same, 4 a little slower; 2-vCPU Intel Xeon VM, 2026-11-30, noisy). */
#define QK_R8_PREFETCH_BLOCKS 8
#define PREFETCH_AHEAD(p)                                                                          \
    do {                                                                                           \
        const char *ahead_ = (const char *)((p) + QK_R8_PREFETCH_BLOCKS);                          \
        for (int k_ = 0; k_ < (int)sizeof(r8_block); k_ += 64)                                     \
            _mm_prefetch(ahead_ + k_, _MM_HINT_T0);                                                \
    } while (0)

/* 8 activation bytes in every 64-bit lane (vpbroadcastq from memory) */
static inline __m512i bcast8(const int8_t *p) {
    return _mm512_broadcastq_epi64(_mm_loadl_epi64((const __m128i *)p));
}

typedef struct {
    uint16_t d[R], dmin[R]; /* fp16, as in Q4_K */
    uint8_t sc[8][R];       /* [sub-block][row] 6-bit scales */
    uint8_t mins[4][R][2];  /* [sub-block pair][row]{m(2k), m(2k+1)}: int16 pairs once widened */
    uint8_t qs[8][2][64];   /* [sub-block][slice pair (0,1) (2,3)][lane 2r+g, byte k] */
} r8_block;
_Static_assert(sizeof(r8_block) == 1184, "r8 block layout");

size_t qk_q4k_r8_packed_size(size_t rows, size_t cols) {
    return (rows + R - 1) / R * (cols / QK_K) * sizeof(r8_block);
}

void qk_q4k_r8_pack(const void *w, size_t rows, size_t cols, void *out) {
    const size_t nb = cols / QK_K, groups = (rows + R - 1) / R;
    r8_block *o = out;
    for (size_t g = 0; g < groups; g++)
        for (size_t b = 0; b < nb; b++) {
            r8_block *p = &o[g * nb + b];
            memset(p, 0, sizeof *p); /* rows past the end stay zero: d = 0 */
            for (int r = 0; r < R && g * R + r < rows; r++) {
                const qk_block_q4k *blk = qk_q4k_row(w, cols, g * R + r) + b;
                uint8_t sm[16], q[QK_K];
                qk_q4k_unpack_scales(blk->scales, sm);
                p->d[r] = blk->d;
                p->dmin[r] = blk->dmin;
                for (int j = 0; j < 8; j++)
                    p->sc[j][r] = sm[j];
                for (int k = 0; k < 4; k++) {
                    p->mins[k][r][0] = sm[8 + 2 * k];
                    p->mins[k][r][1] = sm[8 + 2 * k + 1];
                }
                for (int c = 0; c < 4; c++)
                    for (int l = 0; l < 32; l++) {
                        q[64 * c + l] = blk->qs[32 * c + l] & 0xF;
                        q[64 * c + 32 + l] = blk->qs[32 * c + l] >> 4;
                    }
                for (int j = 0; j < 8; j++)
                    for (int h = 0; h < 2; h++)        /* vector h: slices 2h (low), 2h+1 (high) */
                        for (int gg = 0; gg < 2; gg++) /* half of the 8-element slice */
                            for (int k = 0; k < 4; k++) {
                                int e = 32 * j + 16 * h + 4 * gg + k;
                                p->qs[j][h][4 * (2 * r + gg) + k] =
                                    (uint8_t)(q[e] | (q[e + 8] << 4));
                            }
            }
        }
}

void qk_q4k_q8k_vnni_r8(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    const r8_block *pw = w;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const __m512i pair_dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (size_t g = r0 / R; g * R < r1; g++) {
        __m512 acc = _mm512_setzero_ps();
        __m256 macc = _mm256_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const r8_block *p = &pw[g * nb + b];
            const qk_block_q8k *xb = &xq[b];
            PREFETCH_AHEAD(p);
            const int8_t *xs = xb->qs;
            __m512i sumi = _mm512_setzero_si512();
            for (int j = 0; j < 8; j++) {
                __m512i v0 = _mm512_loadu_si512(p->qs[j][0]);
                __m512i v1 = _mm512_loadu_si512(p->qs[j][1]);
                __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                   _mm512_and_si512(v0, nib), bcast8(xs + 32 * j));
                isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(_mm512_srli_epi16(v0, 4), nib),
                                           bcast8(xs + 32 * j + 8));
                isum =
                    _mm512_dpbusd_epi32(isum, _mm512_and_si512(v1, nib), bcast8(xs + 32 * j + 16));
                isum = _mm512_dpbusd_epi32(isum, _mm512_and_si512(_mm512_srli_epi16(v1, 4), nib),
                                           bcast8(xs + 32 * j + 24));
                /* a lane holds at most 16*15*127 < 2^15: vpdpwssd by {sc, 0} multiplies it by sc */
                __m128i s8 = _mm_loadl_epi64((const __m128i *)p->sc[j]);
                __m512i scv = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(s8, s8));
                sumi = _mm512_dpwssd_epi32(sumi, isum, scv);
            }
            __m256i msum = _mm256_setzero_si256();
            for (int k = 0; k < 4; k++) {
                __m256i mv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p->mins[k]));
                int32_t lo = xb->bsums[4 * k] + xb->bsums[4 * k + 1];
                int32_t hi = xb->bsums[4 * k + 2] + xb->bsums[4 * k + 3];
                msum = _mm256_dpwssd_epi32(
                    msum, mv,
                    _mm256_set1_epi32((int32_t)((uint32_t)(uint16_t)lo | ((uint32_t)hi << 16))));
            }
            const __m256 dx = _mm256_set1_ps(xb->d);
            __m256 d8 = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->d)), dx);
            __m256 m8 =
                _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->dmin)), dx);
            __m512 d16 = _mm512_permutexvar_ps(pair_dup, _mm512_castps256_ps512(d8));
            acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), d16, acc);
            macc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), m8, macc);
        }
        /* y(r) = lane 2r + lane 2r+1 - mins(r) */
        __m512 odd = _mm512_permutexvar_ps(
            _mm512_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14), acc);
        __m512 pairs = _mm512_add_ps(acc, odd);
        __m256 even = _mm512_castps512_ps256(_mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0), pairs));
        float out[R];
        _mm256_storeu_ps(out, _mm256_sub_ps(even, macc));
        for (int r = 0; r < R && g * R + r < r1; r++)
            y[g * R + r] = out[r];
    }
}

enum { MAX_COLS = 8 };

/* The matvec above for nc columns at once: per group of 8 rows and sub-block, the two quant
 * vectors split into nibbles and the scale vector widened once for all nc columns; per
 * super-block the mins widened and d, dmin converted once. Each column's integer lanes equal the
 * matvec's (exact sums) and its f32 operations are the matvec's in the same order: d16 = the
 * rows' d (pair-duplicated) x the column's d, lane by lane, then the same FMAs and the same
 * final reduction. nc is a constant in each caller (the loops over columns unroll). */
static inline __attribute__((always_inline)) void matmul_cols(const void *w, size_t cols, size_t r0,
                                                              size_t r1,
                                                              const qk_block_q8k *const xq[],
                                                              float *const *ys, const int nc) {
    const size_t nb = cols / QK_K;
    const r8_block *pw = w;
    const __m512i nib = _mm512_set1_epi8(0x0F);
    const __m512i pair_dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    for (size_t g = r0 / R; g * R < r1; g++) {
        __m512 acc[MAX_COLS];
        __m256 macc[MAX_COLS];
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            acc[c] = _mm512_setzero_ps();
            macc[c] = _mm256_setzero_ps();
        }
        for (size_t b = 0; b < nb; b++) {
            const r8_block *p = &pw[g * nb + b];
            PREFETCH_AHEAD(p);
            __m512i sumi[MAX_COLS];
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++)
                sumi[c] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                const __m512i v0 = _mm512_loadu_si512(p->qs[j][0]);
                const __m512i v1 = _mm512_loadu_si512(p->qs[j][1]);
                const __m512i l0 = _mm512_and_si512(v0, nib);
                const __m512i h0 = _mm512_and_si512(_mm512_srli_epi16(v0, 4), nib);
                const __m512i l1 = _mm512_and_si512(v1, nib);
                const __m512i h1 = _mm512_and_si512(_mm512_srli_epi16(v1, 4), nib);
                const __m128i s8 = _mm_loadl_epi64((const __m128i *)p->sc[j]);
                const __m512i scv = _mm512_cvtepu8_epi32(_mm_unpacklo_epi8(s8, s8));
#pragma GCC unroll 8
                for (int c = 0; c < nc; c++) {
                    const int8_t *xs = xq[c][b].qs + 32 * j;
                    __m512i isum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), l0, bcast8(xs));
                    isum = _mm512_dpbusd_epi32(isum, h0, bcast8(xs + 8));
                    isum = _mm512_dpbusd_epi32(isum, l1, bcast8(xs + 16));
                    isum = _mm512_dpbusd_epi32(isum, h1, bcast8(xs + 24));
                    sumi[c] = _mm512_dpwssd_epi32(sumi[c], isum, scv);
                }
            }
            __m256i mv[4];
#pragma GCC unroll 4
            for (int k = 0; k < 4; k++)
                mv[k] = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p->mins[k]));
            const __m512 dh16 = _mm512_permutexvar_ps(
                pair_dup,
                _mm512_castps256_ps512(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->d))));
            const __m256 mh = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p->dmin));
#pragma GCC unroll 8
            for (int c = 0; c < nc; c++) {
                const qk_block_q8k *xb = &xq[c][b];
                /* dword k: {bsums 4k + 4k+1, bsums 4k+2 + 4k+3}, the matvec's (lo, hi) */
                const __m256i bs = _mm256_castsi128_si256(
                    _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                   _mm_loadu_si128((const __m128i *)(xb->bsums + 8))));
                __m256i msum = _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int k = 0; k < 4; k++)
                    msum = _mm256_dpwssd_epi32(
                        msum, mv[k], _mm256_permutevar8x32_epi32(bs, _mm256_set1_epi32(k)));
                acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[c]),
                                         _mm512_mul_ps(dh16, _mm512_set1_ps(xb->d)), acc[c]);
                macc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum),
                                          _mm256_mul_ps(mh, _mm256_set1_ps(xb->d)), macc[c]);
            }
        }
#pragma GCC unroll 8
        for (int c = 0; c < nc; c++) {
            __m512 odd = _mm512_permutexvar_ps(
                _mm512_setr_epi32(1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14), acc[c]);
            __m512 pairs = _mm512_add_ps(acc[c], odd);
            __m256 even = _mm512_castps512_ps256(_mm512_permutexvar_ps(
                _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0), pairs));
            float out[R];
            _mm256_storeu_ps(out, _mm256_sub_ps(even, macc[c]));
            for (int r = 0; r < R && g * R + r < r1; r++)
                ys[c][g * R + r] = out[r];
        }
    }
}

void qk_q4k_q8k_vnni_r8_matmul(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                               const void *const *xs, float *const *ys, size_t n) {
    for (size_t c0 = 0; c0 < n; c0 += MAX_COLS) {
        const size_t nc = n - c0 < MAX_COLS ? n - c0 : MAX_COLS;
        const qk_block_q8k *xq[MAX_COLS];
        for (size_t c = 0; c < nc; c++)
            xq[c] = xs[c0 + c];
        switch (nc) {
        case 1:
            qk_q4k_q8k_vnni_r8(w, rows, cols, r0, r1, xs[c0], ys[c0]);
            break;
        case 2:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 2);
            break;
        case 3:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 3);
            break;
        case 4:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 4);
            break;
        case 5:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 5);
            break;
        case 6:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 6);
            break;
        case 7:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 7);
            break;
        default:
            matmul_cols(w, cols, r0, r1, xq, ys + c0, 8);
            break;
        }
    }
}

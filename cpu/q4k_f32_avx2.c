/* q4k_f32_avx2: fused dequantization + FMA on f32 activations (what a CUDA f32 path computes).
 * Per sub-block: sum q*x in 8 f32 lanes, then acc += (d*sc) * that; the min term uses the
 * sub-block's sum of x, computed once per super-block for a group of 4 rows. */
#include "cpu_kernels.h"
#include "../kernels/qk_q4k_scales.h"
#include "simd_hsum.h"
#include <immintrin.h>

enum { ROWS = 4 };

/* q (32 nibbles as bytes 0..15) times x[0..32) in 8 lanes */
static inline __m256 dot32(__m256i q, const float *x) {
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m256 a = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo)), _mm256_loadu_ps(x));
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8))),
                        _mm256_loadu_ps(x + 8), a);
    a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi)), _mm256_loadu_ps(x + 16), a);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8))),
                           _mm256_loadu_ps(x + 24), a);
}

void qk_q4k_f32_avx2(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                     float *y) {
    (void)rows;
    const float *xf = x;
    const size_t nb = cols / QK_K;
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        size_t nr = r1 - rg < ROWS ? r1 - rg : ROWS;
        __m256 acc[ROWS];
        float minacc[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            acc[i] = _mm256_setzero_ps(), minacc[i] = 0;
        for (size_t b = 0; b < nb; b++) {
            const float *xb = xf + b * QK_K;
            float xsum[8];
            for (int j = 0; j < 8; j++) {
                __m256 s = _mm256_add_ps(
                    _mm256_add_ps(_mm256_loadu_ps(xb + 32 * j), _mm256_loadu_ps(xb + 32 * j + 8)),
                    _mm256_add_ps(_mm256_loadu_ps(xb + 32 * j + 16),
                                  _mm256_loadu_ps(xb + 32 * j + 24)));
                xsum[j] = qk_hsum8(s);
            }
            for (size_t i = 0; i < nr; i++) {
                const qk_block_q4k *blk = qk_q4k_row(w, cols, rg + i) + b;
                uint8_t sm[16];
                qk_q4k_unpack_scales(blk->scales, sm);
                const float d = _cvtsh_ss(blk->d), dmin = _cvtsh_ss(blk->dmin);
                float msum = 0;
                for (int c = 0; c < 4; c++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * c));
                    __m256i ql = _mm256_and_si256(q, nib);
                    __m256i qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), nib);
                    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * sm[2 * c]), dot32(ql, xb + 64 * c),
                                             acc[i]);
                    acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d * sm[2 * c + 1]),
                                             dot32(qh, xb + 64 * c + 32), acc[i]);
                }
                for (int j = 0; j < 8; j++)
                    msum += sm[8 + j] * xsum[j];
                minacc[i] += dmin * msum;
            }
        }
        for (size_t i = 0; i < nr; i++)
            y[rg + i] = qk_hsum8(acc[i]) - minacc[i];
    }
}

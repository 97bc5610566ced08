/* q4k_f32_avx512: the q4k_f32_avx2 algorithm in 16 f32 lanes. */
#include "cpu_kernels.h"
#include "../kernels/qk_q4k_scales.h"
#include <immintrin.h>

enum { ROWS = 4 };

/* 32 quants (bytes 0..15) times x[0..32) in 16 lanes */
static inline __m512 dot32(__m256i q, const float *x) {
    __m512 a = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(q))),
                             _mm512_loadu_ps(x));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(q, 1))),
                           _mm512_loadu_ps(x + 16), a);
}

void qk_q4k_f32_avx512(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                       float *y) {
    (void)rows;
    const float *xf = x;
    const size_t nb = cols / QK_K;
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        size_t nr = r1 - rg < ROWS ? r1 - rg : ROWS;
        __m512 acc[ROWS];
        float minacc[ROWS];
        for (size_t i = 0; i < ROWS; i++)
            acc[i] = _mm512_setzero_ps(), minacc[i] = 0;
        for (size_t b = 0; b < nb; b++) {
            const float *xb = xf + b * QK_K;
            float xsum[8];
            for (int j = 0; j < 8; j++)
                xsum[j] = _mm512_reduce_add_ps(
                    _mm512_add_ps(_mm512_loadu_ps(xb + 32 * j), _mm512_loadu_ps(xb + 32 * j + 16)));
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
                    acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(d * sm[2 * c]), dot32(ql, xb + 64 * c),
                                             acc[i]);
                    acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(d * sm[2 * c + 1]),
                                             dot32(qh, xb + 64 * c + 32), acc[i]);
                }
                for (int j = 0; j < 8; j++)
                    msum += sm[8 + j] * xsum[j];
                minacc[i] += dmin * msum;
            }
        }
        for (size_t i = 0; i < nr; i++)
            y[rg + i] = _mm512_reduce_add_ps(acc[i]) - minacc[i];
    }
}

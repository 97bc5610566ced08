/* q4k_q8k_vnni: AVX-512 VNNI on plain Q4_K rows. vpdpbusd sums 4 nibble*s8 products per s32
 * lane (at most 4*15*127, so a lane fits in its low 16 bits); vpdpwssd then multiplies each lane
 * by the sub-block's 6-bit scale and accumulates S. Two rows share each activation load. */
#include "cpu_kernels.h"
#include "../kernels/qk_q4k_scales.h"
#include "simd_hsum.h"
#include <immintrin.h>

enum { ROWS = 2 };

void qk_q4k_q8k_vnni(const void *w, size_t rows, size_t cols, size_t r0, size_t r1, const void *x,
                     float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (size_t rg = r0; rg < r1; rg += ROWS) {
        size_t nr = r1 - rg < ROWS ? r1 - rg : ROWS;
        __m256 acc[ROWS];
        __m128 macc[ROWS];
        for (int i = 0; i < ROWS; i++)
            acc[i] = _mm256_setzero_ps(), macc[i] = _mm_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const qk_block_q8k *xb = &xq[b];
            __m256i xv[8];
            for (int j = 0; j < 8; j++)
                xv[j] = _mm256_loadu_si256((const __m256i *)(xb->qs + 32 * j));
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                        _mm_loadu_si128((const __m128i *)(xb->bsums + 8)));
            for (size_t i = 0; i < nr; i++) {
                const qk_block_q4k *blk = qk_q4k_row(w, cols, rg + i) + b;
                uint8_t sm[16];
                qk_q4k_unpack_scales(blk->scales, sm);
                __m256i sumi = _mm256_setzero_si256();
                for (int c = 0; c < 4; c++) {
                    __m256i q = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * c));
                    __m256i pl = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                                     _mm256_and_si256(q, nib), xv[2 * c]);
                    __m256i ph = _mm256_dpbusd_epi32(_mm256_setzero_si256(),
                                                     _mm256_and_si256(_mm256_srli_epi16(q, 4), nib),
                                                     xv[2 * c + 1]);
                    sumi = _mm256_dpwssd_epi32(sumi, pl, _mm256_set1_epi32(sm[2 * c]));
                    sumi = _mm256_dpwssd_epi32(sumi, ph, _mm256_set1_epi32(sm[2 * c + 1]));
                }
                __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
                __m128i msum = _mm_madd_epi16(bs, mins);
                const float d = xb->d * _cvtsh_ss(blk->d);
                const float dmin = xb->d * _cvtsh_ss(blk->dmin);
                acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[i]);
                macc[i] = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(msum), macc[i]);
            }
        }
        for (size_t i = 0; i < nr; i++) {
            y[rg + i] = qk_hsum8(acc[i]) - qk_hsum4(macc[i]);
        }
    }
}

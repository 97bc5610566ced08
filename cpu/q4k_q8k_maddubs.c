/* q4k_q8k_maddubs: AVX2. vpmaddubsw multiplies u8 nibbles by s8 activations into s16 pairs
 * (at most 2*15*127, no saturation), vpmaddwd by the sub-block's scale gives s32 lanes whose
 * total is S; the mins use Q8_K's bsums. Integer S and M equal q4k_q8k_ref's. */
#include "cpu_kernels.h"
#include "../kernels/qk_q4k_scales.h"
#include "simd_hsum.h"
#include <immintrin.h>

void qk_q4k_q8k_maddubs(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y) {
    (void)rows;
    const qk_block_q8k *xq = x;
    const size_t nb = cols / QK_K;
    const __m256i nib = _mm256_set1_epi8(0x0F);
    for (size_t r = r0; r < r1; r++) {
        const qk_block_q4k *row = qk_q4k_row(w, cols, r);
        __m256 acc = _mm256_setzero_ps();
        __m128 macc = _mm_setzero_ps();
        for (size_t b = 0; b < nb; b++) {
            const qk_block_q4k *blk = &row[b];
            const qk_block_q8k *xb = &xq[b];
            uint8_t sm[16];
            qk_q4k_unpack_scales(blk->scales, sm);
            __m256i sumi = _mm256_setzero_si256();
            for (int c = 0; c < 4; c++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(blk->qs + 32 * c));
                __m256i ql = _mm256_and_si256(q, nib);
                __m256i qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), nib);
                __m256i pl = _mm256_maddubs_epi16(
                    ql, _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * c)));
                __m256i ph = _mm256_maddubs_epi16(
                    qh, _mm256_loadu_si256((const __m256i *)(xb->qs + 64 * c + 32)));
                sumi = _mm256_add_epi32(sumi,
                                        _mm256_madd_epi16(pl, _mm256_set1_epi16((short)sm[2 * c])));
                sumi = _mm256_add_epi32(
                    sumi, _mm256_madd_epi16(ph, _mm256_set1_epi16((short)sm[2 * c + 1])));
            }
            /* M: pair the 16 bsums into 8 sub-block sums, times the 8 mins */
            __m128i bs = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb->bsums),
                                        _mm_loadu_si128((const __m128i *)(xb->bsums + 8)));
            __m128i mins = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)(sm + 8)));
            __m128i msum = _mm_madd_epi16(bs, mins);
            const float d = xb->d * _cvtsh_ss(blk->d);
            const float dmin = xb->d * _cvtsh_ss(blk->dmin);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
            macc = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(msum), macc);
        }
        y[r] = qk_hsum8(acc) - qk_hsum4(macc);
    }
}

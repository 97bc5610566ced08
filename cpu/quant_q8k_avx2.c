/* quant_q8k_avx2: Q8_K quantizer in 8 f32 lanes, bit-identical to quant_q8k_ref on every input:
 * the same signed max (first element of largest magnitude), the same f32 multiply, and the same
 * ties-to-even rounding by adding 1.5*2^23 (not cvtps, which differs on NaN and inf). */
#include "cpu_kernels.h"
#include <immintrin.h>
#include <string.h>

void qk_quant_q8k_avx2(const float *x, void *out, size_t n) {
    qk_block_q8k *yb = out;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        qk_block_q8k *y = &yb[b];
        /* max_ps returns its second operand when the first is NaN: NaNs are skipped, as in ref */
        __m256 vmax = _mm256_setzero_ps();
        for (int i = 0; i < QK_K; i += 8)
            vmax = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), vmax);
        __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        const float amax = _mm_cvtss_f32(m4);
        if (amax == 0) {
            memset(y, 0, sizeof *y);
            continue;
        }
        const __m256 va = _mm256_set1_ps(amax);
        int first = 0;
        for (int i = 0; i < QK_K; i += 8) {
            int mask = _mm256_movemask_ps(
                _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absmask), va, _CMP_EQ_OQ));
            if (mask) {
                first = i + __builtin_ctz((unsigned)mask);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m256 vs = _mm256_set1_ps(iscale), magic = _mm256_set1_ps(12582912.0f);
        const __m256i mant = _mm256_set1_epi32(0x007fffff), bias = _mm256_set1_epi32(0x00400000);
        const __m256i hi = _mm256_set1_epi32(127), lo = _mm256_set1_epi32(-128);
        for (int i = 0; i < QK_K; i += 32) {
            __m256i v[4];
            for (int k = 0; k < 4; k++) {
                const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), vs);
                const __m256 t = _mm256_add_ps(p, magic);
                __m256i q = _mm256_sub_epi32(_mm256_and_si256(_mm256_castps_si256(t), mant), bias);
                q = _mm256_max_epi32(_mm256_min_epi32(q, hi), lo);
                /* a NaN product quantizes to 0, as in the reference */
                v[k] = _mm256_and_si256(q, _mm256_castps_si256(_mm256_cmp_ps(p, p, _CMP_ORD_Q)));
            }
            /* packs work per 128-bit half; the permute restores element order */
            __m256i p =
                _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
            p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
            _mm256_storeu_si256((__m256i *)(y->qs + i), p);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int i = 0; i < 16; i++)
                s += y->qs[16 * g + i];
            y->bsums[g] = (int16_t)s;
        }
        y->d = 1 / iscale;
    }
}

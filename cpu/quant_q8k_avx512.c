/* quant_q8k_avx512: the quant_q8k_avx2 algorithm in 16 f32 lanes; bit-identical to the ref. */
#include "cpu_kernels.h"
#include <immintrin.h>
#include <string.h>

void qk_quant_q8k_avx512(const float *x, void *out, size_t n) {
    qk_block_q8k *yb = out;
    const __m512 absmask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        qk_block_q8k *y = &yb[b];
        __m512 vmax = _mm512_setzero_ps();
        for (int i = 0; i < QK_K; i += 16)
            vmax = _mm512_max_ps(_mm512_and_ps(_mm512_loadu_ps(x + i), absmask), vmax);
        const float amax = _mm512_reduce_max_ps(vmax);
        if (amax == 0) {
            memset(y, 0, sizeof *y);
            continue;
        }
        const __m512 va = _mm512_set1_ps(amax);
        int first = 0;
        for (int i = 0; i < QK_K; i += 16) {
            __mmask16 m =
                _mm512_cmp_ps_mask(_mm512_and_ps(_mm512_loadu_ps(x + i), absmask), va, _CMP_EQ_OQ);
            if (m) {
                first = i + __builtin_ctz((unsigned)m);
                break;
            }
        }
        const float iscale = -127.0f / x[first];
        const __m512 vs = _mm512_set1_ps(iscale), magic = _mm512_set1_ps(12582912.0f);
        const __m512i mant = _mm512_set1_epi32(0x007fffff), bias = _mm512_set1_epi32(0x00400000);
        const __m512i hi = _mm512_set1_epi32(127), lo = _mm512_set1_epi32(-128);
        for (int i = 0; i < QK_K; i += 16) {
            const __m512 p = _mm512_mul_ps(_mm512_loadu_ps(x + i), vs);
            const __m512 t = _mm512_add_ps(p, magic);
            __m512i q = _mm512_sub_epi32(_mm512_and_si512(_mm512_castps_si512(t), mant), bias);
            /* a NaN product quantizes to 0, as in the reference */
            q = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q),
                                       _mm512_max_epi32(_mm512_min_epi32(q, hi), lo));
            _mm_storeu_si128((__m128i *)(y->qs + i), _mm512_cvtepi32_epi8(q));
            y->bsums[i / 16] = (int16_t)_mm512_reduce_add_epi32(q);
        }
        y->d = 1 / iscale;
    }
}

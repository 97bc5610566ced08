/* Horizontal sums shared by the AVX2 / AVX-512 files (each includes it under its own flags). */
#ifndef QK_SIMD_HSUM_H
#define QK_SIMD_HSUM_H
#include <immintrin.h>

static inline float qk_hsum4(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float qk_hsum8(__m256 v) {
    return qk_hsum4(_mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)));
}

#endif

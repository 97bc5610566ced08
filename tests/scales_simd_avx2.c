/* qk_q4k_unpack_scales2 under the AVX2 kernels' flags (tests/scales_simd.h). */
#include "scales_simd.h"
#include "../cpu/q4k_scales_simd.h"

void qk_test_unpack_scales2(const uint8_t hdr[32], uint8_t out[32]) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)hdr);
    _mm256_storeu_si256((__m256i *)out, qk_q4k_unpack_scales2(h));
}

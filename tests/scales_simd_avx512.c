/* qk_q4k_unpack_scales4 under the AVX-512 kernels' flags (tests/scales_simd.h). */
#include "scales_simd.h"
#include "../cpu/q4k_scales_simd.h"

void qk_test_unpack_scales4(const uint8_t hdr[64], uint8_t out[64]) {
    _mm512_storeu_si512(out, qk_q4k_unpack_scales4(_mm512_loadu_si512(hdr)));
}

/* The SIMD scale decoders of cpu/q4k_scales_simd.h, wrapped for test_kernels.c: each wrapper is
 * built with its kernels' target flags (tests/CMakeLists.txt) and called only on a CPU that has
 * the ISA. hdr: 2 (4) Q4_K super-block headers of 16 bytes, one per 128-bit lane; out: the
 * lanes' decoded bytes sc0..7, m0..7. */
#ifndef QK_TEST_SCALES_SIMD_H
#define QK_TEST_SCALES_SIMD_H
#include <stdint.h>

void qk_test_unpack_scales2(const uint8_t hdr[32], uint8_t out[32]); /* AVX2 */
void qk_test_unpack_scales4(const uint8_t hdr[64], uint8_t out[64]); /* AVX-512 F+BW */

#endif

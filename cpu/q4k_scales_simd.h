/* Q4_K's packed 6-bit scales and mins decoded in SIMD: qk_q4k_unpack_scales
 * (kernels/qk_q4k_scales.h) for one 16-byte super-block header per 128-bit lane, shared by the
 * AVX2 and AVX-512 kernels. Each file includes it under its own target flags and gets only the
 * widths those flags allow: ymm (2 rows) with AVX2, zmm (4 rows) with AVX-512 F+BW as well.
 * Decoding several rows' headers at once, in registers, replaces a scalar unpack per row and a
 * stack round trip. Equal to qk_q4k_scale_min (tests/test_kernels.c: every bit alone and every
 * bit cleared, all 0x00, all 0xFF, random headers, in every lane).
 *
 * A header (d, dmin, 12 scale bytes) to lane bytes sc0..7, m0..7, with the words w0 = bytes
 * 4..7, w1 = 8..11, w2 = 12..15 of DESIGN.md:
 * sc0..3 = w0 & 63, sc4..7 = (w2 & 15) | (w0 >> 6) << 4, m0..3 = w1 & 63,
 * m4..7 = (w2 >> 4) | (w1 >> 6) << 4.
 * a = (the words w0, w2, w1, w2 >> 4) & (63, 15, 63, 15) gives the low bits of all 16 bytes;
 * b = (0, w0, 0, w1) >> 2 brings the top 2 bits of w0 / w1 to bits 4..5 of sc4..7 / m4..7. */
#ifndef QK_Q4K_SCALES_SIMD_H
#define QK_Q4K_SCALES_SIMD_H
#include <immintrin.h>

/* The vpshufb patterns of a lane, one definition for both widths (words w0, w2, w1, w2 for a;
 * 0, w0, 0, w1 for b); their broadcasts fold into constants. */
#define QK_SCALES_LOW_PICK _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15)
#define QK_SCALES_TOP_PICK _mm_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11)

#ifdef __AVX2__
/* Two headers, one per 128-bit lane. */
static inline __m256i qk_q4k_unpack_scales2(__m256i h) {
    const __m256i low = _mm256_broadcastsi128_si256(QK_SCALES_LOW_PICK);
    const __m256i top = _mm256_broadcastsi128_si256(QK_SCALES_TOP_PICK);
    /* shift and keep written out at full width: as broadcasts of 16 bytes, GCC 12 builds them
     * in registers in the AVX2 kernels' loops (other code, more stack) */
    const __m256i shift = _mm256_setr_epi32(0, 0, 0, 4, 0, 0, 0, 4);
    const __m256i keep = _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f,
                                           0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f);
    __m256i a = _mm256_and_si256(_mm256_srlv_epi32(_mm256_shuffle_epi8(h, low), shift), keep);
    __m256i b =
        _mm256_and_si256(_mm256_srli_epi32(_mm256_shuffle_epi8(h, top), 2), _mm256_set1_epi8(0x30));
    return _mm256_or_si256(a, b);
}
#endif

#if defined(__AVX512F__) && defined(__AVX512BW__)
/* Four headers, one per 128-bit lane; a | (b & 0x30) is one vpternlogd. */
static inline __m512i qk_q4k_unpack_scales4(__m512i h) {
    const __m512i low = _mm512_broadcast_i32x4(QK_SCALES_LOW_PICK);
    const __m512i top = _mm512_broadcast_i32x4(QK_SCALES_TOP_PICK);
    const __m512i shift = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4));
    const __m512i keep =
        _mm512_broadcast_i32x4(_mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
    __m512i a = _mm512_and_si512(_mm512_srlv_epi32(_mm512_shuffle_epi8(h, low), shift), keep);
    __m512i b = _mm512_srli_epi32(_mm512_shuffle_epi8(h, top), 2);
    return _mm512_ternarylogic_epi32(a, b, _mm512_set1_epi32(0x30303030), 0xF8); /* a|(b&c) */
}
#endif

#endif

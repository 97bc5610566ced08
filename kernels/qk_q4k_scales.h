/* The one decoder of Q4_K's packed 6-bit scales and mins (DESIGN.md "Formats"). */
#ifndef QK_Q4K_SCALES_H
#define QK_Q4K_SCALES_H
#include "qk_formats.h"
#include <stdint.h>
#include <string.h>

/* Scale and min of sub-block j (0..7) from the 12 packed bytes. */
static inline QK_HOST_DEVICE void qk_q4k_scale_min(const uint8_t s[12], int j, uint8_t *sc,
                                                   uint8_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* All eight at once with word operations (the form SIMD kernels want): out[0..7] = scales,
 * out[8..15] = mins. Equal to qk_q4k_scale_min for every j (tested exhaustively on bits). */
static inline QK_HOST_DEVICE void qk_q4k_unpack_scales(const uint8_t s[12], uint8_t out[16]) {
    uint32_t w0, w1, w2;
    memcpy(&w0, s, 4);     /* low 6 bits: sc0..3; top 2 bits: high bits of sc4..7 */
    memcpy(&w1, s + 4, 4); /* low 6 bits: m0..3; top 2 bits: high bits of m4..7 */
    memcpy(&w2, s + 8, 4); /* low nibble: low bits of sc4..7; high nibble: of m4..7 */
    const uint32_t low6 = 0x3f3f3f3fu, top2 = 0xc0c0c0c0u, nib = 0x0f0f0f0fu;
    uint32_t sc03 = w0 & low6;
    uint32_t m03 = w1 & low6;
    uint32_t sc47 = (w2 & nib) | ((w0 & top2) >> 2);
    uint32_t m47 = ((w2 >> 4) & nib) | ((w1 & top2) >> 2);
    memcpy(out, &sc03, 4);
    memcpy(out + 4, &sc47, 4);
    memcpy(out + 8, &m03, 4);
    memcpy(out + 12, &m47, 4);
}

/* Scale and min of sub-block j (0..7, run-time) from the 12 bytes held as three little-endian
 * words, with shifts only (the form a GPU thread wants: no indexed local array). Equal to
 * qk_q4k_scale_min for every j (tested). */
static inline QK_HOST_DEVICE void qk_q4k_scale_min_words(uint32_t w0, uint32_t w1, uint32_t w2,
                                                         int j, uint32_t *sc, uint32_t *m) {
    const int k = 8 * (j & 3);
    const uint32_t b0 = (w0 >> k) & 0xff, b1 = (w1 >> k) & 0xff, b2 = (w2 >> k) & 0xff;
    if (j < 4) {
        *sc = b0 & 63;
        *m = b1 & 63;
    } else {
        *sc = (b2 & 0xF) | ((b0 >> 6) << 4);
        *m = (b2 >> 4) | ((b1 >> 6) << 4);
    }
}

/* Scales and mins of sub-blocks 2c and 2c+1 (c = 0..3, run-time) from the three words, without
 * branches: the word of all four scales (mins) of c's half, then its two bytes. A GPU lane with
 * a run-time c wants this (the branch of qk_q4k_scale_min_words diverges across a warp's lanes).
 * Equal to qk_q4k_scale_min for every c (tested). */
static inline QK_HOST_DEVICE void qk_q4k_scale_min_pair(uint32_t w0, uint32_t w1, uint32_t w2,
                                                        int c, uint32_t sc[2], uint32_t m[2]) {
    const uint32_t low6 = 0x3f3f3f3fu, top2 = 0xc0c0c0c0u, nib = 0x0f0f0f0fu;
    const uint32_t scw = c < 2 ? w0 & low6 : (w2 & nib) | ((w0 & top2) >> 2);
    const uint32_t mw = c < 2 ? w1 & low6 : ((w2 >> 4) & nib) | ((w1 & top2) >> 2);
    const int k = 16 * (c & 1);
    sc[0] = (scw >> k) & 0xff;
    sc[1] = (scw >> (k + 8)) & 0xff;
    m[0] = (mw >> k) & 0xff;
    m[1] = (mw >> (k + 8)) & 0xff;
}

#endif

#include "qk_fp16.h"
#include <string.h>

static inline uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float qk_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f) /* inf / NaN: keep the payload, force quiet */
        return float_of(sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0));
    if (exp == 0) {
        if (man == 0) return float_of(sign);
        /* subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * float_of(0x33800000u); /* 2^-24 */
        return float_of(sign | bits_of(v));
    }
    return float_of(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t qk_f32_to_fp16(float f) {
    uint32_t u = bits_of(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, keep top payload bits */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x3ff));
    if (a >= 0x477ff000u) /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00);
    if (a < 0x38800000u) { /* below the smallest normal 2^-14: subnormal or zero */
        /* value * 2^24 rounded to nearest even; the FPU does the rounding exactly */
        float scaled = float_of(a) * float_of(0x4b800000u); /* 2^24, exact */
        /* add-and-subtract 2^23 rounds a value < 2^23 to an integer, ties to even */
        float r = (scaled + 8388608.0f) - 8388608.0f;
        return (uint16_t)(sign | (uint16_t)r);
    }
    /* normal: round mantissa from 23 to 10 bits, ties to even; carry may bump the exponent */
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((rounded - 0x38000000u) >> 13));
}

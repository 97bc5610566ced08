/* IEEE binary16 <-> binary32, round-to-nearest-even, subnormals, inf and NaN. */
#ifndef QK_FP16_H
#define QK_FP16_H
#include <stdint.h>

float qk_fp16_to_f32(uint16_t h);
uint16_t qk_f32_to_fp16(float f);

#endif

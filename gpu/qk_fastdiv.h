/* Division by a run-time divisor that stays fixed for a whole launch (rows per expert), with a
 * multiply-high and a shift instead of the ~25-instruction integer division: the magic number
 * of Granlund and Montgomery, "Division by invariant integers using multiplication" (1994).
 * Exact for every 32-bit n and every divisor 1 .. 2^31 (tested on the host in test_gpu). */
#ifndef QK_FASTDIV_H
#define QK_FASTDIV_H
#include "../kernels/qk_formats.h"
#include <stdint.h>

typedef struct {
    uint32_t d, mul, shift;
} qk_fastdiv;

/* l = ceil(log2 d); mul = floor(2^32 * (2^l - d) / d) + 1 */
static inline QK_HOST_DEVICE qk_fastdiv qk_fastdiv_make(uint32_t d) {
    uint32_t l = 0;
    while (l < 32 && ((uint64_t)1 << l) < d)
        l++;
    const uint64_t mul = (((uint64_t)1 << 32) * (((uint64_t)1 << l) - d)) / d + 1;
    qk_fastdiv f = {d, (uint32_t)mul, l};
    return f;
}

static inline QK_HOST_DEVICE uint32_t qk_fastdiv_div(qk_fastdiv f, uint32_t n) {
#ifdef __CUDA_ARCH__
    const uint32_t hi = __umulhi(n, f.mul);
#else
    const uint32_t hi = (uint32_t)(((uint64_t)n * f.mul) >> 32);
#endif
    return (uint32_t)(((uint64_t)hi + n) >> f.shift);
}

#endif

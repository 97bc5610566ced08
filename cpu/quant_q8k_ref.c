/* quant_q8k_ref: the reference Q8_K quantizer of kernels/, as a runnable variant. */
#include "cpu_kernels.h"
#include "../kernels/qk_quant.h"

void qk_quant_q8k_ref(const float *x, void *out, size_t n) {
    qk_quantize_q8k_ref(x, out, n);
}

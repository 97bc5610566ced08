/* The built-in synthetic experts: Qwen3-30B-A3B shapes, generated from a seed. */
#ifndef QK_SYNTH_H
#define QK_SYNTH_H
#include "../kernels/qk_formats.h"
#include <stdint.h>

/* Q4_K weights of one expert (rows x cols), deterministic in (seed, expert): f32 weights
 * 0.02 * row_scale * col_scale * z * exp(0.35 * z'), z, z' ~ N(0,1) (a log-normal scale mixture:
 * heavier tails than a Gaussian, as trained FFN weights have), row and column scales
 * log-normal with sigma 0.2, then quantized with the reference Q4_K quantizer. Returns 0, or -1
 * when out of memory. */
int qk_synth_expert(uint64_t seed, int expert, size_t rows, size_t cols, qk_block_q4k *out);

#endif

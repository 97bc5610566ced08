/* The built-in synthetic experts: Qwen3-30B-A3B shapes, generated from a seed. */
#ifndef QK_SYNTH_H
#define QK_SYNTH_H
#include "../kernels/qk_formats.h"
#include <stddef.h>
#include <stdint.h>

/* Q4_K weights of one expert (rows x cols), deterministic in (seed, expert): f32 weights
 * 0.02 * row_scale * col_scale * z * exp(0.35 * z'), z, z' ~ N(0,1) (a log-normal scale mixture:
 * heavier tails than a Gaussian, as trained FFN weights have), row and column scales
 * log-normal with sigma 0.2, then quantized with the reference Q4_K quantizer. Returns 0, or -1
 * when out of memory. */
int qk_synth_expert(uint64_t seed, int expert, size_t rows, size_t cols, qk_block_q4k *out);

/* The distinct experts of ids[0..n) in order of first use (distinct[]), and local[i] = the index
 * of ids[i] among them: the compact layout in which bench and gate_worker hold the selected
 * experts, each generated or copied once (local may be ids itself). Returns the number of
 * distinct experts. */
size_t qk_distinct_experts(const int32_t *ids, size_t n, int32_t *local, int32_t *distinct);

#endif

// The launch functions of the kernel files, called by gpu_runtime.cu.
#pragma once
#include "gpu_common.cuh"

struct qk_gpu_args {
    const qk_block_q4k *w; // the experts' plain Q4_K rows, contiguous
    const int32_t *ids;    // expert of each output block of rows (device)
    int rows, nb, total;   // rows per expert, super-blocks per row, n_ids * rows
    const float *x_f32;    // activations (device)
    void *x_q;             // quantized activations (device): Q8_K or Q8_1 blocks
    float *y;              // n_tokens * n_ids * rows outputs (device)
    int n_tokens, n_ids;   // tokens; expert ids per token (ids holds n_tokens * n_ids)
    int n_experts;         // experts in w (the batched launch's shape: slots' groups at most)
};

// Warp-units of the DP4A Q8_K kernels' walk: rows, grouped when short (dp4a_q8k_row.cuh).
int qk_dp4a_units(const qk_gpu_args &a);

cudaError_t qk_launch_gpu_q4k_f32(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_dp4a_q4k_q8(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_dp4a_q4k_q8_1(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_dp4a_q4k_q8_e2e(const qk_gpu_args &a, cudaStream_t st);
// The batched units (n_tokens > 1, mul_mat_id.cuh): the quantization of every token (Q8
// variants: its own launch, or fused for e2e), then MUL_MAT_ID over the slots.
cudaError_t qk_launch_batch_gpu_q4k_f32(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_batch_dp4a_q4k_q8(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_batch_dp4a_q4k_q8_1(const qk_gpu_args &a, cudaStream_t st);
cudaError_t qk_launch_batch_dp4a_q4k_q8_e2e(const qk_gpu_args &a, cudaStream_t st);
// f32 x[n] -> blocks at out (n a multiple of the block)
cudaError_t qk_launch_gpu_quant_q8k(const float *x, void *out, int n, cudaStream_t st);
cudaError_t qk_launch_gpu_quant_q8_1(const float *x, void *out, int n, cudaStream_t st);

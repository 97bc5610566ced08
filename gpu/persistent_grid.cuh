// Grid size for the kernels whose warps walk rows: one wave of resident blocks (fewer when
// there are fewer rows), from the occupancy calculator, cached per kernel and shared size.
#pragma once
#include "gpu_common.cuh"

struct qk_grid_cache {
    const void *kernel;
    size_t smem;
    int per_sm, sms;
};

template <typename Kernel>
cudaError_t qk_persistent_grid(qk_grid_cache &cache, Kernel kernel, size_t smem, int total_rows,
                               int *grid) {
    cudaError_t e;
    if (cache.kernel != (const void *)kernel || cache.smem != smem) {
        int dev;
        if ((e = cudaGetDevice(&dev)) != cudaSuccess) return e;
        if ((e = cudaDeviceGetAttribute(&cache.sms, cudaDevAttrMultiProcessorCount, dev)) !=
            cudaSuccess)
            return e;
        if (smem > 48 * 1024 &&
            (e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)smem)) != cudaSuccess)
            return e;
        if ((e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(
                 &cache.per_sm, kernel, QK_GPU_WARPS * 32, smem)) != cudaSuccess)
            return e;
        if (cache.per_sm < 1) return cudaErrorInvalidConfiguration;
        cache.kernel = (const void *)kernel;
        cache.smem = smem;
    }
    const int needed = (total_rows + QK_GPU_WARPS - 1) / QK_GPU_WARPS;
    const int wave = cache.per_sm * cache.sms;
    *grid = needed < wave ? needed : wave;
    if (*grid < 1) *grid = 1;
    return cudaSuccess;
}

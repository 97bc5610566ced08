/* The emulation's picture of a warp: 32 lanes' float partial sums and the xor-butterfly
 * reduction the kernels end with (__shfl_xor_sync over offsets 16, 8, 4, 2, 1). */
#ifndef QK_EMU_WARP_H
#define QK_EMU_WARP_H

static inline float qk_emu_warp_sum(float acc[32]) {
    for (int off = 16; off > 0; off /= 2) {
        float next[32];
        for (int l = 0; l < 32; l++)
            next[l] = acc[l] + acc[l ^ off];
        for (int l = 0; l < 32; l++)
            acc[l] = next[l];
    }
    return acc[0];
}

#endif

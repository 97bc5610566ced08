/* Q4_K reference quantizer and dequantizers. */
#include "qk_fp16.h"
#include "qk_q4k_scales.h"
#include "qk_quant.h"
#include <math.h>
#include <string.h>

enum { SUB = 32, NMAX = 15 };

/* Fits x[i] ~= scale*L[i] - min_out with L in [0, 15], minimising the weighted squared error.
 * Starts from the min/max range and tries 21 slightly different inverse scales, refitting scale
 * and offset by weighted least squares for each rounding (the search llama.cpp's Q4_K reference
 * does; the offset is kept <= 0 so the stored min is >= 0). Returns the scale. */
static float fit_scale_min(const float *x, const float *w, uint8_t *L, float *min_out) {
    float lo = x[0], hi = x[0], sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < SUB; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi == lo) {
        memset(L, 0, SUB);
        *min_out = -lo;
        return 0.0f;
    }
    float inv = NMAX / (hi - lo);
    float scale = 1 / inv;
    float best_err = 0;
    for (int i = 0; i < SUB; i++) {
        int l = qk_nearest_int(inv * (x[i] - lo));
        L[i] = (uint8_t)(l < 0 ? 0 : l > NMAX ? NMAX : l);
        float diff = scale * L[i] + lo - x[i];
        best_err += w[i] * diff * diff;
    }
    uint8_t trial[SUB];
    for (int step = 0; step <= 20; step++) {
        inv = (-1.0f + 0.1f * step + NMAX) / (hi - lo);
        float sl = 0, sl2 = 0, sxl = 0;
        for (int i = 0; i < SUB; i++) {
            int l = qk_nearest_int(inv * (x[i] - lo));
            l = l < 0 ? 0 : l > NMAX ? NMAX : l;
            trial[i] = (uint8_t)l;
            sl += w[i] * l;
            sl2 += w[i] * l * l;
            sxl += w[i] * l * x[i];
        }
        float det = sum_w * sl2 - sl * sl;
        if (det <= 0) continue;
        float s = (sum_w * sxl - sum_x * sl) / det;
        float off = (sl2 * sum_x - sl * sxl) / det;
        if (off > 0) {
            off = 0;
            s = sxl / sl2;
        }
        float err = 0;
        for (int i = 0; i < SUB; i++) {
            float diff = s * trial[i] + off - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best_err) {
            memcpy(L, trial, SUB);
            best_err = err;
            scale = s;
            lo = off;
        }
    }
    *min_out = -lo;
    return scale;
}

static void pack_scales(uint8_t s[12], const uint8_t sc[8], const uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        s[j] = sc[j];
        s[j + 4] = m[j];
    }
    for (int j = 4; j < 8; j++) {
        s[j + 4] = (uint8_t)((sc[j] & 0xF) | ((m[j] & 0xF) << 4));
        s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
        s[j] |= (uint8_t)((m[j] >> 4) << 6);
    }
}

void qk_quantize_q4k_ref(const float *x, qk_block_q4k *out, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        qk_block_q4k *blk = &out[b];
        uint8_t L[QK_K];
        float scales[8], mins[8], w[SUB];
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 8; j++) {
            const float *xs = x + SUB * j;
            /* weight each element by its magnitude plus the sub-block's rms, as llama.cpp does */
            float ss = 0;
            for (int i = 0; i < SUB; i++)
                ss += xs[i] * xs[i];
            float rms = sqrtf(ss / SUB);
            for (int i = 0; i < SUB; i++)
                w[i] = rms + fabsf(xs[i]);
            scales[j] = fit_scale_min(xs, w, L + SUB * j, &mins[j]);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        /* 6-bit scales and mins relative to the block's largest */
        float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
        float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) {
            int ls = qk_nearest_int(inv_scale * scales[j]);
            int lm = qk_nearest_int(inv_min * mins[j]);
            sc[j] = (uint8_t)(ls > 63 ? 63 : ls);
            m[j] = (uint8_t)(lm > 63 ? 63 : lm);
        }
        memset(blk->scales, 0, sizeof blk->scales);
        pack_scales(blk->scales, sc, m);
        blk->d = qk_f32_to_fp16(max_scale / 63.0f);
        blk->dmin = qk_f32_to_fp16(max_min / 63.0f);
        /* re-round every element against the stored (fp16, 6-bit) scale and min */
        float d = qk_fp16_to_f32(blk->d), dmin = qk_fp16_to_f32(blk->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t s6, m6;
            qk_q4k_scale_min(blk->scales, j, &s6, &m6);
            float ds = d * s6, dm = dmin * m6;
            for (int i = 0; i < SUB; i++) {
                int l = 0;
                if (ds != 0.0f) {
                    l = qk_nearest_int((x[SUB * j + i] + dm) / ds);
                    l = l < 0 ? 0 : l > NMAX ? NMAX : l;
                }
                L[SUB * j + i] = (uint8_t)l;
            }
        }
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                blk->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

void qk_dequantize_q4k(const qk_block_q4k *b, float *y, size_t n) {
    for (size_t k = 0; k < n / QK_K; k++, b++, y += QK_K) {
        float d = qk_fp16_to_f32(b->d), dmin = qk_fp16_to_f32(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            qk_q4k_scale_min(b->scales, j, &sc, &m);
            float ds = d * sc, dm = dmin * m;
            const uint8_t *q = b->qs + 32 * (j / 2);
            int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++)
                y[32 * j + l] = ds * ((q[l] >> shift) & 0xF) - dm;
        }
    }
}

void qk_dequantize_q4k_f64(const qk_block_q4k *b, double *y, size_t n) {
    for (size_t k = 0; k < n / QK_K; k++, b++, y += QK_K) {
        double d = qk_fp16_to_f32(b->d), dmin = qk_fp16_to_f32(b->dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            qk_q4k_scale_min(b->scales, j, &sc, &m);
            const uint8_t *q = b->qs + 32 * (j / 2);
            int shift = 4 * (j & 1);
            for (int l = 0; l < 32; l++)
                y[32 * j + l] = d * sc * ((q[l] >> shift) & 0xF) - dmin * m;
        }
    }
}

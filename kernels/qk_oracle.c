#include "qk_oracle.h"
#include "qk_quant.h"
#include <math.h>
#include <stdlib.h>

/* Neumaier's compensated sum, one term at a time. */
typedef struct {
    double s, c;
} ksum;
static inline void ksum_add(ksum *k, double v) {
    double t = k->s + v;
    if (fabs(k->s) >= fabs(v))
        k->c += (k->s - t) + v;
    else
        k->c += (v - t) + k->s;
    k->s = t;
}

void qk_oracle_q4k(const qk_block_q4k *w, size_t rows, size_t cols, const double *x, double *y) {
    double wrow[QK_K];
    size_t nb = cols / QK_K;
    for (size_t r = 0; r < rows; r++) {
        ksum acc = {0, 0};
        for (size_t b = 0; b < nb; b++) {
            qk_dequantize_q4k_f64(&w[r * nb + b], wrow, QK_K);
            for (int i = 0; i < QK_K; i++)
                ksum_add(&acc, wrow[i] * x[b * QK_K + i]);
        }
        y[r] = acc.s + acc.c;
    }
}

void qk_activations_f64(qk_format fmt, const void *x, size_t n, double *out) {
    switch (fmt) {
    case QK_FMT_F32:
        for (size_t i = 0; i < n; i++)
            out[i] = ((const float *)x)[i];
        break;
    case QK_FMT_Q8_K:
        qk_dequantize_q8k_f64(x, out, n);
        break;
    case QK_FMT_Q8_1:
        qk_dequantize_q8_1_f64(x, out, n);
        break;
    default:
        abort(); /* Q4_K is a weight format; no caller passes it */
    }
}

qk_deviation qk_deviation_of(const float *y, const double *r, size_t n) {
    qk_deviation d = {0, 0, 0, 0, 0};
    double err2 = 0, ref2 = 0, y2 = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(y[i])) {
            d.nonfinite++;
            continue;
        }
        double e = (double)y[i] - r[i];
        double ae = fabs(e);
        err2 += e * e;
        ref2 += r[i] * r[i];
        y2 += (double)y[i] * y[i];
        if (ae > d.max_abs) d.max_abs = ae;
        double den = fmax(fabs((double)y[i]), fabs(r[i]));
        if (den > 0 && ae / den > d.max_rel) d.max_rel = ae / den;
    }
    if (d.nonfinite) {
        d.rel_l2 = d.max_abs = d.max_rel = d.one_minus_cos = INFINITY;
        return d;
    }
    d.rel_l2 = ref2 > 0 ? sqrt(err2 / ref2) : (err2 > 0 ? INFINITY : 0);
    /* 1 - cos = |y/|y| - r/|r||^2 / 2, which does not cancel when cos is near 1 */
    if (y2 > 0 && ref2 > 0) {
        double ny = sqrt(y2), nr = sqrt(ref2), s = 0;
        for (size_t i = 0; i < n; i++) {
            double t = (double)y[i] / ny - r[i] / nr;
            s += t * t;
        }
        d.one_minus_cos = s / 2;
    } else {
        d.one_minus_cos = (y2 == ref2) ? 0 : 1; /* both zero: identical; one zero: orthogonal */
    }
    return d;
}

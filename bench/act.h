/* Activation profiles: the inputs x of a matvec, generated from a seed. */
#ifndef QK_ACT_H
#define QK_ACT_H
#include "../kernels/qk_rng.h"
#include <stddef.h>

typedef enum {
    QK_ACT_NORMAL,      /* N(0,1) */
    QK_ACT_UNIFORM20,   /* U(-20,20): large, flat magnitudes */
    QK_ACT_OUTLIERS,    /* N(0,1) with a few channels at 50-100x, as in residual streams */
    QK_ACT_SWIGLU,      /* silu(g)*u, g,u ~ N(0,1): the input of a down projection */
    QK_ACT_LOGNORMAL,   /* random sign x exp(N(0,1)): heavy right tail of magnitudes */
    QK_ACT_ZERO_BLOCKS, /* N(0,1) with every other 256-block all zero (Q8 d = 0 paths) */
    QK_ACT_COUNT
} qk_act_profile;

const char *qk_act_name(qk_act_profile p);
/* The profile called name, or -1. */
int qk_act_from_name(const char *name);
/* "normal, uniform20, ..." for error messages. */
const char *qk_act_names(void);
/* n activations of profile p, drawn from r. */
void qk_act_fill(qk_rng *r, qk_act_profile p, float *x, size_t n);

#endif

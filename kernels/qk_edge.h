/* The edge-case series every quantizer of f32 activations must agree on bit for bit with its
 * reference: the tests run it over the built-in quantizers, bench over a plug-in's. */
#ifndef QK_EDGE_H
#define QK_EDGE_H
#include "qk_formats.h"
#include "qk_rng.h"

/* Fills block b (of 256 floats) with the b-th edge case (16 cases, b % 16): ties, +-0, all
 * equal, negative largest magnitude late, equal magnitudes of both signs, values at +-max,
 * subnormals, huge, one outlier, an infinity, NaNs, a single tiny value, near-ties, ... The
 * rest of the block is N(0,1) from r. Returns the case's name. */
const char *qk_edge_block(qk_rng *r, int b, float *x);
enum { QK_EDGE_CASES = 16 };

#endif

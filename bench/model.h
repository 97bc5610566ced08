/* Real weights from a GGUF file: one Q4_K tensor (2-D, or 3-D with one matrix per expert). */
#ifndef QK_MODEL_H
#define QK_MODEL_H
#include "gguf.h"
#include "../kernels/qk_formats.h"
#include <stddef.h>

typedef struct {
    qk_gguf *gguf;
    const qk_gguf_tensor *tensor;
    size_t rows, cols, n_experts; /* per expert; n_experts = 1 for a 2-D tensor */
    char architecture[160]; /* general.architecture, printable (escaped by qk_gguf_printable) */
} qk_model_weights;

/* Opens path and selects the tensor `name`; any problem (unreadable or malformed file, no such
 * tensor, not Q4_K, unusable shape) exits 2 with one line naming the file and the problem. */
void qk_model_open(const char *path, const char *name, qk_model_weights *out);
/* The tensor of layer `layer`, projection gate/up/down: "blk.L.ffn_P_exps.weight". */
void qk_model_expert_tensor_name(int layer, const char *proj, char *out, size_t size);
/* Expert e's rows (e < n_experts), pointing into the mapped file. */
const qk_block_q4k *qk_model_expert(const qk_model_weights *m, size_t e);
void qk_model_close(qk_model_weights *m);
/* Prints the architecture, expert counts and one line per layer with each FFN projection's type
 * and shape. Exits 2 on a bad file. */
void qk_model_inspect(const char *path);

#endif

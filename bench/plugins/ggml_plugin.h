/* What bench's two ggml plug-ins share (internal to bench/plugins: ggml_plugin.c, the CPU rows in
 * qkbench_ggml.so; ggml_cuda_plugin.c, the CUDA row in qkbench_ggml_cuda.so): the state of one
 * MUL_MAT_ID unit, its graph on a given backend, its output, its teardown, ggml's log and the
 * version string. Through ggml's public API only, and ggml-base's alone: neither the global
 * backend registry (the umbrella `ggml` library, which registers and starts every backend built,
 * CUDA included) nor a backend library is named here. Each source includes it once. */
#ifndef QK_GGML_PLUGIN_H
#define QK_GGML_PLUGIN_H
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "qkbench_plugin.h"
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ggml_moe {
    ggml_backend_t backend;
    ggml_threadpool_t threadpool; /* CPU: freed by ggml_plugin.c (ggml-cpu's) */
    int paused;                   /* CPU: the threadpool paused by bench's park */
    struct ggml_context *weights_ctx, *inputs_ctx, *graph_ctx;
    ggml_backend_buffer_t weights_buffer, inputs_buffer;
    ggml_gallocr_t allocator; /* holds the output */
    struct ggml_cgraph *graph;
    struct ggml_tensor *weights, *x, *ids, *y;
} ggml_moe;

static const qkb_host *host;

static void fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(char *err, size_t err_size, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* ggml's warnings and errors reach stderr; its info lines (device lists, repacking) do not
 * interleave with bench's table. */
static void quiet_log(enum ggml_log_level level, const char *text, void *user_data) {
    (void)user_data;
    if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

/* Everything but the threadpool (the CPU library's) and the backend itself. */
static void moe_free_graph(ggml_moe *m) {
    ggml_gallocr_free(m->allocator);
    if (m->graph_ctx) ggml_free(m->graph_ctx);
    ggml_backend_buffer_free(m->weights_buffer);
    ggml_backend_buffer_free(m->inputs_buffer);
    if (m->weights_ctx) ggml_free(m->weights_ctx);
    if (m->inputs_ctx) ggml_free(m->inputs_ctx);
    if (m->backend) ggml_backend_free(m->backend);
}

static struct ggml_context *tensor_context(size_t n_tensors, size_t graph_bytes) {
    struct ggml_init_params params = {
        .mem_size = n_tensors * ggml_tensor_overhead() + graph_bytes,
        .mem_buffer = NULL,
        .no_alloc = true, /* tensors' data live in backend buffers */
    };
    return ggml_init(params);
}

/* NULL, or why ggml cannot take the case. ggml's MUL_MAT_ID maps its slots with int32 token and
 * slot indices: the batch's slots are bounded by INT32_MAX. */
static const char *check_case(const qkb_moe_case *c) {
    static char why[160];
    if (c->rows == 0 || c->cols == 0 || c->cols % 256 != 0 || c->n_experts == 0)
        snprintf(why, sizeof why, "a %zu x %zu matrix of %zu experts is not q4_K (cols %% 256)",
                 c->rows, c->cols, c->n_experts);
    else if (c->n_tokens == 0)
        snprintf(why, sizeof why, "0 tokens (an ABI 2 case has n_tokens >= 1)");
    else if (c->n_ids == 0 || c->n_ids > INT32_MAX / c->n_tokens)
        snprintf(why, sizeof why, "%zu tokens of %zu expert ids (ggml takes 1 to %d slots)",
                 c->n_tokens, c->n_ids, INT32_MAX);
    else if (c->n_threads < 1 || c->n_threads > GGML_MAX_N_THREADS)
        snprintf(why, sizeof why, "%d threads (ggml runs 1 to %d)", c->n_threads,
                 GGML_MAX_N_THREADS);
    else {
        for (size_t s = 0; s < c->n_tokens * c->n_ids; s++)
            if (c->ids[s] < 0 || (size_t)c->ids[s] >= c->n_experts) {
                snprintf(why, sizeof why, "expert id %d (token %zu, slot %zu) is not below %zu",
                         (int)c->ids[s], s / c->n_ids, s % c->n_ids, c->n_experts);
                return why;
            }
        return NULL;
    }
    return why;
}

/* On m->backend (started by the caller): the weights in a buffer of weights_type, x and ids in
 * the backend's, the graph of one MUL_MAT_ID node for the case's n_tokens and its output.
 * check_weights (or NULL) looks at the weights' tensor once its buffer took it, before the weights
 * are copied in. 0, or -1 with the reason. */
static int moe_build(ggml_moe *m, const qkb_moe_case *c, ggml_backend_buffer_type_t weights_type,
                     int (*check_weights)(const ggml_moe *m, const qkb_moe_case *c, char *err,
                                          size_t err_size),
                     char *err, size_t err_size) {
    /* ne = [cols, rows, experts], one matrix per expert, as a GGUF ffn_*_exps tensor */
    m->weights_ctx = tensor_context(1, 0);
    m->inputs_ctx = tensor_context(2, 0);
    m->graph_ctx = tensor_context(GGML_DEFAULT_GRAPH_SIZE, ggml_graph_overhead());
    if (!m->weights_ctx || !m->inputs_ctx || !m->graph_ctx) {
        fail(err, err_size, "out of memory");
        return -1;
    }
    m->weights = ggml_new_tensor_3d(m->weights_ctx, GGML_TYPE_Q4_K, (int64_t)c->cols,
                                    (int64_t)c->rows, (int64_t)c->n_experts);
    /* each token's activation row serves all its selected experts (ne1 = 1 broadcasts), as
     * llama.cpp's ffn_gate_exps / ffn_up_exps calls see a batch: x [cols, 1, n_tokens], ids
     * [n_ids, n_tokens], token-major as the case holds them */
    m->x =
        ggml_new_tensor_3d(m->inputs_ctx, GGML_TYPE_F32, (int64_t)c->cols, 1, (int64_t)c->n_tokens);
    m->ids =
        ggml_new_tensor_2d(m->inputs_ctx, GGML_TYPE_I32, (int64_t)c->n_ids, (int64_t)c->n_tokens);
    m->weights_buffer = ggml_backend_alloc_ctx_tensors_from_buft(m->weights_ctx, weights_type);
    m->inputs_buffer = ggml_backend_alloc_ctx_tensors(m->inputs_ctx, m->backend);
    if (!m->weights_buffer || !m->inputs_buffer) {
        fail(err, err_size, "ggml could not allocate %zu bytes of weights",
             ggml_nbytes(m->weights));
        return -1;
    }
    ggml_backend_buffer_set_usage(m->weights_buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    if (check_weights && check_weights(m, c, err, err_size)) return -1;
    ggml_backend_tensor_set(m->weights, c->weights, 0, ggml_nbytes(m->weights));
    ggml_backend_tensor_set(m->x, c->x, 0, ggml_nbytes(m->x));
    ggml_backend_tensor_set(m->ids, c->ids, 0, ggml_nbytes(m->ids));

    /* ne = [rows, n_ids, n_tokens], contiguous: slot (t, i) at (t*n_ids + i)*rows, the ABI's */
    m->y = ggml_mul_mat_id(m->graph_ctx, m->weights, m->x, m->ids);
    m->graph = ggml_new_graph(m->graph_ctx);
    ggml_build_forward_expand(m->graph, m->y);
    m->allocator = ggml_gallocr_new(ggml_backend_get_default_buffer_type(m->backend));
    if (!m->allocator || !ggml_gallocr_alloc_graph(m->allocator, m->graph)) {
        fail(err, err_size, "ggml could not allocate the graph's output");
        return -1;
    }
    return 0;
}

/* The last run's output, once the backend's queue is done (a no-op on the CPU; on CUDA the
 * copy goes through another stream than the one the runs were queued on). */
static int moe_output(void *state, float *y, char *err, size_t err_size) {
    ggml_moe *m = state;
    (void)err;
    (void)err_size;
    ggml_backend_synchronize(m->backend);
    ggml_backend_tensor_get(m->y, y, 0, ggml_nbytes(m->y));
    return 0;
}

/* The entry point's common part: 0 when the host is one this plug-in takes; the version string
 * ("ggml 0.25.3 llama.cpp 0c1e570 from SDIST": bench takes [A-Za-z0-9 _.+-]). Touches no
 * backend. */
static int plugin_init(const qkb_host *h, char *version, size_t version_size) {
    if (!h || h->abi_version != QKB_PLUGIN_ABI || !h->evict) return -1;
    host = h;
    ggml_log_set(quiet_log, NULL);
    snprintf(version, version_size, "%s %s", ggml_version(), QK_GGML_ORIGIN);
    return 0;
}

/* The entry point of a plug-in NAME whose `variants` table is in scope. */
#define GGML_PLUGIN_ENTRY(NAME)                                                                    \
    const qkb_plugin *qkbench_plugin(const qkb_host *h);                                           \
    const qkb_plugin *qkbench_plugin(const qkb_host *h) {                                          \
        static char version[160];                                                                  \
        static qkb_plugin plugin = {                                                               \
            .abi_version = QKB_PLUGIN_ABI,                                                         \
            .name = NAME,                                                                          \
            .version = version,                                                                    \
            .n_variants = sizeof variants / sizeof variants[0],                                    \
            .variants = variants,                                                                  \
        };                                                                                         \
        return plugin_init(h, version, sizeof version) ? NULL : &plugin;                           \
    }

#endif

/* bench's reference rows: llama.cpp's ggml MUL_MAT_ID on Q4_K experts, through ggml's public
 * API only, as a qkbench plug-in of kind MOE. The timed unit is one graph compute of one
 * MUL_MAT_ID node: ggml quantizes x itself (Q8_K on the CPU, Q8_1 on CUDA) and runs the
 * selected experts with its own threads, exactly the work llama.cpp does per token and layer. */
#define _GNU_SOURCE /* pthread_{get,set}affinity_np */
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml.h"
#include "qkbench_plugin.h"
#ifdef QK_GGML_CUDA
#include "ggml-cuda.h"
#endif
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where the weights live: the three ways llama.cpp can hold an expert tensor. */
enum weight_placement { PLACE_CPU_PLAIN, PLACE_CPU_REPACK, PLACE_CUDA };

typedef struct ggml_moe {
    enum weight_placement placement;
    ggml_backend_t backend;
    ggml_threadpool_t threadpool; /* CPU */
    struct ggml_context *weights_ctx, *inputs_ctx, *graph_ctx;
    ggml_backend_buffer_t weights_buffer, inputs_buffer;
    ggml_gallocr_t allocator; /* holds the output */
    struct ggml_cgraph *graph;
    struct ggml_tensor *weights, *x, *ids, *y;
} ggml_moe;

static const qkb_host *host;

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

/* An extra buffer type of the CPU device by name ("CPU_REPACK"), as llama.cpp finds it. */
static ggml_backend_buffer_type_t cpu_extra_buffer_type(const char *name) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU);
    if (!dev) return NULL;
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(dev);
    ggml_backend_dev_get_extra_bufts_t get_extra =
        (ggml_backend_dev_get_extra_bufts_t)ggml_backend_reg_get_proc_address(
            reg, "ggml_backend_dev_get_extra_bufts");
    ggml_backend_buffer_type_t *extra = get_extra ? get_extra(dev) : NULL;
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(ggml_backend_buft_name(extra[i]), name) == 0) return extra[i];
    return NULL;
}

/* ggml's threads pinned as bench pins its own: the caller (ggml's thread 0) stays on cpus[0],
 * its workers take cpus[1..n). With strict placement ggml gives its workers the mask's CPUs in
 * increasing order, then gives the caller the next one (wrapping around) when the pool is
 * made; the caller's own mask is put back right after, and ggml sets it again only when a
 * paused pool resumes (never here). */
static ggml_threadpool_t pinned_threadpool(int n_threads, const int *cpus, char *err,
                                           size_t err_size) {
    struct ggml_threadpool_params params = ggml_threadpool_params_default(n_threads);
    if (cpus && n_threads > 1) {
        params.strict_cpu = true;
        for (int t = 1; t < n_threads; t++) {
            if (cpus[t] < 0 || cpus[t] >= GGML_MAX_N_THREADS) {
                fail(err, err_size, "CPU %d is beyond ggml's thread mask (%d CPUs)", cpus[t],
                     GGML_MAX_N_THREADS);
                return NULL;
            }
            params.cpumask[cpus[t]] = true;
        }
    }
    cpu_set_t caller_mask;
    if (pthread_getaffinity_np(pthread_self(), sizeof caller_mask, &caller_mask) != 0) {
        fail(err, err_size, "cannot read the calling thread's CPU mask");
        return NULL;
    }
    ggml_threadpool_t pool = ggml_threadpool_new(&params);
    if (pthread_setaffinity_np(pthread_self(), sizeof caller_mask, &caller_mask) != 0) {
        ggml_threadpool_free(pool);
        fail(err, err_size, "cannot restore the calling thread's CPU mask");
        return NULL;
    }
    if (!pool) fail(err, err_size, "ggml_threadpool_new failed for %d threads", n_threads);
    return pool;
}

static void moe_destroy(void *state) {
    ggml_moe *m = state;
    if (!m) return;
    ggml_gallocr_free(m->allocator);
    if (m->graph_ctx) ggml_free(m->graph_ctx);
    ggml_backend_buffer_free(m->weights_buffer);
    ggml_backend_buffer_free(m->inputs_buffer);
    if (m->weights_ctx) ggml_free(m->weights_ctx);
    if (m->inputs_ctx) ggml_free(m->inputs_ctx);
    if (m->backend) ggml_backend_free(m->backend);
    if (m->threadpool) ggml_threadpool_free(m->threadpool);
    free(m);
}

static struct ggml_context *tensor_context(size_t n_tensors, size_t graph_bytes) {
    struct ggml_init_params params = {
        .mem_size = n_tensors * ggml_tensor_overhead() + graph_bytes,
        .mem_buffer = NULL,
        .no_alloc = true, /* tensors' data live in backend buffers */
    };
    return ggml_init(params);
}

static const char *check_case(const qkb_moe_case *c) {
    static char why[160];
    if (c->rows == 0 || c->cols == 0 || c->cols % 256 != 0 || c->n_experts == 0)
        snprintf(why, sizeof why, "a %zu x %zu matrix of %zu experts is not q4_K (cols %% 256)",
                 c->rows, c->cols, c->n_experts);
    else if (c->n_ids == 0 || c->n_ids > INT32_MAX)
        snprintf(why, sizeof why, "%zu expert ids", c->n_ids);
    else if (c->n_threads < 1 || c->n_threads > GGML_MAX_N_THREADS)
        snprintf(why, sizeof why, "%d threads (ggml runs 1 to %d)", c->n_threads,
                 GGML_MAX_N_THREADS);
    else {
        for (size_t i = 0; i < c->n_ids; i++)
            if (c->ids[i] < 0 || (size_t)c->ids[i] >= c->n_experts) {
                snprintf(why, sizeof why, "expert id %d is not below %zu", (int)c->ids[i],
                         c->n_experts);
                return why;
            }
        return NULL;
    }
    return why;
}

/* ggml's CPU_REPACK MUL_MAT_ID keeps one mapping slot per expert and token, so the k-th listing
 * of an expert in one token lands in the slot of expert + k - 1 (llama.cpp issue 26310): a
 * repeated expert's later outputs are left unwritten or computed with another expert's weights,
 * which bench shows as deviation. The last expert's extra listings go past the mapping array
 * into the 64 bytes of padding ggml adds per thread; more than 8 listings of one expert could
 * write beyond ggml's work buffer, so such a case is refused. */
static int repeats_beyond_repack_padding(const qkb_moe_case *c, char *err, size_t err_size) {
    for (size_t i = 0; i < c->n_ids; i++) {
        size_t listed = 0;
        for (size_t j = 0; j < c->n_ids; j++)
            listed += c->ids[j] == c->ids[i];
        if (listed > 8) {
            fail(err, err_size,
                 "expert %d is listed %zu times: ggml's CPU_REPACK MUL_MAT_ID would write its "
                 "mapping beyond its work buffer (more than 8 listings of one expert)",
                 (int)c->ids[i], listed);
            return 1;
        }
    }
    return 0;
}

static void *moe_create(const qkb_moe_case *c, enum weight_placement placement, char *err,
                        size_t err_size) {
    const char *bad = check_case(c);
    if (bad) {
        fail(err, err_size, "%s", bad);
        return NULL;
    }
    ggml_moe *m = calloc(1, sizeof *m);
    if (!m) {
        fail(err, err_size, "out of memory");
        return NULL;
    }
    m->placement = placement;
    ggml_backend_buffer_type_t weights_type = NULL;
    if (placement == PLACE_CUDA) {
#ifdef QK_GGML_CUDA
        if (c->cuda_device < 0 || c->cuda_device >= ggml_backend_cuda_get_device_count()) {
            fail(err, err_size, "ggml sees %d CUDA devices, not device %d",
                 ggml_backend_cuda_get_device_count(), c->cuda_device);
            goto failed;
        }
        m->backend = ggml_backend_cuda_init(c->cuda_device);
#endif
    } else {
        m->backend = ggml_backend_cpu_init();
    }
    if (!m->backend) {
        fail(err, err_size, "ggml could not start its %s backend",
             placement == PLACE_CUDA ? "CUDA" : "CPU");
        goto failed;
    }
    weights_type = placement == PLACE_CPU_REPACK ? cpu_extra_buffer_type("CPU_REPACK")
                                                 : ggml_backend_get_default_buffer_type(m->backend);
    if (!weights_type) {
        fail(err, err_size, "this ggml build has no CPU_REPACK buffer type");
        goto failed;
    }

    /* ne = [cols, rows, experts], one matrix per expert, as a GGUF ffn_*_exps tensor */
    m->weights_ctx = tensor_context(1, 0);
    m->inputs_ctx = tensor_context(2, 0);
    m->graph_ctx = tensor_context(GGML_DEFAULT_GRAPH_SIZE, ggml_graph_overhead());
    if (!m->weights_ctx || !m->inputs_ctx || !m->graph_ctx) {
        fail(err, err_size, "out of memory");
        goto failed;
    }
    m->weights = ggml_new_tensor_3d(m->weights_ctx, GGML_TYPE_Q4_K, (int64_t)c->cols,
                                    (int64_t)c->rows, (int64_t)c->n_experts);
    /* one token whose activation row serves every selected expert (ne1 = 1 broadcasts), as
     * llama.cpp's ffn_gate_exps / ffn_up_exps calls see it */
    m->x = ggml_new_tensor_3d(m->inputs_ctx, GGML_TYPE_F32, (int64_t)c->cols, 1, 1);
    m->ids = ggml_new_tensor_2d(m->inputs_ctx, GGML_TYPE_I32, (int64_t)c->n_ids, 1);
    m->weights_buffer = ggml_backend_alloc_ctx_tensors_from_buft(m->weights_ctx, weights_type);
    m->inputs_buffer = ggml_backend_alloc_ctx_tensors(m->inputs_ctx, m->backend);
    if (!m->weights_buffer || !m->inputs_buffer) {
        fail(err, err_size, "ggml could not allocate %zu bytes of weights",
             ggml_nbytes(m->weights));
        goto failed;
    }
    ggml_backend_buffer_set_usage(m->weights_buffer, GGML_BACKEND_BUFFER_USAGE_WEIGHTS);
    /* CPU_REPACK names its layout in tensor->extra when the buffer takes the tensor; without
     * one it would not repack (and its set_tensor would fault) */
    if (placement == PLACE_CPU_REPACK && repeats_beyond_repack_padding(c, err, err_size))
        goto failed;
    if (placement == PLACE_CPU_REPACK && !m->weights->extra) {
        fail(err, err_size,
             "ggml's CPU_REPACK has no interleaved q4_K layout for %zu rows on this CPU (it "
             "needs rows %% 8 == 0 and AVX2, or NEON with dot product)",
             c->rows);
        goto failed;
    }
    ggml_backend_tensor_set(m->weights, c->weights, 0, ggml_nbytes(m->weights));
    ggml_backend_tensor_set(m->x, c->x, 0, ggml_nbytes(m->x));
    ggml_backend_tensor_set(m->ids, c->ids, 0, ggml_nbytes(m->ids));

    m->y = ggml_mul_mat_id(m->graph_ctx, m->weights, m->x, m->ids); /* ne = [rows, n_ids, 1] */
    m->graph = ggml_new_graph(m->graph_ctx);
    ggml_build_forward_expand(m->graph, m->y);
    m->allocator = ggml_gallocr_new(ggml_backend_get_default_buffer_type(m->backend));
    if (!m->allocator || !ggml_gallocr_alloc_graph(m->allocator, m->graph)) {
        fail(err, err_size, "ggml could not allocate the graph's output");
        goto failed;
    }
    if (placement != PLACE_CUDA) {
        m->threadpool = pinned_threadpool(c->n_threads, c->cpus, err, err_size);
        if (!m->threadpool) goto failed;
        ggml_backend_cpu_set_threadpool(m->backend, m->threadpool);
        ggml_backend_cpu_set_n_threads(m->backend, c->n_threads);
    }
    return m;
failed:
    moe_destroy(m);
    return NULL;
}

static void *create_cpu_plain(const qkb_moe_case *c, char *err, size_t err_size) {
    return moe_create(c, PLACE_CPU_PLAIN, err, err_size);
}
static void *create_cpu_repack(const qkb_moe_case *c, char *err, size_t err_size) {
    return moe_create(c, PLACE_CPU_REPACK, err, err_size);
}

static int moe_run(void *state, char *err, size_t err_size) {
    ggml_moe *m = state;
    enum ggml_status status = ggml_backend_graph_compute(m->backend, m->graph);
    if (status != GGML_STATUS_SUCCESS) {
        fail(err, err_size, "ggml_backend_graph_compute: %s", ggml_status_to_string(status));
        return -1;
    }
    if (m->placement == PLACE_CUDA) ggml_backend_synchronize(m->backend);
    return 0;
}

static int moe_output(void *state, float *y, char *err, size_t err_size) {
    ggml_moe *m = state;
    (void)err;
    (void)err_size;
    ggml_backend_tensor_get(m->y, y, 0, ggml_nbytes(m->y));
    return 0;
}

/* Every buffer a run reads or writes: the weights, x and ids, the output. (The CPU backend's
 * work buffer, where x's Q8_K copy goes, is not reachable through ggml's API; the run writes
 * it before reading it.) */
static void moe_evict(void *state) {
    ggml_moe *m = state;
    ggml_backend_buffer_t buffers[] = {m->weights_buffer, m->inputs_buffer, m->y->buffer};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        host->evict(ggml_backend_buffer_get_base(buffers[i]),
                    ggml_backend_buffer_get_size(buffers[i]));
}

#ifdef QK_GGML_CUDA
static void *create_cuda(const qkb_moe_case *c, char *err, size_t err_size) {
    return moe_create(c, PLACE_CUDA, err, err_size);
}
#endif

static const qkb_variant variants[] = {
    {
        .name = "ggml_cpu_plain",
        .device = QKB_DEVICE_CPU,
        .kind = QKB_KIND_MOE,
        .weight_format = "q4_K",
        .act_format = "q8_K",
        .summary = "llama.cpp's ggml MUL_MAT_ID, weights in the plain CPU buffer: x to Q8_K, "
                   "then ggml_vec_dot_q4_K_q8_K per row, ggml's own pinned threads",
        .create = create_cpu_plain,
        .run = moe_run,
        .output = moe_output,
        .evict = moe_evict,
        .destroy = moe_destroy,
    },
    {
        .name = "ggml_cpu_repack",
        .device = QKB_DEVICE_CPU,
        .kind = QKB_KIND_MOE,
        .weight_format = "q4_K",
        .act_format = "q8_K",
        .summary = "ggml MUL_MAT_ID with the weights in CPU_REPACK (rows interleaved 8x8, as "
                   "llama.cpp loads CPU weights): x to Q8_K, then its q4_K 8x8 gemv",
        .create = create_cpu_repack,
        .run = moe_run,
        .output = moe_output,
        .evict = moe_evict,
        .destroy = moe_destroy,
    },
#ifdef QK_GGML_CUDA
    {
        .name = "ggml_cuda",
        .device = QKB_DEVICE_CUDA,
        .kind = QKB_KIND_MOE,
        .weight_format = "q4_K",
        .act_format = "q8_1",
        .summary = "ggml's CUDA MUL_MAT_ID: quantize_q8_1 then mul_mat_vec_q, CUDA graphs on "
                   "(as llama.cpp builds it); a run is graph compute + synchronize",
        .create = create_cuda,
        .run = moe_run,
        .output = moe_output,
        .evict = NULL, /* device memory: hot rows only */
        .destroy = moe_destroy,
    },
#endif
};

const qkb_plugin *qkbench_plugin(const qkb_host *h) {
    static char version[160];
    static qkb_plugin plugin = {
        .abi_version = QKB_PLUGIN_ABI,
        .name = "ggml",
        .version = version,
        .n_variants = sizeof variants / sizeof variants[0],
        .variants = variants,
    };
    if (!h || h->abi_version != QKB_PLUGIN_ABI || !h->evict) return NULL;
    host = h;
    ggml_log_set(quiet_log, NULL);
    snprintf(version, sizeof version, "%s %s", ggml_version(),
             QK_GGML_ORIGIN); /* bench: [A-Za-z0-9 _.+-] */
    return &plugin;
}

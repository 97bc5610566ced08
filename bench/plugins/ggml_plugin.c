/* bench's reference rows: llama.cpp's ggml MUL_MAT_ID on Q4_K experts, through ggml's public
 * API only, as a qkbench plug-in of kind MOE. The timed unit is one graph compute of one
 * MUL_MAT_ID node for the case's n_tokens: ggml quantizes x itself (Q8_K) and runs the selected
 * experts with its own threads, exactly the work llama.cpp does per batch and layer. This is
 * qkbench_ggml.so, the CPU rows: it links ggml-base and ggml-cpu only and takes the CPU backend
 * from ggml-cpu directly (ggml_backend_cpu_reg), never through the global registry of the umbrella
 * `ggml` library, which would register (and start) every backend built, CUDA included. The CUDA row
 * is qkbench_ggml_cuda.so (ggml_cuda_plugin.c); ggml_plugin.h is what both share. */
#define _GNU_SOURCE /* pthread_{get,set}affinity_np */
#include "ggml_plugin.h"
#include "ggml-cpu.h"
#include <pthread.h>
#include <sched.h>

/* An extra buffer type of the CPU device by name ("CPU_REPACK"), as llama.cpp finds it. */
static ggml_backend_buffer_type_t cpu_extra_buffer_type(const char *name) {
    ggml_backend_reg_t reg = ggml_backend_cpu_reg();
    ggml_backend_dev_t dev = reg ? ggml_backend_reg_dev_get(reg, 0) : NULL;
    if (!dev) return NULL;
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
    moe_free_graph(m);
    if (m->threadpool) ggml_threadpool_free(m->threadpool);
    free(m);
}

/* ggml's CPU_REPACK MUL_MAT_ID maps the batch's slots to experts in an array of n_tokens
 * entries (8 bytes) per expert, filled in batch order: the c-th listing of expert e in the whole
 * batch goes to entry e*n_tokens + c, so an expert listed more often than there are tokens spills
 * into the next expert's entries (llama.cpp issue 26310): its later slots are left unwritten or
 * computed with another expert's weights, which bench shows as deviation. A batch in which no
 * expert is listed more than n_tokens times (any routing without repeats within a token) maps
 * right. The last experts' spill goes past the array into the padding ggml adds to its work
 * buffer, one cache line (at least 64 bytes) per thread: a case whose spill is longer could
 * write beyond the buffer and is refused. */
enum { REPACK_MAPPING_ENTRY_BYTES = 8, REPACK_MAPPING_PADDING_BYTES = 64 };
static int spill_beyond_repack_padding(const qkb_moe_case *c, char *err, size_t err_size) {
    size_t *listings = calloc(c->n_experts, sizeof *listings);
    if (!listings) {
        fail(err, err_size, "out of memory");
        return 1;
    }
    for (size_t s = 0; s < c->n_tokens * c->n_ids; s++)
        listings[c->ids[s]]++;
    /* the entry one past expert e's last listing, against the array's end */
    size_t array_end = c->n_experts * c->n_tokens, furthest = array_end, worst = 0;
    for (size_t e = 0; e < c->n_experts; e++)
        if (e * c->n_tokens + listings[e] > furthest) {
            furthest = e * c->n_tokens + listings[e];
            worst = e;
        }
    size_t worst_listings = listings[worst];
    free(listings);
    size_t spill_bytes = (furthest - array_end) * REPACK_MAPPING_ENTRY_BYTES;
    if (spill_bytes <= REPACK_MAPPING_PADDING_BYTES) return 0;
    fail(err, err_size,
         "expert %zu of %zu is listed %zu times in a batch of %zu tokens: ggml's CPU_REPACK "
         "MUL_MAT_ID (one mapping entry per expert and token) would write its mapping %zu bytes "
         "past its end, beyond its work buffer's %d bytes of padding",
         worst, c->n_experts, worst_listings, c->n_tokens, spill_bytes,
         REPACK_MAPPING_PADDING_BYTES);
    return 1;
}

/* CPU_REPACK names its layout in tensor->extra when the buffer takes the tensor; without one
 * it would not repack (and its set_tensor would fault). */
static int check_repack(const ggml_moe *m, const qkb_moe_case *c, char *err, size_t err_size) {
    if (spill_beyond_repack_padding(c, err, err_size)) return -1;
    if (!m->weights->extra) {
        fail(err, err_size,
             "ggml's CPU_REPACK has no interleaved q4_K layout for %zu rows on this CPU (it "
             "needs rows %% 8 == 0 and AVX2, or NEON with dot product)",
             c->rows);
        return -1;
    }
    return 0;
}

static void *moe_create(const qkb_moe_case *c, int repack, char *err, size_t err_size) {
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
    ggml_backend_buffer_type_t weights_type = NULL;
    m->backend = ggml_backend_cpu_init();
    if (!m->backend) {
        fail(err, err_size, "ggml could not start its CPU backend");
        goto failed;
    }
    weights_type = repack ? cpu_extra_buffer_type("CPU_REPACK")
                          : ggml_backend_get_default_buffer_type(m->backend);
    if (!weights_type) {
        fail(err, err_size, "this ggml build has no CPU_REPACK buffer type");
        goto failed;
    }
    if (moe_build(m, c, weights_type, repack ? check_repack : NULL, err, err_size)) goto failed;
    m->threadpool = pinned_threadpool(c->n_threads, c->cpus, err, err_size);
    if (!m->threadpool) goto failed;
    ggml_backend_cpu_set_threadpool(m->backend, m->threadpool);
    ggml_backend_cpu_set_n_threads(m->backend, c->n_threads);
    return m;
failed:
    moe_destroy(m);
    return NULL;
}

static void *create_cpu_plain(const qkb_moe_case *c, char *err, size_t err_size) {
    return moe_create(c, 0, err, err_size);
}
static void *create_cpu_repack(const qkb_moe_case *c, char *err, size_t err_size) {
    return moe_create(c, 1, err, err_size);
}

/* bench's park: after a compute ggml's workers poll for the next one for a long while (poll
 * level 50: about 0.3 s of pause instructions here), spinning beside whatever bench times next;
 * paused, they sleep on a condition variable. */
static void moe_park(void *state) {
    ggml_moe *m = state;
    if (m->paused) return;
    ggml_threadpool_pause(m->threadpool);
    m->paused = 1;
}

/* bench's wake, and the first thing a run does after a park: resumed here rather than by the
 * compute, as a compute that finds the pool paused also pins the calling thread (bench's) to
 * ggml's idea of the caller's CPU. */
static void moe_wake(void *state) {
    ggml_moe *m = state;
    if (!m->paused) return;
    ggml_threadpool_resume(m->threadpool);
    m->paused = 0;
}

/* The unit: one graph compute, complete when it returns (ggml's CPU compute is synchronous). */
static int moe_run(void *state, char *err, size_t err_size) {
    ggml_moe *m = state;
    moe_wake(m);
    enum ggml_status status = ggml_backend_graph_compute(m->backend, m->graph);
    if (status != GGML_STATUS_SUCCESS) {
        fail(err, err_size, "ggml_backend_graph_compute: %s", ggml_status_to_string(status));
        return -1;
    }
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

/* The two CPU rows differ only in where the weights live (create). */
#define GGML_CPU_VARIANT(NAME, CREATE, SUMMARY)                                                    \
    {                                                                                              \
        .name = NAME, .device = QKB_DEVICE_CPU, .kind = QKB_KIND_MOE, .weight_format = "q4_K",     \
        .act_format = "q8_K", .summary = SUMMARY, .create = CREATE, .run = moe_run,                \
        .output = moe_output, .evict = moe_evict, .destroy = moe_destroy, .park = moe_park,        \
        .wake = moe_wake,                                                                          \
    }

static const qkb_variant variants[] = {
    GGML_CPU_VARIANT("ggml_cpu_plain", create_cpu_plain,
                     "llama.cpp's ggml MUL_MAT_ID, weights in the plain CPU buffer: x to Q8_K, "
                     "then ggml_vec_dot_q4_K_q8_K per row (its tiled matmul for an expert of 8+ "
                     "slots), ggml's own pinned threads"),
    GGML_CPU_VARIANT("ggml_cpu_repack", create_cpu_repack,
                     "ggml MUL_MAT_ID with the weights in CPU_REPACK (rows interleaved 8x8, as "
                     "llama.cpp loads CPU weights): x to Q8_K, then its q4_K 8x8 gemv"),
};

GGML_PLUGIN_ENTRY("ggml")

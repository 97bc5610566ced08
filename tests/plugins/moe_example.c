/* A MOE plug-in for the tests (kernels/qkbench_plugin.h, QKB_KIND_MOE): the whole unit (a batch
 * of n_tokens tokens) on the plug-in's own threads, as ggml's MUL_MAT_ID runs it. Q4_K x f32,
 * correct: each row's super-blocks are dequantized by the host's helper and dotted with its
 * token's x in f32. n_threads - 1 helper threads, pinned where bench says, spin 5 ms between
 * units and then sleep (as our pool and ggml's do); the calling thread is thread 0. `evict` lets
 * bench time cold rows. Built with -DCASE_<NAME> (qkb_moe_<name>.so), a variant that misbehaves:
 * FAIL_LATE (its run fails from the 8th call, with a two-line reason), OUTPUT_ONCE (its output
 * writes nothing after the first call), NO_EVICT (no cold rows), ONE_THREAD (runs on the calling
 * thread alone, of n_threads). */
#define _GNU_SOURCE
#include "qkbench_plugin.h"
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { QK_K = 256, BLOCK_BYTES = 144, MAX_THREADS = 64 };
#define SPIN_SECONDS 0.005 /* longer than bench's evict of a cold sample: awake at its start */

static const qkb_host *host;

typedef struct state state;
typedef struct {
    state *s;
    int index;
    pthread_t thread;
} helper;
struct state {
    unsigned char *w; /* n_experts plain matrices, our copy */
    size_t rows, cols, n_experts, n_ids, n_tokens, expert_bytes;
    int32_t *ids;
    float *x, *y;
    int n_threads;
    helper helpers[MAX_THREADS];
    _Atomic unsigned generation;
    _Atomic int pending, stop;
    pthread_mutex_t lock;
    pthread_cond_t wake;
};

/* Thread t's share of the (slot, row) pairs, slot = token * n_ids + id. */
static void work(state *s, int t) {
    size_t total = s->n_tokens * s->n_ids * s->rows;
    size_t u0 = total * (size_t)t / (size_t)s->n_threads;
    size_t u1 = total * (size_t)(t + 1) / (size_t)s->n_threads;
    float deq[QK_K];
    for (size_t u = u0; u < u1; u++) {
        size_t slot = u / s->rows, r = u % s->rows, nb = s->cols / QK_K;
        const unsigned char *row =
            s->w + (size_t)s->ids[slot] * s->expert_bytes + r * nb * BLOCK_BYTES;
        const float *x = s->x + slot / s->n_ids * s->cols;
        float sum = 0;
        for (size_t b = 0; b < nb; b++) {
            host->dequantize_q4k(row + b * BLOCK_BYTES, deq, QK_K);
            for (int k = 0; k < QK_K; k++)
                sum += deq[k] * x[b * QK_K + k];
        }
        s->y[u] = sum;
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *helper_main(void *arg) {
    helper *h = arg;
    state *s = h->s;
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        double spin_end = now_s() + SPIN_SECONDS;
        for (unsigned spins = 0;
             (g = atomic_load(&s->generation)) == seen && !atomic_load(&s->stop); spins++) {
            if (spins % 1024 || now_s() < spin_end) continue;
            pthread_mutex_lock(&s->lock);
            while (atomic_load(&s->generation) == seen && !atomic_load(&s->stop))
                pthread_cond_wait(&s->wake, &s->lock);
            pthread_mutex_unlock(&s->lock);
        }
        if (atomic_load(&s->stop)) return NULL;
        seen = g;
        work(s, h->index);
        atomic_fetch_sub(&s->pending, 1);
    }
}

static void moe_destroy(void *p) {
    state *s = p;
    pthread_mutex_lock(&s->lock);
    atomic_store(&s->stop, 1);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    for (int t = 1; t < s->n_threads; t++)
        pthread_join(s->helpers[t].thread, NULL);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->wake);
    free(s->w), free(s->ids), free(s->x), free(s->y), free(s);
}

static void *moe_create(const qkb_moe_case *c, char *err, size_t err_size) {
    if (c->n_threads < 1 || c->n_threads > MAX_THREADS || c->cols % QK_K || c->n_tokens < 1) {
        snprintf(err, err_size,
                 "moe_example: %d threads, %zu cols, %zu tokens (ABI 2: n_tokens >= 1): not "
                 "supported",
                 c->n_threads, c->cols, c->n_tokens);
        return NULL;
    }
    for (size_t slot = 0; slot < c->n_tokens * c->n_ids; slot++)
        if (c->ids[slot] < 0 || (size_t)c->ids[slot] >= c->n_experts) {
            snprintf(err, err_size, "moe_example: expert id %d in slot %zu is not below %zu",
                     (int)c->ids[slot], slot, c->n_experts);
            return NULL;
        }
    state *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->rows = c->rows, s->cols = c->cols, s->n_experts = c->n_experts, s->n_ids = c->n_ids;
    s->n_tokens = c->n_tokens;
    s->expert_bytes = c->rows * (c->cols / QK_K) * BLOCK_BYTES;
    s->w = malloc(s->expert_bytes * c->n_experts);
    s->ids = malloc(c->n_tokens * c->n_ids * sizeof *s->ids);
    s->x = malloc(c->n_tokens * c->cols * sizeof *s->x);
    s->y = malloc(c->n_tokens * c->n_ids * c->rows * sizeof *s->y);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->wake, NULL);
    s->n_threads = 1;
    if (!s->w || !s->ids || !s->x || !s->y) {
        snprintf(err, err_size, "moe_example: out of memory");
        moe_destroy(s);
        return NULL;
    }
    memcpy(s->w, c->weights, s->expert_bytes * c->n_experts);
    memcpy(s->ids, c->ids, c->n_tokens * c->n_ids * sizeof *s->ids);
    memcpy(s->x, c->x, c->n_tokens * c->cols * sizeof *s->x);
#if defined(CASE_ONE_THREAD)
    for (int t = 1; t < 1; t++, s->n_threads++) {
#else
    for (int t = 1; t < c->n_threads; t++, s->n_threads++) {
#endif
        s->helpers[t] = (helper){s, t, 0};
        if (pthread_create(&s->helpers[t].thread, NULL, helper_main, &s->helpers[t])) {
            snprintf(err, err_size, "moe_example: cannot start thread %d", t);
            moe_destroy(s);
            return NULL;
        }
        if (c->cpus) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(c->cpus[t], &set);
            pthread_setaffinity_np(s->helpers[t].thread, sizeof set, &set);
        }
    }
    return s;
}

static int moe_run(void *p, char *err, size_t err_size) {
    (void)err, (void)err_size;
    state *s = p;
#if defined(CASE_FAIL_LATE) /* from the 8th call, or from call $QK_MOE_FAIL_AT */
    static int calls, at;
    if (!at) at = getenv("QK_MOE_FAIL_AT") ? atoi(getenv("QK_MOE_FAIL_AT")) : 8;
    if (++calls >= at) {
        snprintf(err, err_size, "device lost\n| at call %d |", calls);
        return -1;
    }
#endif
    atomic_store(&s->pending, s->n_threads - 1);
    pthread_mutex_lock(&s->lock);
    atomic_fetch_add(&s->generation, 1);
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    work(s, 0);
    while (atomic_load(&s->pending) > 0) {
    }
    return 0;
}

static int moe_output(void *p, float *y, char *err, size_t err_size) {
    (void)err, (void)err_size;
    state *s = p;
#if defined(CASE_OUTPUT_ONCE)
    static int calls;
    if (calls++) return 0;
#endif
    memcpy(y, s->y, s->n_tokens * s->n_ids * s->rows * sizeof *y);
    return 0;
}

__attribute__((unused)) static void moe_evict(void *p) {
    state *s = p;
    host->evict(s->w, s->expert_bytes * s->n_experts);
    host->evict(s->x, s->n_tokens * s->cols * sizeof *s->x);
    host->evict(s->y, s->n_tokens * s->n_ids * s->rows * sizeof *s->y);
}

#if defined(CASE_FAIL_LATE)
#define NAME "moe_fail_late"
#elif defined(CASE_OUTPUT_ONCE)
#define NAME "moe_output_once"
#elif defined(CASE_NO_EVICT)
#define NAME "moe_no_evict"
#elif defined(CASE_ONE_THREAD)
#define NAME "moe_one_thread"
#else
#define NAME "moe_example_f32"
#endif
static const qkb_variant variants[] = {{
    .name = NAME,
    .device = QKB_DEVICE_CPU,
    .kind = QKB_KIND_MOE,
    .weight_format = "q4_K",
    .act_format = "f32",
    .summary = "test plug-in: the whole unit on its own threads, host dequantization, f32 dots",
    .create = moe_create,
    .run = moe_run,
    .output = moe_output,
#if !defined(CASE_NO_EVICT)
    .evict = moe_evict,
#endif
    .destroy = moe_destroy,
}};

#if defined(CASE_FAIL_LATE) || defined(CASE_OUTPUT_ONCE) || defined(CASE_NO_EVICT) ||              \
    defined(CASE_ONE_THREAD)
#define PLUGIN_NAME NAME
#else
#define PLUGIN_NAME "moe_example"
#endif
static const qkb_plugin plugin = {QKB_PLUGIN_ABI, PLUGIN_NAME, "1", 1, variants};

const qkb_plugin *qkbench_plugin(const qkb_host *h) {
    host = h;
    return &plugin;
}

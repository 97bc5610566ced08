/* The ggml plug-in (bench/plugins/ggml_plugin.c) as bench loads it: dlopen, its entry point,
 * then each CPU variant's create / run / output / evict / destroy. Its outputs are held slot by
 * slot against the f64 oracle and the Q8_K algorithm-exact oracle on synthetic experts and random
 * x: one token (top-8 of 8, all 128) and batches of 1, 2, 8 and 64 tokens (top-8 of 128, one
 * expert chosen by every token), ids repeated within a token and beyond the tokens' count (where
 * CPU_REPACK computes the slots that llama.cpp issue 26310's mapping says, and refuses a case
 * that would write past its work buffer), 1 and 2 pinned threads; and ggml's own Q8_K quantizer
 * against our reference, block for block. Loading it and making its cases maps no CUDA library
 * and starts no thread but ggml's workers. With CUDA_PLUGIN.so (qkbench_ggml_cuda.so, built with
 * ggml's CUDA backend): its entry point maps no CUDA library and starts no thread either, and
 * where a device answers, its ggml_cuda runs (one token, the batches, repeated ids) queued back
 * to back and synchronized once give the bits of one run, each slot within the Q8_1 error's
 * order of the f64 oracle. Usage: test_ggml_plugin PLUGIN.so [CUDA_PLUGIN.so] */
#define _GNU_SOURCE /* pthread_{get,set}affinity_np */
#include "../bench/peak.h"
#include "../bench/synth.h"
#include "../kernels/qk_oracle.h"
#include "../kernels/qk_q4k_scales.h"
#include "../kernels/qk_quant.h"
#include "../kernels/qkbench_plugin.h"
#include "ggml-cpu.h"
#include "qk_test.h"
#include "test_util.h"
#include <dirent.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static size_t evicted_bytes;
static void host_evict(const void *p, size_t bytes) {
    qk_evict(p, bytes);
    evicted_bytes += bytes;
}
static void host_dequantize_q4k(const void *blocks, float *out, size_t n) {
    qk_dequantize_q4k(blocks, out, n);
}
static void host_q4k_scale_min(const uint8_t scales[12], int j, uint8_t *sc, uint8_t *m) {
    qk_q4k_scale_min(scales, j, sc, m);
}
static const qkb_host host = {
    .abi_version = QKB_PLUGIN_ABI,
    .q4k_scale_min = host_q4k_scale_min,
    .dequantize_q4k = host_dequantize_q4k,
    .evict = host_evict,
};

/* One MOE case: a batch of n_tokens tokens, each routed to n_ids of n_experts distinct
 * synthetic experts (seeded); x from an activation profile, one row per token. */
typedef struct {
    const char *label;
    size_t rows, cols, n_experts;
    const int32_t *ids; /* n_tokens x n_ids, token-major */
    size_t n_ids, n_tokens;
} moe_shape;

static size_t slots_of(const moe_shape *s) {
    return s->n_tokens * s->n_ids;
}
static size_t expert_blocks(const moe_shape *s) {
    return s->rows * s->cols / QK_K;
}

typedef struct {
    const qk_block_q4k *w; /* the case's experts (not owned: several cases share them) */
    float *x;              /* n_tokens x cols */
    double *xq64;          /* each token's Q8_K(x), exactly: the exact oracle of any expert */
    double *ref_f64;       /* per slot: sum deq64(W) * x */
    double *ref_exact;     /* per slot: sum deq64(W) * deq64(Q8_K(x)): what ggml's integers do */
    double *ref_q8_1;      /* per slot: sum deq64(W) * deq64(Q8_1(x)): the CUDA variant's
                              format; NULL unless asked for */
} moe_data;

static void out_of_memory(void) {
    fprintf(stderr, "test_ggml_plugin: out of memory\n");
    exit(2);
}

static qk_block_q4k *make_experts(const moe_shape *s, uint64_t seed) {
    qk_block_q4k *w = malloc(s->n_experts * expert_blocks(s) * sizeof *w);
    if (!w) out_of_memory();
    for (size_t e = 0; e < s->n_experts; e++)
        if (qk_synth_expert(seed, (int)e, s->rows, s->cols, w + e * expert_blocks(s)) != 0)
            out_of_memory();
    return w;
}

static void free_data(moe_data *d) {
    free(d->x);
    free(d->xq64);
    free(d->ref_f64);
    free(d->ref_exact);
    free(d->ref_q8_1);
}

static void make_data(const moe_shape *s, const qk_block_q4k *w, uint64_t seed, int with_q8_1,
                      moe_data *d) {
    size_t n_out = slots_of(s) * s->rows, cols = s->cols;
    *d = (moe_data){.w = w};
    d->x = malloc(s->n_tokens * cols * sizeof *d->x);
    d->xq64 = malloc(s->n_tokens * cols * sizeof *d->xq64);
    d->ref_f64 = malloc(n_out * sizeof(double));
    d->ref_exact = malloc(n_out * sizeof(double));
    d->ref_q8_1 = with_q8_1 ? malloc(n_out * sizeof(double)) : NULL;
    double *x64 = malloc(cols * sizeof *x64), *x8_1 = malloc(cols * sizeof *x8_1);
    qk_block_q8k *xq = malloc(cols / QK_K * sizeof *xq);
    qk_block_q8_1 *xq8_1 = malloc(cols / QK8_1 * sizeof *xq8_1);
    if (!d->x || !d->xq64 || !d->ref_f64 || !d->ref_exact || (with_q8_1 && !d->ref_q8_1) || !x64 ||
        !x8_1 || !xq || !xq8_1)
        out_of_memory();
    qk_rng r;
    qk_rng_seed(&r, seed ^ 0x5eedull);
    qk_act_fill(&r, QK_ACT_NORMAL, d->x, s->n_tokens * cols);
    for (size_t t = 0; t < s->n_tokens; t++) {
        const float *xt = d->x + t * cols;
        double *xq64 = d->xq64 + t * cols;
        qk_activations_f64(QK_FMT_F32, xt, cols, x64);
        qk_quantize_q8k_ref(xt, xq, cols);
        qk_activations_f64(QK_FMT_Q8_K, xq, cols, xq64);
        if (with_q8_1) {
            qk_quantize_q8_1_ref(xt, xq8_1, cols);
            qk_activations_f64(QK_FMT_Q8_1, xq8_1, cols, x8_1);
        }
        for (size_t slot = t * s->n_ids; slot < (t + 1) * s->n_ids; slot++) {
            const qk_block_q4k *we = w + (size_t)s->ids[slot] * expert_blocks(s);
            qk_oracle_q4k(we, s->rows, cols, x64, d->ref_f64 + slot * s->rows);
            qk_oracle_q4k(we, s->rows, cols, xq64, d->ref_exact + slot * s->rows);
            if (with_q8_1) qk_oracle_q4k(we, s->rows, cols, x8_1, d->ref_q8_1 + slot * s->rows);
        }
    }
    free(x64);
    free(x8_1);
    free(xq);
    free(xq8_1);
}

/* A router's choice for each token: n_ids distinct experts of n_experts (<= 256) at random, and
 * expert `every` (when >= 0) among them in every token, at a random place. */
static void route(qk_rng *r, size_t n_tokens, size_t n_ids, size_t n_experts, int32_t every,
                  int32_t *ids) {
    int32_t pool[256];
    for (size_t t = 0; t < n_tokens; t++) {
        int32_t *token = ids + t * n_ids;
        int has_every = 0;
        for (size_t e = 0; e < n_experts; e++)
            pool[e] = (int32_t)e;
        for (size_t i = 0; i < n_ids; i++) { /* a partial Fisher-Yates shuffle */
            size_t j = i + (size_t)qk_rng_below(r, n_experts - i);
            int32_t chosen = pool[j];
            pool[j] = pool[i];
            token[i] = pool[i] = chosen;
            has_every |= chosen == every;
        }
        if (every >= 0 && !has_every) token[qk_rng_below(r, n_ids)] = every;
    }
}

/* The expert whose weights give each slot its output in ggml's CPU_REPACK MUL_MAT_ID, or -1
 * where it leaves the slot unwritten, as its mapping works (ggml_plugin.c; llama.cpp issue
 * 26310): n_tokens entries per expert, the c-th listing of expert e in the batch stored at entry
 * e*n_tokens + c (spilling into e + 1's), then each expert a in turn computes the slots of
 * entries a*n_tokens .. a*n_tokens + (its listings) with its own weights: the last to compute a
 * slot gives its output. Every slot's own expert when none is listed more than n_tokens times.
 * Returns the slots given another expert's output or none. */
static size_t repack_computed_by(const moe_shape *s, int32_t *by) {
    size_t n = slots_of(s), entries = s->n_experts * s->n_tokens + n, misrouted = 0;
    size_t *listed = calloc(s->n_experts, sizeof *listed), *entry = malloc(entries * sizeof *entry);
    if (!listed || !entry) out_of_memory();
    for (size_t slot = 0; slot < n; slot++) {
        size_t e = (size_t)s->ids[slot];
        entry[e * s->n_tokens + listed[e]++] = slot;
        by[slot] = -1;
    }
    for (size_t a = 0; a < s->n_experts; a++)
        for (size_t c = 0; c < listed[a]; c++)
            by[entry[a * s->n_tokens + c]] = (int32_t)a;
    for (size_t slot = 0; slot < n; slot++)
        misrouted += by[slot] != s->ids[slot];
    free(listed);
    free(entry);
    return misrouted;
}

/* The process's threads (/proc/self/task), at most max; their number. */
enum { MAX_TASKS = 4096 };
static int list_tasks(pid_t *tids, int max) {
    DIR *dir = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; dir && (e = readdir(dir)) && n < max;) {
        pid_t tid = (pid_t)atoi(e->d_name);
        if (tid > 0) tids[n++] = tid;
    }
    if (dir) closedir(dir);
    return n;
}

/* The threads started since `before` was listed (ggml's workers, when it is listed just before
 * a create), and the CPU each may run on (-1: more than one), at most max; their number. Other
 * threads of the process (a driver's, a runtime's, whatever a library started) are not
 * counted. */
static int new_thread_cpus(const pid_t *before, int n_before, int *cpu, int max) {
    static pid_t now[MAX_TASKS];
    int n_now = list_tasks(now, MAX_TASKS), n = 0;
    for (int i = 0; i < n_now && n < max; i++) {
        int old = 0;
        for (int j = 0; j < n_before && !old; j++)
            old = now[i] == before[j];
        cpu_set_t mask;
        if (old || sched_getaffinity(now[i], sizeof mask, &mask) != 0) continue;
        cpu[n] = -1;
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &mask)) cpu[n] = CPU_COUNT(&mask) == 1 ? c : -1;
        n++;
    }
    return n;
}

/* Whether a library whose path contains name is mapped into the process. */
static int mapped(const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, name) != NULL;
    if (f) fclose(f);
    return found;
}
/* The libraries of CUDA and of ggml's CUDA backend and global registry (the umbrella `ggml`,
 * which links every backend built): the first mapped, or NULL. */
static const char *cuda_library_mapped(void) {
    static const char *const names[] = {"/libggml.so", "libggml-cuda", "libcudart", "libcublas",
                                        "libcuda.so"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (mapped(names[i])) return names[i];
    return NULL;
}

static int same_mask(const cpu_set_t *a) {
    cpu_set_t now;
    pthread_getaffinity_np(pthread_self(), sizeof now, &now);
    return CPU_EQUAL(a, &now);
}

/* Runs variant v on the case with n_threads pinned to cpus: ggml's workers pinned, the calling
 * thread left on its CPUs, a cold run (everything evicted) giving the bits of a hot one.
 * Returns the outputs (free them), or NULL. */
static float *run_variant(const qkb_variant *v, const moe_shape *s, const moe_data *d,
                          int n_threads, const int *cpus) {
    qkb_moe_case c = {.weights = d->w,
                      .rows = s->rows,
                      .cols = s->cols,
                      .n_experts = s->n_experts,
                      .ids = s->ids,
                      .n_ids = s->n_ids,
                      .x = d->x,
                      .n_threads = n_threads,
                      .cpus = cpus,
                      .cuda_device = 0,
                      .n_tokens = s->n_tokens};
    char err[256] = "";
    cpu_set_t caller_mask;
    pthread_getaffinity_np(pthread_self(), sizeof caller_mask, &caller_mask);
    static pid_t before[MAX_TASKS];
    int n_before = list_tasks(before, MAX_TASKS);
    void *state = v->create(&c, err, sizeof err);
    CHECK(state, "%s %s: create failed: %s", v->name, s->label, err);
    if (!state) return NULL;
    CHECK(same_mask(&caller_mask), "%s: create moved the calling thread off its CPUs", v->name);
    /* ggml's workers: the threads create started, each pinned to its CPU (cpus[1..n)). A
     * worker pins itself once it runs (ggml_graph_compute_secondary_thread), which may be a
     * little after create returns: up to a second is allowed for it. */
    int workers[64], n_workers = 0, misplaced = -1;
    for (int tries = 0; tries < 200; tries++) {
        n_workers = new_thread_cpus(before, n_before, workers, 64), misplaced = -1;
        for (int t = 0; t < n_workers && t < n_threads - 1; t++)
            if (misplaced < 0 && workers[t] != cpus[t + 1]) misplaced = t;
        if (n_workers == n_threads - 1 && misplaced < 0) break;
        nanosleep(&(struct timespec){.tv_nsec = 5000000}, NULL);
    }
    CHECK(n_workers == n_threads - 1 && misplaced < 0,
          "%s: create started %d threads (expected %d ggml workers), worker %d on CPU %d (not "
          "pinned to CPU %d)",
          v->name, n_workers, n_threads - 1, misplaced, misplaced < 0 ? -1 : workers[misplaced],
          misplaced < 0 ? -1 : cpus[misplaced + 1]);
    size_t n = slots_of(s) * s->rows;
    float *y = alloc_poisoned(n), *y_cold = alloc_poisoned(n);
    CHECK(v->run(state, err, sizeof err) == 0, "%s: run: %s", v->name, err);
    CHECK(v->output(state, y, err, sizeof err) == 0, "%s: output: %s", v->name, err);
    /* a cold run (everything evicted) computes the same bits */
    evicted_bytes = 0;
    v->evict(state);
    size_t touched = s->n_experts * expert_blocks(s) * sizeof(qk_block_q4k) +
                     s->n_tokens * s->cols * sizeof(float) + slots_of(s) * sizeof(int32_t) +
                     n * sizeof(float);
    CHECK(evicted_bytes >= touched, "%s: evict flushed %zu bytes, the run touches %zu", v->name,
          evicted_bytes, touched);
    CHECK(v->run(state, err, sizeof err) == 0, "%s: run: %s", v->name, err);
    CHECK(v->output(state, y_cold, err, sizeof err) == 0, "%s: output: %s", v->name, err);
    CHECK(memcmp(y, y_cold, n * sizeof *y) == 0, "%s %s: a second run differs", v->name, s->label);
    CHECK(same_mask(&caller_mask), "%s: run moved the calling thread off its CPUs", v->name);
    v->destroy(state);
    free(y_cold);
    return y;
}

/* Holds a variant's outputs y slot by slot to the exact oracle (Q8_K x) of the expert that
 * computed the slot, by[slot] (-1: none, the slot is not held): the same integers summed in
 * f32, accumulation error only. When every slot was computed by its own expert, the whole is
 * held to the f64 oracle too: Q8_K's quantization error, ~7e-3 on normal x. Returns the slots
 * computed by their own expert. */
static size_t check_slots(const char *name, int n_threads, const moe_shape *s, const moe_data *d,
                          const float *y, const int32_t *by) {
    size_t n_slots = slots_of(s), rows = s->rows, own = 0, other = 0, worst_slot = 0;
    double worst = 0, *other_ref = malloc(rows * sizeof *other_ref);
    if (!other_ref) out_of_memory();
    for (size_t slot = 0; slot < n_slots; slot++) {
        const double *ref = d->ref_exact + slot * rows;
        if (by[slot] < 0) continue;
        if (by[slot] == s->ids[slot])
            own++;
        else {
            qk_oracle_q4k(d->w + (size_t)by[slot] * expert_blocks(s), rows, s->cols,
                          d->xq64 + slot / s->n_ids * s->cols, other_ref);
            ref = other_ref;
            other++;
        }
        double dev = qk_deviation_of(y + slot * rows, ref, rows).rel_l2;
        if (dev > worst || slot == 0) worst = dev, worst_slot = slot;
    }
    free(other_ref);
    printf("  %-16s %-46s threads %d  slots: %zu own expert, %zu another's, %zu unwritten; "
           "worst slot exact_l2 %.3e",
           name, s->label, n_threads, own, other, n_slots - own - other, worst);
    if (own == n_slots) {
        qk_deviation f64 = qk_deviation_of(y, d->ref_f64, n_slots * rows);
        printf("  rel_l2 %.3e\n", f64.rel_l2);
        CHECK(f64.rel_l2 > 1e-3 && f64.rel_l2 < 2e-2, "%s %s threads %d: rel_l2 %.3e", name,
              s->label, n_threads, f64.rel_l2);
    } else
        printf("\n");
    CHECK(worst < 1e-6,
          "%s %s threads %d: slot %zu (token %zu, expert %d, computed by expert %d%s): exact_l2 "
          "%.3e",
          name, s->label, n_threads, worst_slot, worst_slot / s->n_ids, (int)s->ids[worst_slot],
          (int)by[worst_slot],
          by[worst_slot] != s->ids[worst_slot] ? ", as llama.cpp issue 26310 has it: fixed?" : "",
          worst);
    return own;
}

/* Both CPU variants on the case with 1 and n_cpus threads, slot by slot: the plain one computes
 * every slot with its own expert, CPU_REPACK as repack_computed_by says. */
static void test_cpu_case(const qkb_variant *plain, const qkb_variant *repack, const moe_shape *s,
                          const moe_data *d, const int *cpus, int n_cpus) {
    int32_t *by_repack = malloc(slots_of(s) * sizeof *by_repack);
    if (!by_repack) out_of_memory();
    repack_computed_by(s, by_repack);
    for (int threads = 1; threads <= n_cpus; threads++)
        for (int vi = 0; vi < 2; vi++) {
            const qkb_variant *v = vi ? repack : plain;
            float *y = run_variant(v, s, d, threads, cpus);
            if (y) check_slots(v->name, threads, s, d, y, vi ? by_repack : s->ids);
            free(y);
        }
    free(by_repack);
}

/* ggml-cpu's Q8_K quantizer (the from_float both CPU variants call on x; on x86 it is
 * quantize_row_q8_K_ref in ggml-base, built without FMA) against our reference, on every
 * activation profile. d and the quants must match in every block. The one difference: for an
 * all-zero block ggml writes d = 0 and the quants but leaves bsums as they were (here a 0x55
 * fill); both dot products multiply bsums by d, so it never reaches an output. Returns the
 * blocks that differ otherwise. */
static size_t ggml_q8k_differences(void) {
    ggml_from_float_t ggml_quantize = ggml_get_type_traits_cpu(GGML_TYPE_Q8_K)->from_float;
    enum { n = 64 * QK_K };
    static float x[n];
    static qk_block_q8k ours[n / QK_K], theirs[n / QK_K];
    size_t differ = 0, zero_blocks = 0, stale_bsums = 0, blocks = 0;
    qk_rng r;
    qk_rng_seed(&r, 7);
    for (int round = 0; round < 8; round++)
        for (int p = 0; p < QK_ACT_COUNT; p++) {
            qk_act_fill(&r, (qk_act_profile)p, x, n);
            qk_quantize_q8k_ref(x, ours, n);
            memset(theirs, 0x55, sizeof theirs);
            ggml_quantize(x, theirs, n);
            for (size_t b = 0; b < n / QK_K; b++, blocks++) {
                int all_zero = 1;
                for (size_t j = 0; j < QK_K; j++)
                    all_zero &= x[b * QK_K + j] == 0.0f;
                zero_blocks += (size_t)all_zero;
                if (ours[b].d != theirs[b].d || memcmp(ours[b].qs, theirs[b].qs, QK_K) != 0)
                    differ++;
                else if (memcmp(ours[b].bsums, theirs[b].bsums, sizeof ours[b].bsums) != 0) {
                    stale_bsums++;
                    differ += !all_zero;
                }
            }
        }
    printf("  ggml's quantize_row_q8_K vs qk_quantize_q8k_ref: %zu blocks, d and quants equal "
           "in all but %zu; bsums left unwritten in %zu (all-zero blocks: %zu)\n",
           blocks, differ, stale_bsums, zero_blocks);
    CHECK(zero_blocks > 0 && stale_bsums == zero_blocks,
          "the all-zero blocks' bsums: %zu unwritten of %zu", stale_bsums, zero_blocks);
    return differ;
}

/* ggml_cuda on the case: its outputs, and those of 100 runs queued back to back and synchronized
 * once (as bench times it), every slot within the Q8_1 quantization error's order of the f64
 * oracle. */
static void run_cuda(const qkb_variant *v, const moe_shape *s, const qk_block_q4k *w,
                     uint64_t seed) {
    moe_data d;
    make_data(s, w, seed, 1, &d);
    qkb_moe_case c = {.weights = d.w,
                      .rows = s->rows,
                      .cols = s->cols,
                      .n_experts = s->n_experts,
                      .ids = s->ids,
                      .n_ids = s->n_ids,
                      .x = d.x,
                      .n_threads = 1,
                      .cuda_device = 0,
                      .n_tokens = s->n_tokens};
    char err[256] = "";
    void *state = v->create(&c, err, sizeof err);
    if (!state) {
        printf("  %-16s skipped: %s\n", v->name, err);
        free_data(&d);
        return;
    }
    size_t n = slots_of(s) * s->rows;
    float *y = alloc_poisoned(n), *y_queued = alloc_poisoned(n);
    CHECK(v->run(state, err, sizeof err) == 0 && v->sync(state, err, sizeof err) == 0 &&
              v->output(state, y, err, sizeof err) == 0,
          "%s: %s", v->name, err);
    /* as bench times it: 100 runs queued back to back (a CUDA graph after ggml's warm-up), one
     * sync, then the output: the bits of one run */
    int ok = 1;
    for (int i = 0; i < 100 && ok; i++)
        ok = v->run(state, err, sizeof err) == 0;
    ok = ok && v->sync(state, err, sizeof err) == 0 &&
         v->output(state, y_queued, err, sizeof err) == 0;
    CHECK(ok, "%s: 100 queued runs: %s", v->name, err);
    CHECK(memcmp(y, y_queued, n * sizeof *y) == 0,
          "%s %s: 100 queued runs and a sync differ from one run", v->name, s->label);
    v->destroy(state);
    free(y_queued);
    qk_deviation f64 = qk_deviation_of(y, d.ref_f64, n);
    qk_deviation q8_1 = qk_deviation_of(y, d.ref_q8_1, n);
    double worst = 0;
    size_t worst_slot = 0;
    for (size_t slot = 0; slot < slots_of(s); slot++) {
        double dev =
            qk_deviation_of(y + slot * s->rows, d.ref_f64 + slot * s->rows, s->rows).rel_l2;
        if (dev > worst || slot == 0) worst = dev, worst_slot = slot;
    }
    printf("  %-16s %-46s rel_l2 %.3e (worst slot %.3e)  vs the Q8_1 exact oracle %.3e "
           "(max_rel %.3e)\n",
           v->name, s->label, f64.rel_l2, worst, q8_1.rel_l2, q8_1.max_rel);
    CHECK(f64.rel_l2 < 2e-2, "%s %s: rel_l2 %.3e", v->name, s->label, f64.rel_l2);
    CHECK(worst < 2e-2, "%s %s: slot %zu (token %zu, expert %d): rel_l2 %.3e", v->name, s->label,
          worst_slot, worst_slot / s->n_ids, (int)s->ids[worst_slot], worst);
    free(y);
    free_data(&d);
}

/* A case for run_cuda: its shape, its experts, the seed of its x. */
typedef struct {
    const moe_shape *shape;
    const qk_block_q4k *w;
    uint64_t seed;
} cuda_case;

/* qkbench_ggml_cuda.so: its entry point maps no CUDA library and starts no thread (bench loads
 * it by default, GPU or not); its one variant; then run_cuda on each case. */
static void test_cuda_plugin(const char *path, const cuda_case *cases, size_t n_cases) {
    static pid_t before[MAX_TASKS];
    int n_before = list_tasks(before, MAX_TASKS), cpus[64];
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    CHECK(lib, "%s", dlerror());
    if (!lib) return;
    void *sym = dlsym(lib, QKB_PLUGIN_ENTRY);
    qkb_plugin_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    const qkb_plugin *p = sym ? entry(&host) : NULL;
    CHECK(p && p->abi_version == QKB_PLUGIN_ABI && strcmp(p->name, "ggml_cuda") == 0 &&
              p->n_variants == 1,
          "%s: not the ggml_cuda plug-in of one variant", path);
    const char *cuda_lib = cuda_library_mapped();
    CHECK(!cuda_lib, "%s is mapped once the CUDA plug-in is loaded (before any create)", cuda_lib);
    int started = new_thread_cpus(before, n_before, cpus, 64);
    CHECK(started == 0, "loading the CUDA plug-in started %d threads", started);
    if (!p || p->n_variants != 1) return;
    const qkb_variant *v = &p->variants[0];
    printf("  %s: %s, %zu variant\n", p->name, p->version, p->n_variants);
    CHECK(strcmp(v->name, "ggml_cuda") == 0 && v->device == QKB_DEVICE_CUDA &&
              v->kind == QKB_KIND_MOE && strcmp(v->act_format, "q8_1") == 0 && !v->evict && v->sync,
          "%s: device %d, act %s, evict %s, sync %s", v->name, v->device, v->act_format,
          v->evict ? "given" : "NULL", v->sync ? "given" : "NULL");
    for (size_t i = 0; v->sync && i < n_cases; i++)
        run_cuda(v, cases[i].shape, cases[i].w, cases[i].seed);
}

int main(int argc, char **argv) {
    if (argc != 2 && argc != 3) {
        fprintf(stderr, "usage: test_ggml_plugin PLUGIN.so [CUDA_PLUGIN.so]\n");
        return 2;
    }
    const char *cuda_lib = cuda_library_mapped();
    CHECK(!cuda_lib, "%s is mapped before any plug-in is loaded", cuda_lib);
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "test_ggml_plugin: %s\n", dlerror());
        return 2;
    }
    qkb_plugin_entry_fn entry = (qkb_plugin_entry_fn)dlsym(lib, QKB_PLUGIN_ENTRY);
    CHECK(entry, "%s has no %s", argv[1], QKB_PLUGIN_ENTRY);
    if (!entry) return qk_test_finish("ggml_plugin");
    qkb_host old_host = host;
    old_host.abi_version = QKB_PLUGIN_ABI + 1;
    CHECK(entry(&old_host) == NULL, "the plug-in registered with a host of another ABI");
    const qkb_plugin *plugin = entry(&host);
    CHECK(plugin && plugin->abi_version == QKB_PLUGIN_ABI, "no plug-in of ABI %d", QKB_PLUGIN_ABI);
    if (!plugin) return qk_test_finish("ggml_plugin");
    printf("  %s: %s, %zu variants\n", plugin->name, plugin->version, plugin->n_variants);
    cuda_lib = cuda_library_mapped();
    CHECK(!cuda_lib, "%s is mapped once the CPU plug-in is loaded", cuda_lib);
    CHECK(strcmp(plugin->name, "ggml") == 0, "plug-in name %s", plugin->name);
    CHECK(strstr(plugin->version, ggml_version()) && strstr(plugin->version, "llama-cpp-python"),
          "version %s names neither ggml's nor the sdist's", plugin->version);
    const qkb_variant *plain = NULL, *repack = NULL;
    for (size_t i = 0; i < plugin->n_variants; i++) {
        const qkb_variant *v = &plugin->variants[i];
        CHECK(v->kind == QKB_KIND_MOE && strcmp(v->weight_format, "q4_K") == 0,
              "%s: kind %d, weights %s", v->name, v->kind, v->weight_format);
        if (strcmp(v->name, "ggml_cpu_plain") == 0)
            plain = v;
        else if (strcmp(v->name, "ggml_cpu_repack") == 0)
            repack = v;
        else
            CHECK(0, "unexpected variant %s", v->name);
    }
    CHECK(plain && repack, "ggml_cpu_plain or ggml_cpu_repack missing");
    CHECK(plugin->n_variants == 2, "the CPU plug-in registers %zu variants", plugin->n_variants);
    CHECK(!plain->sync && !repack->sync, "a CPU variant gives sync");
    if (!plain || !repack) return qk_test_finish("ggml_plugin");
    CHECK(strcmp(plain->act_format, "q8_K") == 0 && strcmp(repack->act_format, "q8_K") == 0,
          "CPU variants claim %s, %s", plain->act_format, repack->act_format);

    /* bench's placement: the calling thread pinned to the first CPU, workers on the next */
    int n_cpus = 0, cpus[2];
    cpu_set_t allowed;
    pthread_getaffinity_np(pthread_self(), sizeof allowed, &allowed);
    for (int c = 0; c < CPU_SETSIZE && n_cpus < 2; c++)
        if (CPU_ISSET(c, &allowed)) cpus[n_cpus++] = c;
    cpu_set_t first;
    CPU_ZERO(&first);
    CPU_SET(cpus[0], &first);
    pthread_setaffinity_np(pthread_self(), sizeof first, &first);

    CHECK(ggml_q8k_differences() == 0, "ggml's Q8_K quantizer rounds differently from ours");

    int32_t top8[8], all[128], repeated[12] = {3, 1, 3, 0, 5, 3, 2, 1, 5, 4, 0, 3};
    for (int i = 0; i < 8; i++) /* the compact ids bench passes: the distinct experts in order */
        top8[i] = i;
    for (int i = 0; i < 128; i++)
        all[i] = i;
    /* Repeats within a token, no expert listed more than n_tokens times in the batch: CPU_REPACK
     * maps every slot to its own expert. */
    int32_t repeats_within_tokens[2 * 6] = {0, 0, 1, 2, 3, 5, /**/ 1, 2, 3, 4, 4, 5};
    /* Expert 2 listed 4 times in 3 tokens: its 4th listing (slot 9) spills into expert 3's first
     * mapping entry, over slot 4's: CPU_REPACK computes slot 9 with expert 3 and never slot 4. */
    int32_t beyond_tokens[3 * 4] = {2, 0, 2, 1, /**/ 3, 2, 0, 3, /**/ 1, 2, 3, 0};
    /* The last of 2 experts listed in every slot: its mapping spills past its array by 8 entries,
     * the 64 bytes of padding ggml gives its work buffer (the most ggml_plugin.c takes) */
    int32_t last_expert[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    const moe_shape shapes[] = {
        {"top-8 gate 768x2048", 768, 2048, 8, top8, 8, 1},
        {"top-8 down 2048x768", 2048, 768, 8, top8, 8, 1},
        {"repeated ids (12 of 6) 256x512", 256, 512, 6, repeated, 12, 1},
        {"2 tokens, repeats within each 256x512", 256, 512, 6, repeats_within_tokens, 6, 2},
        {"3 tokens, expert 2 listed 4 times 256x512", 256, 512, 4, beyond_tokens, 4, 3},
        {"expert 1 of 2 listed 9 times 256x512", 256, 512, 2, last_expert, 9, 1},
        {"2 tokens, expert 1 of 2 in all 10 slots 256x512", 256, 512, 2, last_expert, 5, 2},
    };
    enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };
    /* how many slots CPU_REPACK gives another expert's output or none, as repack_computed_by
     * has it (held to the exact oracle by test_cpu_case) */
    const size_t misrouted[N_SHAPES] = {0, 0, 9, 0, 2, 0, 0};
    qk_block_q4k *own_experts[N_SHAPES];
    for (size_t si = 0; si < N_SHAPES; si++) {
        const moe_shape *s = &shapes[si];
        int32_t *by = malloc(slots_of(s) * sizeof *by);
        if (!by) out_of_memory();
        size_t got = repack_computed_by(s, by);
        CHECK(got == misrouted[si], "%s: CPU_REPACK misroutes %zu slots, not %zu", s->label, got,
              misrouted[si]);
        free(by);
        own_experts[si] = make_experts(s, 1000 + si);
        moe_data d;
        make_data(s, own_experts[si], 1000 + si, 0, &d);
        test_cpu_case(plain, repack, s, &d, cpus, n_cpus);
        free_data(&d);
    }

    /* Batches as a decode step routes them: each token's top-8 of 128 experts at random, and
     * from 2 tokens on one expert chosen by every token (ggml's plain MUL_MAT_ID hands an expert
     * routed 8 or more slots to its tiled matmul), all 128 experts of one token */
    const moe_shape one_token_all = {"all 128 gate 768x2048", 768, 2048, 128, all, 128, 1};
    qk_block_q4k *experts128 = make_experts(&one_token_all, 3000);
    static const size_t batch_tokens[] = {1, 2, 8, 64};
    enum { N_BATCHES = sizeof batch_tokens / sizeof batch_tokens[0] };
    static int32_t batch_ids[N_BATCHES][64 * 8];
    static char batch_labels[N_BATCHES][64];
    moe_shape batches[N_BATCHES];
    qk_rng r;
    qk_rng_seed(&r, 2026);
    for (size_t bi = 0; bi < N_BATCHES; bi++) {
        size_t n_tokens = batch_tokens[bi];
        route(&r, n_tokens, 8, 128, n_tokens > 1 ? 77 : -1, batch_ids[bi]);
        snprintf(batch_labels[bi], sizeof batch_labels[bi], "%zu token%s, top-8 of 128%s 768x2048",
                 n_tokens, n_tokens > 1 ? "s" : "", n_tokens > 1 ? ", one in all" : "");
        batches[bi] = (moe_shape){batch_labels[bi], 768, 2048, 128, batch_ids[bi], 8, n_tokens};
    }
    for (size_t bi = 0; bi <= N_BATCHES; bi++) {
        const moe_shape *s = bi < N_BATCHES ? &batches[bi] : &one_token_all;
        int32_t *by = malloc(slots_of(s) * sizeof *by);
        if (!by) out_of_memory();
        CHECK(repack_computed_by(s, by) == 0, "%s: CPU_REPACK misroutes a slot", s->label);
        free(by);
        moe_data d;
        make_data(s, experts128, 2000 + bi, 0, &d);
        test_cpu_case(plain, repack, s, &d, cpus, n_cpus);
        free_data(&d);
    }

    cuda_lib = cuda_library_mapped();
    CHECK(!cuda_lib, "%s is mapped after the CPU variants ran", cuda_lib);

    /* ggml_cuda (qkbench_ggml_cuda.so, with ggml's CUDA backend) where a device answers: its
     * deviation from both oracles is printed; held only to the Q8_1 quantization error's order,
     * as nothing here states what its mmvq sums (its min term uses Q8_1's s, the sum of the f32
     * inputs, not of the quants). On one token, the batches, and ids repeated within tokens and
     * beyond the tokens' count. */
    if (argc == 3) {
        cuda_case cases[3 + N_BATCHES] = {{&shapes[0], own_experts[0], 1000},
                                          {&shapes[3], own_experts[3], 1003},
                                          {&shapes[4], own_experts[4], 1004}};
        for (size_t bi = 0; bi < N_BATCHES; bi++)
            cases[3 + bi] = (cuda_case){&batches[bi], experts128, 2000 + bi};
        test_cuda_plugin(argv[2], cases, sizeof cases / sizeof cases[0]);
    }
    for (size_t si = 0; si < N_SHAPES; si++)
        free(own_experts[si]);
    free(experts128);

    /* The smallest case of issue 26310: ids {0, 0, 1} of one token. Expert 0's second listing
     * takes expert 1's slot, which expert 1's listing then overwrites: slot 2 is computed by
     * expert 0 and then by expert 1 (right in the end), slot 0 is right, slot 1 never written:
     * it is not the bits of slot 0 (same expert, same x, same kernel), but whatever the output
     * buffer held (here, as it happens, the plain variant's freed output). */
    {
        int32_t ids[3] = {0, 0, 1};
        const moe_shape s = {"ids {0, 0, 1} 256x512", 256, 512, 2, ids, 3, 1};
        qk_block_q4k *w = make_experts(&s, 11);
        moe_data d;
        make_data(&s, w, 11, 0, &d);
        qkb_moe_case c = {.weights = d.w,
                          .rows = 256,
                          .cols = 512,
                          .n_experts = 2,
                          .ids = ids,
                          .n_ids = 3,
                          .x = d.x,
                          .n_threads = 1,
                          .cpus = cpus,
                          .n_tokens = 1};
        char err[256] = "";
        float *y = alloc_poisoned(3 * 256);
        for (int vi = 0; vi < 2; vi++) {
            const qkb_variant *v = vi ? repack : plain;
            void *state = v->create(&c, err, sizeof err);
            CHECK(state && v->run(state, err, sizeof err) == 0 &&
                      v->output(state, y, err, sizeof err) == 0,
                  "%s: %s", v->name, err);
            if (state) v->destroy(state);
            double slot[3];
            for (int i = 0; i < 3; i++)
                slot[i] = qk_deviation_of(y + i * 256, d.ref_exact + i * 256, 256).rel_l2;
            printf("  %-16s %-46s exact_l2 per slot %.3e %.3e %.3e\n", v->name, s.label, slot[0],
                   slot[1], slot[2]);
            CHECK(slot[0] < 1e-6 && slot[2] < 1e-6, "%s: slots 0, 2: %.3e %.3e", v->name, slot[0],
                  slot[2]);
            int slot1_is_slot0 = memcmp(y, y + 256, 256 * sizeof *y) == 0;
            CHECK(vi ? !slot1_is_slot0 : slot1_is_slot0,
                  "%s: slot 1 (expert 0 again) is%s slot 0's bits", v->name,
                  slot1_is_slot0 ? "" : " not");
        }
        /* one more listing of the last expert than last_expert's cases: 72 bytes past the
         * mapping, refused; the plain variant takes it */
        int32_t many[22];
        for (int i = 0; i < 22; i++)
            many[i] = 1;
        c.ids = many;
        c.n_ids = 10;
        CHECK(repack->create(&c, err, sizeof err) == NULL && strstr(err, "10 times") &&
                  strstr(err, "72 bytes"),
              "CPU_REPACK took the last expert listed 10 times in one token (%s)", err);
        c.n_ids = 11;
        c.n_tokens = 2; /* 22 listings in 2 tokens: 20 entries, 160 bytes past the mapping */
        CHECK(repack->create(&c, err, sizeof err) == NULL && strstr(err, "22 times") &&
                  strstr(err, "160 bytes"),
              "CPU_REPACK took the last expert listed 22 times in 2 tokens (%s)", err);
        c.n_ids = 6; /* 12 listings in 2 tokens, none more than once per token... */
        void *state = plain->create(&c, err, sizeof err);
        CHECK(state, "the plain variant refused 12 listings of one expert: %s", err);
        if (state) plain->destroy(state);
        c.n_tokens = 0;
        for (int vi = 0; vi < 2; vi++) {
            const qkb_variant *v = vi ? repack : plain;
            CHECK(v->create(&c, err, sizeof err) == NULL && strstr(err, "0 tokens"),
                  "%s took a batch of 0 tokens (%s)", v->name, err);
        }
        free(y);
        free_data(&d);
        free(w);
    }

    /* CPU_REPACK interleaves 8 rows: other row counts are refused with the reason */
    {
        int32_t ids[2] = {0, 1};
        const moe_shape s = {"4x256", 4, 256, 2, ids, 2, 1};
        qk_block_q4k *w = make_experts(&s, 9);
        moe_data d;
        make_data(&s, w, 9, 0, &d);
        qkb_moe_case c = {.weights = d.w,
                          .rows = 4,
                          .cols = 256,
                          .n_experts = 2,
                          .ids = ids,
                          .n_ids = 2,
                          .x = d.x,
                          .n_threads = 1,
                          .cpus = cpus,
                          .n_tokens = 1};
        char err[256] = "";
        CHECK(repack->create(&c, err, sizeof err) == NULL && strstr(err, "rows"),
              "CPU_REPACK took 4 rows (%s)", err);
        float *y = run_variant(plain, &s, &d, 1, cpus);
        if (y) check_slots(plain->name, 1, &s, &d, y, ids);
        free(y);
        int32_t bad_ids[2] = {0, 2};
        c.ids = bad_ids;
        CHECK(plain->create(&c, err, sizeof err) == NULL && strstr(err, "expert id 2"),
              "an id beyond the experts was taken (%s)", err);
        free_data(&d);
        free(w);
    }
    return qk_test_finish("ggml_plugin");
}

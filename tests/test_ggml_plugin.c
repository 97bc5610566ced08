/* The ggml plug-in (bench/plugins/ggml_plugin.c) as bench loads it: dlopen, its entry point,
 * then each CPU variant's create / run / output / evict / destroy. Its outputs are held against
 * the f64 oracle and the Q8_K algorithm-exact oracle on synthetic experts and random x (top-8
 * of 128, all 128, repeated ids, 1 and 2 pinned threads), and ggml's own Q8_K quantizer against
 * our reference, block for block. Loading it and making its cases maps no CUDA library and
 * starts no thread but ggml's workers. With CUDA_PLUGIN.so (qkbench_ggml_cuda.so, built with
 * ggml's CUDA backend): its entry point maps no CUDA library and starts no thread either, and
 * where a device answers, its ggml_cuda runs queued back to back and synchronized once give the
 * bits of one run. Usage: test_ggml_plugin PLUGIN.so [CUDA_PLUGIN.so] */
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

/* One MOE case: n_experts distinct synthetic experts (seeded), x from an activation profile. */
typedef struct {
    const char *label;
    size_t rows, cols, n_experts;
    const int32_t *ids;
    size_t n_ids;
} moe_shape;

typedef struct {
    qk_block_q4k *w;
    float *x;
    double *ref_f64;   /* sum deq64(W) * x */
    double *ref_exact; /* sum deq64(W) * deq64(Q8_K(x)): what ggml's integers compute */
    double *ref_q8_1;  /* sum deq64(W) * deq64(Q8_1(x)): the CUDA variant's format */
} moe_data;

static int make_data(const moe_shape *s, uint64_t seed, moe_data *d) {
    size_t expert_blocks = s->rows * s->cols / QK_K;
    d->w = malloc(s->n_experts * expert_blocks * sizeof *d->w);
    d->x = malloc(s->cols * sizeof *d->x);
    d->ref_f64 = malloc(s->n_ids * s->rows * sizeof(double));
    d->ref_exact = malloc(s->n_ids * s->rows * sizeof(double));
    d->ref_q8_1 = malloc(s->n_ids * s->rows * sizeof(double));
    double *x64 = malloc(s->cols * sizeof *x64), *xq64 = malloc(s->cols * sizeof *xq64);
    double *x8_1 = malloc(s->cols * sizeof *x8_1);
    qk_block_q8k *xq = malloc(s->cols / QK_K * sizeof *xq);
    qk_block_q8_1 *xq8_1 = malloc(s->cols / QK8_1 * sizeof *xq8_1);
    if (!d->w || !d->x || !d->ref_f64 || !d->ref_exact || !d->ref_q8_1 || !x64 || !xq64 || !x8_1 ||
        !xq || !xq8_1)
        return -1;
    for (size_t e = 0; e < s->n_experts; e++)
        if (qk_synth_expert(seed, (int)e, s->rows, s->cols, d->w + e * expert_blocks) != 0)
            return -1;
    qk_rng r;
    qk_rng_seed(&r, seed ^ 0x5eedull);
    qk_act_fill(&r, QK_ACT_NORMAL, d->x, s->cols);
    qk_activations_f64(QK_FMT_F32, d->x, s->cols, x64);
    qk_quantize_q8k_ref(d->x, xq, s->cols);
    qk_activations_f64(QK_FMT_Q8_K, xq, s->cols, xq64);
    qk_quantize_q8_1_ref(d->x, xq8_1, s->cols);
    qk_activations_f64(QK_FMT_Q8_1, xq8_1, s->cols, x8_1);
    for (size_t i = 0; i < s->n_ids; i++) {
        const qk_block_q4k *we = d->w + (size_t)s->ids[i] * expert_blocks;
        qk_oracle_q4k(we, s->rows, s->cols, x64, d->ref_f64 + i * s->rows);
        qk_oracle_q4k(we, s->rows, s->cols, xq64, d->ref_exact + i * s->rows);
        qk_oracle_q4k(we, s->rows, s->cols, x8_1, d->ref_q8_1 + i * s->rows);
    }
    free(x64);
    free(xq64);
    free(x8_1);
    free(xq);
    free(xq8_1);
    return 0;
}

static void free_data(moe_data *d) {
    free(d->w);
    free(d->x);
    free(d->ref_f64);
    free(d->ref_exact);
    free(d->ref_q8_1);
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

/* Runs variant v on the case; returns the deviation from the exact oracle (rel_l2), or -1. */
static double run_variant(const qkb_variant *v, const moe_shape *s, const moe_data *d,
                          int n_threads, const int *cpus, qk_deviation *dev_f64) {
    qkb_moe_case c = {.weights = d->w,
                      .rows = s->rows,
                      .cols = s->cols,
                      .n_experts = s->n_experts,
                      .ids = s->ids,
                      .n_ids = s->n_ids,
                      .x = d->x,
                      .n_threads = n_threads,
                      .cpus = cpus,
                      .cuda_device = 0};
    char err[256] = "";
    cpu_set_t caller_mask;
    pthread_getaffinity_np(pthread_self(), sizeof caller_mask, &caller_mask);
    static pid_t before[MAX_TASKS];
    int n_before = list_tasks(before, MAX_TASKS);
    void *state = v->create(&c, err, sizeof err);
    CHECK(state, "%s %s: create failed: %s", v->name, s->label, err);
    if (!state) return -1;
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
    size_t n = s->n_ids * s->rows;
    float *y = alloc_poisoned(n), *y_cold = alloc_poisoned(n);
    CHECK(v->run(state, err, sizeof err) == 0, "%s: run: %s", v->name, err);
    CHECK(v->output(state, y, err, sizeof err) == 0, "%s: output: %s", v->name, err);
    /* a cold run (everything evicted) computes the same bits */
    evicted_bytes = 0;
    v->evict(state);
    size_t weight_bytes = s->n_experts * s->rows * s->cols / QK_K * sizeof(qk_block_q4k);
    CHECK(evicted_bytes >= weight_bytes + s->cols * 4 + n * 4,
          "%s: evict flushed %zu bytes, the run touches %zu", v->name, evicted_bytes,
          weight_bytes + s->cols * 4 + n * 4);
    CHECK(v->run(state, err, sizeof err) == 0, "%s: run: %s", v->name, err);
    CHECK(v->output(state, y_cold, err, sizeof err) == 0, "%s: output: %s", v->name, err);
    CHECK(memcmp(y, y_cold, n * sizeof *y) == 0, "%s %s: a second run differs", v->name, s->label);
    CHECK(same_mask(&caller_mask), "%s: run moved the calling thread off its CPUs", v->name);
    v->destroy(state);
    *dev_f64 = qk_deviation_of(y, d->ref_f64, n);
    qk_deviation exact = qk_deviation_of(y, d->ref_exact, n);
    printf("  %-16s %-34s threads %d  rel_l2 %.3e  exact_l2 %.3e  exact max_rel %.3e\n", v->name,
           s->label, n_threads, dev_f64->rel_l2, exact.rel_l2, exact.max_rel);
    free(y);
    free(y_cold);
    return exact.rel_l2;
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

static void run_cuda(const qkb_variant *v, const moe_shape *s, uint64_t seed) {
    moe_data d;
    CHECK(make_data(s, seed, &d) == 0, "out of memory");
    qkb_moe_case c = {.weights = d.w,
                      .rows = s->rows,
                      .cols = s->cols,
                      .n_experts = s->n_experts,
                      .ids = s->ids,
                      .n_ids = s->n_ids,
                      .x = d.x,
                      .n_threads = 1,
                      .cuda_device = 0};
    char err[256] = "";
    void *state = v->create(&c, err, sizeof err);
    if (!state) {
        printf("  %-16s skipped: %s\n", v->name, err);
        free_data(&d);
        return;
    }
    size_t n = s->n_ids * s->rows;
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
          "%s: 100 queued runs and a sync differ from one run", v->name);
    v->destroy(state);
    free(y_queued);
    qk_deviation f64 = qk_deviation_of(y, d.ref_f64, n);
    qk_deviation q8_1 = qk_deviation_of(y, d.ref_q8_1, n);
    printf("  %-16s %-34s rel_l2 %.3e  vs the Q8_1 exact oracle %.3e (max_rel %.3e)\n", v->name,
           s->label, f64.rel_l2, q8_1.rel_l2, q8_1.max_rel);
    CHECK(f64.rel_l2 < 2e-2, "%s: rel_l2 %.3e", v->name, f64.rel_l2);
    free(y);
    free_data(&d);
}

/* qkbench_ggml_cuda.so: its entry point maps no CUDA library and starts no thread (bench loads
 * it by default, GPU or not); its one variant; then run_cuda. */
static void test_cuda_plugin(const char *path, const moe_shape *s) {
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
              v->kind == QKB_KIND_MOE && strcmp(v->act_format, "q8_1") == 0 && !v->evict &&
              v->sync,
          "%s: device %d, act %s, evict %s, sync %s", v->name, v->device, v->act_format,
          v->evict ? "given" : "NULL", v->sync ? "given" : "NULL");
    if (v->sync) run_cuda(v, s, 1000);
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

    qk_rng r;
    qk_rng_seed(&r, 2026);
    int32_t top8[8], all[128], repeated[12] = {3, 1, 3, 0, 5, 3, 2, 1, 5, 4, 0, 3};
    for (int i = 0; i < 8; i++) /* the compact ids bench passes: the distinct experts in order */
        top8[i] = i;
    for (int i = 0; i < 128; i++)
        all[i] = i;
    const moe_shape shapes[] = {
        {"top-8 gate 768x2048", 768, 2048, 8, top8, 8},
        {"top-8 down 2048x768", 2048, 768, 8, top8, 8},
        {"all 128 gate 768x2048", 768, 2048, 128, all, 128},
        {"repeated ids (12 of 6) 256x512", 256, 512, 6, repeated, 12},
    };
    const int repeated_case = 3;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const moe_shape *s = &shapes[si];
        moe_data d;
        CHECK(make_data(s, 1000 + si, &d) == 0, "out of memory");
        for (int threads = 1; threads <= n_cpus; threads++) {
            const qkb_variant *vs[] = {plain, repack};
            for (int vi = 0; vi < 2; vi++) {
                qk_deviation f64;
                double exact = run_variant(vs[vi], s, &d, threads, cpus, &f64);
                if ((int)si == repeated_case && vs[vi] == repack) {
                    /* ggml's CPU_REPACK MUL_MAT_ID keeps one mapping slot per expert and
                     * token: the k-th listing of expert e goes to e + k - 1's slot (llama.cpp
                     * issue 26310), so repeated experts' outputs are unwritten or wrong */
                    CHECK(exact > 1e-2, "%s %s: exact_l2 %.3e: is issue 26310 fixed?", vs[vi]->name,
                          s->label, exact);
                    continue;
                }
                /* the same integers as the exact oracle, summed in f32: accumulation only */
                CHECK(exact >= 0 && exact < 1e-6, "%s %s: exact_l2 %.3e", vs[vi]->name, s->label,
                      exact);
                /* and the Q8_K quantization error: ~7e-3 on normal x, like our Q8_K rows */
                CHECK(f64.rel_l2 > 1e-3 && f64.rel_l2 < 2e-2, "%s %s: rel_l2 %.3e", vs[vi]->name,
                      s->label, f64.rel_l2);
            }
        }
        free_data(&d);
    }

    cuda_lib = cuda_library_mapped();
    CHECK(!cuda_lib, "%s is mapped after the CPU variants ran", cuda_lib);

    /* ggml_cuda (qkbench_ggml_cuda.so, with ggml's CUDA backend) where a device answers: its
     * deviation from both oracles is printed; held only to the Q8_1 quantization error's order,
     * as nothing here states what its mmvq sums (its min term uses Q8_1's s, the sum of the f32
     * inputs, not of the quants). */
    if (argc == 3) test_cuda_plugin(argv[2], &shapes[0]);

    /* The smallest case of issue 26310: ids {0, 0, 1} of one token. Expert 0's second listing
     * takes expert 1's slot, which expert 1's listing then overwrites: slot 2 is computed by
     * expert 0 and then by expert 1 (right in the end), slot 0 is right, slot 1 never written:
     * it is not the bits of slot 0 (same expert, same x, same kernel), but whatever the output
     * buffer held (here, as it happens, the plain variant's freed output). */
    {
        int32_t ids[3] = {0, 0, 1};
        const moe_shape s = {"ids {0, 0, 1} 256x512", 256, 512, 2, ids, 3};
        moe_data d;
        CHECK(make_data(&s, 11, &d) == 0, "out of memory");
        qkb_moe_case c = {.weights = d.w,
                          .rows = 256,
                          .cols = 512,
                          .n_experts = 2,
                          .ids = ids,
                          .n_ids = 3,
                          .x = d.x,
                          .n_threads = 1,
                          .cpus = cpus};
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
            printf("  %-16s %-34s exact_l2 per slot %.3e %.3e %.3e\n", v->name, s.label, slot[0],
                   slot[1], slot[2]);
            CHECK(slot[0] < 1e-6 && slot[2] < 1e-6, "%s: slots 0, 2: %.3e %.3e", v->name, slot[0],
                  slot[2]);
            int slot1_is_slot0 = memcmp(y, y + 256, 256 * sizeof *y) == 0;
            CHECK(vi ? !slot1_is_slot0 : slot1_is_slot0,
                  "%s: slot 1 (expert 0 again) is%s slot 0's bits", v->name,
                  slot1_is_slot0 ? "" : " not");
        }
        int32_t many[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
        c.ids = many;
        c.n_ids = 9;
        CHECK(repack->create(&c, err, sizeof err) == NULL && strstr(err, "9 times"),
              "CPU_REPACK took an expert listed 9 times (%s)", err);
        free(y);
        free_data(&d);
    }

    /* CPU_REPACK interleaves 8 rows: other row counts are refused with the reason */
    {
        int32_t ids[2] = {0, 1};
        const moe_shape s = {"4x256", 4, 256, 2, ids, 2};
        moe_data d;
        CHECK(make_data(&s, 9, &d) == 0, "out of memory");
        qkb_moe_case c = {.weights = d.w,
                          .rows = 4,
                          .cols = 256,
                          .n_experts = 2,
                          .ids = ids,
                          .n_ids = 2,
                          .x = d.x,
                          .n_threads = 1,
                          .cpus = cpus};
        char err[256] = "";
        CHECK(repack->create(&c, err, sizeof err) == NULL && strstr(err, "rows"),
              "CPU_REPACK took 4 rows (%s)", err);
        qk_deviation f64;
        CHECK(run_variant(plain, &s, &d, 1, cpus, &f64) < 1e-6, "plain 4x256");
        int32_t bad_ids[2] = {0, 2};
        c.ids = bad_ids;
        CHECK(plain->create(&c, err, sizeof err) == NULL && strstr(err, "expert id 2"),
              "an id beyond the experts was taken (%s)", err);
        free_data(&d);
    }
    return qk_test_finish("ggml_plugin");
}

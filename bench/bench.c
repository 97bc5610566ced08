/* bench: times each variant on Qwen3-30B-A3B expert shapes through Google Benchmark and reports
 * its throughput beside its deviation from the f64 oracles, in one table (and a JSON file).
 * The timed unit is what llama.cpp's MUL_MAT_ID does for one token: quantize the activations
 * once (Q8 variants) and run the selected experts' matvecs. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "act.h"
#include "cli.h"
#include "gbench.h"
#include "hw.h"
#include "model.h"
#include "npy.h"
#include "peak.h"
#include "plugin.h"
#include "sampling.h"
#include "synth.h"
#include "test_hooks.h"
#include "../cpu/cpu_features.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/huge_alloc.h"
#include "../cpu/matvec.h"
#include "../gpu/gpu_kernels.h"
#include "../kernels/qk_oracle.h"
#include "../kernels/qk_quant.h"
#include "../kernels/qk_rng.h"
#include <errno.h>
#include <limits.h>
#include <fnmatch.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "qk_build_info.h"  /* generated: compiler and flags */
#include "qk_git_version.h" /* generated at build time: git describe */

/* The plug-ins loaded unless --no-default-plugins: a ':'-separated list of paths set at build
 * time (CMake's QK_DEFAULT_PLUGINS); empty by default. */
#ifndef QK_DEFAULT_PLUGINS
#define QK_DEFAULT_PLUGINS ""
#endif

/* Each sample is a batch of back-to-back units lasting about this long (hot CPU rows): long
 * enough for the clocks' cost to vanish, short enough that most batches miss the neighbours. */
#define SAMPLE_SECONDS 1e-3
enum { MAX_SAMPLES = 200000, GPU_HOT_UNITS = 100, MAX_VARIANTS = 256 };

/* One section of the run: a batch of the first n_tokens tokens (each with its activations and
 * its k experts), whose oracles are the first n_out values of the run's (g.y_ref, g.y_exact). */
typedef struct {
    size_t n_tokens, n_out; /* n_out: n_tokens x k x rows outputs */
    size_t n_touched;       /* distinct experts the batch reads */
    size_t max_share;       /* the most tokens routed to one expert */
    char suffix[32];        /* in its rows' names: "" for one token, "/t8" for 8 */
} batch;

/* What a variant's timed unit reads and writes, set up once before the run. */
typedef struct {
    const qk_kernel *k, *quant; /* quant: the activation quantizer run inside the unit, or NULL */
    const batch *b;
    qk_moe_batch route; /* CPU matvec variants: the grouping by expert, built in each unit */
    qk_weights w;
    void *xq; /* the activations in k's format */
    float *y;
    size_t xq_bytes;
    qk_deviation dev, exact; /* vs the f64 oracle; vs the algorithm-exact oracle (Q8 only) */
    qk_gpu_case *gpu;        /* GPU variants: the unit on the device */
    void *moe;               /* MOE plug-in variants: their state (the plug-in's create) */
    double output_hash;      /* FNV-1a of y's bytes, low 52 bits: bit-identity across variants */
    double slowdown;         /* test hook QK_INJECT_SLOWDOWN: extra fraction of each call spun */
    int late_fault;          /* test hook QK_INJECT_LATE_FAULT: outputs go wrong after the check */
    int checked;             /* the output was checked (deviation, hash) */
    int queued;              /* MOE plug-in variants with sync: runs queued since the last sync */
    /* the check before timing failed (a write outside the rows asked for, a MOE run that
     * failed): its rows fail with this reason, untimed */
    char fail[520];
} variant;

/* QK_GPU_HOT, _COLD, _DECODE have the same values. */
typedef enum { TEMP_HOT, TEMP_COLD, TEMP_DECODE, TEMP_COUNT } temperature;
static const char *const temp_name[] = {"hot", "cold", "decode"};

/* Every sample a row took, in order: its time per unit, why it was dropped (0: clean), and the
 * peak reference's sample taken beside it (NAN when the row has none) and, for GPU rows, the
 * CUPTI kernel time per unit (NAN when none). */
typedef struct {
    double *t, *peak, *kernel;
    unsigned char *why, *peak_why;
    size_t n, cap;
} sample_log;

typedef struct bench_row bench_row;
/* One sample of a row: its time per unit, why it is dropped (0: clean), CUPTI's time (NAN). */
typedef int (*sample_fn)(bench_row *row, double *t, unsigned char *why, double *kernel_s);
/* One registered benchmark: a variant's hot or cold row, or a peak read row. */
struct bench_row {
    char name[160];
    variant *v;            /* NULL for a peak row */
    qk_gpu_read *gpu_read; /* a GPU peak row's read-only stream */
    temperature temp;
    double bytes, ops;    /* per unit */
    bench_row *peak;      /* the read row of the same bytes and temperature, sampled beside it */
    sample_fn sample;     /* takes one sample of this row */
    int calls;            /* units per sample (0: not calibrated yet) */
    sample_log log;       /* a peak row's: the samples taken beside every row it serves */
    qk_estimate est;      /* from the clean samples */
    qk_estimate peak_est; /* the clean peak samples taken beside this row's */
    qk_sampling_state state;
    size_t dropped, why_count[QK_SAMPLE_REASONS];
    int noisy;         /* too many dropped samples, or the interval missed its target */
    int measured;      /* the estimate exists */
    int selected;      /* --benchmark_filter selects it (all rows without a filter) */
    int active;        /* still being sampled */
    size_t next_check; /* the stop rule is looked at again at this many samples */
    double elapsed;    /* seconds of its own sampling, its peak samples included */
    double kernel_s;   /* GPU rows: median CUPTI kernel time per unit (0: none) */
    int kernels_per_unit;
    int skipped;
    int failed;       /* its check failed: the variant's before timing, a run during the sampling,
                         or the last timed call's output differing from the checked one */
    int busy_threads; /* CPU MOE plug-in rows: the threads its runs keep busy (calibrated) */
    char message[520];
};

/* The run's shared state (the callbacks reach it through their rows), filled in by main's steps
 * in order. The data is that of the largest batch; a smaller batch uses its first tokens. */
static struct {
    qk_options o;
    /* the machine: threads and where they run */
    qk_hw *hw;
    qk_pool *pool;
    char allowed[256], pinning[512];
    int cpus[QK_MAX_THREADS]; /* the logical CPU of pool thread t, for MOE plug-ins */
    int pinned;               /* every pool thread is bound to its place */
    /* the variants asked for */
    const qk_kernel *sel[MAX_VARIANTS];
    size_t n_sel;
    /* the data: weights (distinct experts, compact), activations, oracles; token-major */
    qk_model_weights model;
    char tensor_name[128], weights[4400];
    const int32_t *ids; /* indices into the distinct experts generated, max_tokens x k */
    int32_t local_ids[QK_MAX_IDS], distinct[QK_MAX_EXPERTS];
    size_t n_distinct, per_expert, n_out;
    qk_block_q4k *w;
    float *x; /* max_tokens x cols */
    double *x64, *y_ref, *y_exact[QK_FMT_COUNT];
    batch batches[QK_MAX_TOKEN_COUNTS]; /* one per --tokens value, ascending */
    size_t n_batches;
    /* the variants this machine runs (each variant asked for, in each batch), checked */
    variant *vars;
    size_t n_vars;
    const qk_kernel *skipped[MAX_VARIANTS];
    /* why, where not unsupported(): a failed create; the row past the last is scratch for a
     * create that fails once the list is full (a MOE variant skipped in each of 16 batches) */
    char skip_why[MAX_VARIANTS + 1][400];
    size_t n_skipped;
    const qk_kernel *q8k_quant;
    int any_gpu;
    /* the rows and their timing */
    void *peak_buf;
    size_t peak_buf_bytes;
    double gpu_copy_bps; /* device-to-device copy, read + write counted (a footnote) */
    double gpu_max_mhz;  /* the SM clock's maximum (NVML), read once */
    bench_row *rows;
    size_t n_rows, n_done, n_gpu_rows;
    int progress;
} g;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* QK_INJECT_SLOWDOWN=NAME=FRACTION (a test hook): that CPU variant spins FRACTION of each call's
 * time more. Any other form is an error. */
static double injected_slowdown(const char *name) {
    double f = qk_hook_slowdown(name);
    if (f < 0)
        qk_die("QK_INJECT_SLOWDOWN: '%s' is not NAME=FRACTION (0 < FRACTION <= 10)",
               getenv("QK_INJECT_SLOWDOWN"));
    return f;
}

/* FNV-1a over bytes, the low 52 bits (a double holds them exactly in the JSON). */
static double hash52(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return (double)(h & ((1ull << 52) - 1));
}

/* QK_INJECT_LATE_FAULT=NAME (a test hook): that CPU variant's output changes in its last bit on
 * every call after the one checked before timing, as a kernel that goes wrong when warm would. */
static int injected_late_fault(const char *name) {
    const char *v = getenv("QK_INJECT_LATE_FAULT");
    return v && !strcmp(v, name);
}

/* The test hooks must name a CPU variant this run times: a typo would otherwise leave the
 * run as it was and exit 0. */
static const char *unsupported(const qk_kernel *k);
static void check_hooks(const qk_kernel *const *sel, size_t n_sel) {
    char name[128], shown[160];
    const char *late = getenv("QK_INJECT_LATE_FAULT");
    for (int hook = 0; hook < 2; hook++) {
        const char *var = hook ? "QK_INJECT_LATE_FAULT" : "QK_INJECT_SLOWDOWN";
        if (hook) {
            if (!late || !*late) continue;
            snprintf(name, sizeof name, "%s", late);
        } else {
            if (!qk_hook_slowdown_target(name, sizeof name)) continue;
            (void)injected_slowdown(""); /* a malformed value is named first */
        }
        int found = 0; /* the slowdown also slows a CPU MOE plug-in variant's runs */
        for (size_t i = 0; i < n_sel && !found; i++)
            found = sel[i]->device == QK_DEV_CPU &&
                    (sel[i]->op == QK_OP_MATVEC || (!hook && sel[i]->op == QK_OP_MOE)) &&
                    !unsupported(sel[i]) && !strcmp(sel[i]->name, name);
        if (!found)
            qk_die("%s: '%s' is not a CPU variant this run times (--kernel selects them; "
                   "bench --list names them)",
                   var, qk_gguf_printable(name, strlen(name), shown, sizeof shown));
    }
}

/* The slowdown hook's spin runs on every pool thread, as a slower kernel keeps them all busy
 * (on the main thread alone, the workers would fall asleep and every sample be dropped). */
static double spin_until;
static void spin_job(void *arg, int ti, int nt) {
    (void)arg, (void)ti, (void)nt;
    while (qk_hook_now() < spin_until) {
    }
}

static void forward(variant *v) {
    const double t0 = v->slowdown > 0 ? qk_hook_now() : 0;
    qk_plugin_running(v->k);
    qk_moe_forward_batch(g.pool, v->quant, v->k, &v->w, &v->route, g.ids, g.x, v->xq, v->y);
    qk_plugin_running(NULL);
    if (v->late_fault && v->checked) {
        uint32_t bits;
        memcpy(&bits, &v->y[0], 4);
        bits ^= 1;
        memcpy(&v->y[0], &bits, 4);
    }
    if (v->slowdown > 0) { /* a real slowdown, for tests */
        spin_until = t0 + (qk_hook_now() - t0) * (1 + v->slowdown);
        qk_pool_run(g.pool, spin_job, NULL);
    }
}

/* Why the last sample failed (a GPU error, a plug-in's run), for its row's message;
 * sample_failed: it was the plug-in's run (the row fails), not the device (skipped). */
static char sample_error[512];
static int sample_failed;

/* A plug-in's message (err_size bytes, maybe unterminated) in one line: control characters and
 * backslashes escaped. */
static const char *one_line(char *err, size_t err_size, char *out, size_t size) {
    err[err_size - 1] = 0;
    return *err ? qk_gguf_printable(err, strlen(err), out, size) : "(no reason given)";
}

static int is_moe(const variant *v) {
    return v->k->op == QK_OP_MOE;
}
/* The row runs on the GPU (a built-in GPU variant, or a CUDA MOE plug-in variant). */
static int on_gpu(const variant *v) {
    return v->k->device == QK_DEV_GPU;
}

/* A MOE plug-in variant's unit: the plug-in's run, on its own threads or its device. */
static int moe_run(variant *v) {
    char err[400] = "", line[420];
    const double t0 = v->slowdown > 0 ? qk_hook_now() : 0;
    qk_plugin_running(v->k);
    int rc = v->k->ext->run(v->moe, err, sizeof err);
    qk_plugin_running(NULL);
    if (!rc && v->k->ext->sync) v->queued = 1;
    if (!rc) {
        if (v->slowdown > 0) { /* QK_INJECT_SLOWDOWN: the calling thread spins the extra */
            double until = t0 + (qk_hook_now() - t0) * (1 + v->slowdown);
            while (qk_hook_now() < until) {
            }
        }
        return 0;
    }
    snprintf(sample_error, sizeof sample_error, "the plug-in's run failed (it returned %d): %s", rc,
             one_line(err, sizeof err, line, sizeof line));
    sample_failed = 1;
    return -1;
}

/* A CPU MOE plug-in variant's threads put to rest (`park`, after its samples and untimed runs,
 * so that they do not spin beside the rows timed next: ggml's poll for up to ~0.3 s) or woken
 * (`wake`, just before a cold sample's clock); nothing when its plug-in gives neither. */
static void moe_rest(variant *v, int wake) {
    qkb_moe_idle_fn fn = wake ? v->k->ext->wake : v->k->ext->park;
    if (!fn || on_gpu(v)) return;
    qk_plugin_running(v->k);
    fn(v->moe);
    qk_plugin_running(NULL);
}

/* A CUDA MOE plug-in variant with sync: waits for the runs queued since the last sync (none:
 * nothing to do). 0, or -1 with the reason in sample_error (as moe_run). */
static int moe_sync(variant *v) {
    if (!v->queued) return 0;
    char err[400] = "", line[420];
    qk_plugin_running(v->k);
    int rc = v->k->ext->sync(v->moe, err, sizeof err);
    qk_plugin_running(NULL);
    v->queued = 0;
    if (!rc) return 0;
    snprintf(sample_error, sizeof sample_error, "the plug-in's sync failed (it returned %d): %s",
             rc, one_line(err, sizeof err, line, sizeof line));
    sample_failed = 1;
    return -1;
}

/* Everything a cold sample must fetch from DRAM. */
static void evict_variant(variant *v) {
    qk_evict(v->w.data, v->w.expert_bytes * v->w.n_experts);
    qk_evict(g.x, v->b->n_tokens * g.o.cols * sizeof *g.x);
    qk_evict(v->xq, v->xq_bytes);
    qk_evict(v->y, v->b->n_out * sizeof *v->y);
}

/* The row's counters, from its estimate (Google Benchmark's own rates would divide by the main
 * thread's CPU time). A peak row's %peak is 100 by definition: absent. */
static void report(qk_gb_state *st, bench_row *row) {
    const qk_estimate *e = &row->est;
    qk_gb_counter(st, "samples", (double)e->n, QK_GB_PLAIN);
    qk_gb_counter(st, "dropped", (double)row->dropped, QK_GB_PLAIN);
    qk_gb_counter(st, "noisy", row->noisy, QK_GB_PLAIN);
    qk_gb_counter(st, "ci_low_us", e->low * 1e6, QK_GB_PLAIN);
    qk_gb_counter(st, "ci_high_us", e->high * 1e6, QK_GB_PLAIN);
    qk_gb_counter(st, "min_us", e->min * 1e6, QK_GB_PLAIN);
    qk_gb_counter(st, "cv_pct", e->mean > 0 ? 100 * e->sd / e->mean : 0, QK_GB_PLAIN);
    qk_gb_counter(st, "calls_per_sample", row->calls, QK_GB_PLAIN);
    qk_gb_counter(st, "GBps", row->bytes / e->median * 1e-9, QK_GB_PLAIN);
    qk_gb_counter(st, "bytes", row->bytes, QK_GB_PLAIN);
    if (row->peak_est.n) {
        qk_gb_counter(st, "peak_us", row->peak_est.median * 1e6, QK_GB_PLAIN);
        qk_gb_counter(st, "peak_GBps", row->bytes / row->peak_est.median * 1e-9, QK_GB_PLAIN);
        qk_gb_counter(st, "pct_peak", 100 * row->peak_est.median / e->median, QK_GB_PLAIN);
    }
    if (row->kernel_s > 0) {
        qk_gb_counter(st, "kernel_us", row->kernel_s * 1e6, QK_GB_PLAIN);
        qk_gb_counter(st, "kernels_per_unit", row->kernels_per_unit, QK_GB_PLAIN);
    }
    variant *v = row->v;
    if (!v) return;
    qk_gb_counter(st, "tokens", (double)v->b->n_tokens, QK_GB_PLAIN);
    qk_gb_counter(st, "GOPps", row->ops / e->median * 1e-9, QK_GB_PLAIN);
    qk_gb_counter(st, "rel_l2", v->dev.rel_l2, QK_GB_PLAIN);
    qk_gb_counter(st, "max_abs", v->dev.max_abs, QK_GB_PLAIN);
    qk_gb_counter(st, "max_rel", v->dev.max_rel, QK_GB_PLAIN);
    qk_gb_counter(st, "one_minus_cos", v->dev.one_minus_cos, QK_GB_PLAIN);
    qk_gb_counter(st, "nonfinite", (double)v->dev.nonfinite, QK_GB_PLAIN);
    qk_gb_counter(st, "output_hash", v->output_hash, QK_GB_PLAIN);
    if (v->k->act_format != QK_FMT_F32) { /* GPU rows quantize on the device: they too */
        qk_gb_counter(st, "exact_rel_l2", v->exact.rel_l2, QK_GB_PLAIN);
        qk_gb_counter(st, "exact_max_rel", v->exact.max_rel, QK_GB_PLAIN);
    }
}

/* The output of the last timed call must be the output checked before timing, bit for bit
 * (every variant is deterministic): a kernel that goes wrong only when warm, or only on a later
 * call, fails its row loudly. */
static void check_last_output(qk_gb_state *st, bench_row *row, const float *y) {
    double h = hash52(y, row->v->b->n_out * sizeof *y);
    if (h == row->v->output_hash) return;
    row->failed = 1;
    snprintf(row->message, sizeof row->message,
             "the output of the last timed call differs from the output checked before timing");
    qk_gb_fail(st, row->message);
}

static volatile unsigned long long read_sink;

/* One CPU row's unit and, for cold rows, what must leave the caches before it. 0, or -1 when a
 * MOE plug-in's run failed (sample_error says why). */
static int unit_variant(bench_row *row) {
    if (is_moe(row->v)) return moe_run(row->v);
    forward(row->v);
    return 0;
}
static void evict_for_variant(bench_row *row) {
    evict_variant(row->v);
}
static int unit_peak(bench_row *row) {
    read_sink = qk_read_all(g.pool, g.peak_buf, (size_t)row->bytes);
    return 0;
}
static void evict_for_peak(bench_row *row) {
    qk_evict(g.peak_buf, (size_t)row->bytes);
}
static void wake_job(void *arg, int ti, int nt) {
    (void)arg, (void)ti, (void)nt;
}

/* One CPU sample. Hot: one untimed unit (the peak sample beside it used the caches), then
 * `calls` units back to back, timed as one. Cold: the working set evicted, every pool thread
 * woken by an empty job (so each spins on the start line, not asleep), then one unit. A
 * sample during which a pool thread's CPU time fell below 95 % of the wall (preempted, or its
 * virtual CPU taken by the hypervisor) is dropped (bench/sampling.h). */
static int sample_cpu(bench_row *row, double *t, unsigned char *why, double *kernel_s) {
    int (*unit)(bench_row *) = row->v ? unit_variant : unit_peak;
    if (row->temp == TEMP_COLD) {
        (row->v ? evict_for_variant : evict_for_peak)(row);
        qk_pool_run(g.pool, wake_job, NULL);
    } else {
        (void)unit(row);
    }
    qk_sample_mark m;
    double wall;
    qk_sample_begin(&m);
    for (int c = 0; c < row->calls; c++)
        (void)unit(row);
    *why = (unsigned char)qk_sample_end(&m, &wall);
    *t = wall / row->calls;
    *kernel_s = NAN;
    return 0;
}

/* One sample of a CPU MOE plug-in row: the pool's workers parked (asleep, so that the
 * plug-in's threads have the CPUs), then as sample_cpu (a cold one after the plug-in's evict).
 * Dropped by the CPU time of the process's threads against busy_threads x wall (bench/sampling.h:
 * the threads are the plug-in's, whose own clocks bench cannot name; busy_threads, those its
 * runs kept busy in calibration). */
static int sample_moe_cpu(bench_row *row, double *t, unsigned char *why, double *kernel_s) {
    variant *v = row->v;
    qk_pool_park(g.pool);
    if (row->temp == TEMP_COLD) {
        qk_plugin_running(v->k);
        v->k->ext->evict(v->moe);
        qk_plugin_running(NULL);
        moe_rest(v, 1);
    } else if (moe_run(v))
        return -1;
    qk_process_mark m;
    double wall;
    qk_process_sample_begin(&m);
    for (int c = 0; c < row->calls; c++)
        if (moe_run(v)) return -1;
    int busy;
    *why = (unsigned char)qk_process_sample_end(&m, row->busy_threads, &wall, &busy);
    moe_rest(v, 0);
    *t = wall / row->calls;
    *kernel_s = NAN;
    return 0;
}

/* A CUDA MOE plug-in row's sample: one untimed run, then `calls` runs queued back to back and
 * one sync (the plug-in's, when it gives one; else each run returns synchronized) on the host's
 * clock, as ggml's test-backend-ops perf and a decode loop run them; dropped when the SM clock
 * (NVML) read after them is low, like the GPU rows; CUPTI's kernel time from a second pass of as
 * many runs and a sync. */
typedef struct {
    variant *v;
    int calls;
} moe_calls;
static int run_moe_calls(void *arg) {
    moe_calls *c = arg;
    for (int i = 0; i < c->calls; i++)
        if (moe_run(c->v)) return -1;
    return moe_sync(c->v);
}
static int sample_moe_cuda(bench_row *row, double *t, unsigned char *why, double *kernel_s) {
    moe_calls c = {row->v, row->calls};
    if (moe_run(row->v) || moe_sync(row->v)) return -1;
    double t0 = now_s();
    if (run_moe_calls(&c)) return -1;
    *t = (now_s() - t0) / row->calls;
    double mhz = qk_gpu_sm_clock_mhz();
    *why = g.gpu_max_mhz > 0 && mhz > 0 && mhz < QK_MIN_CLOCK_FRACTION * g.gpu_max_mhz
               ? QK_SAMPLE_CLOCK_LOW
               : QK_SAMPLE_CLEAN;
    double ks;
    int kn, rc = qk_gpu_kernel_window(run_moe_calls, &c, &ks, &kn);
    if (rc < 0) return -1;
    *kernel_s = rc == 0 && kn ? ks / row->calls : NAN;
    if (rc == 0 && kn) row->kernels_per_unit = kn / row->calls;
    return 0;
}

/* A CPU MOE plug-in row's busy_threads: the most threads (of the process: the plug-in's, the
 * calling one included) whose CPU time was at least half the wall time of one run, over five
 * untimed runs; at least 1, at most --threads. 0, or -1 when a run failed. */
static int count_busy_threads(bench_row *row) {
    qk_pool_park(g.pool);
    if (moe_run(row->v)) return -1;
    int most = 1;
    for (int i = 0; i < 5; i++) {
        qk_process_mark m;
        double wall;
        int busy;
        qk_process_sample_begin(&m);
        if (moe_run(row->v)) return -1;
        (void)qk_process_sample_end(&m, 1, &wall, &busy);
        most = busy > most ? busy : most;
    }
    row->busy_threads = most < g.o.threads ? most : g.o.threads;
    moe_rest(row->v, 0);
    return 0;
}

/* Units per hot CPU sample: about SAMPLE_SECONDS of them, from the fastest of three timed calls
 * after one untimed (a call slowed by a neighbour would leave the samples too short). 0, or -1
 * when a MOE plug-in's run failed. */
static int calibrate_cpu(bench_row *row) {
    if (row->calls) return 0;
    row->calls = 1;
    if (row->v && is_moe(row->v) && count_busy_threads(row)) return -1;
    if (row->temp == TEMP_COLD) return 0;
    if (row->v && is_moe(row->v)) qk_pool_park(g.pool);
    int (*unit)(bench_row *) = row->v ? unit_variant : unit_peak;
    if (unit(row)) return -1;
    double t = INFINITY;
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        if (unit(row)) return -1;
        t = fmin(t, now_s() - t0);
    }
    double calls = t > 0 ? ceil(SAMPLE_SECONDS / t) : 1e5;
    row->calls = calls > 1e5 ? 100000 : calls < 1 ? 1 : (int)calls;
    if (row->v && is_moe(row->v)) moe_rest(row->v, 0);
    return 0;
}

/* A row whose plug-in run failed (sample_error says why): failed, no longer sampled. */
static void fail_row(bench_row *row) {
    row->failed = 1;
    snprintf(row->message, sizeof row->message, "%s", sample_error);
    row->active = 0;
}

/* GPU rows: a hot sample is a CUDA graph of GPU_HOT_UNITS units back to back, timed by events
 * around it; a cold one, the L2 flushed, then one unit queued behind a kernel that holds the
 * stream until the stop event is queued too; a decode one, a graph of units over different
 * copies of the weights (more than 3x the L2), held the same way. CUPTI's kernel time comes from
 * a second pass of the same work. A GPU peak row reads the same bytes the same way. Dropped: a
 * sample whose SM clock (NVML, read after it) is below QK_MIN_CLOCK_FRACTION of its maximum,
 * and a cold or decode sample whose hold gave up before the launch was queued. */
static int sample_gpu(bench_row *row, double *t, unsigned char *why, double *kernel_s) {
    qk_gpu_sample s;
    int r = row->v ? qk_gpu_case_time(row->v->gpu, (qk_gpu_temp)row->temp, row->calls, &s,
                                      sample_error, sizeof sample_error)
                   : qk_gpu_read_time(row->gpu_read, (qk_gpu_temp)row->temp, row->calls, &s,
                                      sample_error, sizeof sample_error);
    if (r) return -1;
    *t = s.event_s;
    *kernel_s = s.kernels ? s.kernel_s : NAN;
    *why = QK_SAMPLE_CLEAN;
    double max_mhz = g.gpu_max_mhz;
    if (!s.held)
        *why = QK_SAMPLE_NOT_HELD;
    else if (max_mhz > 0 && s.sm_clock_mhz > 0 && s.sm_clock_mhz < QK_MIN_CLOCK_FRACTION * max_mhz)
        *why = QK_SAMPLE_CLOCK_LOW;
    if (s.kernels) row->kernels_per_unit = s.kernels;
    row->calls = s.units; /* decode: at least as many units as weight copies */
    return 0;
}

static int log_append(sample_log *l, double t, unsigned char why, double kernel_s, double peak,
                      unsigned char peak_why) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        double *nt = realloc(l->t, cap * sizeof *nt);
        if (nt) l->t = nt;
        double *np = realloc(l->peak, cap * sizeof *np);
        if (np) l->peak = np;
        double *nk = realloc(l->kernel, cap * sizeof *nk);
        if (nk) l->kernel = nk;
        unsigned char *nw = realloc(l->why, cap);
        if (nw) l->why = nw;
        unsigned char *npw = realloc(l->peak_why, cap);
        if (npw) l->peak_why = npw;
        if (!nt || !np || !nk || !nw || !npw) return -1;
        l->cap = cap;
    }
    l->t[l->n] = t, l->why[l->n] = why, l->kernel[l->n] = kernel_s;
    l->peak[l->n] = peak, l->peak_why[l->n] = peak_why;
    l->n++;
    return 0;
}

/* The estimates and marks of a row from its log. */
static void summarize(bench_row *row) {
    const sample_log *l = &row->log;
    row->measured = !qk_estimate_of(l->t, l->why, l->n, &row->est);
    row->dropped = 0;
    memset(row->why_count, 0, sizeof row->why_count);
    for (size_t i = 0; i < l->n; i++) {
        row->dropped += l->why[i] != QK_SAMPLE_CLEAN;
        row->why_count[l->why[i] < QK_SAMPLE_REASONS ? l->why[i] : 0]++;
    }
    if (row->peak && qk_estimate_of(l->peak, l->peak_why, l->n, &row->peak_est))
        memset(&row->peak_est, 0, sizeof row->peak_est);
    double *k = malloc((l->n ? l->n : 1) * sizeof *k);
    size_t nk = 0;
    for (size_t i = 0; k && i < l->n; i++)
        if (l->why[i] == QK_SAMPLE_CLEAN && isfinite(l->kernel[i])) k[nk++] = l->kernel[i];
    qk_estimate ke;
    row->kernel_s = nk && !qk_estimate_of(k, NULL, nk, &ke) ? ke.median : 0;
    free(k);
    /* the interval missed the target (fewer than 6 clean samples have none); a variant row
     * only when the cap stopped it (a row capped before its --min-samples or --min-time whose
     * interval is within the target is not noisy); a peak row's samples are taken beside other
     * rows: its own interval is checked */
    int missed = !row->est.exact || qk_estimate_rel_halfwidth(&row->est) > g.o.target_ci / 100;
    int imprecise = row->v ? row->state == QK_SAMPLING_CAPPED && missed : missed;
    row->noisy = row->measured &&
                 ((double)row->dropped > QK_MAX_DROPPED_FRACTION * (double)l->n || imprecise);
}

/* One sample of a row and the peak sample beside it, alternately before and after (turn's
 * parity), kept in the row's log and the peak row's; the row's own sampling time grows by both. */
static int sample_pair(bench_row *row, size_t turn) {
    bench_row *peak = row->peak;
    double t, k, pt = NAN, pk, t0 = now_s();
    unsigned char why, pwhy = 0;
    int peak_first = peak && (turn & 1);
    if (peak_first && peak->sample(peak, &pt, &pwhy, &pk)) return -1;
    if (row->sample(row, &t, &why, &k)) return -1;
    if (peak && !peak_first && peak->sample(peak, &pt, &pwhy, &pk)) return -1;
    row->elapsed += now_s() - t0;
    if (log_append(&row->log, t, why, k, pt, pwhy) ||
        (peak && log_append(&peak->log, pt, pwhy, NAN, NAN, 0))) {
        snprintf(sample_error, sizeof sample_error, "out of memory keeping the samples");
        return -1;
    }
    return 0;
}

/* The sampling: every row in turns, one sample (and its peak sample) each turn, so that
 * each row's samples span the whole run and a machine that changes during it shows in every
 * row's interval (the batch medians), not in one row's figure alone. A row leaves the turns when
 * the stop rule says enough: at least --min-samples clean samples and --min-time seconds of its
 * own sampling, then until its median's 95 % interval is within --target-ci, at most --max-time
 * seconds. The rows sampled are the variants' rows selected, and a peak row selected alone. */
static void sample_all(void) {
    qk_options *o = &g.o;
    qk_stop_rule rule = {o->min_samples, o->min_time, o->max_time, o->target_ci / 100};
    size_t n_active = 0, n_sampled = 0;
    for (size_t i = 0; i < g.n_rows; i++) {
        bench_row *row = &g.rows[i];
        int served = 0; /* a peak row is sampled beside the selected rows it serves */
        for (size_t j = 0; j < g.n_rows && !row->v; j++)
            served |= g.rows[j].selected && g.rows[j].peak == row;
        row->active = row->selected && (row->v || !served) && !row->failed;
        if (!row->active) continue;
        sample_failed = 0;
        if ((row->sample == sample_cpu || row->sample == sample_moe_cpu) && calibrate_cpu(row)) {
            fail_row(row);
            continue;
        }
        if (row->peak && row->peak->sample == sample_cpu) calibrate_cpu(row->peak);
        row->state = QK_SAMPLING_GO_ON;
        row->next_check = 1;
        n_active++;
    }
    size_t total = n_active;
    for (size_t turn = 0; n_active; turn++) {
        for (size_t i = 0; i < g.n_rows; i++) {
            bench_row *row = &g.rows[i];
            if (!row->active) continue;
            sample_failed = 0;
            if (sample_pair(row, turn)) {
                if (sample_failed) { /* the plug-in's run: a wrong kernel, the row fails */
                    fail_row(row);
                } else { /* the device (a GPU error): skipped */
                    row->skipped = 1;
                    snprintf(row->message, sizeof row->message, "%s", sample_error);
                    row->active = 0;
                }
                n_active--, n_sampled++;
                continue;
            }
            if (row->log.n < row->next_check) continue;
            row->next_check = row->log.n + (row->log.n / 16 ? row->log.n / 16 : 1);
            qk_estimate e;
            if (qk_estimate_of(row->log.t, row->log.why, row->log.n, &e)) e.n = 0;
            row->state = qk_sampling_check(&rule, &e, row->log.n, MAX_SAMPLES, row->elapsed);
            if (row->state == QK_SAMPLING_GO_ON) continue;
            row->active = 0;
            n_active--, n_sampled++;
            if (g.progress)
                fprintf(stderr, "\r[%zu/%zu rows sampled] %-60s", n_sampled, total, row->name);
        }
    }
    if (g.progress) fprintf(stderr, "\r%-90s\r", "");
    for (size_t i = 0; i < g.n_rows; i++)
        if (g.rows[i].log.n) summarize(&g.rows[i]);
}

/* Why no sample of a row was clean, in words. */
static void no_clean_sample(bench_row *row) {
    if (!row->log.n) { /* a peak row whose rows all failed before a sample (a GPU error) */
        snprintf(row->message, sizeof row->message,
                 "not sampled: every row it serves failed or was skipped before its first sample");
        return;
    }
    char cause[200] = "the machine was too busy to measure";
    if (row->sample == sample_moe_cpu)
        snprintf(cause, sizeof cause,
                 "the plug-in's threads were not all busy during its runs (it kept %d of %d "
                 "busy in calibration), or the machine was too busy",
                 row->busy_threads, g.o.threads);
    snprintf(row->message, sizeof row->message,
             "no clean sample among %zu (%zu preempted, %zu off the CPU, %zu at a low GPU clock, "
             "%zu not held): %s",
             row->log.n, row->why_count[QK_SAMPLE_PREEMPTED], row->why_count[QK_SAMPLE_OFF_CPU],
             row->why_count[QK_SAMPLE_CLOCK_LOW], row->why_count[QK_SAMPLE_NOT_HELD], cause);
}

/* A MOE plug-in variant's output of its last run into v->y. 0, or -1 with the reason. */
static int moe_output(variant *v, char *err, size_t size) {
    char why[400] = "", line[420];
    if (moe_sync(v)) { /* the last run complete before its output is read */
        snprintf(err, size, "%s", sample_error);
        return -1;
    }
    for (size_t i = 0; i < v->b->n_out; i++) /* poisoned: every output must be written each time */
        v->y[i] = NAN;
    qk_plugin_running(v->k);
    int rc = v->k->ext->output(v->moe, v->y, why, sizeof why);
    qk_plugin_running(NULL);
    if (!rc) return 0;
    snprintf(err, size, "the plug-in's output failed (it returned %d): %s", rc,
             one_line(why, sizeof why, line, sizeof line));
    return -1;
}

/* Every row's Google Benchmark function, after the sampling: one iteration, whose manual time
 * is the estimate. */
static void run_row(qk_gb_state *st, void *arg) {
    bench_row *row = arg;
    if (row->failed) { /* its check before timing, or a run while sampling */
        while (qk_gb_keep_running(st))
            qk_gb_set_iteration_time(st, 0);
        qk_gb_fail(st, row->message);
        return;
    }
    while (qk_gb_keep_running(st)) {
        if (!row->skipped && !row->measured) no_clean_sample(row), row->skipped = 1;
        if (row->skipped) {
            qk_gb_skip(st, row->message);
            return;
        }
        qk_gb_set_iteration_time(st, row->est.median);
    }
    if (row->v) {
        char err[512];
        /* GPU: the device's output of the last timed unit, copied back without running it */
        /* a MOE plug-in's: its output of the last run, copied without running it */
        if (row->v->moe && moe_output(row->v, err, sizeof err)) {
            row->failed = 1;
            snprintf(row->message, sizeof row->message, "%s", err);
            qk_gb_fail(st, row->message);
            return;
        }
        if (row->v->gpu && qk_gpu_case_output(row->v->gpu, row->v->y, err, sizeof err)) {
            row->skipped = 1;
            snprintf(row->message, sizeof row->message, "%s", err);
            qk_gb_skip(st, row->message);
            return;
        }
        check_last_output(st, row, row->v->y);
        if (row->failed) return;
    }
    report(st, row);
}

/* Google Benchmark hands each finished run here instead of printing it. */
static void on_result(const qk_gb_result *r, void *ctx) {
    (void)ctx;
    bench_row *row = NULL;
    for (size_t i = 0; i < g.n_rows && !row; i++)
        if (!strcmp(g.rows[i].name, r->name)) row = &g.rows[i];
    if (!row) return;
    if (r->skipped && !row->skipped && !row->failed) {
        row->skipped = 1;
        snprintf(row->message, sizeof row->message, "%s", r->message);
    }
    g.n_done++;
}

/* A key of the JSON context. --benchmark_context's keys are in the context first, and Google
 * Benchmark keeps them over bench's: a key that bench writes is refused rather than replaced. */
static void add_context(const char *key, const char *value) {
    const char *user = g.o.gb_context;
    size_t n = strlen(key);
    for (const char *p = user; p && *p; p += strcspn(p, ","), p += *p == ',') {
        size_t k = strcspn(p, "=,");
        if (k == n && !strncmp(p, key, n))
            qk_die("--benchmark_context: '%s' is a key bench writes itself (the run's "
                   "fingerprint and parameters); choose another name",
                   key);
    }
    qk_gb_add_context(key, value);
}

/* The hwloc fingerprint's keys; cpu_model and cpu_caches are kept for the header. */
static char summary_lines[1024];
static void emit_context(const char *key, const char *value, void *ctx) {
    int summary = ctx != NULL;
    add_context(key, value);
    size_t len = strlen(summary_lines);
    if (summary && (!strcmp(key, "cpu_model") || !strcmp(key, "cpu_caches")))
        snprintf(summary_lines + len, sizeof summary_lines - len, "# %s: %s\n", key, value);
}

/* The built-in variants (the CPU table, then the GPU table), then the plug-ins'. */
static const qk_kernel *variant_at(size_t i) {
    if (i < qk_cpu_kernel_count) return &qk_cpu_kernels[i];
    i -= qk_cpu_kernel_count;
    return i < qk_gpu_kernel_count ? &qk_gpu_kernels[i] : qk_plugin_kernel(i - qk_gpu_kernel_count);
}
static size_t variant_count(void) {
    return qk_cpu_kernel_count + qk_gpu_kernel_count + qk_plugin_kernel_count();
}
/* NULL when this machine runs k, else why not. */
static const char *unsupported(const qk_kernel *k) {
    const char *hidden = getenv("QK_DISABLE_ISA");
    if (k->plugin && k->device == QK_DEV_CPU && hidden && *hidden) /* else named by an ISA it hid */
        return "QK_DISABLE_ISA hides instruction sets from bench's own kernels only: a plug-in "
               "runs the ones its build chose";
    return k->device == QK_DEV_GPU ? qk_gpu_unsupported() : qk_cpu_unsupported(k);
}

/* Every variant: its formats, whether this machine runs it, what it does; a plug-in's also
 * where it came from (plug-in name, version, path) and, for a quantizer, whether it is
 * bit-identical to the reference. */
static void list_kernels(void) {
    printf("%-18s %-6s %-8s %-14s %s\n", "variant", "device", "op", "formats", "runs here");
    for (size_t i = 0; i < variant_count(); i++) {
        const qk_kernel *k = variant_at(i);
        const char *why = unsupported(k), *verdict = qk_plugin_quant_verdict(k);
        static char origin[4 * PATH_MAX + 600];
        char formats[32], label[160];
        origin[0] = 0;
        if (k->plugin)
            snprintf(origin, sizeof origin, "  [plug-in %s, %s]%s%s",
                     qk_plugin_label(k->plugin, label, sizeof label), k->plugin->path,
                     verdict ? " NOT BIT-IDENTICAL: " : "", verdict ? verdict : "");
        printf("%-18s %-6s %-8s %-14s %s%s  -- %s%s\n", k->name,
               k->device == QK_DEV_GPU ? "cuda" : "cpu", qk_op_name(k->op),
               qk_kernel_formats(k, formats, sizeof formats), why ? "no: " : "yes", why ? why : "",
               k->summary, origin);
    }
}

/* The matvec and MOE variants named by the comma-separated patterns; each pattern must match. */
static size_t select_kernels(const char *patterns, const qk_kernel **sel, size_t max) {
    size_t n = 0;
    char buf[1024];
    if (snprintf(buf, sizeof buf, "%s", patterns) >= (int)sizeof buf)
        qk_die("--kernel: list longer than 1023 characters");
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int hit = 0;
        for (size_t i = 0; i < variant_count(); i++) {
            const qk_kernel *k = variant_at(i);
            if (k->op == QK_OP_QUANTIZE || fnmatch(t, k->name, 0)) continue;
            hit = 1;
            int dup = 0;
            for (size_t j = 0; j < n; j++)
                dup |= sel[j] == k;
            if (!dup && n == max) qk_die("--kernel: more than %zu variants selected", max);
            if (!dup) sel[n++] = k;
        }
        if (!hit)
            qk_die("--kernel: no matvec or moe variant matches '%s' (bench --list names them)", t);
    }
    if (!n) qk_die("--kernel: '%s' names no variant (bench --list names them)", patterns);
    return n;
}

static int all_finite(const double *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return 0;
    return 1;
}

/* The weights and the peak read buffer: huge pages (cpu/huge_alloc.h says why). */
static void *xmalloc_huge(size_t bytes, const char *what) {
    void *p = qk_alloc_huge(bytes);
    if (!p) qk_die("out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

static void *xmalloc(size_t bytes, const char *what) {
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64))
        qk_die("out of memory allocating %zu bytes for %s", bytes, what);
    return p;
}

static void dump(const char *dir, const char *file, const float *f, const double *d, size_t n) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s.npy", dir, file) >= (int)sizeof path)
        qk_die("--dump-output: path '%s/%s.npy' is too long", dir, file);
    if ((f ? qk_npy_write_f32(path, f, n) : qk_npy_write_f64(path, d, n)))
        qk_die("--dump-output: cannot write %s: %s", path, strerror(errno));
}

/* A batch's outputs (f32 f or f64 d): one token as today's 1-D DIR/NAME.npy; N > 1 tokens as
 * DIR/NAME.t<N>.npy of shape (N, k, rows). */
static void dump_batch(const char *name, const batch *b, const float *f, const double *d) {
    const char *dir = g.o.dump_dir;
    if (b->n_tokens == 1) {
        dump(dir, name, f, d, b->n_out);
        return;
    }
    char path[4096];
    size_t shape[3] = {b->n_tokens, g.o.n_ids, g.o.rows};
    if (snprintf(path, sizeof path, "%s/%s.t%zu.npy", dir, name, b->n_tokens) >= (int)sizeof path)
        qk_die("--dump-output: path '%s/%s.t%zu.npy' is too long", dir, name, b->n_tokens);
    if (qk_npy_write_shaped(path, f ? 'f' : 'd', f ? (const void *)f : (const void *)d, shape, 3))
        qk_die("--dump-output: cannot write %s: %s", path, strerror(errno));
}

/* Set-up work spread over the pool, one expert (or one selected id) per step. */
typedef struct {
    qk_block_q4k *w;
    const int32_t *experts;
    const double *x64;
    double *y64;
    size_t n;
    _Atomic int failed;
} setup_job;

static void generate_experts(void *arg, int ti, int nt) {
    setup_job *j = arg;
    size_t per_expert = g.o.rows * (g.o.cols / QK_K);
    for (size_t e = (size_t)ti; e < j->n; e += (size_t)nt)
        if (qk_synth_expert(g.o.seed, j->experts[e], g.o.rows, g.o.cols, j->w + e * per_expert))
            j->failed = 1;
}

/* Slot i (token i / k, its choice i % k) against that token's f64 activations. */
static void run_oracle(void *arg, int ti, int nt) {
    setup_job *j = arg;
    size_t per_expert = g.o.rows * (g.o.cols / QK_K);
    for (size_t i = (size_t)ti; i < j->n; i += (size_t)nt)
        qk_oracle_q4k(j->w + (size_t)g.ids[i] * per_expert, g.o.rows, g.o.cols,
                      j->x64 + i / g.o.n_ids * g.o.cols, j->y64 + i * g.o.rows);
}

/* --json FILE is written to a temporary file beside it and renamed over it once the run has
 * finished and every write has succeeded, so a run that fails (a bad flag found late, an
 * interrupted run, a full disk) leaves an existing FILE as it was. The file replaced keeps its
 * mode; a symbolic link is followed (its target is replaced, the link stays); a file that is
 * read-only, or has other hard links (rename would part them), is refused. A character device
 * (/dev/null) is written directly; a FIFO, a directory or a socket is refused before the run.
 * Google Benchmark's own file is /dev/null: bench writes the text its reporter made
 * (qk_gb_json_text) and checks each write. */
static char json_tmp[PATH_MAX + 16], json_final[PATH_MAX];
static volatile sig_atomic_t json_tmp_live;
static void remove_json_tmp(void) {
    if (json_tmp_live) unlink(json_tmp);
    json_tmp_live = 0;
}
/* SIGINT, SIGTERM, SIGHUP while the temporary file exists: remove it, then die of the signal */
static void json_signal(int sig) {
    if (json_tmp_live) unlink(json_tmp);
    signal(sig, SIG_DFL);
    raise(sig);
}
static void json_target(const char *path) {
    struct stat st, lst;
    const char *final = path;
    mode_t mode;
    if (!lstat(path, &lst) && S_ISLNK(lst.st_mode) && stat(path, &st))
        qk_die("--json: %s is a symbolic link to nothing (%s)", path, strerror(errno));
    if (!stat(path, &st)) {
        if (S_ISCHR(st.st_mode)) {
            if (access(path, W_OK)) qk_die("--json: cannot write %s: %s", path, strerror(errno));
            return;
        }
        if (!S_ISREG(st.st_mode))
            qk_die("--json: cannot write %s: %s", path,
                   S_ISFIFO(st.st_mode)  ? "a FIFO (bench writes files, /dev/null or a device)"
                   : S_ISDIR(st.st_mode) ? "a directory"
                                         : "not a regular file or a character device");
        if (access(path, W_OK)) qk_die("--json: cannot write %s: %s", path, strerror(errno));
        if (!(st.st_mode & 0222)) /* access() says yes to root */
            qk_die("--json: %s is read-only; bench does not replace it", path);
        if (st.st_nlink > 1)
            qk_die("--json: %s has %ju hard links; replacing it would part them (remove it "
                   "or name another file)",
                   path, (uintmax_t)st.st_nlink);
        if (!realpath(path, json_final))
            qk_die("--json: cannot resolve %s: %s", path, strerror(errno));
        final = json_final;
        mode = st.st_mode & 07777;
    } else {
        if (snprintf(json_final, sizeof json_final, "%s", path) >= (int)sizeof json_final)
            qk_die("--json: file name too long");
        final = json_final;
        mode_t mask = umask(0); /* the mode a new file would get, not mkstemp's 0600 */
        umask(mask);
        mode = 0666 & ~mask;
    }
    if (snprintf(json_tmp, sizeof json_tmp, "%s.tmpXXXXXX", final) >= (int)sizeof json_tmp)
        qk_die("--json: file name too long");
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT), sigaddset(&block, SIGTERM), sigaddset(&block, SIGHUP);
    sigprocmask(SIG_BLOCK, &block, &old);
    int fd = mkstemp(json_tmp);
    int e = errno;
    if (fd >= 0) {
        json_tmp_live = 1;
        struct sigaction sa = {0};
        sa.sa_handler = json_signal;
        sigemptyset(&sa.sa_mask);
        for (int i = 0; i < 3; i++) {
            int sig = i == 0 ? SIGINT : i == 1 ? SIGTERM : SIGHUP;
            struct sigaction was;
            /* a signal ignored when bench started (nohup) stays ignored */
            if (!sigaction(sig, NULL, &was) && was.sa_handler != SIG_IGN) sigaction(sig, &sa, NULL);
        }
        atexit(remove_json_tmp);
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) qk_die("--json: cannot write %s: %s", path, strerror(e));
    fchmod(fd, mode);
    close(fd);
}
/* Every row's samples as JSON (the value of the top-level key "qkbench_samples"): per row, each
 * sample's time per unit in us and why it was dropped (0: clean); the peak reference's sample
 * taken beside it and why that was dropped; CUPTI's kernel time per unit (null: no record). */
static void write_array(FILE *f, const char *key, const double *v, size_t n, int last) {
    fprintf(f, "\"%s\": [", key);
    for (size_t i = 0; i < n; i++) {
        if (isfinite(v[i]))
            fprintf(f, "%s%.7g", i ? ", " : "", v[i] * 1e6);
        else
            fprintf(f, "%snull", i ? ", " : "");
    }
    fprintf(f, "]%s", last ? "" : ", ");
}
static char *samples_json(void) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) qk_die("out of memory writing the samples");
    fprintf(f, "{");
    int first = 1;
    for (size_t i = 0; i < g.n_rows; i++) {
        const bench_row *row = &g.rows[i];
        const sample_log *l = &row->log;
        if (!l->n) continue;
        fprintf(f, "%s\n    \"%s\": {", first ? "" : ",", row->name);
        first = 0;
        int gpu = row->v && on_gpu(row->v);
        write_array(f, "time_us", l->t, l->n, 0);
        fprintf(f, "\"dropped\": [");
        for (size_t s = 0; s < l->n; s++)
            fprintf(f, "%s%d", s ? ", " : "", l->why[s]);
        fprintf(f, "]%s", row->peak || gpu ? ", " : "");
        if (row->peak) {
            write_array(f, "peak_us", l->peak, l->n, 0);
            fprintf(f, "\"peak_dropped\": [");
            for (size_t s = 0; s < l->n; s++)
                fprintf(f, "%s%d", s ? ", " : "", l->peak_why[s]);
            fprintf(f, "]%s", gpu ? ", " : "");
        }
        if (gpu) write_array(f, "kernel_us", l->kernel, l->n, 1);
        fprintf(f, "}");
    }
    fprintf(f, "\n  }");
    if (fclose(f)) qk_die("out of memory writing the samples");
    return text;
}

static void finish_json(const char *path) {
    const char *text = qk_gb_json_text(), *target = json_tmp_live ? json_tmp : path;
    const char *kept = json_tmp_live ? "; an existing file is left as it was" : "";
    if (!*text) qk_die("--json: Google Benchmark wrote no JSON for %s", path);
    /* Google Benchmark's object, with "qkbench_samples" added as its last key */
    size_t n = strlen(text);
    while (n && (text[n - 1] == '\n' || text[n - 1] == ' '))
        n--;
    if (!n || text[n - 1] != '}') qk_die("--json: Google Benchmark's JSON does not end in '}'");
    char *samples = samples_json();
    FILE *f = fopen(target, "w");
    if (!f) qk_die("--json: cannot write %s: %s%s", path, strerror(errno), kept);
    errno = 0;
    int bad = fwrite(text, 1, n - 1, f) != n - 1;
    bad = bad || fprintf(f, ",\n  \"qkbench_samples\": %s\n}\n", samples) < 0;
    bad = bad || fflush(f) != 0;
    int e = errno;
    bad = fclose(f) != 0 || bad;
    free(samples);
    if (!e) e = errno;
    if (bad) qk_die("--json: writing %s failed: %s%s", path, e ? strerror(e) : "I/O error", kept);
    if (!json_tmp_live) return;
    if (rename(json_tmp, json_final))
        qk_die("--json: cannot rename %s to %s: %s", json_tmp, json_final, strerror(errno));
    json_tmp_live = 0;
}

/* A row's name as Google Benchmark matches it: every row runs one iteration, on manual time. */
static void full_name(const bench_row *row, char *out, size_t size) {
    snprintf(out, size, "%s/iterations:1/manual_time", row->name);
}

/* --benchmark_filter must select a row, checked before anything is printed. Google Benchmark
 * matches a POSIX extended regular expression (a leading '-' negates it) against each row's full
 * name. A variant's %peak needs its peak read row: the filter is replaced by the exact list of
 * the rows it selects plus the peak rows they need. */
static void check_filter(void) {
    const char *filter = qk_gb_filter();
    for (size_t i = 0; i < g.n_rows; i++)
        g.rows[i].selected = 1;
    if (!*filter || !strcmp(filter, "all")) return;
    int negate = *filter == '-';
    regex_t re;
    if (regcomp(&re, filter + negate, REG_EXTENDED | REG_NOSUB))
        qk_die("--benchmark_filter: '%s' is not a regular expression", filter);
    char *run = calloc(g.n_rows ? g.n_rows : 1, 1);
    if (!run) qk_die("out of memory");
    size_t matched = 0;
    for (size_t i = 0; i < g.n_rows; i++) {
        char full[220];
        full_name(&g.rows[i], full, sizeof full);
        run[i] = (regexec(&re, full, 0, NULL, 0) == 0) != negate;
        matched += run[i];
    }
    regfree(&re);
    if (!matched)
        qk_die("--benchmark_filter: '%s' matches no row (rows are named like %s)", filter,
               g.rows[0].name);
    for (size_t i = 0; i < g.n_rows; i++)
        if (run[i] && g.rows[i].peak) run[g.rows[i].peak - g.rows] = 1;
    for (size_t i = 0; i < g.n_rows; i++)
        g.rows[i].selected = run[i];
    /* a test hook whose variant's rows the filter leaves out would do nothing, silently */
    for (int hook = 0; hook < 2; hook++) {
        char name[128], shown[160];
        const char *var = hook ? "QK_INJECT_LATE_FAULT" : "QK_INJECT_SLOWDOWN";
        const char *late = getenv("QK_INJECT_LATE_FAULT");
        if (hook ? !late || !*late : !qk_hook_slowdown_target(name, sizeof name)) continue;
        if (hook) snprintf(name, sizeof name, "%s", late);
        int timed = 0;
        for (size_t i = 0; i < g.n_rows && !timed; i++)
            timed = run[i] && g.rows[i].v && !on_gpu(g.rows[i].v) &&
                    (!hook || !is_moe(g.rows[i].v)) && !strcmp(g.rows[i].v->k->name, name);
        if (!timed)
            qk_die("%s: '%s': --benchmark_filter '%s' leaves out every row of that variant", var,
                   qk_gguf_printable(name, strlen(name), shown, sizeof shown), filter);
    }
    /* ^(name|name|...)(/.*)?$ with every character but [A-Za-z0-9_] in brackets (names hold
     * letters, digits, '_', '/' and '.') */
    size_t cap = 16, len = 0;
    for (size_t i = 0; i < g.n_rows; i++)
        cap += 3 * strlen(g.rows[i].name) + 1;
    char *exact = malloc(cap);
    if (!exact) qk_die("out of memory");
    len += (size_t)snprintf(exact, cap, "^(");
    int first = 1;
    for (size_t i = 0; i < g.n_rows; i++) {
        if (!run[i]) continue;
        if (!first) exact[len++] = '|';
        first = 0;
        for (const char *c = g.rows[i].name; *c; c++) {
            int plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                        (*c >= '0' && *c <= '9') || *c == '_';
            if (plain) {
                exact[len++] = *c;
            } else { /* a bracket expression: literal in POSIX and ECMAScript regexes alike */
                exact[len++] = '[', exact[len++] = *c, exact[len++] = ']';
            }
        }
    }
    snprintf(exact + len, cap - len, ")(/.*)?$");
    qk_gb_set_filter(exact);
    free(exact);
    free(run);
}

static pthread_t pool_threads[QK_MAX_THREADS];
static void pin_job(void *arg, int ti, int nt) {
    (void)nt;
    int *failed = arg;
    if (qk_hw_pin_self(g.hw, ti)) failed[ti & 255] = 1;
    pool_threads[ti] = pthread_self(); /* every sample checks each thread's CPU time */
}

/* Step 1, options: parse them; --help and --inspect end the run here (returns 1). */
static int read_options(int argc, char **argv) {
    qk_options *o = &g.o;
    qk_parse_options(o, argc, argv);
    if (o->help) {
        qk_print_usage();
        return 1;
    }
    if (qk_cpu_isa_env_error()) qk_die("%s", qk_cpu_isa_env_error());
    if (o->inspect && !o->list) {
        qk_model_inspect(o->model);
        return 1;
    }
    return 0;
}

/* Step 2, the plug-ins: the default ones (QK_DEFAULT_PLUGINS, unless --no-default-plugins; one
 * that fails to load is a warning), then each --plugin (one that fails ends the run, exit 2).
 * Their variants join the built-in ones; --list ends the run here (returns 1). */
static int load_plugins(void) {
    qk_options *o = &g.o;
    char err[PATH_MAX + 600];
    const char *defaults = QK_DEFAULT_PLUGINS;
    for (const char *p = defaults; !o->no_default_plugins && *p;
         p += strcspn(p, ":"), p += *p == ':') {
        char path[PATH_MAX];
        size_t n = strcspn(p, ":");
        if (!n || n >= sizeof path) continue;
        memcpy(path, p, n);
        path[n] = 0;
        if (qk_plugin_load(path, 1, err, sizeof err))
            fprintf(stderr, "bench: warning: default plug-in not loaded: %s\n", err);
    }
    for (int i = 0; i < o->n_plugins; i++)
        if (qk_plugin_load(o->plugins[i], 0, err, sizeof err)) qk_die("--plugin %s", err);
    if (o->list) {
        list_kernels();
        return 1;
    }
    return 0;
}

/* Step 3, the machine: threads and pinning within the CPUs this process may run on (taskset,
 * cgroups), decided before anything is written; the variants asked for. */
static void plan_machine(void) {
    qk_options *o = &g.o;
    char err[256];
    g.hw = qk_hw_open(err, sizeof err);
    if (!g.hw) qk_die("%s", err);
    int n_allowed = qk_hw_allowed_cpus(g.hw, g.allowed, sizeof g.allowed);
    if (!o->threads) o->threads = n_allowed < QK_MAX_THREADS ? n_allowed : QK_MAX_THREADS;
    /* more threads than CPUs would time the spin-waits, not the kernels */
    if (o->threads > n_allowed)
        qk_die("--threads %d: this process may run on %d CPU%s (%s)", o->threads, n_allowed,
               n_allowed == 1 ? "" : "s", g.allowed);
    if (qk_hw_plan_pinning(g.hw, o->threads, g.pinning, sizeof g.pinning))
        qk_die("--threads %d: hwloc finds fewer places to pin them among CPUs %s", o->threads,
               g.allowed);
    g.n_sel = select_kernels(o->kernels, g.sel, MAX_VARIANTS);
    check_hooks(g.sel, g.n_sel);
    /* --decode needs a GPU variant that runs here: refused now, before anything is written */
    int gpu_runs = 0, gpu_skipped = 0;
    for (size_t i = 0; i < g.n_sel; i++) /* CUDA MOE plug-ins have hot rows only (ABI 2) */
        if (g.sel[i]->device == QK_DEV_GPU && g.sel[i]->op != QK_OP_MOE) {
            gpu_runs |= !unsupported(g.sel[i]);
            gpu_skipped |= unsupported(g.sel[i]) != NULL;
        }
    if (o->decode_asked && !gpu_runs)
        qk_die("--decode: decode rows are GPU rows, and no GPU variant runs here%s",
               gpu_skipped ? " (bench --list says why)" : "");
    /* a MOE plug-in variant without cold rows, asked for cold rows only: refused now (with
     * other rows to run, the table's footnote says it has none) */
    if (o->cold && !o->hot && !o->decode) {
        const qk_kernel *no_cold = NULL;
        int any_row = 0;
        for (size_t i = 0; i < g.n_sel; i++) {
            const qk_kernel *k = g.sel[i];
            int cold = k->op != QK_OP_MOE || (k->device == QK_DEV_CPU && k->ext->evict);
            if (!cold && !no_cold) no_cold = k;
            any_row |= cold;
        }
        if (!any_row)
            qk_die("--cold: %s has no cold row: %s", no_cold->name,
                   no_cold->device == QK_DEV_GPU
                       ? "a CUDA plug-in variant is timed hot only (ABI 2)"
                       : "its plug-in gives no evict");
    }
}

/* Step 4, the data's source: a Q4_K tensor of a GGUF file or the synthetic default, the
 * experts, and the activations (a captured vector, or a profile drawn from the seed). */
static void open_data(void) {
    qk_options *o = &g.o;
    snprintf(g.weights, sizeof g.weights, "qwen3-30b-a3b-synthetic");
    if (o->model) {
        if (o->tensor)
            snprintf(g.tensor_name, sizeof g.tensor_name, "%s", o->tensor);
        else
            qk_model_expert_tensor_name(o->layer, o->proj, g.tensor_name, sizeof g.tensor_name);
        qk_model_open(o->model, g.tensor_name, &g.model);
        o->rows = g.model.rows, o->cols = g.model.cols, o->shape = g.tensor_name;
        snprintf(g.weights, sizeof g.weights, "%s: %s (%s, q4_K, %zu x %zu x %zu experts)",
                 o->model, g.tensor_name, g.model.architecture, g.model.rows, g.model.cols,
                 g.model.n_experts);
        qk_choose_experts(o, g.model.n_experts, g.tensor_name);
    } else {
        qk_choose_experts(o, QK_N_EXPERTS, "the synthetic default");
    }
    g.x = xmalloc(o->max_tokens * o->cols * sizeof *g.x, "activations");
    if (o->activations) {
        float *fx;
        size_t n, rows;
        char err[512];
        if (qk_npy_read_f32_rows(o->activations, &fx, &rows, &n, err, sizeof err))
            qk_die("--activations: %s", err);
        if (n != o->cols)
            qk_die("--activations: %s holds vectors of %zu values, the shape %s needs cols = %zu",
                   o->activations, n, o->shape, o->cols);
        if (rows != o->max_tokens)
            qk_die("--activations: %s holds %zu token vector%s, but %s%zu: one row per token",
                   o->activations, rows, rows == 1 ? "" : "s",
                   o->n_token_counts > 1 ? "the largest batch of --tokens has "
                                         : "--tokens asks for ",
                   o->max_tokens);
        memcpy(g.x, fx, rows * n * sizeof *g.x);
        free(fx);
    } else { /* one stream, token after token: token 0 is the single-token default's */
        qk_rng r;
        qk_rng_seed(&r, o->seed ^ 0xac7);
        for (size_t t = 0; t < o->max_tokens; t++)
            qk_act_fill(&r, (qk_act_profile)o->act, g.x + t * o->cols, o->cols);
    }
}

/* Step 5, the outputs: --dump-output's folder and --json's file are checked now, not after the
 * run; Google Benchmark gets its flags. */
static void prepare_outputs(void) {
    qk_options *o = &g.o;
    if (o->dump_dir && mkdir(o->dump_dir, 0777) && errno != EEXIST)
        qk_die("--dump-output: cannot create directory %s: %s", o->dump_dir, strerror(errno));
    if (o->json) {
        json_target(o->json);
        /* a file size limit (ulimit -f) must fail the write in one line, not kill bench */
        signal(SIGXFSZ, SIG_IGN);
        o->gb_argv[o->gb_argc++] = "--benchmark_out=/dev/null";
        o->gb_argv[o->gb_argc++] = "--benchmark_out_format=json";
    }
    /* bench samples each row itself (one Google Benchmark iteration whose time is the row's
     * estimate): one repetition, given as a flag so that names do not change with it */
    memmove(o->gb_argv + 2, o->gb_argv + 1, (size_t)(o->gb_argc - 1) * sizeof *o->gb_argv);
    o->gb_argv[1] = "--benchmark_repetitions=1";
    o->gb_argc += 1;
    o->gb_argv[o->gb_argc] = NULL;
    if (qk_gb_init(o->gb_argc, o->gb_argv) > 1)
        qk_die("unknown Google Benchmark flag '%s'", o->gb_argv[1]);
}

/* Step 6, the threads: the pool, each thread bound to its planned place. */
static void start_threads(void) {
    qk_options *o = &g.o;
    g.pool = qk_pool_create(o->threads);
    if (!g.pool) qk_die("cannot start %d threads: %s", o->threads, strerror(errno));
    int pin_failed[256] = {0};
    qk_pool_run(g.pool, pin_job, pin_failed);
    if (qk_sample_watch(pool_threads, o->threads))
        qk_die("cannot read the CPU clock of the pool's threads: %s", strerror(errno));
    g.pinned = 1;
    for (int t = 0; t < o->threads && t < 256; t++)
        if (pin_failed[t]) {
            snprintf(g.pinning, sizeof g.pinning, "not pinned (hwloc could not bind thread %d)", t);
            g.pinned = 0;
            break;
        }
    for (int t = 0; t < o->threads && g.pinned; t++)
        g.pinned = (g.cpus[t] = qk_hw_place_cpu(g.hw, t)) >= 0;
}

/* Step 7, the weights and the oracles: only the distinct experts used are generated (or
 * copied from the file, compact and aligned), ids index that compact array; then the f64
 * oracle of every selected expert. */
static void make_weights_and_oracle(void) {
    qk_options *o = &g.o;
    const size_t n_slots = o->max_tokens * o->n_ids;
    g.n_distinct = qk_distinct_experts(o->ids, n_slots, g.local_ids, g.distinct);
    g.ids = g.local_ids;
    g.per_expert = o->rows * (o->cols / QK_K);
    g.n_out = n_slots * o->rows;
    g.w = xmalloc_huge(g.n_distinct * g.per_expert * sizeof *g.w, "weights");
    if (o->model) {
        for (size_t e = 0; e < g.n_distinct; e++)
            memcpy(g.w + e * g.per_expert, qk_model_expert(&g.model, (size_t)g.distinct[e]),
                   g.per_expert * sizeof *g.w);
    } else {
        setup_job job = {.w = g.w, .experts = g.distinct, .n = g.n_distinct};
        qk_pool_run(g.pool, generate_experts, &job);
        if (job.failed) qk_die("out of memory generating the experts");
    }
    g.x64 = xmalloc(o->max_tokens * o->cols * sizeof *g.x64, "oracle");
    g.y_ref = xmalloc(g.n_out * sizeof *g.y_ref, "oracle");
    qk_activations_f64(QK_FMT_F32, g.x, o->max_tokens * o->cols, g.x64);
    setup_job oracle = {.w = g.w, .x64 = g.x64, .y64 = g.y_ref, .n = n_slots};
    qk_pool_run(g.pool, run_oracle, &oracle);
}

/* The first n_tokens tokens' activations in format f by the reference quantizer (a variant's
 * own quantization must be identical), into xq of n_tokens x qk_format_bytes(f, cols). */
static void quantize_reference(qk_format f, size_t n_tokens, void *xq) {
    const size_t cols = g.o.cols, stride = qk_format_bytes(f, cols);
    for (size_t t = 0; t < n_tokens; t++) {
        void *out = (char *)xq + t * stride;
        if (f == QK_FMT_Q8_K) qk_quantize_q8k_ref(g.x + t * cols, out, cols);
        if (f == QK_FMT_Q8_1) qk_quantize_q8_1_ref(g.x + t * cols, out, cols);
        if (f == QK_FMT_F32) memcpy(out, g.x + t * cols, stride);
    }
}

/* Step 7b, the batches: one per --tokens value, the first N tokens of the data; how many
 * experts each touches and the most tokens one expert serves. */
static void make_batches(void) {
    qk_options *o = &g.o;
    static size_t tokens_on[QK_MAX_EXPERTS];
    static size_t last_token[QK_MAX_EXPERTS];
    for (size_t bi = 0; bi < o->n_token_counts; bi++) {
        batch *b = &g.batches[g.n_batches++];
        b->n_tokens = o->tokens[bi];
        b->n_out = b->n_tokens * o->n_ids * o->rows;
        if (b->n_tokens > 1) snprintf(b->suffix, sizeof b->suffix, "/t%zu", b->n_tokens);
        memset(tokens_on, 0, g.n_distinct * sizeof *tokens_on);
        for (size_t t = 0; t < b->n_tokens; t++)
            for (size_t j = 0; j < o->n_ids; j++) {
                size_t e = (size_t)g.ids[t * o->n_ids + j];
                if (tokens_on[e] && last_token[e] == t) continue; /* listed twice by one token */
                b->n_touched += !tokens_on[e]++;
                last_token[e] = t;
                if (tokens_on[e] > b->max_share) b->max_share = tokens_on[e];
            }
    }
}

/* The algorithm-exact oracle of an activation format, Σ deq64(W)·deq64(Q8(x)), once for the
 * largest batch (a smaller one reads its first outputs). */
static const double *exact_oracle(qk_format f) {
    if (!g.y_exact[f]) {
        const size_t n_tokens = g.o.max_tokens, stride = qk_format_bytes(f, g.o.cols);
        void *xq = xmalloc(n_tokens * stride, "oracle");
        quantize_reference(f, n_tokens, xq);
        for (size_t t = 0; t < n_tokens; t++)
            qk_activations_f64(f, (const char *)xq + t * stride, g.o.cols, g.x64 + t * g.o.cols);
        free(xq);
        g.y_exact[f] = xmalloc(g.n_out * sizeof *g.y_exact[f], "oracle");
        setup_job exact = {.w = g.w, .x64 = g.x64, .y64 = g.y_exact[f], .n = n_tokens * g.o.n_ids};
        qk_pool_run(g.pool, run_oracle, &exact);
    }
    return g.y_exact[f];
}

/* v's batch in v's activation format by the reference quantizer (what a GPU or plug-in
 * variant's unit reads; its own quantization must be identical). */
static void reference_activations(variant *v) {
    const qk_kernel *k = v->k;
    v->xq_bytes = v->b->n_tokens * qk_format_bytes(k->act_format, g.o.cols);
    v->xq = xmalloc(v->xq_bytes, "activations");
    quantize_reference(k->act_format, v->b->n_tokens, v->xq);
}

/* A GPU variant's case on the device, its output, and the reference quantization of x for
 * the exact oracle (the GPU's is identical). */
static void prepare_gpu_variant(variant *v) {
    qk_options *o = &g.o;
    const qk_kernel *k = v->k;
    char err[512];
    if (!g.any_gpu && qk_gpu_open(err, sizeof err)) qk_die("GPU: %s", err);
    g.any_gpu = 1;
    v->gpu = qk_gpu_case_create(k, g.w, o->rows, o->cols, g.n_distinct, g.local_ids, v->b->n_tokens,
                                o->n_ids, g.x, err, sizeof err);
    if (!v->gpu) qk_die("%s: %s", k->name, err);
    reference_activations(v);
    v->y = xmalloc(v->b->n_out * sizeof *v->y, "outputs");
    if (qk_gpu_case_run(v->gpu, v->y, err, sizeof err)) qk_die("%s: %s", k->name, err);
}

/* A MOE plug-in variant: the plug-in's state made from the case (untimed), one run on
 * NaN-poisoned outputs, its output copied back; the reference quantization of x for the exact
 * oracle of its activation format. CPU: the pool's workers parked first, and the plug-in told
 * the CPUs bench pinned them to. */
static int prepare_moe_variant(variant *v) {
    qk_options *o = &g.o;
    const qk_kernel *k = v->k;
    char err[512] = "";
    if (k->device == QK_DEV_GPU && !g.any_gpu) {
        if (qk_gpu_open(err, sizeof err)) qk_die("GPU: %s", err);
        g.any_gpu = 1;
    }
    reference_activations(v);
    v->y = xmalloc(v->b->n_out * sizeof *v->y, "outputs");
    for (size_t i = 0; i < v->b->n_out; i++)
        v->y[i] = NAN;
    qkb_moe_case c = {.weights = g.w,
                      .rows = o->rows,
                      .cols = o->cols,
                      .n_experts = g.n_distinct,
                      .ids = g.ids,
                      .n_ids = o->n_ids,
                      .x = g.x,
                      .n_threads = o->threads,
                      .cpus = g.pinned ? g.cpus : NULL,
                      .cuda_device = 0,
                      .n_tokens = v->b->n_tokens};
    char line[540];
    qk_plugin_running(k);
    v->moe = k->ext->create(&c, err, sizeof err);
    qk_plugin_running(NULL);
    if (!v->moe) { /* a case it cannot take (CPU_REPACK and rows not a multiple of 8): skipped */
        snprintf(g.skip_why[g.n_skipped], sizeof g.skip_why[0], "its plug-in's create failed: %s",
                 one_line(err, sizeof err, line, sizeof line));
        free(v->xq), free(v->y);
        return -1;
    }
    if (k->device == QK_DEV_CPU) qk_pool_park(g.pool);
    /* a failed run or output is a wrong kernel, as a failed check: its rows fail (exit 1) */
    if (moe_run(v))
        snprintf(v->fail, sizeof v->fail, "%s", sample_error);
    else if (moe_output(v, err, sizeof err))
        snprintf(v->fail, sizeof v->fail, "%s", err);
    moe_rest(v, 0);
    return 0;
}

/* The check of a matvec variant's row ranges: each range of every expert group, as the pool
 * splits them over --threads threads, run alone (the matmul on the group's columns, as the unit
 * runs it) on outputs poisoned with a NaN pattern, guard zones either side of each column; any
 * word outside [r0, r1) that changed fails the variant (v->fail), before it runs on the real
 * outputs (a write past them would corrupt the heap). */
enum { RANGE_GUARD = 4096 };
static const uint32_t poison_bits = 0x7fa5a5a5u; /* a quiet NaN no kernel computes */
typedef struct {
    variant *v;
    float *buf; /* per column: RANGE_GUARD + rows + RANGE_GUARD */
    float **ys;
    int ti;
} range_check;
static void check_range(void *arg, size_t grp, size_t r0, size_t r1) {
    range_check *c = arg;
    variant *v = c->v;
    const qk_moe_batch *b = &v->route;
    size_t rows = g.o.rows, span = rows + 2 * RANGE_GUARD;
    size_t s0 = b->group_start[grp], n_cols = b->group_start[grp + 1] - s0;
    if (*v->fail) return;
    for (size_t j = 0; j < n_cols * span; j++)
        memcpy(&c->buf[j], &poison_bits, 4);
    for (size_t col = 0; col < n_cols; col++)
        c->ys[col] = c->buf + col * span + RANGE_GUARD;
    const void *we = (const char *)v->w.data + (size_t)b->group_expert[grp] * v->w.expert_bytes;
    qk_plugin_running(v->k);
    if (v->k->matmul && n_cols > 1)
        v->k->matmul(we, rows, g.o.cols, r0, r1, b->xs + s0, c->ys, n_cols);
    else
        for (size_t col = 0; col < n_cols; col++)
            v->k->matvec(we, rows, g.o.cols, r0, r1, b->xs[s0 + col], c->ys[col]);
    qk_plugin_running(NULL);
    for (size_t col = 0; col < n_cols; col++) {
        const float *y = c->buf + col * span;
        for (size_t j = 0; j < span; j++) {
            uint32_t bits;
            memcpy(&bits, &y[j], 4);
            long long r = (long long)j - RANGE_GUARD;
            if (bits == poison_bits || (r >= (long long)r0 && r < (long long)r1)) continue;
            size_t outside = 0;
            for (size_t q = j; q < span; q++) {
                long long rq = (long long)q - RANGE_GUARD;
                memcpy(&bits, &y[q], 4);
                outside += bits != poison_bits && (rq < (long long)r0 || rq >= (long long)r1);
            }
            char cols_note[64] = "";
            if (n_cols > 1)
                snprintf(cols_note, sizeof cols_note, " in column %zu of %zu", col, n_cols);
            snprintf(
                v->fail, sizeof v->fail,
                "wrong kernel: asked for rows [%zu, %zu) of %zu (thread %d of %d's range), "
                "it wrote y[%lld]%s%s%s (%zu word%s outside the range)",
                r0, r1, rows, c->ti, g.o.threads, r, cols_note, r < 0 ? ", before the output" : "",
                r >= (long long)rows ? ", past the output" : "", outside, outside == 1 ? "" : "s");
            return;
        }
    }
}
static void check_ranges(variant *v) {
    const qk_moe_batch *b = &v->route;
    size_t widest = 1;
    for (size_t grp = 0; grp < b->n_groups; grp++)
        if (b->group_start[grp + 1] - b->group_start[grp] > widest)
            widest = b->group_start[grp + 1] - b->group_start[grp];
    range_check c = {
        v, xmalloc(widest * (g.o.rows + 2 * RANGE_GUARD) * sizeof(float), "the range check"),
        xmalloc(widest * sizeof(float *), "the range check"), 0};
    for (c.ti = 0; c.ti < g.o.threads && !*v->fail; c.ti++)
        qk_moe_batch_ranges(b, v->k->row_group, g.o.rows, c.ti, g.o.threads, check_range, &c);
    free(c.buf), free(c.ys);
}

/* A CPU variant's weight layout (shared with its rows of another batch), its quantizer, its
 * routing, and one unit run on NaN-poisoned outputs. */
static void prepare_cpu_variant(variant *v) {
    qk_options *o = &g.o;
    const qk_kernel *k = v->k;
    if (k->act_format != QK_FMT_F32) {
        v->quant = qk_cpu_best_quantizer(k->act_format);
        if (!v->quant) qk_die("no quantizer for %s activations", qk_format_name(k->act_format));
        if (k->act_format == QK_FMT_Q8_K) g.q8k_quant = v->quant;
    }
    if (k->packed_size) { /* a plug-in's layout size: 0 or absurd is refused */
        qk_plugin_running(k);
        size_t bytes = k->packed_size(o->rows, o->cols);
        qk_plugin_running(NULL);
        size_t plain = o->rows * (o->cols / QK_K) * sizeof(qk_block_q4k);
        if (!bytes) qk_die("%s: packed_size(%zu, %zu) is 0 bytes", k->name, o->rows, o->cols);
        if (bytes / 64 > plain || bytes > SIZE_MAX / g.n_distinct)
            qk_die("%s: packed_size(%zu, %zu) is %zu bytes: absurd (more than 64 times the plain "
                   "layout's %zu)",
                   k->name, o->rows, o->cols, bytes, plain);
    }
    const variant *same = NULL; /* the kernel's variant of an earlier batch: its layout */
    for (const variant *u = g.vars; u < v && !same; u++)
        if (u->k == k && u->w.data) same = u;
    if (same) {
        v->w = same->w;
        v->w.owned = 0;
    } else if (qk_weights_prepare(k, g.w, o->rows, o->cols, g.n_distinct, &v->w)) {
        qk_die("out of memory laying out weights for %s", k->name);
    }
    if (qk_moe_batch_init(&v->route, v->b->n_tokens, o->n_ids, g.n_distinct))
        qk_die("out of memory routing %zu tokens for %s", v->b->n_tokens, k->name);
    const size_t stride = qk_format_bytes(k->act_format, o->cols);
    v->xq_bytes = v->b->n_tokens * stride;
    v->xq = xmalloc(v->xq_bytes, "activations");
    v->y = xmalloc(v->b->n_out * sizeof *v->y, "outputs");
    for (size_t i = 0; i < v->b->n_out; i++)
        v->y[i] = NAN;
    if (!v->quant)
        memcpy(v->xq, g.x, v->xq_bytes);
    else
        for (size_t t = 0; t < v->b->n_tokens; t++)
            v->quant->quantize(g.x + t * o->cols, (char *)v->xq + t * stride, o->cols);
    qk_moe_batch_route(&v->route, g.ids, v->xq, stride, v->y, o->rows);
    check_ranges(v);
    if (!*v->fail) forward(v);
}

/* Why the i-th skipped variant did not run. */
static const char *skip_reason(size_t i) {
    return *g.skip_why[i] ? g.skip_why[i] : unsupported(g.skipped[i]);
}

/* Step 8, the variants: each one this machine runs is laid out and run once, and its output
 * checked against the oracles (deviation, hash) before any timing. */
static void prepare_variants(void) {
    qk_options *o = &g.o;
    g.vars = calloc(g.n_batches * g.n_sel, sizeof *g.vars);
    if (!g.vars) qk_die("out of memory");
    for (size_t bi = 0; bi < g.n_batches; bi++)
        for (size_t s = 0; s < g.n_sel; s++) {
            const qk_kernel *k = g.sel[s];
            if (unsupported(k)) {
                if (!bi) g.skipped[g.n_skipped++] = k;
                continue;
            }
            variant *v = &g.vars[g.n_vars++];
            v->k = k;
            v->b = &g.batches[bi];
            v->slowdown = injected_slowdown(k->name);
            v->late_fault = injected_late_fault(k->name);
            if (k->op == QK_OP_MOE) {
                if (prepare_moe_variant(v)) { /* skip_why[n_skipped] says why */
                    if (g.n_batches > 1) {
                        size_t len = strlen(g.skip_why[g.n_skipped]);
                        snprintf(g.skip_why[g.n_skipped] + len, sizeof g.skip_why[0] - len,
                                 " (%zu token%s)", v->b->n_tokens, v->b->n_tokens == 1 ? "" : "s");
                    }
                    if (g.n_skipped < MAX_VARIANTS) g.skipped[g.n_skipped++] = k;
                    memset(v, 0, sizeof *v);
                    g.n_vars--;
                    continue;
                }
            } else if (k->device == QK_DEV_GPU)
                prepare_gpu_variant(v);
            else
                prepare_cpu_variant(v);
            if (*v->fail) continue; /* its rows fail, untimed */
            const size_t n_out = v->b->n_out;
            v->dev = qk_deviation_of(v->y, g.y_ref, n_out);
            v->output_hash = hash52(v->y, n_out * sizeof *v->y);
            v->checked = 1;
            if (k->act_format != QK_FMT_F32)
                v->exact = qk_deviation_of(v->y, exact_oracle(k->act_format), n_out);
            if (o->dump_dir) dump_batch(k->name, v->b, v->y, NULL);
        }
    if (!g.n_vars) { /* every variant asked for skipped: say why, in one line */
        char why[2048];
        size_t len = 0;
        for (size_t i = 0; i < g.n_skipped && len < sizeof why; i++)
            len += (size_t)snprintf(why + len, sizeof why - len, "%s%s: %s", i ? "; " : "",
                                    g.skipped[i]->name, skip_reason(i));
        qk_die("no variant asked for runs here: %s", why);
    }
    if (o->dump_dir) {
        for (size_t bi = 0; bi < g.n_batches; bi++) {
            const batch *b = &g.batches[bi];
            dump_batch("oracle_f64", b, NULL, g.y_ref);
            for (int f = 0; f < QK_FMT_COUNT; f++)
                if (g.y_exact[f]) {
                    char name[64];
                    snprintf(name, sizeof name, "oracle_exact_%s", qk_format_name((qk_format)f));
                    for (char *c = name; *c; c++)
                        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
                    dump_batch(name, b, NULL, g.y_exact[f]);
                }
            if (b->n_tokens > 1) { /* the user's expert ids, (N, k) */
                char path[4096];
                size_t shape[2] = {b->n_tokens, o->n_ids};
                snprintf(path, sizeof path, "%s/routing.t%zu.npy", o->dump_dir, b->n_tokens);
                if (qk_npy_write_shaped(path, 'i', o->ids, shape, 2))
                    qk_die("--dump-output: cannot write %s: %s", path, strerror(errno));
            }
        }
        if (o->max_tokens == 1) {
            dump(o->dump_dir, "activations", g.x, NULL, o->cols);
        } else {
            char path[4096];
            size_t shape[2] = {o->max_tokens, o->cols};
            snprintf(path, sizeof path, "%s/activations.npy", o->dump_dir);
            if (qk_npy_write_shaped(path, 'f', g.x, shape, 2))
                qk_die("--dump-output: cannot write %s: %s", path, strerror(errno));
        }
    }
    if (g.any_gpu) { /* the GPU rows' peak, as DESIGN.md's anchor measures it: 1 GiB, read+write */
        g.gpu_copy_bps = qk_gpu_copy_bandwidth((size_t)1 << 30, 10);
        if (g.gpu_copy_bps <= 0) qk_die("GPU: the device-to-device copy failed");
        g.gpu_max_mhz = qk_gpu_sm_clock_max_mhz(); /* 0 without NVML: no sample dropped for it */
    }
}

/* What one unit of v reads and writes: each expert the batch touches once (MUL_MAT_ID reads an
 * expert's weights once for every token routed to it), in v's own layout (a packed layout's real
 * size; plain Q4_K for a MOE plug-in, whose own layout bench does not see), the batch's
 * activations in v's format, its outputs. */
static double unit_bytes(const variant *v) {
    double expert_bytes = v->gpu || is_moe(v) ? (double)(g.per_expert * sizeof(qk_block_q4k))
                                              : (double)v->w.expert_bytes;
    return (double)v->b->n_touched * expert_bytes + (double)v->xq_bytes + 4.0 * (double)v->b->n_out;
}

/* Step 9, the rows: each variant's hot and cold rows, and a peak read row per distinct
 * working-set size and temperature, whose samples are taken beside the rows it serves. The
 * variants' rows are registered first, the peak rows last (they report what was sampled). */
static void register_rows(void) {
    qk_options *o = &g.o;
    g.rows = calloc(2 * TEMP_COUNT * (g.n_vars + 1), sizeof *g.rows);
    if (!g.rows) qk_die("out of memory");
    for (size_t vi = 0; vi < g.n_vars; vi++) {
        variant *v = &g.vars[vi];
        for (temperature temp = TEMP_HOT; temp < TEMP_COUNT; temp++) {
            int wanted = temp == TEMP_HOT ? o->hot : temp == TEMP_COLD ? o->cold : o->decode;
            if (!wanted || (temp == TEMP_DECODE && !v->gpu)) continue;
            if (temp == TEMP_COLD && is_moe(v) && (on_gpu(v) || !v->k->ext->evict))
                continue; /* no cold row (print_report says why) */
            double bytes = unit_bytes(v);
            bench_row *peak = NULL; /* the same bytes on the same device */
            for (size_t i = 0; i < g.n_rows && !peak; i++)
                if (!g.rows[i].v && g.rows[i].temp == temp && g.rows[i].bytes == bytes &&
                    (g.rows[i].gpu_read != NULL) == on_gpu(v))
                    peak = &g.rows[i];
            if (!peak) {
                peak = &g.rows[g.n_rows++];
                peak->bytes = bytes;
                peak->temp = temp;
                if (on_gpu(v)) {
                    char err[512];
                    for (size_t i = 0; i < g.n_rows - 1 && !peak->gpu_read; i++)
                        if (g.rows[i].gpu_read && g.rows[i].bytes == bytes)
                            peak->gpu_read = g.rows[i].gpu_read; /* shared across temperatures */
                    if (!peak->gpu_read)
                        peak->gpu_read = qk_gpu_read_create((size_t)bytes, err, sizeof err);
                    if (!peak->gpu_read)
                        qk_die("GPU: the read-only stream of %.0f bytes: %s", bytes, err);
                    peak->sample = sample_gpu;
                    peak->calls = temp == TEMP_HOT ? GPU_HOT_UNITS : 1;
                    snprintf(peak->name, sizeof peak->name, "peak_read_gpu/%.0fB/%s", bytes,
                             temp_name[temp]);
                } else {
                    peak->sample = sample_cpu;
                    snprintf(peak->name, sizeof peak->name, "peak_read/%.0fB/%s", bytes,
                             temp_name[temp]);
                    if ((size_t)bytes > g.peak_buf_bytes) g.peak_buf_bytes = (size_t)bytes;
                }
            }
            bench_row *row = &g.rows[g.n_rows++];
            row->v = v;
            row->temp = temp;
            if (*v->fail) {
                row->failed = 1;
                snprintf(row->message, sizeof row->message, "%s", v->fail);
            }
            row->bytes = bytes;
            row->ops = 2.0 * (double)o->rows * (double)o->cols * (double)(v->b->n_out / o->rows);
            row->peak = peak;
            row->sample = is_moe(v) ? (on_gpu(v) ? sample_moe_cuda : sample_moe_cpu)
                          : v->gpu  ? sample_gpu
                                    : sample_cpu;
            if (on_gpu(v)) row->calls = temp == TEMP_HOT ? GPU_HOT_UNITS : 1;
            g.n_gpu_rows += on_gpu(v);
            snprintf(row->name, sizeof row->name, "%s/%zux%zu/k%zu%s/%s", v->k->name, o->rows,
                     o->cols, o->n_ids, v->b->suffix, temp_name[temp]);
        }
    }
    g.peak_buf = xmalloc_huge(g.peak_buf_bytes, "the peak read buffer");
    memset(g.peak_buf, 0x5a, g.peak_buf_bytes);
    for (int peaks = 0; peaks < 2; peaks++)
        for (size_t i = 0; i < g.n_rows; i++) {
            bench_row *row = &g.rows[i];
            if ((row->v == NULL) != peaks) continue;
            qk_gb_bench *b = qk_gb_register(row->name, run_row, row);
            qk_gb_set_unit_us(b);
            qk_gb_use_manual_time(b);
            qk_gb_set_iterations(b, 1);
        }
    check_filter();
}

/* The stop rule in words, for the header and the JSON. */
static void stop_rule_text(char *out, size_t size) {
    const qk_options *o = &g.o;
    snprintf(out, size,
             "at least %zu clean samples and %g s per row, then until the median's 95 %% interval "
             "is within +-%g %%, at most %g s",
             o->min_samples, o->min_time, o->target_ci, o->max_time);
}

/* The plug-ins in the JSON context: `plugins` names each one loaded (name, version, path);
 * `plugin.<variant>` marks each plug-in variant (its plug-in, kind and device); and
 * `formats.<variant>`, for every variant with rows, its weight and activation formats, by which
 * plot/contracts.py holds a variant the contracts do not name to the bound of its formats.
 * `plugin_timing` says how MOE plug-in rows are timed, when there are any. */
static void describe_plugins(void) {
    static char v[8 * PATH_MAX];
    char key[128], label[160], formats[32];
    size_t len = 0;
    v[0] = 0;
    for (size_t i = 0; i < qk_plugin_count(); i++) {
        const qk_plugin *p = qk_plugin_at(i);
        len += (size_t)snprintf(v + len, len < sizeof v ? sizeof v - len : 0, "%s%s (%s%s)",
                                i ? "; " : "", qk_plugin_label(p, label, sizeof label), p->path,
                                p->is_default ? ", a default plug-in" : "");
    }
    add_context("plugins", qk_plugin_count() ? v : "none");
    for (size_t i = 0; i < qk_plugin_kernel_count(); i++) {
        const qk_kernel *k = qk_plugin_kernel(i);
        const char *verdict = qk_plugin_quant_verdict(k);
        snprintf(key, sizeof key, "plugin.%s", k->name);
        snprintf(v, sizeof v, "%s (%s): %s on %s, %s%s%s",
                 qk_plugin_label(k->plugin, label, sizeof label), k->plugin->path,
                 qk_op_name(k->op), k->device == QK_DEV_GPU ? "cuda" : "cpu",
                 qk_kernel_formats(k, formats, sizeof formats), k->op == QK_OP_QUANTIZE ? "; " : "",
                 k->op != QK_OP_QUANTIZE ? ""
                 : verdict               ? verdict
                                         : "bit-identical to the reference on the edge cases");
        add_context(key, v);
    }
    int any_moe = 0;
    for (size_t i = 0; i < g.n_vars; i++) {
        const qk_kernel *k = g.vars[i].k;
        any_moe |= k->op == QK_OP_MOE;
        int again = 0; /* once, not once per batch */
        for (size_t j = 0; j < i; j++)
            again |= g.vars[j].k == k;
        if (again) continue;
        snprintf(key, sizeof key, "formats.%s", k->name);
        add_context(key, qk_kernel_formats(k, formats, sizeof formats));
    }
    if (any_moe)
        add_context("plugin_timing",
                    "MOE plug-in rows: the unit is the plug-in's run (its own threads, the "
                    "calling thread included, or its device); CPU: the pool's workers parked, "
                    "hot and (with the plug-in's evict) cold samples as the CPU rows, dropped "
                    "when the process's CPU time is below 95 % of threads x wall (code 1 with an "
                    "involuntary context switch, 2 without); CUDA (hot only): a sample is 100 "
                    "runs queued back to back and one synchronize (the plug-in's sync; without "
                    "one, each run synchronized) on the host clock, dropped on a low SM clock; "
                    "kernel_us from CUPTI records of a second pass of 100 runs");
}

/* Step 10, what ran where: the fingerprint and the run's parameters into the JSON context, and
 * the table's header lines. */
static void describe_run(void) {
    qk_options *o = &g.o;
    char v[1024];
    add_context("qkbench_schema", "2");
    add_context("git_commit", QK_GIT_COMMIT);
    add_context("compiler", QK_COMPILER);
    add_context("c_flags", QK_C_FLAGS);
    time_t now = time(NULL);
    strftime(v, sizeof v, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    add_context("run_date", v);
    qk_hw_fingerprint(g.hw, emit_context, summary_lines);
    if (g.any_gpu) {
        qk_gpu_fingerprint(emit_context, NULL);
        snprintf(v, sizeof v, "%.1f", g.gpu_copy_bps * 1e-9);
        add_context("gpu_copy_peak_GBps", v);
        add_context("gpu_timing",
                    "hot: a CUDA graph of 100 units back to back, events around it / 100; cold: "
                    "a graph of 8 (L2 flush, unit) pairs less a graph of 8 flushes, per unit, "
                    "queued behind a kernel holding the stream; decode: a graph of units over "
                    "different weight copies (more than 3x the L2), held the same way; kernel_us: "
                    "CUPTI kernel records of a second pass; %peak: against a read-only stream over "
                    "the row's bytes, sampled alternately with it");
    }
    uint32_t isa = qk_cpu_isa();
    snprintf(v, sizeof v, "%s%s%s", isa & QK_ISA_AVX2 ? "avx2 " : "",
             isa & QK_ISA_AVX512 ? "avx512 " : "", isa & QK_ISA_AVX512_VNNI ? "avx512_vnni" : "");
    add_context("isa_used", v);
    const char *disabled = getenv("QK_DISABLE_ISA");
    add_context("isa_disabled", disabled && *disabled ? disabled : "none");
    snprintf(v, sizeof v, "%zux%zu (%s)", o->rows, o->cols, o->shape);
    add_context("shape", v);
    static char ids[QK_MAX_IDS * 6 + 16]; /* as --experts takes them: token lists '/'-separated */
    size_t len = 0;
    for (size_t i = 0; i < o->n_ids * o->max_tokens; i++)
        len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%d",
                                !i             ? ""
                                : i % o->n_ids ? ","
                                               : "/",
                                o->ids[i]);
    add_context("experts", ids);
    len = 0;
    for (size_t bi = 0; bi < g.n_batches; bi++)
        len += (size_t)snprintf(v + len, sizeof v - len, "%s%zu", bi ? "," : "",
                                g.batches[bi].n_tokens);
    add_context("tokens", v);
    add_context("routing", o->explicit_ids ? "explicit (--experts)"
                           : o->skewed     ? "skewed: expert of popularity rank r drawn in "
                                             "proportion to 1/(r+1), a seeded ranking"
                                           : "uniform");
    for (size_t bi = 0; bi < g.n_batches; bi++) {
        const batch *b = &g.batches[bi];
        char key[32];
        snprintf(key, sizeof key, "batch.t%zu", b->n_tokens);
        snprintf(v, sizeof v, "touched experts %zu, most tokens on one expert %zu", b->n_touched,
                 b->max_share);
        add_context(key, v);
    }
    add_context("activations", o->activations ? o->activations : qk_act_name(o->act));
    snprintf(v, sizeof v, "%llu", (unsigned long long)o->seed);
    add_context("seed", v);
    snprintf(v, sizeof v, "%d", o->threads);
    add_context("threads", v);
    add_context("pinning", g.pinning);
    add_context("cpus_allowed", g.allowed);
    add_context("weights", g.weights);
    add_context("q8k_quantizer", g.q8k_quant ? g.q8k_quant->name : "none");
    add_context("cold_method", "clflush of the working set before each sample, then every pool "
                               "thread woken by an empty job before the clock starts");
    char rule[512];
    stop_rule_text(rule, sizeof rule);
    add_context("stop_rule", rule);
    snprintf(v, sizeof v,
             "hot CPU: a sample is a batch of units lasting about %.0f ms after one untimed unit; "
             "dropped: the CPU time of a thread running the unit (the timing thread or a pool "
             "worker) below %.0f %% of the wall time (code 1 with an involuntary context switch "
             "of the process, 2 without); noisy: more than %.0f %% dropped, "
             "or the interval missed its target; %%peak: the peak read row's median over the "
             "row's median, the peak samples taken alternately before and after the row's",
             SAMPLE_SECONDS * 1e3, 100 * QK_MIN_CPU_FRACTION, 100 * QK_MAX_DROPPED_FRACTION);
    add_context("sampling", v);
    /* every reason, whole: up to 400 characters each (skip_why), a variant's name beside it */
    static char skipped[MAX_VARIANTS * 512];
    len = 0;
    skipped[0] = 0;
    for (size_t i = 0; i < g.n_skipped && len < sizeof skipped; i++)
        len += (size_t)snprintf(skipped + len, sizeof skipped - len, "%s%s: %s", i ? "; " : "",
                                g.skipped[i]->name, skip_reason(i));
    add_context("skipped", g.n_skipped ? skipped : "none");
    describe_plugins();

    fputs(summary_lines, stdout);
    printf("# weights %s\n# shape %zux%zu (%s), experts", g.weights, o->rows, o->cols, o->shape);
    for (size_t i = 0; i < o->n_ids; i++)
        printf("%s%d", i ? "," : " ", o->ids[i]);
    if (o->max_tokens > 1)
        printf(" for token 0 of %zu, %zu each (%s; --dump-output writes them all)", o->max_tokens,
               o->n_ids,
               o->explicit_ids ? "--experts"
               : o->skewed     ? "skewed routing"
                               : "uniform routing");
    printf("; activations %s; seed %llu; %d threads (%s)\n# sampling: %s\n",
           o->activations ? o->activations : qk_act_name(o->act), (unsigned long long)o->seed,
           o->threads, g.pinning, rule);
    fflush(stdout);
}

/* Step 11, the timing: every row sampled in turns, then reported through Google Benchmark (one
 * iteration each, whose time is the row's estimate); the JSON is written when it is done. */
static void run_timing(void) {
    qk_options *o = &g.o;
    g.progress = isatty(2);
    sample_all();
    if (o->json) qk_gb_capture_json();
    qk_gb_run(on_result, NULL);
    if (!g.n_done) { /* e.g. a --benchmark_filter that matches no row: say so, in one line */
        char why[200];
        snprintf(why, sizeof why, "%s", qk_gb_errors());
        why[strcspn(why, "\n")] = 0;
        qk_die("no row ran (%s; rows are named like %s)",
               *why ? why : "Google Benchmark ran nothing",
               g.n_rows ? g.rows[0].name : "q4k_q8k_ref/768x2048/k8/hot");
    }
    fputs(qk_gb_errors(), stderr);
    if (o->json) finish_json(o->json);
}

/* The table's first column: 26 characters, or the longest variant name. */
static int name_width = 26;

/* One row of the table. */
static void print_row(const bench_row *row) {
    char label[80];
    if (row->v)
        snprintf(label, sizeof label, "%s", row->v->k->name);
    else
        snprintf(label, sizeof label, "peak read%s %.2f MiB", row->gpu_read ? " (GPU)" : "",
                 row->bytes / 1048576.0);
    if (row->failed) {
        printf("%-*s FAILED: %s\n", name_width, label, row->message);
        return;
    }
    if (row->skipped) {
        printf("%-*s skipped: %s\n", name_width, label, row->message);
        return;
    }
    if (!row->measured) return; /* filtered out by --benchmark_filter */
    const qk_estimate *e = &row->est;
    double med = e->median;
    char ci[16], n[24];
    snprintf(ci, sizeof ci, "%s%.1f", e->exact ? "" : "~", 100 * qk_estimate_rel_halfwidth(e));
    snprintf(n, sizeof n, "%zu/%zu", e->n, row->dropped);
    printf("%-*s %10.2f %6s %10.2f %9s %8.1f", name_width, label, med * 1e6, ci, e->min * 1e6, n,
           row->bytes / med * 1e-9);
    const char *noisy = row->noisy ? "  noisy" : "";
    if (!row->v) {
        printf(" %8s %6s  (the reference: 100%%)%s\n", "-", "-", noisy);
        return;
    }
    char pct[16] = "-", exact[16] = "-", kern[16] = "-";
    const variant *vv = row->v;
    if (row->peak_est.n) snprintf(pct, sizeof pct, "%.0f", 100 * row->peak_est.median / med);
    if (vv->k->act_format != QK_FMT_F32) snprintf(exact, sizeof exact, "%.2e", vv->exact.rel_l2);
    if (row->kernel_s > 0) snprintf(kern, sizeof kern, "%.2f", 1e6 * row->kernel_s);
    printf(" %8.1f %6s %9.2e %9.2e %9.2e %9s %9s%s\n", row->ops / med * 1e-9, pct, vv->dev.rel_l2,
           vv->dev.max_rel, vv->dev.one_minus_cos, exact, kern, noisy);
}

/* The plug-in rows' footnotes: where each variant came from, how a MOE row is timed and why it
 * has no cold row; a plug-in quantizer that is not bit-identical to the reference (it fails the
 * run). Returns the number of such quantizers. */
static size_t print_plugin_notes(void) {
    char label[160];
    size_t n_bad = 0;
    for (size_t i = 0; i < g.n_vars; i++) {
        const qk_kernel *k = g.vars[i].k;
        int again = 0; /* its variant of an earlier batch has the note */
        for (size_t j = 0; j < i; j++)
            again |= g.vars[j].k == k;
        if (!k->plugin || again) continue;
        printf("# %s: plug-in %s (%s)", k->name, qk_plugin_label(k->plugin, label, sizeof label),
               k->plugin->path);
        if (k->op == QK_OP_MOE && k->device == QK_DEV_GPU)
            printf("; the whole unit on the GPU by the plug-in: 100 runs queued back to back, "
                   "%s, on the host clock per sample, CUPTI's kernel time from a second pass; no "
                   "cold or decode row (ABI 2 times CUDA plug-ins hot)",
                   k->ext->sync ? "one synchronize" : "each synchronized (it gives no sync)");
        else if (k->op == QK_OP_MOE) {
            int busy = 0;
            for (size_t r = 0; r < g.n_rows; r++)
                if (g.rows[r].v && g.rows[r].v->k == k && g.rows[r].busy_threads > busy)
                    busy = g.rows[r].busy_threads;
            printf("; the whole unit by the plug-in's threads (the pool parked; %d of %d busy "
                   "in calibration; a sample is dropped by their CPU time against %d x wall)%s",
                   busy, g.o.threads, busy,
                   k->ext->evict ? "" : "; no cold row: the plug-in gives no evict");
        }
        printf("\n");
    }
    for (size_t i = 0; i < qk_plugin_kernel_count(); i++) {
        const qk_kernel *k = qk_plugin_kernel(i);
        const char *verdict = qk_plugin_quant_verdict(k);
        if (!verdict) continue;
        n_bad++;
        printf("%-*s FAILED: %s\n", name_width, k->name, verdict);
    }
    return n_bad;
}

/* The batch of a row: its variant's, or for a peak row that of the first row it serves. */
static const batch *row_batch(const bench_row *row) {
    if (row->v) return row->v->b;
    for (size_t i = 0; i < g.n_rows; i++)
        if (g.rows[i].peak == row && g.rows[i].v) return g.rows[i].v->b;
    return NULL;
}

/* Step 12, the report: hot rows, then cold rows, each after its peak reference; then what was
 * skipped, deviations that are not finite, and the rows whose timed output went wrong.
 * Returns the number of failed rows. */
static size_t print_report(void) {
    qk_options *o = &g.o;
    for (size_t i = 0; i < variant_count(); i++) {
        int n = (int)strlen(variant_at(i)->name);
        name_width = n > name_width ? n : name_width;
    }
    static const char *const section[] = {
        "hot: caches warm, calls back to back",
        "cold: the working set is flushed from every cache before each sample (bytes: a repeated "
        "expert once)",
        "decode (GPU): warm launches, cold weights: a graph of units, each over another copy of "
        "the weights (more than 3x the L2 in all)"};
    for (temperature temp = TEMP_HOT; temp < TEMP_COUNT; temp++) {
        int any = 0; /* a section only for rows that ran (--benchmark_filter leaves some out) */
        for (size_t i = 0; i < g.n_rows; i++)
            any |= g.rows[i].temp == temp && g.rows[i].selected;
        if (!any) continue;
        printf("\n%s\n", section[temp]);
        printf("%-*s %10s %6s %10s %9s %8s %8s %6s %9s %9s %9s %9s %9s\n", name_width, "variant",
               "median_us", "+-%", "min_us", "n/drop", "GB/s", "GOP/s", "%peak", "rel_l2",
               "max_rel", "1-cos", "exact_l2", "kernel_us");
        const batch *shown = NULL;
        for (size_t i = 0; i < g.n_rows; i++) {
            if (g.rows[i].temp != temp) continue;
            const batch *b = row_batch(&g.rows[i]);
            /* shown: the batch of the last header, so that a filter leaving out a batch's first
             * rows does not leave out its header */
            if (b && b != shown && (g.n_batches > 1 || b->n_tokens > 1) && g.rows[i].selected) {
                printf("# %zu token%s: %zu expert%s touched, at most %zu token%s on one expert\n",
                       b->n_tokens, b->n_tokens == 1 ? "" : "s", b->n_touched,
                       b->n_touched == 1 ? "" : "s", b->max_share, b->max_share == 1 ? "" : "s");
                shown = b;
            }
            print_row(&g.rows[i]);
        }
    }
    if (g.any_gpu)
        printf("\n# GPU: a device-to-device copy of 1 GiB moves %.1f GB/s (read + write); the GPU "
               "rows' %%peak is against the read-only stream over their own bytes\n",
               g.gpu_copy_bps * 1e-9);
    size_t n_noisy = 0;
    for (size_t i = 0; i < g.n_rows; i++)
        n_noisy += g.rows[i].noisy;
    printf("\n# +-%%: half-width of the median's 95 %% interval (~: fewer than 6 samples, [min, "
           "max]); n/drop: clean and dropped samples\n");
    if (n_noisy)
        printf("# noisy (%zu row%s): more than %.0f %% of samples dropped (preempted or off the "
               "CPU) or the interval missed +-%g %% within %g s; its figure is less certain than "
               "it looks\n",
               n_noisy, n_noisy == 1 ? "" : "s", 100 * QK_MAX_DROPPED_FRACTION, o->target_ci,
               o->max_time);
    for (size_t i = 0; i < g.n_skipped; i++)
        printf("%-*s skipped: %s\n", name_width, g.skipped[i]->name, skip_reason(i));
    for (size_t i = 0; i < g.n_vars; i++) { /* e.g. weights whose fp16 scale is inf or NaN */
        const variant *v = &g.vars[i];
        if (*v->fail) continue;
        const qk_deviation *d = &v->dev, *e = &v->exact;
        int exact = v->quant || v->k->act_format != QK_FMT_F32;
        if (d->nonfinite || !isfinite(d->rel_l2) || !isfinite(d->max_rel) ||
            !isfinite(d->one_minus_cos) || !isfinite(d->max_abs) ||
            (exact && (!isfinite(e->rel_l2) || !isfinite(e->max_rel))))
            printf("# %s: the deviation is not finite (%zu of %zu outputs are not finite; the "
                   "oracle is %s): not a measurement of accuracy%s\n",
                   v->k->name, d->nonfinite, v->b->n_out,
                   all_finite(g.y_ref, v->b->n_out) ? "finite" : "not finite either",
                   o->json ? "; the JSON writes null for it" : "");
    }
    if (g.q8k_quant)
        printf("# Q8_K activations are quantized by %s inside the timed unit.\n",
               g.q8k_quant->name);
    size_t n_bad_quantizers = print_plugin_notes();
    if (o->json) printf("# JSON: %s\n", o->json);

    /* a failed row fails the run: one line naming each failed row and why */
    static char failed[4096];
    size_t n_failed = 0, len = 0;
    for (size_t i = 0; i < g.n_rows; i++)
        if (g.rows[i].failed && len < sizeof failed)
            len += (size_t)snprintf(failed + len, sizeof failed - len, "%s%s: %s",
                                    n_failed++ ? "; " : "", g.rows[i].name, g.rows[i].message);
    fflush(stdout);
    if (n_failed)
        fprintf(stderr, "bench: %zu row%s failed: %s%s\n", n_failed, n_failed == 1 ? "" : "s",
                failed, o->json ? " (errors in the JSON)" : "");
    if (n_bad_quantizers)
        fprintf(stderr,
                "bench: %zu plug-in quantizer%s not bit-identical to the reference (named in the "
                "table%s)\n",
                n_bad_quantizers, n_bad_quantizers == 1 ? " is" : "s are",
                o->json ? " and in the JSON context's plugin.<variant>" : "");
    return n_failed + n_bad_quantizers;
}

/* Step 13: everything handed back (so leak checkers see a clean exit). */
static void release_all(void) {
    qk_gb_shutdown();
    for (size_t i = 0; i < g.n_rows; i++) {
        int shared = 0; /* one stream serves every temperature of its size */
        for (size_t j = 0; j < i; j++)
            shared |= g.rows[j].gpu_read == g.rows[i].gpu_read;
        if (!shared) qk_gpu_read_destroy(g.rows[i].gpu_read);
        sample_log *l = &g.rows[i].log;
        free(l->t), free(l->peak), free(l->kernel), free(l->why), free(l->peak_why);
    }
    for (size_t i = 0; i < g.n_vars; i++) {
        qk_plugin_running(g.vars[i].k);
        if (g.vars[i].moe) g.vars[i].k->ext->destroy(g.vars[i].moe);
        qk_plugin_running(NULL);
        qk_weights_release(&g.vars[i].w);
        qk_moe_batch_free(&g.vars[i].route);
        qk_gpu_case_destroy(g.vars[i].gpu);
        free(g.vars[i].xq), free(g.vars[i].y);
    }
    for (int f = 0; f < QK_FMT_COUNT; f++)
        free(g.y_exact[f]);
    qk_pool_destroy(g.pool);
    if (g.o.model) qk_model_close(&g.model);
    qk_hw_close(g.hw);
    qk_plugin_unload_all();
    free(g.rows), free(g.peak_buf), free(g.w), free(g.x), free(g.x64), free(g.y_ref), free(g.vars);
}

int main(int argc, char **argv) {
    if (read_options(argc, argv)) return 0;               /* --help, --inspect */
    if (load_plugins()) return qk_plugin_unload_all(), 0; /* --list */
    plan_machine();
    open_data();
    prepare_outputs();
    start_threads();
    make_weights_and_oracle();
    make_batches();
    prepare_variants();
    register_rows();
    describe_run();
    run_timing();
    size_t n_failed = print_report();
    release_all();
    return n_failed ? 1 : 0;
}

/* gate_worker: one side of the CI regression gate (tests/gate.py). The gate starts two of these,
 * one built from the baseline commit and one from the new tree, and hands them the machine in
 * turn: each batch runs only when the coordinator says so, so the two sides are timed in
 * adjacent tens of milliseconds and see the same machine (clock, neighbours, thermal state).
 *
 * usage: gate_worker [--seed N] CASE...   CASE = VARIANT:EXPERTS:THREADS, e.g.
 *        q4k_q8k_ref:0:1 or q4k_q8k_vnni_r8:0,1,2,3,4,5,6,7:2
 *        gate_worker --list     the CPU matvec variants this machine runs, one a line
 * Protocol (lines on stdin / stdout; version in the first reply, so a baseline built from an
 * older commit is refused rather than misread):
 *   -> "qkgate 3 ready N"          then N lines "case I NAME bytes=B ..."
 *   <- "run I CALLS WARMUP"        -> "done I calls=.. clean_calls=.. median_ns=..
 *                                      median_all_ns=.. mean_ns=.. min_ns=.. wall_ns=..
 *                                      cpu_ns=.. threads=.. nivcsw=.. hash=.."
 *   <- "quit"
 * Each case's working set lives in transparent huge pages where the kernel grants them, and in
 * DATA_COPIES copies that successive batches take in turn: where a copy lands in physical
 * memory (in a VM, the host's) decides which cache sets it uses, and one placement made one
 * variant 6 % slower for a whole process (2026-11-29); taking turns turns that bias of one
 * process into noise between batches, which the median over pairs absorbs.
 * QK_INJECT_SLOWDOWN=NAME=FRACTION (test hook): that variant spins FRACTION of each call's
 * time more; QK_INJECT_SLEEP=NAME=FRACTION: it sleeps that much more (off the CPU). */
#define _GNU_SOURCE
#include "act.h"
#include "synth.h"
#include "test_hooks.h"
#include "../cpu/cpu_features.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/matvec.h"
#include "../cpu/huge_alloc.h"
#include "../cpu/threadpool.h"
#include "../kernels/qk_rng.h"
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

enum {
    GATE_PROTOCOL = 3,
    DATA_COPIES = 4,
    MAX_CASES = 32,
    MAX_IDS = 128,
    MAX_THREADS = 64,
    MAX_CALLS = 1 << 20
};

/* One line on stderr, exit 2. Bytes that are not printable ASCII (from the environment or the
 * command line) are written as \xNN, so the message stays one line and cannot drive a terminal. */
__attribute__((format(printf, 1, 2), noreturn)) static void die(const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "gate_worker: ");
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++)
        fprintf(stderr, *c >= 0x20 && *c < 0x7f ? "%c" : "\\x%02x", *c);
    fputc('\n', stderr);
    exit(2);
}

/* One copy of a case's data, in a region of its own: weights | x | activations | outputs. */
typedef struct {
    char *region;
    qk_weights w;
    float *x, *y;
    void *xq;
} data_copy;

typedef struct {
    char name[128];
    const qk_kernel *k, *quant;
    int32_t ids[MAX_IDS];
    size_t n_ids;
    int threads;
    qk_pool *pool;
    data_copy copies[DATA_COPIES], *data; /* data: the copy the current batch uses */
    long batches;
    size_t region_bytes;
    double bytes;           /* weights + activations + outputs a call touches */
    double slowdown, sleep; /* test hooks QK_INJECT_SLOWDOWN (spin), QK_INJECT_SLEEP */
} gate_case;

static int allowed_cpus[MAX_THREADS], n_allowed;

/* Seconds on a clock: CLOCK_MONOTONIC for the wall, the thread's or process's CPU-time clock. */
static double clock_s(clockid_t which) {
    struct timespec t;
    clock_gettime(which, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

/* 2 MiB aligned memory, asked to be backed by huge pages (cpu/huge_alloc.h). */
static char *huge_alloc(size_t bytes) {
    char *p = qk_alloc_huge(bytes);
    if (!p) die("out of memory: %zu bytes", bytes);
    return p;
}

/* kB of [p, p + bytes) backed by huge pages (AnonHugePages of its mapping in smaps), or -1. */
static long huge_kb(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[256];
    int inside = 0;
    long kb = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (unsigned long)p >= lo && (unsigned long)p < hi;
        else if (inside && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

static void pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set))
        die("cannot pin to cpu %d: %s", cpu, strerror(errno));
}

/* Thread ti of a multi-thread case runs on the ti-th CPU this process may use. */
static void pin_pool_thread(void *arg, int ti, int nt) {
    (void)arg, (void)nt;
    pin_to(allowed_cpus[ti % n_allowed]);
}

static double injected_slowdown(const char *name) {
    double f = qk_hook_slowdown(name);
    if (f < 0)
        die("QK_INJECT_SLOWDOWN: '%s' is not NAME=FRACTION (0 < FRACTION <= 10)",
            getenv("QK_INJECT_SLOWDOWN"));
    return f;
}

/* s as a whole decimal integer in lo..hi, or -1 (no sign, no junk, no overflow). */
static long long parse_count(const char *s, long long lo, long long hi) {
    char *end;
    errno = 0;
    if (!(*s >= '0' && *s <= '9')) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno || v < (unsigned long long)lo || v > (unsigned long long)hi) return -1;
    return (long long)v;
}

static void parse_ids(gate_case *c, char *s) {
    const size_t len = strlen(s);
    if (!len || s[0] == ',' || s[len - 1] == ',' || strstr(s, ",,"))
        die("case '%s': experts must be a comma-separated list of 0..%d", c->name, MAX_IDS - 1);
    char *save = NULL;
    for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        long long e = parse_count(t, 0, MAX_IDS - 1);
        if (e < 0 || c->n_ids == MAX_IDS)
            die("case '%s': experts must be a comma-separated list of 0..%d", c->name, MAX_IDS - 1);
        c->ids[c->n_ids++] = (int32_t)e;
    }
    if (!c->n_ids)
        die("case '%s': experts must be a comma-separated list of 0..%d", c->name, MAX_IDS - 1);
}

/* VARIANT:EXPERTS:THREADS -> a case with its data laid out (rows x cols of the gate shape). */
static void setup_case(gate_case *c, const char *spec, uint64_t seed, size_t rows, size_t cols) {
    snprintf(c->name, sizeof c->name, "%s", spec);
    char buf[256], *save = NULL;
    if (snprintf(buf, sizeof buf, "%s", spec) >= (int)sizeof buf)
        die("case '%s' is too long", spec);
    char *variant = strtok_r(buf, ":", &save), *experts = strtok_r(NULL, ":", &save),
         *threads = strtok_r(NULL, ":", &save);
    if (!variant || !experts || !threads || strtok_r(NULL, ":", &save))
        die("case '%s' is not VARIANT:EXPERTS:THREADS", spec);
    c->k = qk_cpu_kernel(variant);
    if (!c->k || c->k->op != QK_OP_MATVEC)
        die("case '%s': no CPU matvec variant '%s'", spec, variant);
    const char *why = qk_cpu_unsupported(c->k);
    if (why) die("case '%s': this CPU cannot run it (%s)", spec, why);
    parse_ids(c, experts);
    c->threads = (int)parse_count(threads, 1, n_allowed);
    if (c->threads < 1)
        die("case '%s': threads must be 1..%d (the CPUs this process may use)", spec, n_allowed);
    if (c->k->act_format != QK_FMT_F32) {
        c->quant = qk_cpu_best_quantizer(c->k->act_format);
        if (!c->quant) die("case '%s': no quantizer for its activations", spec);
    }
    c->slowdown = injected_slowdown(variant);
    c->sleep = qk_hook_fraction("QK_INJECT_SLEEP", variant);
    if (c->sleep < 0)
        die("QK_INJECT_SLEEP: '%s' is not NAME=FRACTION (0 < FRACTION <= 10)",
            getenv("QK_INJECT_SLEEP"));

    /* distinct experts, compact; ids index them (as bench lays them out) */
    int32_t distinct[MAX_IDS];
    const size_t n_distinct = qk_distinct_experts(c->ids, c->n_ids, c->ids, distinct);
    const size_t per_expert = rows * (cols / QK_K);
    qk_block_q4k *plain = malloc(n_distinct * per_expert * sizeof *plain);
    if (!plain) die("out of memory");
    for (size_t e = 0; e < n_distinct; e++)
        if (qk_synth_expert(seed, distinct[e], rows, cols, plain + e * per_expert))
            die("out of memory generating experts");
    qk_weights laid;
    if (qk_weights_prepare(c->k, plain, rows, cols, n_distinct, &laid)) die("out of memory");

    /* each copy in a region of its own, page-aligned inside: weights | x | activations in the
     * variant's format | outputs */
    const size_t w_bytes = laid.expert_bytes * n_distinct, x_bytes = cols * sizeof(float),
                 xq_bytes = qk_format_bytes(c->k->act_format, cols),
                 y_bytes = c->n_ids * rows * sizeof(float), page = 4096;
    const size_t off_x = round_up(w_bytes, page), off_xq = off_x + round_up(x_bytes, page),
                 off_y = off_xq + round_up(xq_bytes, page);
    c->region_bytes = off_y + round_up(y_bytes, page);
    for (int i = 0; i < DATA_COPIES; i++) {
        data_copy *d = &c->copies[i];
        d->region = huge_alloc(c->region_bytes);
        memcpy(d->region, laid.data, w_bytes);
        d->w = laid;
        d->w.data = d->region;
        d->w.owned = 0;
        d->x = (float *)(d->region + off_x);
        d->xq = d->region + off_xq;
        d->y = (float *)(d->region + off_y);
        qk_rng r;
        qk_rng_seed(&r, seed ^ 0xac7);
        qk_act_fill(&r, QK_ACT_NORMAL, d->x, cols);
        if (!c->quant) memcpy(d->xq, d->x, xq_bytes);
    }
    c->data = &c->copies[0];
    qk_weights_release(&laid);
    free(plain);
    c->bytes = (double)(c->n_ids * per_expert * sizeof(qk_block_q4k) + xq_bytes + y_bytes);
}

static void forward(gate_case *c) {
    const double t0 = c->slowdown > 0 || c->sleep > 0 ? qk_hook_now() : 0;
    data_copy *d = c->data;
    qk_moe_forward(c->pool, c->quant, c->k, &d->w, c->ids, c->n_ids, d->x, d->xq, d->y);
    if (c->slowdown > 0) qk_hook_spin(t0, c->slowdown); /* a real slowdown, for the tests */
    if (c->sleep > 0) qk_hook_sleep(t0, c->sleep);      /* a slowdown off the CPU */
}

/* The pool's workers spin a few milliseconds after a job before they sleep: wait until every
 * thread but this one sleeps, so the other side's next batch has the CPUs to itself. */
static void settle_pool(void) {
    const double give_up = clock_s(CLOCK_MONOTONIC) + 0.05;
    const pid_t self = (pid_t)gettid();
    for (;;) {
        int running = 0;
        DIR *d = opendir("/proc/self/task");
        if (!d) return;
        for (struct dirent *e; (e = readdir(d));) {
            if (e->d_name[0] == '.' || atoi(e->d_name) == self) continue;
            char path[300], stat[512];
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            size_t n = fread(stat, 1, sizeof stat - 1, f);
            fclose(f);
            stat[n] = 0;
            const char *close = strrchr(stat, ')'); /* "pid (comm) S ..." */
            if (close && close[1] == ' ' && close[2] == 'R') running++;
        }
        closedir(d);
        if (!running || clock_s(CLOCK_MONOTONIC) > give_up) return;
        struct timespec ms = {0, 500000};
        nanosleep(&ms, NULL);
    }
}

static uint64_t fnv1a52(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h & ((1ull << 52) - 1);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double call_s[MAX_CALLS], clean_s[MAX_CALLS];

static double median_sorted(double *v, long n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Times `calls` calls one by one, each by the wall clock and by the CPU time this thread got: a
 * call that got less than 95 % of its wall time was preempted, and its time says nothing about
 * the code. The batch's figure is the median of the clean calls (of all calls when fewer than 3
 * are clean). With a pool, the other threads' preemption shows only in the process's CPU time
 * over the whole batch (cpu_ns; the kernel updates a running thread's share at its ticks, too
 * coarse for one call), which the coordinator checks. */
static void run_batch(gate_case *c, int index, long calls, long warmup, size_t rows) {
    pin_to(allowed_cpus[c->threads == 1 ? n_allowed - 1 : 0]);
    c->data = &c->copies[c->batches++ % DATA_COPIES];
    for (long i = 0; i < warmup; i++)
        forward(c);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    const double p0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID),
                 w0 = clock_s(CLOCK_MONOTONIC);
    double last = w0, last_cpu = c0;
    long clean = 0;
    for (long i = 0; i < calls; i++) {
        forward(c);
        const double t = clock_s(CLOCK_MONOTONIC), t_cpu = clock_s(CLOCK_THREAD_CPUTIME_ID);
        call_s[i] = t - last;
        if (t_cpu - last_cpu >= 0.95 * call_s[i]) clean_s[clean++] = call_s[i];
        last = t, last_cpu = t_cpu;
    }
    const double wall = last - w0, cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - p0;
    getrusage(RUSAGE_SELF, &ru1);
    const uint64_t hash = fnv1a52(c->data->y, c->n_ids * rows * sizeof *c->data->y);
    const double median_all = median_sorted(call_s, calls),
                 median = clean >= 3 ? median_sorted(clean_s, clean) : median_all;
    if (c->threads > 1) settle_pool();
    printf("done %d calls=%ld clean_calls=%ld median_ns=%.1f median_all_ns=%.1f mean_ns=%.1f "
           "min_ns=%.1f wall_ns=%.0f cpu_ns=%.0f threads=%d nivcsw=%ld hash=%llu\n",
           index, calls, clean, median * 1e9, median_all * 1e9, wall / (double)calls * 1e9,
           call_s[0] * 1e9, wall * 1e9, cpu * 1e9, c->threads, ru1.ru_nivcsw - ru0.ru_nivcsw,
           (unsigned long long)hash);
    fflush(stdout);
}

int main(int argc, char **argv) {
    uint64_t seed = 1;
    const size_t rows = 768, cols = 2048; /* Qwen3-30B-A3B's expert gate projection */
    static gate_case cases[MAX_CASES];
    int n_cases = 0, arg = 1;
    if (qk_cpu_isa_env_error()) die("%s", qk_cpu_isa_env_error());
    if (argc == 2 && !strcmp(argv[1], "--list")) {
        for (size_t i = 0; i < qk_cpu_kernel_count; i++)
            if (qk_cpu_kernels[i].op == QK_OP_MATVEC && !qk_cpu_unsupported(&qk_cpu_kernels[i]))
                printf("%s\n", qk_cpu_kernels[i].name);
        return 0;
    }
    if (arg + 1 < argc && !strcmp(argv[arg], "--seed")) {
        long long v = parse_count(argv[arg + 1], 0, INT64_MAX);
        if (v < 0) die("--seed: '%s' is not an integer in 0..2^63-1", argv[arg + 1]);
        seed = (uint64_t)v;
        arg += 2;
    }
    if (arg >= argc) die("usage: gate_worker [--seed N] VARIANT:EXPERTS:THREADS...");

    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set))
        die("cannot read the CPU affinity: %s", strerror(errno));
    for (int cpu = 0; cpu < CPU_SETSIZE && n_allowed < MAX_THREADS; cpu++)
        if (CPU_ISSET(cpu, &set)) allowed_cpus[n_allowed++] = cpu;
    if (!n_allowed) die("no CPU to run on");

    qk_pool *pools[MAX_THREADS + 1] = {0};
    for (; arg < argc; arg++) {
        if (n_cases == MAX_CASES) die("more than %d cases", MAX_CASES);
        gate_case *c = &cases[n_cases++];
        setup_case(c, argv[arg], seed, rows, cols);
        if (!pools[c->threads]) {
            pools[c->threads] = qk_pool_create(c->threads);
            if (!pools[c->threads]) die("cannot start %d threads: %s", c->threads, strerror(errno));
            if (c->threads > 1) qk_pool_run(pools[c->threads], pin_pool_thread, NULL);
        }
        c->pool = pools[c->threads];
    }
    /* a slowdown hook that names none of the cases would measure nothing, silently */
    const char *hook = getenv("QK_INJECT_SLOWDOWN"), *sleep_hook = getenv("QK_INJECT_SLEEP");
    int hooked = 0, slept = 0;
    for (int i = 0; i < n_cases; i++)
        hooked |= cases[i].slowdown > 0, slept |= cases[i].sleep > 0;
    if (hook && *hook && !hooked)
        die("QK_INJECT_SLOWDOWN=%s names the variant of none of the cases", hook);
    if (sleep_hook && *sleep_hook && !slept)
        die("QK_INJECT_SLEEP=%s names the variant of none of the cases", sleep_hook);
    printf("qkgate %d ready %d\n", GATE_PROTOCOL, n_cases);
    for (int i = 0; i < n_cases; i++)
        printf("case %d %s bytes=%.0f region_kb=%zu huge_kb=%ld copies=%d\n", i, cases[i].name,
               cases[i].bytes, cases[i].region_bytes / 1024, huge_kb(cases[i].copies[0].region),
               DATA_COPIES);
    fflush(stdout);

    /* "run INDEX CALLS WARMUP" or "quit", one a line; anything else ends the worker */
    char line[256];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\n")] = 0;
        if (!strcmp(line, "quit")) break;
        char *words[5], *save = NULL;
        int n = 0;
        for (char *w = strtok_r(line, " ", &save); w && n < 5; w = strtok_r(NULL, " ", &save))
            words[n++] = w;
        long long index = -1, calls = -1, warmup = -1;
        if (n == 4 && !strcmp(words[0], "run")) {
            index = parse_count(words[1], 0, n_cases - 1);
            calls = parse_count(words[2], 1, MAX_CALLS);
            warmup = parse_count(words[3], 0, MAX_CALLS);
        }
        if (index < 0 || calls < 0 || warmup < 0)
            die("bad command (not 'run INDEX<%d CALLS<=%d WARMUP<=%d' or 'quit')", n_cases,
                MAX_CALLS, MAX_CALLS);
        run_batch(&cases[index], (int)index, (long)calls, (long)warmup, rows);
    }
    for (int t = 0; t <= MAX_THREADS; t++)
        qk_pool_destroy(pools[t]);
    for (int i = 0; i < n_cases; i++)
        for (int k = 0; k < DATA_COPIES; k++)
            free(cases[i].copies[k].region);
    return 0;
}

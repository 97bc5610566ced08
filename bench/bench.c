/* bench: times CPU variants on Qwen3-30B-A3B expert shapes and reports their deviation from the
 * f64 oracles, side by side. The timed unit is what llama.cpp's MUL_MAT_ID does for one token:
 * quantize the activations once (Q8_K variants) and run the selected experts' matvecs. */
#define _POSIX_C_SOURCE 200809L
#include "synth.h"
#include "../cpu/cpu_features.h"
#include "../cpu/cpu_kernels.h"
#include "../cpu/matvec.h"
#include "../kernels/qk_oracle.h"
#include "../kernels/qk_quant.h"
#include "../kernels/qk_rng.h"
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { N_EXPERTS = 128, MAX_IDS = 1024 };

/* One line on stderr naming the problem, exit code 2. */
__attribute__((format(printf, 1, 2))) static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static long parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) {
        char range[64];
        snprintf(range, sizeof range, "an integer in %ld..%ld", lo, hi);
        fprintf(stderr, "bench: %s: '%s' is not %s\n", opt, s, range);
        exit(2);
    }
    return v;
}

typedef struct {
    const char *kernels;
    size_t rows, cols;
    const char *shape;
    int top, threads, repetitions;
    uint64_t seed;
    int32_t ids[MAX_IDS];
    size_t n_ids;
} options;

static void parse_shape(options *o, const char *s) {
    o->shape = s;
    if (!strcmp(s, "gate") || !strcmp(s, "up")) {
        o->rows = 768, o->cols = 2048;
        return;
    }
    if (!strcmp(s, "down")) {
        o->rows = 2048, o->cols = 768;
        return;
    }
    char *end;
    errno = 0;
    unsigned long r = strtoul(s, &end, 10), c;
    if (errno || end == s || (*end != 'x' && *end != 'X') || s[0] == '-')
        die("--shape: '%s' is not gate, up, down or ROWSxCOLS", s);
    const char *cs = end + 1;
    c = strtoul(cs, &end, 10);
    if (errno || end == cs || *end || cs[0] == '-' || r == 0 || r > 65536 || c == 0 || c > 65536)
        die("--shape: '%s' is not gate, up, down or ROWSxCOLS (1..65536 each)", s);
    if (c % QK_K) die("--shape: '%s': cols must be a multiple of 256 (Q4_K super-blocks)", s);
    o->rows = r, o->cols = c;
}

/* "0-7", "3,9,3", "all" */
static void parse_experts(options *o, const char *s) {
    o->n_ids = 0;
    if (!strcmp(s, "all")) {
        for (int e = 0; e < N_EXPERTS; e++)
            o->ids[o->n_ids++] = e;
        return;
    }
    char buf[4096];
    if (strlen(s) >= sizeof buf) die("--experts: list too long");
    strcpy(buf, s);
    for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
        char *dash = strchr(t, '-');
        long a, b;
        if (dash) {
            *dash = 0;
            a = parse_int("--experts", t, 0, N_EXPERTS - 1);
            b = parse_int("--experts", dash + 1, 0, N_EXPERTS - 1);
            if (b < a) die("--experts: range '%s-%s' runs backwards", t, dash + 1);
        } else {
            a = b = parse_int("--experts", t, 0, N_EXPERTS - 1);
        }
        for (long e = a; e <= b; e++) {
            if (o->n_ids >= MAX_IDS) die("--experts: more than 1024 ids");
            o->ids[o->n_ids++] = (int32_t)e;
        }
    }
    if (!o->n_ids) die("--experts: '%s' names no expert (expected e.g. 0-7, 3,9 or all)", s);
}

static void list_kernels(void) {
    printf("%-18s %-6s %-8s %-6s %s\n", "variant", "device", "weights", "acts", "runs here");
    for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
        const qk_kernel *k = &qk_cpu_kernels[i];
        const char *why = qk_cpu_unsupported(k);
        printf("%-18s %-6s %-8s %-6s %s%s  -- %s\n", k->name, "cpu",
               qk_format_name(k->weight_format), qk_format_name(k->act_format),
               why ? "no: " : "yes", why ? why : "", k->summary);
    }
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench [--list] [--kernel NAME[,NAME...]] [--shape gate|up|down|RxC]\n"
               "             [--top K | --experts 0-7|3,9|all] [--threads N] [--seed N]\n"
               "             [--repetitions N]\n"
               "Times quantize-once + the selected experts' matvecs, back to back, hot caches;\n"
               "reports median/min per call over repetitions, CV, GB/s, GOP/s and the deviation\n"
               "from the f64 oracle (and, for Q8_K variants, from the algorithm-exact oracle).\n");
}

int main(int argc, char **argv) {
    options o = {.kernels = "q4k_*", .top = 1, .threads = 2, .repetitions = 7, .seed = 1};
    parse_shape(&o, "gate");
    int explicit_ids = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV                                                                                      \
    do {                                                                                           \
        if (!v) die("%s needs a value", a);                                                        \
        i++;                                                                                       \
    } while (0)
        if (!strcmp(a, "--list")) {
            list_kernels();
            return 0;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--kernel")) {
            NEEDV;
            o.kernels = v;
        } else if (!strcmp(a, "--shape")) {
            NEEDV;
            parse_shape(&o, v);
        } else if (!strcmp(a, "--top")) {
            NEEDV;
            o.top = (int)parse_int(a, v, 1, N_EXPERTS);
        } else if (!strcmp(a, "--experts")) {
            NEEDV;
            parse_experts(&o, v);
            explicit_ids = 1;
        } else if (!strcmp(a, "--threads")) {
            NEEDV;
            /* more threads than CPUs would time the spin-waits, not the kernels */
            o.threads = (int)parse_int(a, v, 1, sysconf(_SC_NPROCESSORS_ONLN));
        } else if (!strcmp(a, "--seed")) {
            NEEDV;
            o.seed = (uint64_t)parse_int(a, v, 0, 0x7fffffffffffffffL);
        } else if (!strcmp(a, "--repetitions")) {
            NEEDV;
            o.repetitions = (int)parse_int(a, v, 1, 1000);
        } else {
            fprintf(stderr, "bench: unknown option '%s' (see bench --help)\n", a);
            return 2;
        }
    }
    /* the variants asked for, each pattern must match at least one */
    const qk_kernel *sel[64];
    size_t n_sel = 0;
    {
        char buf[1024];
        if (snprintf(buf, sizeof buf, "%s", o.kernels) >= (int)sizeof buf)
            die("--kernel: list longer than 1023 characters");
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
            int hit = 0;
            for (size_t i = 0; i < qk_cpu_kernel_count; i++) {
                const qk_kernel *k = &qk_cpu_kernels[i];
                if (k->op != QK_OP_MATVEC || fnmatch(t, k->name, 0)) continue;
                hit = 1;
                int dup = 0;
                for (size_t j = 0; j < n_sel; j++)
                    dup |= sel[j] == k;
                if (!dup && n_sel < 64) sel[n_sel++] = k;
            }
            if (!hit) {
                fprintf(
                    stderr,
                    "bench: --kernel: no matvec variant matches '%s' (bench --list names them)\n",
                    t);
                return 2;
            }
        }
    }
    if (!n_sel) die("--kernel: '%s' names no variant (bench --list names them)", o.kernels);
    /* expert ids: explicit, or top-K drawn from the seed (distinct, as a router picks them) */
    if (!explicit_ids) {
        qk_rng r;
        qk_rng_seed(&r, o.seed ^ 0x5eed);
        int used[N_EXPERTS] = {0};
        o.n_ids = 0;
        while (o.n_ids < (size_t)o.top) {
            int e = (int)qk_rng_below(&r, N_EXPERTS);
            if (!used[e]) used[e] = 1, o.ids[o.n_ids++] = e;
        }
    }
    /* generate only the distinct experts used; ids index that compact array */
    int32_t slot_of[N_EXPERTS], local_ids[MAX_IDS], distinct[N_EXPERTS];
    size_t n_distinct = 0;
    for (int e = 0; e < N_EXPERTS; e++)
        slot_of[e] = -1;
    for (size_t i = 0; i < o.n_ids; i++) {
        if (slot_of[o.ids[i]] < 0)
            slot_of[o.ids[i]] = (int32_t)n_distinct, distinct[n_distinct++] = o.ids[i];
        local_ids[i] = slot_of[o.ids[i]];
    }
    const size_t nb = o.cols / QK_K, per_expert = o.rows * nb;
    qk_block_q4k *w = malloc(n_distinct * per_expert * sizeof *w);
    float *x = malloc(o.cols * sizeof *x), *y = malloc(o.n_ids * o.rows * sizeof *y);
    double *xr = malloc(o.cols * sizeof *xr), *yr = malloc(o.n_ids * o.rows * sizeof *yr),
           *ye = malloc(o.n_ids * o.rows * sizeof *ye);
    qk_block_q8k *xq = malloc(nb * sizeof *xq);
    if (!w || !x || !y || !xr || !yr || !ye || !xq) {
        fprintf(stderr, "bench: out of memory for %zu experts of %zux%zu\n", n_distinct, o.rows,
                o.cols);
        return 2;
    }
    for (size_t e = 0; e < n_distinct; e++)
        qk_synth_expert(o.seed, distinct[e], o.rows, o.cols, w + e * per_expert);
    qk_rng r;
    qk_rng_seed(&r, o.seed ^ 0xac7);
    for (size_t i = 0; i < o.cols; i++)
        x[i] = (float)qk_rng_normal(&r);
    /* oracles: f64, and the algorithm-exact one on deq64(Q8_K(x)) */
    qk_activations_f64(QK_FMT_F32, x, o.cols, xr);
    for (size_t i = 0; i < o.n_ids; i++)
        qk_oracle_q4k(w + local_ids[i] * per_expert, o.rows, o.cols, xr, yr + i * o.rows);
    qk_quantize_q8k_ref(x, xq, o.cols);
    qk_activations_f64(QK_FMT_Q8_K, xq, o.cols, xr);
    for (size_t i = 0; i < o.n_ids; i++)
        qk_oracle_q4k(w + local_ids[i] * per_expert, o.rows, o.cols, xr, ye + i * o.rows);

    qk_pool *pool = qk_pool_create(o.threads);
    if (!pool) {
        fprintf(stderr, "bench: cannot start %d threads\n", o.threads);
        return 2;
    }
    printf("# shape %zux%zu (%s), experts", o.rows, o.cols, o.shape);
    for (size_t i = 0; i < o.n_ids; i++)
        printf("%s%d", i ? "," : " ", o.ids[i]);
    printf(", threads %d, seed %llu, hot caches, %d repetitions\n", o.threads,
           (unsigned long long)o.seed, o.repetitions);
    printf("%-18s %-16s %10s %10s %6s %8s %8s %10s %10s %10s\n", "variant", "quantizer",
           "median_us", "min_us", "cv_%", "GB/s", "GOP/s", "rel_l2", "1-cos", "exact_rel");
    for (size_t s = 0; s < n_sel; s++) {
        const qk_kernel *k = sel[s];
        const char *why = qk_cpu_unsupported(k);
        if (why) {
            printf("%-18s skipped: %s\n", k->name, why);
            continue;
        }
        const qk_kernel *quant =
            k->act_format == QK_FMT_Q8_K ? qk_cpu_best_quantizer(QK_FMT_Q8_K) : NULL;
        qk_weights wl;
        if (qk_weights_prepare(k, w, o.rows, o.cols, n_distinct, &wl)) {
            fprintf(stderr, "bench: out of memory packing weights for %s\n", k->name);
            return 2;
        }
        for (size_t i = 0; i < o.n_ids * o.rows; i++)
            y[i] = NAN;
        qk_moe_forward(pool, quant, k, &wl, local_ids, o.n_ids, x, xq, y);
        qk_deviation dev = qk_deviation_of(y, yr, o.n_ids * o.rows);
        qk_deviation dex = qk_deviation_of(y, ye, o.n_ids * o.rows);
        /* calibrate a batch to >= 20 ms, then time repetitions of batches back to back */
        int batch = 1;
        for (;;) {
            double t0 = now_s();
            for (int b = 0; b < batch; b++)
                qk_moe_forward(pool, quant, k, &wl, local_ids, o.n_ids, x, xq, y);
            if (now_s() - t0 > 0.02 || batch >= 1 << 20) break;
            batch *= 2;
        }
        double t[1000];
        for (int rep = 0; rep < o.repetitions; rep++) {
            double t0 = now_s();
            for (int b = 0; b < batch; b++)
                qk_moe_forward(pool, quant, k, &wl, local_ids, o.n_ids, x, xq, y);
            t[rep] = (now_s() - t0) / batch;
        }
        double mean = 0, var = 0;
        for (int rep = 0; rep < o.repetitions; rep++)
            mean += t[rep] / o.repetitions;
        for (int rep = 0; rep < o.repetitions; rep++)
            var += (t[rep] - mean) * (t[rep] - mean) / o.repetitions;
        qsort(t, (size_t)o.repetitions, sizeof t[0], cmp_double);
        double med = o.repetitions % 2 ? t[o.repetitions / 2]
                                       : 0.5 * (t[o.repetitions / 2 - 1] + t[o.repetitions / 2]);
        double bytes = (double)o.n_ids * per_expert * sizeof(qk_block_q4k) +
                       (double)qk_format_bytes(k->act_format, o.cols) + 4.0 * o.rows * o.n_ids;
        double ops = 2.0 * o.rows * o.cols * o.n_ids;
        char exact[16] = "-";
        if (quant) snprintf(exact, sizeof exact, "%.2e", dex.rel_l2);
        printf("%-18s %-16s %10.2f %10.2f %6.1f %8.1f %8.1f %10.2e %10.2e %10s\n", k->name,
               quant ? quant->name : "-", med * 1e6, t[0] * 1e6, 100 * sqrt(var) / mean,
               bytes / med * 1e-9, ops / med * 1e-9, dev.rel_l2, dev.one_minus_cos, exact);
        qk_weights_release(&wl);
    }
    qk_pool_destroy(pool);
    free(w), free(x), free(y), free(xr), free(yr), free(ye), free(xq);
    return 0;
}

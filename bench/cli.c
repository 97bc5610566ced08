#define _POSIX_C_SOURCE 200809L
#include "cli.h"
#include "act.h"
#include "../kernels/qk_formats.h"
#include "../kernels/qk_rng.h"
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* One line: a control byte of a quoted value (an environment variable, an argument, a path)
 * is written as \xNN, so it can neither start a second line nor reach the terminal as an
 * escape sequence. */
void qk_die(const char *fmt, ...) {
    char msg[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) snprintf(msg, sizeof msg, "%s", fmt);
    fputs("bench: ", stderr);
    for (const unsigned char *c = (const unsigned char *)msg; *c; c++) {
        if (*c < 0x20 || *c == 0x7f)
            fprintf(stderr, "\\x%02x", *c);
        else
            fputc(*c, stderr);
    }
    if (n >= (int)sizeof msg) fputs("...", stderr);
    fputc('\n', stderr);
    exit(2);
}

static long parse_int(const char *opt, const char *s, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    /* strtol skips leading blanks: " 2" would pass where "2 " does not */
    if (!*s || isspace((unsigned char)*s) || *s == '+' || *end || errno || v < lo || v > hi)
        qk_die("%s: '%s' is not an integer in %ld..%ld", opt, s, lo, hi);
    return v;
}

/* A decimal number of `what` (seconds, percent) in lo..hi. */
static double parse_real(const char *opt, const char *s, double lo, double hi, const char *what) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || isspace((unsigned char)*s) || *end || errno || !(v >= lo && v <= hi))
        qk_die("%s: '%s' is not a number of %s in %g..%g", opt, s, what, lo, hi);
    return v;
}
static double parse_seconds(const char *opt, const char *s, double lo, double hi) {
    return parse_real(opt, s, lo, hi, "seconds");
}

static void parse_shape(qk_options *o, const char *s) {
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
    if (errno || end == s || (*end != 'x' && *end != 'X') || !isdigit((unsigned char)s[0]))
        qk_die("--shape: '%s' is not gate, up, down or ROWSxCOLS", s);
    const char *cs = end + 1;
    c = strtoul(cs, &end, 10);
    if (errno || end == cs || *end || !isdigit((unsigned char)cs[0]) || r == 0 || r > 65536 ||
        c == 0 || c > 65536)
        qk_die("--shape: '%s' is not gate, up, down or ROWSxCOLS (1..65536 each)", s);
    if (c % QK_K) qk_die("--shape: '%s': cols must be a multiple of 256 (Q4_K super-blocks)", s);
    o->rows = r, o->cols = c;
}

/* One token's list: "0-7", "3,9,3"; appended to o->ids. */
static size_t parse_token_experts(qk_options *o, char *list, const char *whole) {
    size_t n = 0, len = strlen(list);
    char *save = NULL;
    if (len && (list[0] == ',' || list[len - 1] == ',' || strstr(list, ",,")))
        qk_die("--experts: '%s' has an empty item (expected e.g. 0-7, 3,9, 0-7/8-15 or all)",
               whole);
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *dash = strchr(t, '-');
        long a, b;
        if (dash && dash != t) {
            *dash = 0;
            a = parse_int("--experts", t, 0, QK_MAX_EXPERTS - 1);
            b = parse_int("--experts", dash + 1, 0, QK_MAX_EXPERTS - 1);
            if (b < a) qk_die("--experts: range '%s-%s' runs backwards", t, dash + 1);
        } else {
            a = b = parse_int("--experts", t, 0, QK_MAX_EXPERTS - 1);
        }
        for (long e = a; e <= b; e++, n++) {
            if (o->n_ids * o->n_id_tokens + n >= QK_MAX_IDS)
                qk_die("--experts: more than %d ids", QK_MAX_IDS);
            o->ids[o->n_ids * o->n_id_tokens + n] = (int32_t)e;
        }
    }
    if (!n)
        qk_die("--experts: '%s' has a token that names no expert (expected e.g. 0-7, 3,9, "
               "0-7/8-15 or all)",
               whole);
    return n;
}

/* "0-7", "3,9,3", "all"; one list per token separated by '/': "0-7/3,9,11,..." */
static void parse_experts(qk_options *o, const char *s) {
    o->n_ids = 0, o->n_id_tokens = 0;
    o->all_experts = 0; /* the last --experts wins, as every option does */
    if (!strcmp(s, "all")) {
        o->all_experts = 1;
        return;
    }
    char buf[16384];
    if (strlen(s) >= sizeof buf) qk_die("--experts: list longer than %zu characters", sizeof buf);
    strcpy(buf, s);
    for (char *p = buf, *next; p; p = next) {
        next = strchr(p, '/');
        if (next) *next++ = 0;
        if (o->n_id_tokens == QK_MAX_TOKENS)
            qk_die("--experts: more than %d token lists", QK_MAX_TOKENS);
        size_t n = parse_token_experts(o, p, s);
        if (o->n_id_tokens && n != o->n_ids)
            qk_die("--experts: token %zu lists %zu expert%s, token 0 lists %zu: every token has "
                   "the same number (k)",
                   o->n_id_tokens, n, n == 1 ? "" : "s", o->n_ids);
        o->n_ids = n;
        o->n_id_tokens++;
    }
}

/* "1", "8", "1,2,4,8": batch sizes of 1..64 tokens, no repeats; kept ascending. */
static void parse_tokens(qk_options *o, const char *s) {
    char buf[256];
    if (!*s || strlen(s) >= sizeof buf) qk_die("--tokens: '%s' is not a list like 1,2,4,8", s);
    strcpy(buf, s);
    if (buf[0] == ',' || buf[strlen(buf) - 1] == ',' || strstr(buf, ",,"))
        qk_die("--tokens: '%s' has an empty item (a list like 1,2,4,8)", s);
    o->n_token_counts = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t n = (size_t)parse_int("--tokens", t, 1, QK_MAX_TOKENS);
        if (o->n_token_counts == QK_MAX_TOKEN_COUNTS)
            qk_die("--tokens: more than %d batch sizes", QK_MAX_TOKEN_COUNTS);
        size_t at = o->n_token_counts++;
        while (at && o->tokens[at - 1] > n) /* insertion keeps them ascending */
            o->tokens[at] = o->tokens[at - 1], at--;
        if (at && o->tokens[at - 1] == n) qk_die("--tokens: %zu is listed twice", n);
        o->tokens[at] = n;
    }
    if (!o->n_token_counts) qk_die("--tokens: '%s' is not a list like 1,2,4,8", s);
    o->max_tokens = o->tokens[o->n_token_counts - 1];
}

void qk_print_usage(void) {
    printf(
        "usage: bench [--list] [--kernel NAME[,NAME...]] [--shape gate|up|down|RxC]\n"
        "             [--tokens N[,N...]] [--top K [--routing uniform|skewed] |\n"
        "              --experts 0-7|3,9|0-7/8-15|all] [--act PROFILE | --activations F.npy]\n"
        "             [--seed N] [--threads N] [--hot] [--cold] [--decode] [--min-samples N]\n"
        "             [--min-time S] [--max-time S] [--target-ci PCT]\n"
        "             [--json FILE] [--dump-output DIR] [--plugin LIB.so]... "
        "[--no-default-plugins]\n"
        "             [--benchmark_* flags of Google Benchmark]\n"
        "       bench --model FILE.gguf (--layer L --proj gate|up|down | --tensor NAME) [...]\n"
        "       bench --model FILE.gguf --inspect\n"
        "\n"
        "Times the expert work of a batch of tokens as llama.cpp's MUL_MAT_ID does it\n"
        "(quantize each token's activations for Q8 variants, then each selected expert's\n"
        "rows times every token routed to it, its weights read once) for each\n"
        "variant, hot (caches warm, back to back), cold (working set flushed from every\n"
        "cache before each sample) and decode (GPU), beside a read of the same number of\n"
        "bytes sampled alternately with it (%%peak; GPU rows: a read-only stream on the\n"
        "device). Each row samples until its median is precise enough; a sample during which\n"
        "a thread running the unit was off its CPU for more than 5 %% of it is dropped and\n"
        "counted. Prints one table: the median time per unit, its 95%% interval, min, clean\n"
        "and dropped samples, GB/s, GOP/s, %%peak, and the deviation from the f64 oracle\n"
        "(rel_l2, max_rel, 1-cos; for Q8 variants also rel_l2 from the algorithm-exact oracle).\n"
        "\n"
        "  --list             every variant, its formats, and whether this machine runs it\n"
        "  --kernel LIST      variants by name or glob (default: all matvec variants)\n"
        "  --shape S          gate or up (768x2048), down (2048x768), or ROWSxCOLS\n"
        "  --model F          a GGUF file: its Q4_K tensor instead of the synthetic experts\n"
        "  --layer L --proj P   with --model: blk.L.ffn_P_exps.weight (one matrix per expert)\n"
        "  --tensor NAME      with --model: any 2-D or 3-D Q4_K tensor\n"
        "  --inspect          with --model: architecture, experts, each layer's FFN types\n"
        "  --tokens N[,N...]  tokens decoded at once, 1..64 (default 1); a list runs one\n"
        "                     section per N, each on the first N tokens of the largest\n"
        "  --top K            K distinct experts of 128 per token, drawn from the seed\n"
        "                     (default 1)\n"
        "  --routing R        how --top draws: uniform (default) or skewed (expert of\n"
        "                     popularity rank r in proportion to 1/(r+1), a seeded ranking)\n"
        "  --experts LIST     explicit expert ids: 0-7, 3,9,3 (repeats allowed), one list per\n"
        "                     token separated by '/' (0-7/3,9,11,...), or all (every token)\n"
        "  --act PROFILE      %s (default normal)\n"
        "  --activations F    a float32/float64 .npy of cols values, or of shape (N, cols) for\n"
        "                     N tokens (the largest N of --tokens), instead of --act\n"
        "  --seed N           seeds weights, activations and the expert draw (default 1)\n"
        "  --threads N        worker threads, pinned to distinct cores (default: every CPU\n"
        "                     this process may run on, as taskset or cgroups allow)\n"
        "  --hot, --cold, --decode  run only those rows (default all); decode (GPU rows):\n"
        "                     warm launches, cold weights, as decoding through layers does\n"
        "  --min-samples N    clean samples per row at least (default 10)\n"
        "  --min-time S       seconds of sampling per row at least (default 0.5)\n"
        "  --target-ci PCT    then sample until the median's 95%% interval is within +-PCT %%\n"
        "                     (default 1)\n"
        "  --max-time S       ... or S seconds have passed (default 5, or --min-time if\n"
        "                     longer): the row is then marked noisy if its interval is\n"
        "                     not within the target\n"
        "  --json FILE        Google Benchmark JSON (compare.py reads it) with the deviation\n"
        "                     counters and the machine fingerprint in its context\n"
        "  --dump-output DIR  each variant's output as DIR/<variant>.npy (f32) and the oracles'\n"
        "                     as f64, the activations as activations.npy; for N > 1 tokens,\n"
        "                     <variant>.t<N>.npy of shape (N, k, rows) and routing.t<N>.npy\n"
        "  --plugin LIB.so    load a plug-in's variants (kernels/qkbench_plugin.h; repeatable):\n"
        "                     selected, timed, checked and written like the built-in ones\n"
        "  --no-default-plugins  do not load the plug-ins this bench was built to load\n",
        qk_act_names());
}

/* Token t's K distinct experts: uniform, each expert alike; skewed, expert of popularity rank r
 * drawn in proportion to 1/(r+1) (a Zipf law, as routers without perfect balancing show), the
 * ranking a permutation of the experts drawn from the seed. Both from one stream of the seed, in
 * token order (token 0's uniform draw is the single-token draw of earlier versions). */
static void draw_experts(qk_options *o, size_t n_experts) {
    qk_rng r;
    qk_rng_seed(&r, o->seed ^ 0x5eed);
    static unsigned char used[QK_MAX_EXPERTS];
    static int32_t rank_to_expert[QK_MAX_EXPERTS];
    static double weight[QK_MAX_EXPERTS];
    if (o->skewed) {
        qk_rng ranking;
        qk_rng_seed(&ranking, o->seed ^ 0x5ce3d);
        for (size_t e = 0; e < n_experts; e++)
            rank_to_expert[e] = (int32_t)e;
        for (size_t e = n_experts; e > 1; e--) { /* Fisher-Yates */
            size_t j = (size_t)qk_rng_below(&ranking, e);
            int32_t tmp = rank_to_expert[e - 1];
            rank_to_expert[e - 1] = rank_to_expert[j], rank_to_expert[j] = tmp;
        }
    }
    for (size_t t = 0; t < o->max_tokens; t++) {
        int32_t *ids = o->ids + t * (size_t)o->top;
        memset(used, 0, n_experts);
        if (!o->skewed) {
            for (size_t n = 0; n < (size_t)o->top;) {
                size_t e = (size_t)qk_rng_below(&r, n_experts);
                if (!used[e]) used[e] = 1, ids[n++] = (int32_t)e;
            }
            continue;
        }
        double left = 0; /* the popularity of the ranks not drawn yet */
        for (size_t k = 0; k < n_experts; k++)
            left += weight[k] = 1.0 / (double)(k + 1);
        for (size_t n = 0; n < (size_t)o->top; n++) {
            double u = qk_rng_uniform(&r) * left;
            size_t k = 0;
            while (k + 1 < n_experts && (used[k] || u >= weight[k]))
                u -= used[k] ? 0 : weight[k], k++;
            while (used[k]) /* rounding at the end of the range: the last rank not drawn */
                k--;
            used[k] = 1, left -= weight[k];
            ids[n] = rank_to_expert[k];
        }
    }
}

void qk_choose_experts(qk_options *o, size_t n_experts, const char *what) {
    if (o->all_experts) {
        if (o->max_tokens * n_experts > QK_MAX_IDS)
            qk_die("--experts all: %zu tokens x %zu experts of %s is more than %d ids",
                   o->max_tokens, n_experts, what, QK_MAX_IDS);
        o->n_ids = n_experts, o->n_id_tokens = o->max_tokens;
        for (size_t t = 0; t < o->max_tokens; t++)
            for (size_t e = 0; e < n_experts; e++)
                o->ids[t * n_experts + e] = (int32_t)e;
        return;
    }
    if (o->explicit_ids) {
        if (o->n_id_tokens != o->max_tokens)
            qk_die("--experts: %zu token list%s ('/'-separated), but %s%zu token%s: one list per "
                   "token",
                   o->n_id_tokens, o->n_id_tokens == 1 ? "" : "s",
                   o->n_token_counts > 1 ? "the largest batch of --tokens has "
                                         : "--tokens asks for ",
                   o->max_tokens, o->max_tokens == 1 ? "" : "s");
        for (size_t i = 0; i < o->n_ids * o->n_id_tokens; i++)
            if ((size_t)o->ids[i] >= n_experts)
                qk_die("--experts: expert %d, but %s has %zu expert%s (0-%zu)", o->ids[i], what,
                       n_experts, n_experts == 1 ? "" : "s", n_experts - 1);
        return;
    }
    if ((size_t)o->top > n_experts)
        qk_die("--top %d: %s has %zu expert%s", o->top, what, n_experts, n_experts == 1 ? "" : "s");
    if (o->max_tokens * (size_t)o->top > QK_MAX_IDS)
        qk_die("--top %d with %zu tokens: more than %d ids", o->top, o->max_tokens, QK_MAX_IDS);
    draw_experts(o, n_experts);
    o->n_ids = (size_t)o->top, o->n_id_tokens = o->max_tokens;
}

/* "--NAME" or "--NAME=VALUE" (a Google Benchmark flag called NAME): 1, with the value or "". */
static int gb_flag(const char *arg, const char *name, const char **value) {
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) || strncmp(arg + 2, name, n) || (arg[2 + n] && arg[2 + n] != '='))
        return 0;
    *value = arg[2 + n] ? arg + 3 + n : "";
    return 1;
}

/* --benchmark_context=KEY=VALUE,...: each pair has one '=' (Google Benchmark's own complaint
 * would be a second line), and no key replaces one of Google Benchmark's context (bench's own
 * keys are checked as bench writes them). */
static void check_gb_context(const char *v) {
    static const char *const gb_keys[] = {"date",
                                          "host_name",
                                          "executable",
                                          "num_cpus",
                                          "mhz_per_cpu",
                                          "cpu_scaling_enabled",
                                          "caches",
                                          "load_avg",
                                          "library_version",
                                          "library_build_type",
                                          "json_schema_version"};
    size_t n = strlen(v);
    if (n && v[n - 1] == ',') qk_die("--benchmark_context: '%s' ends in an empty pair", v);
    for (const char *p = v; *p; p += strcspn(p, ","), p += *p == ',') {
        size_t len = strcspn(p, ","), k = strcspn(p, "=,");
        if (k == len || memchr(p + k + 1, '=', len - k - 1))
            qk_die("--benchmark_context: '%.*s' is not KEY=VALUE", (int)len, p);
        for (size_t i = 0; i < sizeof gb_keys / sizeof gb_keys[0]; i++)
            if (k == strlen(gb_keys[i]) && !strncmp(p, gb_keys[i], k))
                qk_die("--benchmark_context: '%s' is a key Google Benchmark writes itself; "
                       "choose another name",
                       gb_keys[i]);
    }
}

static int min_time_given; /* --min-time or --benchmark_min_time */

/* Google Benchmark flags: those that bench's table and JSON cannot honour are refused, the
 * aggregate-reporting ones are kept for bench to apply per row; the others pass through. */
static int take_gb_flag(qk_options *o, const char *a) {
    static const struct {
        const char *name, *why;
    } refused[] = {
        {"benchmark_format", "bench prints its own table; --json FILE writes the JSON"},
        {"benchmark_out", "use --json FILE (it carries bench's counters and fingerprint)"},
        {"benchmark_out_format", "use --json FILE (it carries bench's counters and fingerprint)"},
        {"benchmark_list_tests", "bench --list names the variants"},
        {"benchmark_time_unit", "bench reports every row in microseconds"},
        {"benchmark_color", "bench prints its own table, without colours"},
        {"benchmark_counters_tabular", "bench prints its own table"},
        {"benchmark_perf_counters",
         "Google Benchmark aborts when it cannot open them; bench reports its own counters"},
        {"benchmark_dry_run", "bench times every row it runs"},
    };
    const char *v;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (gb_flag(a, refused[i].name, &v))
            qk_die("%s: not supported by bench (%s)", a, refused[i].why);
    static const struct {
        const char *name, *why;
    } replaced[] = {
        {"benchmark_repetitions", "each row samples until its median is precise enough: "
                                  "--min-samples, --min-time, --target-ci and --max-time set how"},
        {"benchmark_enable_random_interleaving",
         "bench interleaves each row's samples with its peak reference's itself"},
        {"benchmark_min_warmup_time", "bench warms each row up itself"},
        {"benchmark_report_aggregates_only",
         "bench writes one entry per row, its estimate, with every sample beside it"},
        {"benchmark_display_aggregates_only", "bench prints one line per row"},
    };
    for (size_t i = 0; i < sizeof replaced / sizeof replaced[0]; i++)
        if (gb_flag(a, replaced[i].name, &v))
            qk_die("%s: not supported by bench (%s)", a, replaced[i].why);
    /* the same setting as --min-time: whichever comes last wins */
    if (gb_flag(a, "benchmark_min_time", &v)) {
        /* seconds, with the "s" that Google Benchmark 1.8 reads (its "Nx" is an iteration
         * count, which 1.7 does not know: refused) */
        char num[64];
        size_t n = strlen(v);
        if (n && n < sizeof num && v[n - 1] == 's') n--;
        if (n >= sizeof num) n = 0;
        memcpy(num, v, n);
        num[n] = 0;
        o->min_time = parse_seconds("--benchmark_min_time", num, 0.001, 60);
        min_time_given = 1;
        return 1;
    }
    /* the context's keys that bench writes itself must not be replaced: bench checks them
     * against these when it writes its own */
    if (gb_flag(a, "benchmark_context", &v)) {
        check_gb_context(v);
        o->gb_context = v;
        return 0; /* passed through */
    }
    return 0;
}

void qk_parse_options(qk_options *o, int argc, char **argv) {
    *o = (qk_options){.kernels = "*",
                      .top = 1,
                      .act = QK_ACT_NORMAL,
                      .seed = 1,
                      .threads = 0, /* bench: the CPUs this process may run on */
                      .min_samples = 10,
                      .min_time = 0.5,
                      .max_time = 5,
                      .target_ci = 1,
                      .layer = -1,
                      .tokens = {1},
                      .n_token_counts = 1,
                      .max_tokens = 1};
    parse_shape(o, "gate");
    o->gb_argv[o->gb_argc++] = argv[0];
    int hot = 0, cold = 0, decode = 0, top_given = 0, act_given = 0, shape_given = 0,
        max_time_given = 0;
    const char *unused_by_inspect = NULL; /* the first option --inspect would ignore */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--inspect") && strcmp(a, "--model") && strcmp(a, "--help") &&
            strcmp(a, "-h") && strcmp(a, "--list") && !unused_by_inspect)
            unused_by_inspect = a;
        if (!strncmp(a, "--benchmark_", 12)) {
            if (take_gb_flag(o, a)) continue;
            if (o->gb_argc >= QK_MAX_GB_ARGS - 6) qk_die("too many --benchmark_* flags");
            o->gb_argv[o->gb_argc++] = argv[i];
            continue;
        }
        if (!strcmp(a, "--list")) {
            o->list = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            o->help = 1;
            continue;
        }
        if (!strcmp(a, "--inspect")) {
            o->inspect = 1;
            continue;
        }
        if (!strcmp(a, "--hot")) {
            hot = 1;
            continue;
        }
        if (!strcmp(a, "--cold")) {
            cold = 1;
            continue;
        }
        if (!strcmp(a, "--decode")) {
            decode = 1;
            continue;
        }
        if (!strcmp(a, "--no-default-plugins")) {
            o->no_default_plugins = 1;
            continue;
        }
        static const char *const with_value[] = {
            "--kernel",   "--shape",    "--top",         "--experts",     "--act",
            "--seed",     "--threads",  "--json",        "--dump-output", "--activations",
            "--min-time", "--max-time", "--min-samples", "--target-ci",   "--model",
            "--tensor",   "--layer",    "--proj",        "--plugin",      "--tokens",
            "--routing"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            known |= !strcmp(a, with_value[k]);
        /* options of earlier versions, replaced by the stop rule */
        if (!strcmp(a, "--repetitions") || !strcmp(a, "--cold-iterations") ||
            !strcmp(a, "--gpu-iterations"))
            qk_die("%s: bench no longer runs a fixed count; each row samples until its median is "
                   "precise enough (--min-samples, --min-time, --target-ci, --max-time)",
                   a);
        if (!known) qk_die("unknown option '%s' (bench --help lists them)", a);
        if (i + 1 >= argc) qk_die("%s needs a value", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--kernel")) {
            if (!*v) qk_die("--kernel: empty list (bench --list names the variants)");
            o->kernels = v;
        } else if (!strcmp(a, "--shape")) {
            parse_shape(o, v);
            shape_given = 1;
        } else if (!strcmp(a, "--model")) {
            if (!*v) qk_die("--model: empty file name");
            o->model = v;
        } else if (!strcmp(a, "--tensor")) {
            if (!*v) qk_die("--tensor: empty name");
            o->tensor = v;
        } else if (!strcmp(a, "--layer")) {
            o->layer = (int)parse_int(a, v, 0, 100000);
        } else if (!strcmp(a, "--proj")) {
            if (strcmp(v, "gate") && strcmp(v, "up") && strcmp(v, "down"))
                qk_die("--proj: '%s' is not gate, up or down", v);
            o->proj = v;
        } else if (!strcmp(a, "--top")) {
            o->top = (int)parse_int(a, v, 1, QK_MAX_EXPERTS);
            top_given = 1;
        } else if (!strcmp(a, "--experts")) {
            parse_experts(o, v);
            o->explicit_ids = 1;
        } else if (!strcmp(a, "--tokens")) {
            parse_tokens(o, v);
        } else if (!strcmp(a, "--routing")) {
            if (strcmp(v, "uniform") && strcmp(v, "skewed"))
                qk_die("--routing: '%s' is not uniform or skewed", v);
            o->skewed = !strcmp(v, "skewed");
            o->routing_given = 1;
        } else if (!strcmp(a, "--act")) {
            o->act = qk_act_from_name(v);
            if (o->act < 0) qk_die("--act: '%s' is not one of %s", v, qk_act_names());
            act_given = 1;
        } else if (!strcmp(a, "--activations")) {
            if (!*v) qk_die("--activations: empty file name");
            o->activations = v;
        } else if (!strcmp(a, "--seed")) {
            o->seed = (uint64_t)parse_int(a, v, 0, 0x7fffffffffffffffL);
        } else if (!strcmp(a, "--threads")) {
            /* bench checks it against the CPUs this process may run on (affinity) */
            o->threads = (int)parse_int(a, v, 1, QK_MAX_THREADS);
        } else if (!strcmp(a, "--min-samples")) {
            o->min_samples = (size_t)parse_int(a, v, 1, 100000);
        } else if (!strcmp(a, "--min-time")) {
            o->min_time = parse_seconds(a, v, 0.001, 60);
            min_time_given = 1;
        } else if (!strcmp(a, "--max-time")) {
            o->max_time = parse_seconds(a, v, 0.001, 600);
            max_time_given = 1;
        } else if (!strcmp(a, "--target-ci")) {
            o->target_ci = parse_real(a, v, 0.01, 100, "percent");
        } else if (!strcmp(a, "--json")) {
            if (!*v) qk_die("--json: empty file name");
            o->json = v;
        } else if (!strcmp(a, "--plugin")) {
            if (!*v) qk_die("--plugin: empty file name");
            if (o->n_plugins == (int)(sizeof o->plugins / sizeof o->plugins[0]))
                qk_die("--plugin: more than %d plug-ins",
                       (int)(sizeof o->plugins / sizeof o->plugins[0]));
            o->plugins[o->n_plugins++] = v;
        } else if (!strcmp(a, "--dump-output")) {
            if (!*v) qk_die("--dump-output: empty directory name");
            o->dump_dir = v;
        }
    }
    if (top_given && o->explicit_ids) qk_die("--top and --experts both given: choose one");
    if (o->routing_given && (o->explicit_ids || o->all_experts))
        qk_die("--routing draws the experts from the seed; --experts names them: choose one");
    if (o->max_time < o->min_time) {
        if (max_time_given)
            qk_die("--max-time %g is below --min-time %g%s", o->max_time, o->min_time,
                   min_time_given ? "" : " (the default; give a smaller --min-time too)");
        o->max_time = o->min_time; /* a longer --min-time alone raises the cap with it */
    }
    if (act_given && o->activations) qk_die("--act and --activations both given: choose one");
    o->hot = hot || (!cold && !decode);
    o->cold = cold || (!hot && !decode);
    o->decode = decode || (!hot && !cold);
    o->decode_asked = decode;
    if (!o->model && (o->tensor || o->layer >= 0 || o->proj || o->inspect))
        qk_die("%s needs --model FILE.gguf", o->tensor       ? "--tensor"
                                             : o->layer >= 0 ? "--layer"
                                             : o->proj       ? "--proj"
                                                             : "--inspect");
    if (o->inspect && !o->help && !o->list && unused_by_inspect) {
        char shown[64];
        snprintf(shown, sizeof shown, "%.*s", (int)strcspn(unused_by_inspect, "="),
                 unused_by_inspect);
        qk_die("--inspect takes only --model FILE; %s is not used with it", shown);
    }
    if (o->model && shape_given)
        qk_die("--shape and --model both given: the model's tensor sets the shape");
    if (o->model && !o->inspect && !o->list && !o->help) {
        if (o->tensor && (o->layer >= 0 || o->proj))
            qk_die("--tensor and --layer/--proj both given: choose one");
        if (!o->tensor && (o->layer < 0 || !o->proj))
            qk_die("--model needs --layer L and --proj gate|up|down (or --tensor NAME, or "
                   "--inspect)");
    }
}

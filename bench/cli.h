/* bench's command line: parsed into options, or one line on stderr and exit code 2. */
#ifndef QK_CLI_H
#define QK_CLI_H
#include <stddef.h>
#include <stdint.h>

/* QK_N_EXPERTS: the synthetic default's (Qwen3-30B-A3B's); a model file may have up to
 * QK_MAX_EXPERTS. */
enum {
    QK_N_EXPERTS = 128,
    QK_MAX_EXPERTS = 4096,
    QK_MAX_IDS = 8192, /* expert ids of the whole batch: 64 tokens x 128 experts */
    QK_MAX_TOKENS = 64,
    QK_MAX_TOKEN_COUNTS = 16, /* --tokens 1,2,4,...: sections */
    QK_MAX_GB_ARGS = 64,
    QK_MAX_THREADS = 256 /* bench's per-thread tables */
};

typedef struct {
    const char *kernels;     /* comma-separated names or globs */
    const char *shape;       /* as given: gate, up, down or RxC */
    size_t rows, cols;       /* per expert */
    int top;                 /* experts drawn from the seed when ids are not explicit */
    int explicit_ids;        /* --experts given */
    int32_t ids[QK_MAX_IDS]; /* expert ids, token-major: token t's are ids[t*n_ids ..) */
    size_t n_ids;            /* experts per token (k) */
    size_t n_id_tokens;      /* tokens the ids cover (--experts: its '/'-separated lists) */
    size_t tokens[QK_MAX_TOKEN_COUNTS]; /* --tokens: the batch sizes, ascending (default 1) */
    size_t n_token_counts, max_tokens;
    int skewed; /* --routing skewed: a Zipf popularity law over the experts (else uniform) */
    int routing_given;
    int all_experts;         /* --experts all */
    const char *model;       /* --model FILE.gguf, or NULL for the synthetic default */
    const char *tensor;      /* --tensor NAME, or NULL */
    int layer;               /* --layer L, or -1 */
    const char *proj;        /* --proj gate|up|down, or NULL */
    int inspect;             /* --inspect */
    int act;                 /* qk_act_profile */
    const char *activations; /* --activations FILE.npy, or NULL */
    uint64_t seed;
    int threads;           /* 0: every CPU this process may run on (bench resolves it) */
    int hot, cold, decode; /* which rows to run (decode: GPU rows only) */
    int decode_asked;      /* --decode given */
    /* when a row has sampled enough (bench/sampling.h) */
    size_t min_samples;
    double min_time, max_time; /* seconds of sampling per row */
    double target_ci;          /* percent: the median's 95 % interval half-width to reach */
    const char *json;          /* --json FILE, or NULL */
    const char *dump_dir;      /* --dump-output DIR, or NULL */
    const char *plugins[16];   /* --plugin PATH, in order (QK_MAX_PLUGINS of bench/plugin.h) */
    int n_plugins;
    int no_default_plugins; /* --no-default-plugins */
    int list, help;
    const char *gb_context; /* --benchmark_context=K=V,...: the user's context keys */
    /* --benchmark_* flags, passed to Google Benchmark (gb_argv[0] is the program) */
    int gb_argc;
    char *gb_argv[QK_MAX_GB_ARGS];
} qk_options;

/* Fills o from argv; any bad input exits 2 with one line on stderr. */
void qk_parse_options(qk_options *o, int argc, char **argv);
/* Resolves the expert ids of max_tokens tokens once the number of experts is known (128 for
 * the synthetic default, the tensor's for a model): checks explicit ids (one list per token),
 * expands "all" (every token, every expert), or draws --top K distinct ids per token from the
 * seed (uniform, or skewed). Token 0's draw is the same whatever the number of tokens. `what`
 * names the weights in error messages. */
void qk_choose_experts(qk_options *o, size_t n_experts, const char *what);
void qk_print_usage(void);
/* One line on stderr ("bench: ..."), exit code 2. */
__attribute__((format(printf, 1, 2), noreturn)) void qk_die(const char *fmt, ...);

#endif

/* qkbench plug-in interface, the whole of it: a shared library that adds kernel variants to
 * `bench --plugin PATH.so`. Its rows are timed, checked against the f64 oracle and the
 * algorithm-exact oracle of their activation format, written to the JSON and held to the
 * numerical contracts exactly like the built-in rows.
 *
 * A plug-in exports one C function,
 *     const qkb_plugin *qkbench_plugin(const qkb_host *host);
 * which returns its description (static storage), or NULL with nothing registered. bench
 * refuses the library (one line, exit 2) when the entry point is missing, when abi_version is
 * not QKB_PLUGIN_ABI, when a variant's name is not [a-z0-9_]+ or clashes with another
 * variant's, or when a kind, device or format is one bench does not know (bench/README.md,
 * "Plug-ins", lists every refusal).
 *
 * Formats are named as in GGUF: "f32", "q4_K", "q8_K", "q8_1"; their bytes are exactly
 * ggml's (qkbench DESIGN.md, "Formats"). Self-contained: a plug-in needs no other header of
 * ours. C and C++ (extern "C"). */
#ifndef QKBENCH_PLUGIN_H
#define QKBENCH_PLUGIN_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Raised on any change of the structures below; bench loads only its own version. */
#define QKB_PLUGIN_ABI 2

enum qkb_device { QKB_DEVICE_CPU = 0, QKB_DEVICE_CUDA = 1 };

enum qkb_kind {
    /* y[r] = dot(row r of W, x) for r0 <= r < r1, writing exactly those y[r]. bench splits the
     * rows of each selected expert over its own pinned threads (in multiples of row_group) and
     * quantizes x to act_format with its own reference-exact quantizer inside the timed unit.
     * W is one expert's rows x cols matrix: plain blocks of weight_format, or the layout `pack`
     * made (once, untimed). CPU only. */
    QKB_KIND_MATVEC = 0,
    /* out = quantize(x[0..n)) in act_format; weight_format is "f32". CPU only. */
    QKB_KIND_QUANTIZE = 1,
    /* The whole unit at once (as llama.cpp's MUL_MAT_ID): the plug-in runs the selected
     * experts with its own threads (CPU: n_threads of them, pinned to `cpus` as bench pins its
     * own) or on the CUDA device, quantizing x to act_format itself. act_format names the
     * activation format its arithmetic uses (the exact oracle it is held to). */
    QKB_KIND_MOE = 2,
};

typedef void (*qkb_matvec_fn)(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                              const void *x, float *y);
/* Bytes of the packed layout of one rows x cols matrix, and the packing (plain -> out). */
typedef size_t (*qkb_packed_size_fn)(size_t rows, size_t cols);
typedef void (*qkb_pack_fn)(const void *plain, size_t rows, size_t cols, void *out);
typedef void (*qkb_quantize_fn)(const float *x, void *out, size_t n);

/* What a MOE variant computes, for a batch of n_tokens tokens each routed to n_ids experts (as
 * llama.cpp's MUL_MAT_ID): for t < n_tokens and i < n_ids,
 *     y[(t*n_ids + i)*rows + r] = row r of expert ids[t*n_ids + i] . x[t*cols .. t*cols + cols).
 * An expert may appear several times, within a token and across tokens. */
typedef struct qkb_moe_case {
    const void *weights; /* n_experts plain rows x cols matrices, contiguous, host memory;
                            valid during `create` only (copy or pack what you keep) */
    size_t rows, cols, n_experts;
    const int32_t *ids; /* n_tokens x n_ids expert indices, token-major (< n_experts) */
    size_t n_ids;       /* experts per token */
    const float *x;     /* n_tokens x cols f32 activations, token-major */
    int n_threads;      /* CPU: the threads to use, the calling thread included */
    const int *cpus;    /* CPU: the logical CPU of thread t, t < n_threads; NULL: not pinned */
    int cuda_device;    /* CUDA: the device bench uses */
    size_t n_tokens;    /* tokens in the batch, >= 1 (ABI 2) */
} qkb_moe_case;
/* Untimed: takes the case (weights, ids, x) and prepares everything; returns its state, or
 * NULL with a one-line reason in err. */
typedef void *(*qkb_moe_create_fn)(const qkb_moe_case *c, char *err, size_t err_size);
/* The timed unit: runs the case once and returns when its outputs are complete (CUDA:
 * synchronized), or, for a CUDA variant that gives `sync`, as soon as the unit is queued on the
 * plug-in's stream. 0, or -1 with a reason. */
typedef int (*qkb_moe_run_fn)(void *state, char *err, size_t err_size);
/* Optional, CUDA MOE variants only (NULL otherwise; bench refuses a CPU or non-MOE variant that
 * gives one): waits until every run queued so far is complete. With it, bench queues a sample's
 * runs back to back and calls sync once after them, inside the timed interval, as a decode loop
 * runs its layers; bench calls it before any `output` too. 0, or -1 with a reason. */
typedef int (*qkb_moe_sync_fn)(void *state, char *err, size_t err_size);
/* Optional, CPU MOE variants only, both or neither. bench calls `park` after each sample and
 * after its untimed runs: the plug-in's threads stop spinning and sleep, so that the rows timed
 * next (bench's own, whose threads are parked the same way before a plug-in's sample) have the
 * CPUs; and `wake` after a cold sample's eviction, just before its clock starts: the threads
 * awake and waiting for work, as bench wakes its own. A run after `park` without `wake` must
 * still work (waking the threads itself). */
typedef void (*qkb_moe_idle_fn)(void *state);
/* Untimed: copies the last run's n_tokens * n_ids * rows outputs to host memory. 0, or -1. */
typedef int (*qkb_moe_output_fn)(void *state, float *y, char *err, size_t err_size);
/* Optional (CPU): evicts from the caches everything a run reads and writes, for cold rows;
 * NULL: the variant has hot rows only. */
typedef void (*qkb_moe_evict_fn)(void *state);
typedef void (*qkb_moe_destroy_fn)(void *state);

typedef struct qkb_variant {
    const char *name; /* [a-z0-9_]+, unique among all variants, built-in ones included; not a
                         name bench reserves (hot, cold, decode, k<digits>, <digits>x<digits>,
                         peak_read*, activations, oracle_*: bench/README.md, "Plug-ins") */
    int device;       /* enum qkb_device */
    int kind;         /* enum qkb_kind */
    const char *weight_format;
    const char *act_format;
    const char *summary; /* one line: what it computes and how */
    /* QKB_KIND_MATVEC */
    qkb_matvec_fn matvec;
    size_t row_group;               /* rows computed together (0 counts as 1) */
    qkb_packed_size_fn packed_size; /* NULL: reads plain rows */
    qkb_pack_fn pack;
    /* QKB_KIND_QUANTIZE */
    qkb_quantize_fn quantize;
    /* QKB_KIND_MOE */
    qkb_moe_create_fn create;
    qkb_moe_run_fn run;
    qkb_moe_output_fn output;
    qkb_moe_evict_fn evict;
    qkb_moe_destroy_fn destroy;
    /* QKB_KIND_MOE on QKB_DEVICE_CUDA, optional: run only queues */
    qkb_moe_sync_fn sync;
    /* QKB_KIND_MOE on QKB_DEVICE_CPU, optional */
    qkb_moe_idle_fn park;
    qkb_moe_idle_fn wake;
} qkb_variant;

typedef struct qkb_plugin {
    uint32_t abi_version; /* QKB_PLUGIN_ABI */
    const char *name;     /* shown by --list and in the JSON beside each of its variants: 1..64
                             printable ASCII, unique among the plug-ins loaded; no spaces, quotes
                             (' or "), backslashes, commas, semicolons or parentheses */
    const char *version;  /* of the code it measures (e.g. "ggml 0.25.3"), 1..64 of letters,
                             digits, spaces and _ . + -, or NULL */
    size_t n_variants;
    const qkb_variant *variants;
} qkb_plugin;

/* What bench lends a plug-in (valid for the whole run). */
typedef struct qkb_host {
    uint32_t abi_version; /* QKB_PLUGIN_ABI of the loading bench */
    /* Q4_K: scale and min (6 bits each) of sub-block j (0..7) from a block's 12 packed bytes. */
    void (*q4k_scale_min)(const uint8_t scales[12], int j, uint8_t *sc, uint8_t *m);
    /* Exact dequantization of n weights (a multiple of 256) of plain Q4_K blocks to f32. */
    void (*dequantize_q4k)(const void *blocks, float *out, size_t n);
    /* Flushes [p, p + bytes) from every cache level (for a MOE variant's evict). */
    void (*evict)(const void *p, size_t bytes);
} qkb_host;

typedef const qkb_plugin *(*qkb_plugin_entry_fn)(const qkb_host *host);
#define QKB_PLUGIN_ENTRY "qkbench_plugin"

#ifdef __cplusplus
}
#endif
#endif

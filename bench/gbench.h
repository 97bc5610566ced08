/* A small C API over Google Benchmark (1.7.1 and 1.8.x): bench/ is C, the library is C++.
 * Only bench/gbench_shim.cc implements it. */
#ifndef QK_GBENCH_H
#define QK_GBENCH_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct qk_gb_state qk_gb_state; /* a benchmark::State */
typedef struct qk_gb_bench qk_gb_bench; /* a registered benchmark::internal::Benchmark */
typedef void (*qk_gb_fn)(qk_gb_state *st, void *ctx);

/* Parses and removes the --benchmark_* flags from argv (Google Benchmark's Initialize).
 * Returns the number of arguments left; a --benchmark_* flag it does not know is left in argv. */
int qk_gb_init(int argc, char **argv);
/* "--benchmark_min_time=..." in the spelling of the library built against. */
const char *qk_gb_min_time_flag(double seconds);
/* Adds a key/value to the JSON "context". */
void qk_gb_add_context(const char *key, const char *value);

/* Registers fn(state, ctx) under name; the name is copied. */
qk_gb_bench *qk_gb_register(const char *name, qk_gb_fn fn, void *ctx);
void qk_gb_use_manual_time(qk_gb_bench *b); /* fn reports each iteration's time */
void qk_gb_set_iterations(qk_gb_bench *b, int64_t n);
void qk_gb_set_min_time(qk_gb_bench *b, double seconds);
void qk_gb_set_repetitions(qk_gb_bench *b, int n);
void qk_gb_set_unit_us(qk_gb_bench *b);

/* Inside fn: the keep-running loop (`while (qk_gb_keep_running(st)) { ... }`). */
int qk_gb_keep_running(qk_gb_state *st);
void qk_gb_pause(qk_gb_state *st);
void qk_gb_resume(qk_gb_state *st);
void qk_gb_set_iteration_time(qk_gb_state *st, double seconds);
int64_t qk_gb_iterations(const qk_gb_state *st);
void qk_gb_set_bytes_processed(qk_gb_state *st, int64_t bytes);
void qk_gb_set_items_processed(qk_gb_state *st, int64_t items);
typedef enum { QK_GB_PLAIN, QK_GB_RATE } qk_gb_counter_kind;
void qk_gb_counter(qk_gb_state *st, const char *name, double value, qk_gb_counter_kind kind);
/* Marks the benchmark skipped with msg (SkipWithMessage where the library has it, else
 * SkipWithError); fn must return without entering or leaving the loop early. */
void qk_gb_skip(qk_gb_state *st, const char *msg);

/* Marks the run failed (an error in the JSON, not a skip), e.g. after its loop. */
void qk_gb_fail(qk_gb_state *st, const char *msg);

/* Before qk_gb_run: the JSON reporter writes to memory (qk_gb_json_text), not to a file. */
void qk_gb_capture_json(void);

/* The value of --benchmark_filter ("" when none); a new one, before qk_gb_run. */
const char *qk_gb_filter(void);
void qk_gb_set_filter(const char *filter);
/* After qk_gb_run with the JSON captured: the JSON text Google Benchmark's reporter made, with
 * non-finite numbers written as null (the file of --benchmark_out is left empty: the caller
 * writes this text where it belongs, checking each write). */
const char *qk_gb_json_text(void);

/* One finished run as the reporters see it. */
typedef struct {
    const char *name;      /* as registered, e.g. "q4k_q8k_vnni/768x2048/k8/hot" */
    const char *full_name; /* as in the JSON: with "/min_time:0.100", "/manual_time", ... */
    const char *aggregate; /* "" for a repetition, else "mean", "median", "stddev", "cv" */
    int repetition;        /* index of the repetition (0-based) */
    int64_t iterations;
    double seconds; /* real (or manual) time per iteration */
    int skipped;
    const char *message; /* why it was skipped or failed, else "" */
} qk_gb_result;
typedef void (*qk_gb_result_fn)(const qk_gb_result *r, void *ctx);

/* Runs every registered benchmark (filtered by --benchmark_filter). Each run is passed to
 * on_result instead of being printed; the JSON file of --benchmark_out is written as usual.
 * Returns the number of benchmarks run. */
size_t qk_gb_run(qk_gb_result_fn on_result, void *ctx);
/* What the library wrote to its error stream during the last qk_gb_run (e.g. a filter that
 * matched nothing), "" when nothing. */
const char *qk_gb_errors(void);
void qk_gb_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif

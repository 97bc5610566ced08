/* The C shim over Google Benchmark: every function of bench/gbench.h, its results as the
 * collector sees them, and the JSON file the library writes. */
#define _POSIX_C_SOURCE 200809L
#include "qk_test.h"
#include "../bench/gbench.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    char name[128], aggregate[16], message[128];
    double seconds;
    long long iterations;
    int skipped;
} seen;
static seen results[64];
static int n_results;

static void collect(const qk_gb_result *r, void *ctx) {
    (void)ctx;
    if (n_results == 64) return;
    seen *s = &results[n_results++];
    snprintf(s->name, sizeof s->name, "%s", r->name);
    snprintf(s->aggregate, sizeof s->aggregate, "%s", r->aggregate);
    snprintf(s->message, sizeof s->message, "%s", r->message);
    s->seconds = r->seconds;
    s->iterations = (long long)r->iterations;
    s->skipped = r->skipped;
}

static const seen *find(const char *name, const char *aggregate, int nth) {
    for (int i = 0; i < n_results; i++)
        if (!strcmp(results[i].name, name) && !strcmp(results[i].aggregate, aggregate) && !nth--)
            return &results[i];
    return NULL;
}

static int calls_manual, calls_skip;

static void manual(qk_gb_state *st, void *ctx) {
    calls_manual++;
    while (qk_gb_keep_running(st))
        qk_gb_set_iteration_time(st, *(double *)ctx);
}

static volatile double sink;
static void paused(qk_gb_state *st, void *ctx) {
    (void)ctx;
    while (qk_gb_keep_running(st)) {
        qk_gb_pause(st);
        struct timespec ts = {0, 3000000}; /* 3 ms outside the timed region */
        nanosleep(&ts, NULL);
        qk_gb_resume(st);
        sink = sqrt(sink + 2);
    }
}

static void counters(qk_gb_state *st, void *ctx) {
    (void)ctx;
    while (qk_gb_keep_running(st))
        sink = sqrt(sink + 1);
    int64_t it = qk_gb_iterations(st);
    qk_gb_set_bytes_processed(st, it * 1000);
    qk_gb_set_items_processed(st, it * 10);
    qk_gb_counter(st, "answer", 42, QK_GB_PLAIN);
    qk_gb_counter(st, "per_second", (double)it, QK_GB_RATE);
}

static void skipped(qk_gb_state *st, void *ctx) {
    (void)ctx;
    calls_skip++;
    qk_gb_skip(st, "no device here");
}

int main(int argc, char **argv) {
    (void)argc;
    char json[256], out_flag[300];
    snprintf(json, sizeof json, "/tmp/qk_test_gbench_%d.json", (int)getpid());
    snprintf(out_flag, sizeof out_flag, "--benchmark_out=%s", json);
    char *args[] = {argv[0],  "--benchmark_repetitions=2",   (char *)qk_gb_min_time_flag(0.01),
                    out_flag, "--benchmark_out_format=json", "--benchmark_no_such_flag=1",
                    NULL};
    int left = qk_gb_init(6, args);
    CHECK(left == 2 && !strcmp(args[1], "--benchmark_no_such_flag=1"),
          "init should leave only the unknown flag (left %d)", left);

    double iteration_time = 0.002;
    qk_gb_bench *b = qk_gb_register("shim/manual", manual, &iteration_time);
    qk_gb_use_manual_time(b);
    qk_gb_set_iterations(b, 10);
    qk_gb_set_unit_us(b);
    b = qk_gb_register("shim/paused", paused, NULL);
    qk_gb_set_iterations(b, 5);
    b = qk_gb_register("shim/counters", counters, NULL);
    qk_gb_set_min_time(b, 0.01);
    qk_gb_set_repetitions(b, 3);
    qk_gb_register("shim/skipped", skipped, NULL);
    qk_gb_add_context("qk_test_key", "qk_test_value");
    size_t ran = qk_gb_run(collect, NULL);
    qk_gb_shutdown();

    CHECK(ran == 4, "ran %zu benchmarks, registered 4", ran);
    const seen *m0 = find("shim/manual", "", 0), *m1 = find("shim/manual", "", 1);
    CHECK(m0 && m1 && m0->iterations == 10 && fabs(m0->seconds - 0.002) < 1e-9 &&
              fabs(m1->seconds - 0.002) < 1e-9,
          "manual time: 10 iterations of 2 ms each expected, got %lld x %g s",
          m0 ? m0->iterations : -1, m0 ? m0->seconds : -1);
    CHECK(calls_manual == 2, "two repetitions call the function twice (%d)", calls_manual);
    const seen *med = find("shim/manual", "median", 0);
    CHECK(med && fabs(med->seconds - 0.002) < 1e-9, "median aggregate of the manual time");
    const seen *p = find("shim/paused", "", 0);
    CHECK(p && p->iterations == 5 && p->seconds < 0.001,
          "paused time must not count: %g s per iteration", p ? p->seconds : -1);
    CHECK(find("shim/counters", "", 2) && !find("shim/counters", "", 3),
          "per-benchmark repetitions (3) override the flag (2)");
    const seen *s = find("shim/skipped", "", 0);
    CHECK(s && s->skipped && !strcmp(s->message, "no device here") && calls_skip >= 1,
          "skip with a message: skipped %d message '%s' calls %d", s ? s->skipped : -1,
          s ? s->message : "", calls_skip);
    CHECK(!find("shim/manual", "", 0)->skipped, "a run that was not skipped says so");

    /* the JSON file: context, counters and rates, the skip message */
    FILE *f = fopen(json, "r");
    CHECK(f != NULL, "no JSON file %s", json);
    if (f) {
        static char text[1 << 20];
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = 0;
        fclose(f);
        const char *want[] = {"\"qk_test_key\": \"qk_test_value\"",
                              "\"name\": \"shim/manual/iterations:10/manual_time\"",
                              "\"answer\": 4.2",
                              "\"bytes_per_second\":",
                              "\"items_per_second\":",
                              "\"per_second\":",
                              "no device here",
                              "\"aggregate_name\": \"median\"",
                              "\"time_unit\": \"us\""};
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
            CHECK(strstr(text, want[i]) != NULL, "JSON lacks %s", want[i]);
        unlink(json);
    }
    return qk_test_finish("gbench");
}

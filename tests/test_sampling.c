/* bench's sampling rules (bench/sampling.c): the median's interval, the stop rule, and which
 * samples are dropped (a forced context switch, a sleep). */
#define _GNU_SOURCE
#include "../bench/sampling.h"
#include "qk_test.h"
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double uniform(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((double)(rng >> 11) + 0.5) / 9007199254740992.0;
}
/* A skewed time distribution like a shared machine's: 1 + exponential tail; median 1 + ln 2/4. */
static double skewed(void) {
    return 1.0 - 0.25 * log(uniform());
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static void spin(double seconds) {
    double end = now() + seconds;
    while (now() < end) {
    }
}

static atomic_int stop_burner;
static void *burner(void *arg) {
    (void)arg;
    while (!atomic_load(&stop_burner)) {
    }
    return NULL;
}

static void interval_ranks(void) {
    size_t lo, hi;
    qk_median_interval_ranks(6, &lo, &hi);
    CHECK(lo == 0 && hi == 5, "n=6: ranks [%zu, %zu], expected [0, 5]", lo, hi);
    qk_median_interval_ranks(10, &lo, &hi); /* P(B<=1) = 11/1024 <= 2.5 % < P(B<=2) */
    CHECK(lo == 1 && hi == 8, "n=10: ranks [%zu, %zu], expected [1, 8]", lo, hi);
    qk_median_interval_ranks(100, &lo, &hi); /* the textbook (40, 61), 1-based */
    CHECK(lo == 39 && hi == 60, "n=100: ranks [%zu, %zu], expected [39, 60]", lo, hi);
    for (size_t n = 6; n < 3000; n += 7) {
        qk_median_interval_ranks(n, &lo, &hi);
        CHECK(lo <= (n - 1) / 2 && hi >= n / 2 && hi < n && lo + hi == n - 1,
              "n=%zu: ranks [%zu, %zu] are not symmetric around the median", n, lo, hi);
    }
}

static void estimates(void) {
    double v[] = {5, 1, 4, 2, 3, 100, 6, 7};
    unsigned char why[] = {0, 0, 0, 0, 0, QK_SAMPLE_PREEMPTED, 0, 0};
    qk_estimate e;
    CHECK(!qk_estimate_of(v, why, 8, &e), "estimate of 7 clean samples");
    CHECK(e.n == 7 && e.median == 4 && e.min == 1 && e.exact,
          "the dropped 100 is left out: n %zu "
          "median %g min %g",
          e.n, e.median, e.min);
    CHECK(e.low == 1 && e.high == 7, "n=7: the interval is [min, max] (%g, %g)", e.low, e.high);
    CHECK(fabs(e.sd - sqrt(28.0 / 6)) < 1e-12, "sd with n - 1: %g", e.sd);
    CHECK(!qk_estimate_of(v, NULL, 4, &e) && e.median == 3 && !e.exact,
          "4 samples: the true median (3), no exact interval");
    unsigned char all[] = {1, 2, 3, 4};
    CHECK(qk_estimate_of(v, all, 4, &e) == -1 && e.n == 0, "no clean sample: -1");
}

/* The interval covers the true median about 95 % of the time, and shrinks with more samples. */
static void coverage_and_shrinking(void) {
    const double truth = 1.0 + 0.25 * log(2.0);
    double *v = malloc(4000 * sizeof *v);
    int covered = 0, trials = 2000;
    qk_estimate e;
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < 20; i++)
            v[i] = skewed();
        qk_estimate_of(v, NULL, 20, &e);
        covered += e.low <= truth && truth <= e.high;
    }
    double c = (double)covered / trials;
    CHECK(c >= 0.94 && c <= 0.995, "n=20: the interval covered the median in %.1f %% of trials",
          100 * c);
    double width[3];
    size_t sizes[3] = {40, 400, 4000};
    for (int s = 0; s < 3; s++) {
        for (size_t i = 0; i < sizes[s]; i++)
            v[i] = skewed();
        qk_estimate_of(v, NULL, sizes[s], &e);
        width[s] = qk_estimate_rel_halfwidth(&e);
    }
    CHECK(width[1] < 0.6 * width[0] && width[2] < 0.6 * width[1],
          "the interval shrinks with more samples: %.4f, %.4f, %.4f", width[0], width[1], width[2]);
    free(v);
}

/* A machine that drifts during a row (a neighbour arrives halfway: +10 %) makes the blocks
 * disagree: the interval widens to cover both halves' medians' gap; independent samples keep it
 * about as narrow as the order statistics alone give; coverage holds with blocks too. */
static void drift_widens(void) {
    enum { N = 2000 };
    double *v = malloc(N * sizeof *v);
    qk_estimate e;
    for (int i = 0; i < N; i++)
        v[i] = skewed();
    qk_estimate_of(v, NULL, N, &e);
    double steady = qk_estimate_rel_halfwidth(&e);
    CHECK(e.block_halfwidth > 0 && e.block_halfwidth < 2.5 * (e.high - e.low),
          "independent samples: blocks %.4f, interval [%g, %g]", e.block_halfwidth, e.low, e.high);
    for (int i = N / 2; i < N; i++)
        v[i] *= 1.10;
    qk_estimate_of(v, NULL, N, &e);
    double drifting = qk_estimate_rel_halfwidth(&e);
    CHECK(drifting > 1.5 * steady && drifting > 0.03,
          "a 10 %% step halfway widens the interval: %.4f (steady %.4f)", drifting, steady);
    int covered = 0, trials = 1000;
    const double truth = 1.0 + 0.25 * log(2.0);
    for (int t = 0; t < trials; t++) {
        for (int i = 0; i < 60; i++)
            v[i] = skewed();
        qk_estimate_of(v, NULL, 60, &e);
        covered += e.low <= truth && truth <= e.high;
    }
    CHECK(covered >= 0.94 * trials, "n=60 (blocks): covered %d of %d", covered, trials);
    free(v);
}

/* A row whose last tenth ran 6x slower (a neighbour arriving late): the batch-medians interval
 * alone reaches below zero, but no time is below the fastest sample or above the slowest: the
 * interval stays within [min, max], so the JSON's ci_low_us is a time (plot/qkresults.py refuses
 * an interval that is not positive). */
static void late_step_stays_positive(void) {
    enum { N = 100 };
    double v[N];
    qk_estimate e;
    for (int i = 0; i < N; i++)
        v[i] = (i < 90 ? 1.0 : 6.0) * (1 + 0.001 * (i % 7));
    CHECK(!qk_estimate_of(v, NULL, N, &e), "estimate of a late step");
    CHECK(e.block_halfwidth > e.median, "the blocks' half-width %g exceeds the median %g",
          e.block_halfwidth, e.median);
    CHECK(e.low >= e.min && e.low > 0 && e.high <= 6.0 * 1.006 + 1e-12,
          "the interval [%g, %g] lies within the samples [%g, %g]", e.low, e.high, e.min,
          6.0 * 1.006);
    CHECK(qk_estimate_rel_halfwidth(&e) > 0.5, "the interval is still wide: %g",
          qk_estimate_rel_halfwidth(&e));
}

static void stop_rule(void) {
    qk_stop_rule r = {.min_samples = 10, .min_time = 0.5, .max_time = 5, .target = 0.01};
    qk_estimate tight = {.n = 100, .median = 1, .low = 0.995, .high = 1.004, .exact = 1};
    qk_estimate wide = tight;
    wide.low = 0.9;
    qk_estimate few = tight;
    few.n = 9;
    CHECK(qk_sampling_check(&r, &tight, 100, 1000, 0.6) == QK_SAMPLING_PRECISE, "precise");
    CHECK(qk_sampling_check(&r, &tight, 100, 1000, 0.4) == QK_SAMPLING_GO_ON, "before min_time");
    CHECK(qk_sampling_check(&r, &few, 100, 1000, 0.6) == QK_SAMPLING_GO_ON, "before min_samples");
    CHECK(qk_sampling_check(&r, &wide, 100, 1000, 1.0) == QK_SAMPLING_GO_ON, "interval too wide");
    CHECK(qk_sampling_check(&r, &wide, 100, 1000, 5.0) == QK_SAMPLING_CAPPED, "the time cap");
    CHECK(qk_sampling_check(&r, &wide, 1000, 1000, 1.0) == QK_SAMPLING_CAPPED, "the sample cap");
    qk_estimate inexact = tight;
    inexact.exact = 0;
    r.min_samples = 1;
    CHECK(qk_sampling_check(&r, &inexact, 5, 1000, 1.0) == QK_SAMPLING_GO_ON,
          "fewer than 6 samples have no 95 %% interval: never precise");
}

/* A sample is dropped when a thread of the process is preempted (another thread burning the
 * same CPU forces it) or when the timing thread sleeps; a quiet spin is kept. */
static void dropped_samples(void) {
    int kept = 0;
    for (int t = 0; t < 20 && !kept; t++) { /* the machine is shared: one quiet try is enough */
        qk_sample_mark m;
        double wall;
        qk_sample_begin(&m);
        spin(0.002);
        kept = qk_sample_end(&m, &wall) == QK_SAMPLE_CLEAN && wall >= 0.002;
    }
    CHECK(kept, "a 2 ms spin was never clean in 20 tries");

    int off_cpu = 0;
    for (int t = 0; t < 5 && !off_cpu; t++) {
        qk_sample_mark m;
        double wall;
        qk_sample_begin(&m);
        nanosleep(&(struct timespec){0, 20000000}, NULL);
        off_cpu = qk_sample_end(&m, &wall) == QK_SAMPLE_OFF_CPU;
    }
    CHECK(off_cpu, "a sample that sleeps 20 ms is not dropped as off the CPU");

    cpu_set_t one, old;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    sched_getaffinity(0, sizeof old, &old);
    CHECK(!sched_setaffinity(0, sizeof one, &one), "pin the test to one CPU");
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof one, &one); /* the burner shares that CPU */
    atomic_store(&stop_burner, 0);
    CHECK(!pthread_create(&th, &attr, burner, NULL), "start the burner");
    qk_sample_mark m;
    double wall;
    qk_sample_begin(&m);
    spin(0.3); /* far longer than a scheduler slice: both threads are preempted */
    int why = qk_sample_end(&m, &wall);
    atomic_store(&stop_burner, 1);
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
    sched_setaffinity(0, sizeof old, &old);
    CHECK(why == QK_SAMPLE_PREEMPTED,
          "a sample sharing its CPU with a burner for 0.3 s: code %d, "
          "expected %d (preempted)",
          why, QK_SAMPLE_PREEMPTED);
}

int main(void) {
    interval_ranks();
    estimates();
    coverage_and_shrinking();
    drift_widens();
    late_step_stays_positive();
    stop_rule();
    dropped_samples();
    return qk_test_finish("sampling");
}

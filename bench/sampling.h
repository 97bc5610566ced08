/* How bench samples a row: what makes a sample clean, the estimate of a row's time and its
 * interval, and when to stop sampling (nvbench's rule: at least N samples and T seconds, then
 * until the estimate is precise enough, with a time cap). */
#ifndef QK_SAMPLING_H
#define QK_SAMPLING_H
#include <pthread.h>
#include <stddef.h>

/* Why a sample was dropped (0: clean). The codes are the JSON's "dropped" values. */
enum {
    QK_SAMPLE_CLEAN = 0,
    QK_SAMPLE_PREEMPTED = 1, /* a watched thread off its CPU for more than 5 % of the sample,
                                with an involuntary context switch in the process */
    QK_SAMPLE_OFF_CPU = 2,   /* the same without a switch: a hypervisor's steal, a sleep */
    QK_SAMPLE_CLOCK_LOW = 3, /* GPU: the SM clock below QK_MIN_CLOCK_FRACTION of its maximum */
    QK_SAMPLE_NOT_HELD = 4,  /* GPU: the blocking kernel gave up before the launch was queued */
    QK_SAMPLE_REASONS = 5
};
#define QK_MIN_CPU_FRACTION 0.95
#define QK_MIN_CLOCK_FRACTION 0.90
#define QK_MAX_DROPPED_FRACTION 0.25 /* more dropped than this: the row is marked noisy */

enum { QK_MAX_WATCHED = 256 };
/* The threads whose CPU time a sample checks (the timing thread and the pool's workers, which
 * spin between jobs: each is on its CPU for the whole of a clean sample). Without a call, only
 * the calling thread. 0, or -1 when a thread's CPU clock cannot be had. */
int qk_sample_watch(const pthread_t *threads, int n);
/* Around a timed CPU sample: the process's involuntary context switches (every thread's,
 * getrusage) and each watched thread's CPU time (its own precise clock, which a thread waiting
 * for its CPU, or whose virtual CPU the hypervisor took, does not advance), with the wall clock
 * innermost. A sample is dropped when a watched thread's CPU time is below QK_MIN_CPU_FRACTION of
 * the wall time: a brief preemption that cost under 5 % keeps it. */
typedef struct {
    long nivcsw;
    double cpu[QK_MAX_WATCHED], wall;
} qk_sample_mark;
void qk_sample_begin(qk_sample_mark *m);
/* The sample's wall seconds in *wall_s; returns QK_SAMPLE_CLEAN, _PREEMPTED or _OFF_CPU. */
int qk_sample_end(const qk_sample_mark *m, double *wall_s);

/* Around a timed sample of a unit run by threads not ours (a plug-in's MOE variant: its own
 * threads, which bench did not start): the CPU time of every thread of the process (the pool's
 * workers are parked, asleep) against n_threads x the wall time, and the process's involuntary
 * context switches for the reason. Each thread's own clock, the threads listed from
 * /proc/self/task before the wall clock starts: the process-wide clock advances a thread
 * running on another CPU only at a scheduler tick, so over a millisecond it misses most of
 * its time (without /proc, that clock it is). Dropped below QK_MIN_CPU_FRACTION, as a watched
 * thread would be: code 1 with a switch, 2 without (a hypervisor's steal, or the plug-in's
 * threads sleeping during the unit instead of working). */
typedef struct {
    long nivcsw;
    int n; /* threads read (0: the process-wide clock) */
    int tid[QK_MAX_WATCHED];
    double cpu[QK_MAX_WATCHED], wall;
} qk_process_mark;
void qk_process_sample_begin(qk_process_mark *m);
/* n_threads: the threads the unit keeps busy (bench counts them in an untimed calibration:
 * bench/README.md, "How MOE rows are timed"). *busy (NULL: not wanted): the threads whose CPU
 * time was at least half the wall time, those listed at the start and those started during
 * the sample and still there at its end. */
int qk_process_sample_end(const qk_process_mark *m, int n_threads, double *wall_s, int *busy);

/* A row's estimate from its clean samples: the median, and a 95 % interval for it that holds
 * when the machine drifts during the row, not only for independent samples. It is the hull of
 * the distribution-free interval from order statistics (the exact binomial rule) and, with at
 * least QK_MIN_BLOCK_SAMPLES clean samples, the batch-medians interval: the clean samples in
 * time order cut into QK_BLOCKS blocks, median +- t(0.975, QK_BLOCKS - 1) * sd(block medians) /
 * sqrt(QK_BLOCKS), both kept within [min, max] of the clean samples. Independent samples give
 * both about the same width; a drift (a neighbour arriving, a clock changing) makes the blocks
 * disagree and widens the interval. With fewer
 * than 6 samples no 95 % interval exists: [min, max] is given, with `exact` 0. */
#define QK_BLOCKS 10
#define QK_MIN_BLOCK_SAMPLES 30
typedef struct {
    size_t n;               /* clean samples */
    double median;          /* the true median (mean of the middle two for an even count) */
    double low, high;       /* the interval */
    double min, mean, sd;   /* sd with n - 1 */
    int exact;              /* the interval covers the median with at least 95 % */
    double block_halfwidth; /* the batch-medians interval's half-width (0: too few samples) */
} qk_estimate;
/* Over the values whose why[i] is QK_SAMPLE_CLEAN (why may be NULL: all), in time order. 0 on
 * success, -1 when no value is clean (e is zeroed) or memory runs out. */
int qk_estimate_of(const double *v, const unsigned char *why, size_t n, qk_estimate *e);
/* The interval's half-width relative to the median: max(median - low, high - median) / median. */
double qk_estimate_rel_halfwidth(const qk_estimate *e);
/* 0-based ranks [lo, hi] of the sorted sample that bound the median's 95 % interval, n >= 6. */
void qk_median_interval_ranks(size_t n, size_t *lo, size_t *hi);

/* When a row has sampled enough. */
typedef struct {
    size_t min_samples; /* clean samples at least */
    double min_time;    /* seconds of sampling (wall) at least */
    double max_time;    /* seconds of sampling at most: the cap */
    double target;      /* the interval's relative half-width to reach, e.g. 0.01 */
} qk_stop_rule;
typedef enum {
    QK_SAMPLING_GO_ON,
    QK_SAMPLING_PRECISE, /* the target was reached */
    QK_SAMPLING_CAPPED   /* max_time or the sample cap came first */
} qk_sampling_state;
qk_sampling_state qk_sampling_check(const qk_stop_rule *r, const qk_estimate *e, size_t n_total,
                                    size_t cap, double elapsed);

#endif

#define _GNU_SOURCE /* RUSAGE_THREAD is not needed: RUSAGE_SELF counts every thread */
#include "sampling.h"
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long involuntary_switches(void) {
    struct rusage u;
    if (getrusage(RUSAGE_SELF, &u)) return -1;
    return u.ru_nivcsw;
}

static clockid_t watched[QK_MAX_WATCHED];
static int n_watched;

int qk_sample_watch(const pthread_t *threads, int n) {
    if (n < 0 || n > QK_MAX_WATCHED) return -1;
    for (int i = 0; i < n; i++)
        if (pthread_getcpuclockid(threads[i], &watched[i])) {
            n_watched = 0;
            return -1;
        }
    n_watched = n;
    return 0;
}

void qk_sample_begin(qk_sample_mark *m) {
    m->nivcsw = involuntary_switches();
    if (!n_watched) m->cpu[0] = clock_s(CLOCK_THREAD_CPUTIME_ID);
    for (int i = 0; i < n_watched; i++)
        m->cpu[i] = clock_s(watched[i]);
    m->wall = clock_s(CLOCK_MONOTONIC);
}

int qk_sample_end(const qk_sample_mark *m, double *wall_s) {
    double wall = clock_s(CLOCK_MONOTONIC) - m->wall;
    double least = n_watched ? INFINITY : clock_s(CLOCK_THREAD_CPUTIME_ID) - m->cpu[0];
    for (int i = 0; i < n_watched; i++)
        least = fmin(least, clock_s(watched[i]) - m->cpu[i]);
    long switches = involuntary_switches();
    *wall_s = wall;
    if (least >= QK_MIN_CPU_FRACTION * wall) return QK_SAMPLE_CLEAN;
    return switches < 0 || m->nivcsw < 0 || switches != m->nivcsw ? QK_SAMPLE_PREEMPTED
                                                                  : QK_SAMPLE_OFF_CPU;
}

/* A thread's CPU clock by its id, as glibc's pthread_getcpuclockid makes it (CPUCLOCK_SCHED,
 * per thread): for threads bench has no pthread_t of. */
static clockid_t thread_clock(int tid) {
    return (clockid_t)(((unsigned)~tid << 3) | 6);
}

void qk_process_sample_begin(qk_process_mark *m) {
    m->nivcsw = involuntary_switches();
    m->n = 0;
    DIR *d = opendir("/proc/self/task");
    for (struct dirent *e; d && (e = readdir(d)) && m->n < QK_MAX_WATCHED;) {
        int tid = atoi(e->d_name);
        struct timespec t;
        if (tid > 0 && !clock_gettime(thread_clock(tid), &t)) m->tid[m->n++] = tid;
    }
    if (d) closedir(d);
    for (int i = 0; i < m->n; i++)
        m->cpu[i] = clock_s(thread_clock(m->tid[i]));
    if (!m->n) m->cpu[0] = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    m->wall = clock_s(CLOCK_MONOTONIC);
}

int qk_process_sample_end(const qk_process_mark *m, int n_threads, double *wall_s, int *busy) {
    double wall = clock_s(CLOCK_MONOTONIC) - m->wall, cpu = 0;
    int n_busy = 0;
    for (int i = 0; i < m->n; i++) { /* a thread that ended during the sample: its time is lost */
        struct timespec t;
        if (clock_gettime(thread_clock(m->tid[i]), &t)) continue;
        double c = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec - m->cpu[i];
        cpu += c;
        n_busy += c >= 0.5 * wall;
    }
    if (!m->n) cpu = clock_s(CLOCK_PROCESS_CPUTIME_ID) - m->cpu[0];
    long switches = involuntary_switches();
    if (busy && m->n) { /* threads started during the sample: all their time is in it */
        DIR *d = opendir("/proc/self/task");
        for (struct dirent *e; d && (e = readdir(d));) {
            int tid = atoi(e->d_name), known = 0;
            for (int i = 0; i < m->n && !known; i++)
                known = m->tid[i] == tid;
            struct timespec t;
            if (tid <= 0 || known || clock_gettime(thread_clock(tid), &t)) continue;
            double c = (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
            cpu += c;
            n_busy += c >= 0.5 * wall;
        }
        if (d) closedir(d);
    }
    if (busy) *busy = m->n ? n_busy : n_threads;
    *wall_s = wall;
    if (cpu >= QK_MIN_CPU_FRACTION * n_threads * wall) return QK_SAMPLE_CLEAN;
    return switches < 0 || m->nivcsw < 0 || switches != m->nivcsw ? QK_SAMPLE_PREEMPTED
                                                                  : QK_SAMPLE_OFF_CPU;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void qk_median_interval_ranks(size_t n, size_t *lo, size_t *hi) {
    /* the largest j with P(Bin(n, 1/2) <= j - 1) <= 0.025 gives [x_(j), x_(n-j+1)] (1-based);
     * the sum starts 8 standard deviations below n/2, where the tail is below 1e-15 */
    double sd = 0.5 * sqrt((double)n), start = 0.5 * (double)n - 8 * sd;
    size_t i = start > 0 ? (size_t)start : 0;
    double cum = 0, log_half_n = (double)n * log(0.5);
    size_t j = 0; /* 1-based; 0: none found yet */
    for (; i <= n / 2; i++) {
        double p = exp(lgamma((double)n + 1) - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) +
                       log_half_n);
        if (cum + p > 0.025) break;
        cum += p;
        j = i + 1; /* P(B <= j - 1) = cum <= 0.025 */
    }
    if (!j) j = 1;
    *lo = j - 1;
    *hi = n - j;
}

static double median_sorted(const double *s, size_t m) {
    return m % 2 ? s[m / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
}

/* The batch-medians half-width over the clean samples s[0..m) in time order (sorts each block
 * in place). */
static double block_halfwidth(double *s, size_t m) {
    static const double t975_9 = 2.262157; /* Student's t, 0.975 quantile, 9 degrees of freedom */
    _Static_assert(QK_BLOCKS == 10, "t975_9 is for 10 blocks");
    double med[QK_BLOCKS], mean = 0, ss = 0;
    for (size_t b = 0; b < QK_BLOCKS; b++) {
        size_t lo = b * m / QK_BLOCKS, hi = (b + 1) * m / QK_BLOCKS;
        qsort(s + lo, hi - lo, sizeof *s, cmp_double);
        med[b] = median_sorted(s + lo, hi - lo);
        mean += med[b] / QK_BLOCKS;
    }
    for (size_t b = 0; b < QK_BLOCKS; b++)
        ss += (med[b] - mean) * (med[b] - mean);
    return t975_9 * sqrt(ss / (QK_BLOCKS - 1)) / sqrt((double)QK_BLOCKS);
}

int qk_estimate_of(const double *v, const unsigned char *why, size_t n, qk_estimate *e) {
    memset(e, 0, sizeof *e);
    double *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) return -1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!why || why[i] == QK_SAMPLE_CLEAN) s[m++] = v[i];
    if (!m) {
        free(s);
        return -1;
    }
    if (m >= QK_MIN_BLOCK_SAMPLES) e->block_halfwidth = block_halfwidth(s, m);
    qsort(s, m, sizeof *s, cmp_double);
    e->n = m;
    e->median = median_sorted(s, m);
    e->min = s[0];
    double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += s[i];
    e->mean = sum / (double)m;
    double ss = 0;
    for (size_t i = 0; i < m; i++)
        ss += (s[i] - e->mean) * (s[i] - e->mean);
    e->sd = m > 1 ? sqrt(ss / (double)(m - 1)) : 0;
    if (m >= 6) {
        size_t lo, hi;
        qk_median_interval_ranks(m, &lo, &hi);
        /* within the samples: under a late step the blocks' half-width can exceed the median
         * (a negative time), and no median lies outside [min, max] */
        e->low = fmax(s[0], fmin(s[lo], e->median - e->block_halfwidth));
        e->high = fmin(s[m - 1], fmax(s[hi], e->median + e->block_halfwidth));
        e->exact = 1;
    } else {
        e->low = s[0], e->high = s[m - 1], e->exact = 0;
    }
    free(s);
    return 0;
}

double qk_estimate_rel_halfwidth(const qk_estimate *e) {
    if (!e->n || e->median <= 0) return INFINITY;
    return fmax(e->median - e->low, e->high - e->median) / e->median;
}

qk_sampling_state qk_sampling_check(const qk_stop_rule *r, const qk_estimate *e, size_t n_total,
                                    size_t cap, double elapsed) {
    if (e->n >= r->min_samples && elapsed >= r->min_time && e->exact &&
        qk_estimate_rel_halfwidth(e) <= r->target)
        return QK_SAMPLING_PRECISE;
    if (elapsed >= r->max_time || n_total >= cap) return QK_SAMPLING_CAPPED;
    return QK_SAMPLING_GO_ON;
}

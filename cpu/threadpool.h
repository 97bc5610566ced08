/* A persistent pool of pinned-or-not worker threads that run one job on all threads at once.
 * Workers spin briefly between jobs (a matvec is tens of microseconds: waking a sleeping thread
 * would cost more than the work), then sleep. */
#ifndef QK_THREADPOOL_H
#define QK_THREADPOOL_H

typedef struct qk_pool qk_pool;
/* fn(arg, thread_index, thread_count); thread 0 is the caller. */
typedef void (*qk_job_fn)(void *arg, int ti, int nt);

/* NULL with errno set when threads cannot be created. */
qk_pool *qk_pool_create(int threads);
void qk_pool_destroy(qk_pool *p);
int qk_pool_threads(const qk_pool *p);
/* Runs fn on every thread and returns when all have finished. */
void qk_pool_run(qk_pool *p, qk_job_fn fn, void *arg);
/* Puts every worker to sleep now (not after its spin) and returns once all sleep, so that
 * threads not of the pool (a plug-in's) have the CPUs to themselves; the next qk_pool_run
 * wakes them. */
void qk_pool_park(qk_pool *p);

#endif

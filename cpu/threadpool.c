#define _GNU_SOURCE
#include "threadpool.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

enum { SPIN_LIMIT = 1 << 16 };

typedef struct {
    qk_pool *pool;
    int index;
    pthread_t thread;
} worker;

struct qk_pool {
    int threads;
    worker *workers;
    _Atomic unsigned generation; /* bumped for each job */
    _Atomic int pending;         /* workers still running the current job */
    _Atomic int stop;
    _Atomic int park; /* qk_pool_park: sleep now rather than spin */
    int sleeping;     /* workers waiting on wake (under lock) */
    qk_job_fn fn;
    void *arg;
    pthread_mutex_t lock;
    pthread_cond_t wake, asleep;
};

static void *worker_main(void *p_) {
    worker *w = p_;
    qk_pool *p = w->pool;
    unsigned seen = 0;
    for (;;) {
        int spins = 0;
        unsigned g;
        while ((g = atomic_load_explicit(&p->generation, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop)) {
            if (++spins < SPIN_LIMIT && !atomic_load_explicit(&p->park, memory_order_relaxed)) {
                _mm_pause();
                continue;
            }
            pthread_mutex_lock(&p->lock);
            p->sleeping++;
            pthread_cond_signal(&p->asleep);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->wake, &p->lock);
            p->sleeping--;
            pthread_mutex_unlock(&p->lock);
        }
        if (atomic_load(&p->stop)) return NULL;
        seen = g;
        p->fn(p->arg, w->index, p->threads);
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
}

qk_pool *qk_pool_create(int threads) {
    if (threads < 1) threads = 1;
    qk_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    p->workers = calloc((size_t)threads, sizeof *p->workers);
    if (!p->workers) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->asleep, NULL);
    for (int i = 1; i < threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].index = i;
        if (pthread_create(&p->workers[i].thread, NULL, worker_main, &p->workers[i])) {
            p->threads = i; /* tear down the ones that started */
            qk_pool_destroy(p);
            return NULL;
        }
    }
    return p;
}

void qk_pool_destroy(qk_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stop, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->threads; i++)
        pthread_join(p->workers[i].thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->asleep);
    free(p->workers);
    free(p);
}

int qk_pool_threads(const qk_pool *p) {
    return p->threads;
}

void qk_pool_run(qk_pool *p, qk_job_fn fn, void *arg) {
    if (p->threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->park, 0);
    atomic_store(&p->pending, p->threads - 1);
    pthread_mutex_lock(&p->lock);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    fn(arg, 0, p->threads);
    while (atomic_load_explicit(&p->pending, memory_order_acquire) > 0)
        _mm_pause();
}

void qk_pool_park(qk_pool *p) {
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->park, 1);
    while (p->sleeping < p->threads - 1)
        pthread_cond_wait(&p->asleep, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

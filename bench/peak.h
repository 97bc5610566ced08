/* The in-run bandwidth reference and cache eviction for cold rows. */
#ifndef QK_PEAK_H
#define QK_PEAK_H
#include "../cpu/threadpool.h"
#include <stddef.h>

/* Reads bytes of buf (64-byte aligned) on every thread of the pool, each thread a contiguous
 * share, with the widest loads this CPU has. Returns a value that depends on every byte. */
unsigned long long qk_read_all(qk_pool *pool, const void *buf, size_t bytes);

/* Evicts [p, p + bytes) from every cache level of every core (clflush), so the next access
 * comes from DRAM. */
void qk_evict(const void *p, size_t bytes);

#endif

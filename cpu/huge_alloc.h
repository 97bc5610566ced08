/* Memory for the large read-mostly buffers that timing reads (weights, packed layouts, the peak
 * read loop's buffer): 2 MiB aligned and asked to be backed by transparent huge pages, so that
 * where their bytes land in the caches varies less from one process to the next (with 4 KiB
 * pages, the same binary's rows differed by up to 6 % between processes). */
#ifndef QK_HUGE_ALLOC_H
#define QK_HUGE_ALLOC_H
#include <stddef.h>

/* NULL when memory runs out; released with free(). The pages are touched (zeroed) so that they
 * are backed now, not during a timed call. Huge pages are a hint: 4 KiB pages still work. */
void *qk_alloc_huge(size_t bytes);

#endif

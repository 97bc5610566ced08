#define _DEFAULT_SOURCE /* madvise */
#include "huge_alloc.h"
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

enum { HUGE_PAGE = 2 << 20 };

void *qk_alloc_huge(size_t bytes) {
    size_t len = (bytes ? bytes : 1) + HUGE_PAGE - 1;
    len -= len % HUGE_PAGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, len)) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE);
#endif
    memset(p, 0, len);
    return p;
}

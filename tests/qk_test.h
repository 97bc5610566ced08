/* A minimal test harness: CHECK counts cases; qk_test_finish prints "N passed, N failed". */
#ifndef QK_TEST_H
#define QK_TEST_H
#include <stdio.h>

static int qk_passed, qk_failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (cond) {                                                                                \
            qk_passed++;                                                                           \
        } else {                                                                                   \
            qk_failed++;                                                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static inline int qk_test_finish(const char *suite) {
    printf("%s: %d passed, %d failed\n", suite, qk_passed, qk_failed);
    return qk_failed ? 1 : 0;
}

#endif

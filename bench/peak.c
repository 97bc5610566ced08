#include "peak.h"
#include "../cpu/cpu_features.h"
#include "../kernels/qk_kernel.h"
#include <immintrin.h>
#include <stdint.h>

/* Four independent xor chains keep enough loads in flight to saturate the memory level. */
__attribute__((target("avx512f"))) static unsigned long long read_avx512(const char *p, size_t n) {
    __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 256 <= n; i += 256) {
        a = _mm512_xor_si512(a, _mm512_load_si512((const void *)(p + i)));
        b = _mm512_xor_si512(b, _mm512_load_si512((const void *)(p + i + 64)));
        c = _mm512_xor_si512(c, _mm512_load_si512((const void *)(p + i + 128)));
        d = _mm512_xor_si512(d, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a = _mm512_xor_si512(_mm512_xor_si512(a, b), _mm512_xor_si512(c, d));
    unsigned long long s = (unsigned long long)_mm512_reduce_add_epi64(a);
    for (; i < n; i++)
        s += (unsigned char)p[i];
    return s;
}

__attribute__((target("avx2"))) static unsigned long long read_avx2(const char *p, size_t n) {
    __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        a = _mm256_xor_si256(a, _mm256_load_si256((const __m256i *)(p + i)));
        b = _mm256_xor_si256(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        c = _mm256_xor_si256(c, _mm256_load_si256((const __m256i *)(p + i + 64)));
        d = _mm256_xor_si256(d, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a = _mm256_xor_si256(_mm256_xor_si256(a, b), _mm256_xor_si256(c, d));
    unsigned long long s =
        (unsigned long long)(_mm256_extract_epi64(a, 0) ^ _mm256_extract_epi64(a, 1) ^
                             _mm256_extract_epi64(a, 2) ^ _mm256_extract_epi64(a, 3));
    for (; i < n; i++)
        s += (unsigned char)p[i];
    return s;
}

static unsigned long long read_sse2(const char *p, size_t n) {
    __m128i a = _mm_setzero_si128(), b = a, c = a, d = a;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a = _mm_xor_si128(a, _mm_load_si128((const __m128i *)(p + i)));
        b = _mm_xor_si128(b, _mm_load_si128((const __m128i *)(p + i + 16)));
        c = _mm_xor_si128(c, _mm_load_si128((const __m128i *)(p + i + 32)));
        d = _mm_xor_si128(d, _mm_load_si128((const __m128i *)(p + i + 48)));
    }
    a = _mm_xor_si128(_mm_xor_si128(a, b), _mm_xor_si128(c, d));
    unsigned long long s =
        (unsigned long long)(_mm_cvtsi128_si64(a) ^ _mm_cvtsi128_si64(_mm_unpackhi_epi64(a, a)));
    for (; i < n; i++)
        s += (unsigned char)p[i];
    return s;
}

typedef struct {
    const char *buf;
    size_t bytes;
    unsigned long long (*read)(const char *, size_t);
    unsigned long long sums[256];
} read_job;

static void read_share(void *arg, int ti, int nt) {
    read_job *j = arg;
    /* shares in whole 256-byte steps, so every share but the last stays aligned */
    size_t steps = j->bytes / 256, per = steps / (size_t)nt, extra = steps % (size_t)nt;
    size_t first = (size_t)ti * per + ((size_t)ti < extra ? (size_t)ti : extra);
    size_t count = per + ((size_t)ti < extra);
    size_t begin = first * 256, end = (first + count) * 256;
    if (ti == nt - 1) end = j->bytes;
    j->sums[ti & 255] = j->read(j->buf + begin, end - begin);
}

unsigned long long qk_read_all(qk_pool *pool, const void *buf, size_t bytes) {
    uint32_t isa = qk_cpu_isa();
    read_job j = {.buf = buf,
                  .bytes = bytes,
                  .read = isa & QK_ISA_AVX512 ? read_avx512
                          : isa & QK_ISA_AVX2 ? read_avx2
                                              : read_sse2};
    qk_pool_run(pool, read_share, &j);
    unsigned long long s = 0;
    for (int t = 0; t < qk_pool_threads(pool) && t < 256; t++)
        s += j.sums[t];
    return s;
}

void qk_evict(const void *p, size_t bytes) {
    const char *c = (const char *)((uintptr_t)p & ~(uintptr_t)63), *end = (const char *)p + bytes;
    for (; c < end; c += 64)
        _mm_clflush(c);
    _mm_mfence();
}

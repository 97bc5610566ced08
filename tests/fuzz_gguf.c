/* libFuzzer target for the GGUF reader: any input either opens, and then every tensor byte and
 * string-array element it hands out lies inside the input, or is refused with one line naming
 * "fuzz.gguf". Built by -DQK_FUZZ=ON with clang; tests/run.sh runs it for QK_FUZZ_SECONDS. */
#include "../bench/gguf.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    qk_gguf *g = qk_gguf_open_memory(data, size, "fuzz.gguf", err, sizeof err);
    if (!g) {
        if (strncmp(err, "fuzz.gguf: ", 11) || strchr(err, '\n')) abort();
        return 0;
    }
    volatile uint8_t sink = 0;
    for (size_t i = 0; i < qk_gguf_tensor_count(g); i++) {
        const qk_gguf_tensor *t = qk_gguf_tensor_at(g, i);
        if (t->bytes && (t->data < data || t->data + t->bytes > data + size)) abort();
        if (t->bytes) sink ^= t->data[0] ^ t->data[t->bytes - 1];
        if (qk_gguf_find_tensor(g, t->name) != t) abort();
    }
    for (size_t i = 0; i < qk_gguf_kv_count(g); i++) {
        const qk_gguf_kv *kv = qk_gguf_kv_at(g, i);
        uint64_t v, len;
        (void)qk_gguf_kv_uint(kv, &v);
        if (kv->type == QK_GGUF_ARRAY && kv->array_type == QK_GGUF_STRING)
            for (uint64_t k = 0; k < kv->array_count && k < 64; k++) {
                const char *s = qk_gguf_array_string(kv, k, &len);
                if (!s || (const uint8_t *)s < data || (const uint8_t *)s + len > data + size)
                    abort();
                if (len) sink ^= (uint8_t)s[len - 1];
            }
    }
    (void)sink;
    qk_gguf_close(g);
    return 0;
}

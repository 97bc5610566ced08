/* The GGUF reader on hostile files: every malformed field gives one line naming the file, the
 * field and the problem; nothing reads outside the file (buffers are sized exactly, so ASan
 * sees any overrun); every prefix of a valid file is refused. */
#define _POSIX_C_SOURCE 200809L
#include "qk_test.h"
#include "../bench/gguf.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    uint8_t *b;
    size_t n, cap;
} buf;

static void put(buf *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void u32(buf *o, uint32_t v) {
    put(o, &v, 4);
}
static void u64(buf *o, uint64_t v) {
    put(o, &v, 8);
}
static void str(buf *o, const char *s) {
    u64(o, strlen(s));
    put(o, s, strlen(s));
}

/* The knobs of one file; the defaults make a valid file with two Q4_K tensors. */
typedef struct {
    const char *magic;
    uint32_t version;
    uint64_t n_tensors, n_kvs; /* 0: the real counts */
    uint64_t key_len;          /* overrides the first key's length */
    uint64_t value_len;        /* overrides the architecture string's length */
    uint32_t value_type;       /* overrides the architecture value's type */
    uint32_t array_type;
    uint64_t array_count;
    uint32_t alignment_type;
    uint32_t alignment;
    const char *second_key; /* "general.architecture" duplicates the first */
    const char *name_a, *name_b;
    uint32_t n_dims_b;
    uint64_t ne_b[4];
    uint32_t type_b;
    uint64_t offset_b;
} spec;

static spec valid(void) {
    return (spec){.magic = "GGUF",
                  .version = 3,
                  .value_type = QK_GGUF_STRING,
                  .array_type = QK_GGUF_STRING,
                  .array_count = 2,
                  .alignment_type = QK_GGUF_UINT32,
                  .alignment = 32,
                  .second_key = "test.names",
                  .name_a = "blk.0.ffn_gate_exps.weight",
                  .name_b = "blk.0.ffn_up_exps.weight",
                  .n_dims_b = 3,
                  .ne_b = {256, 1, 2, 1},
                  .type_b = QK_GGML_Q4_K,
                  .offset_b = 288};
}

/* header, 3 key/values, 2 tensor infos (a: 2 rows of 256 q4_K at 0; b as specified), padding,
 * 288 + 288 bytes of data */
static buf build(const spec *s) {
    buf o = {0};
    put(&o, s->magic, 4);
    u32(&o, s->version);
    u64(&o, s->n_tensors ? s->n_tensors : 2);
    u64(&o, s->n_kvs ? s->n_kvs : 3);
    const char *k0 = "general.architecture";
    u64(&o, s->key_len ? s->key_len : strlen(k0));
    put(&o, k0, strlen(k0));
    u32(&o, s->value_type);
    u64(&o, s->value_len ? s->value_len : 8);
    put(&o, "qwen3moe", 8);
    str(&o, "general.alignment");
    u32(&o, s->alignment_type);
    if (s->alignment_type == QK_GGUF_UINT64)
        u64(&o, s->alignment);
    else
        u32(&o, s->alignment);
    str(&o, s->second_key);
    u32(&o, QK_GGUF_ARRAY);
    u32(&o, s->array_type);
    u64(&o, s->array_count);
    str(&o, "up");
    str(&o, "gate");
    str(&o, s->name_a);
    u32(&o, 2);
    u64(&o, 256);
    u64(&o, 2);
    u32(&o, QK_GGML_Q4_K);
    u64(&o, 0);
    str(&o, s->name_b);
    u32(&o, s->n_dims_b);
    for (uint32_t d = 0; d < s->n_dims_b && d < 8; d++)
        u64(&o, s->ne_b[d < 4 ? d : 3]);
    u32(&o, s->type_b);
    u64(&o, s->offset_b);
    while (o.n % 32)
        put(&o, "\0", 1);
    for (int i = 0; i < 576; i++) {
        uint8_t v = (uint8_t)(i * 7);
        put(&o, &v, 1);
    }
    return o;
}

/* Opens a copy of exactly n bytes, so any read past the end is an ASan error. */
static qk_gguf *open_exact(const uint8_t *b, size_t n, char *err, size_t es) {
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, b, n);
    qk_gguf *g = qk_gguf_open_memory(copy, n, "mem.gguf", err, es);
    if (g) { /* touch everything the handle hands out */
        for (size_t i = 0; i < qk_gguf_tensor_count(g); i++) {
            const qk_gguf_tensor *t = qk_gguf_tensor_at(g, i);
            volatile uint8_t sink = 0;
            if (t->bytes) sink ^= t->data[0] ^ t->data[t->bytes - 1];
            (void)sink;
        }
        qk_gguf_close(g);
        g = (qk_gguf *)1; /* opened */
    }
    free(copy);
    return g;
}

static void expect(const spec *s, const char *what, const char *needle) {
    buf o = build(s);
    char err[512] = "";
    qk_gguf *g = open_exact(o.b, o.n, err, sizeof err);
    CHECK(g == NULL, "%s: accepted", what);
    CHECK(!strncmp(err, "mem.gguf: ", 10) && strstr(err, needle) && !strchr(err, '\n'),
          "%s: message '%s' should start with the file name and contain '%s'", what, err, needle);
    free(o.b);
}

int main(void) {
    spec s = valid();
    buf o = build(&s);
    char err[512] = "";
    uint8_t *copy = malloc(o.n);
    memcpy(copy, o.b, o.n);
    qk_gguf *g = qk_gguf_open_memory(copy, o.n, "mem.gguf", err, sizeof err);
    CHECK(g != NULL, "the valid file: %s", err);
    if (g) {
        const qk_gguf_tensor *b = qk_gguf_find_tensor(g, "blk.0.ffn_up_exps.weight");
        CHECK(b && b->n_dims == 3 && b->ne[2] == 2 && b->bytes == 288 && b->offset == 288 &&
                  b->data == copy + qk_gguf_data_offset(g) + 288 &&
                  b->data[0] == (uint8_t)(288 * 7),
              "tensor b's place in the file");
        const qk_gguf_kv *arr = qk_gguf_find_kv(g, "test.names");
        uint64_t len;
        const char *e1 = arr ? qk_gguf_array_string(arr, 1, &len) : NULL;
        CHECK(e1 && len == 4 && !memcmp(e1, "gate", 4), "string array element");
        CHECK(arr && !qk_gguf_array_string(arr, 2, &len), "string array bounds");
        uint64_t v;
        CHECK(!qk_gguf_kv_uint(qk_gguf_find_kv(g, "general.alignment"), &v) && v == 32,
              "alignment");
        CHECK(qk_gguf_alignment(g) == 32 && qk_gguf_version(g) == 3, "alignment, version");
        qk_gguf_close(g);
    }
    free(copy);

    /* every prefix of the valid file is refused, without reading past it */
    int prefixes_refused = 1;
    for (size_t n = 0; n < o.n; n++) {
        char e[512] = "";
        if (open_exact(o.b, n, e, sizeof e) || strncmp(e, "mem.gguf: ", 10)) {
            prefixes_refused = 0;
            CHECK(0, "a %zu-byte prefix of the %zu-byte file: '%s'", n, o.n, e);
            break;
        }
    }
    CHECK(prefixes_refused, "every prefix refused");
    free(o.b);

    spec t;
#define CASE(FIELD, VALUE, NEEDLE)                                                                 \
    t = valid();                                                                                   \
    t.FIELD = VALUE;                                                                               \
    expect(&t, #FIELD " = " #VALUE, NEEDLE)
    CASE(magic, "GGUX", "magic: not a GGUF file");
    CASE(version, 1, "version: version 1 is not supported");
    CASE(version, 4, "version 4");
    CASE(n_tensors, 1ull << 62, "tensor_count");
    CASE(n_kvs, 1ull << 61, "kv_count");
    CASE(key_len, 1ull << 63, "key/value 0: key: string length");
    CASE(key_len, 1000, "string length 1000 runs past");
    CASE(value_len, UINT64_MAX, "key 'general.architecture': string length");
    CASE(value_type, 13, "value type 13");
    CASE(array_type, QK_GGUF_ARRAY, "arrays of arrays");
    CASE(array_type, 77, "array element type 77");
    CASE(array_count, UINT64_MAX, "more than the 16777216 strings in arrays");
    CASE(array_count, 1000000, "strings cannot fit");
    CASE(array_count, 3, "runs past the end");
    CASE(alignment, 0, "key 'general.alignment': 0 is not a power of two");
    CASE(alignment, 48, "48 is not a power of two");
    CASE(alignment_type, QK_GGUF_UINT64, "must be a uint32");
    CASE(second_key, "general.architecture", "key 'general.architecture': appears twice");
    CASE(name_b, "blk.0.ffn_gate_exps.weight",
         "tensor 'blk.0.ffn_gate_exps.weight': appears twice");
    CASE(name_b, "a.name.longer.than.sixty.four.bytes.is.not.allowed.by.the.gguf.spec.x",
         "tensor 1: name: 69 bytes long, GGUF allows 64");
    CASE(n_dims_b, 5, "n_dims 5 is not in 1..4");
    CASE(n_dims_b, 0, "n_dims 0");
    CASE(type_b, 99, "type 99 is not a known ggml type");
    CASE(type_b, 4, "type 4 is not a known ggml type"); /* a removed type number */
    CASE(offset_b, 16, "offset 16 is not a multiple of the alignment 32");
    CASE(offset_b, 1 << 20, "runs past the end of the file");
    CASE(offset_b, UINT64_MAX - 31, "runs past the end of the file");
    t = valid();
    t.ne_b[0] = 100;
    expect(&t, "row length 100", "row length 100 is not a multiple of q4_K's block of 256");
    t = valid();
    t.ne_b[1] = 1ull << 40, t.ne_b[2] = 1ull << 40;
    expect(&t, "dims overflow", "dimensions overflow");
    t = valid();
    t.type_b = QK_GGML_F32; /* 3 * 2^61 elements fit in int64, their 4-byte size does not */
    t.ne_b[0] = 1ull << 61, t.ne_b[1] = 3, t.ne_b[2] = 1;
    expect(&t, "size overflow", "size overflows");
    t = valid();
    t.ne_b[1] = 1000;
    expect(&t, "data past the end", "tensor 'blk.0.ffn_up_exps.weight': data at offset 288");
    /* a row whose byte size alone overflows: 2^62 f32 (2^64 bytes would wrap to 0), 2^61+1 f64
     * (would wrap to 8 bytes), 2^60 f32 in 2 rows (each row 2^62 bytes, the product wraps) */
    t = valid();
    t.type_b = QK_GGML_F32, t.n_dims_b = 1, t.ne_b[0] = 1ull << 62;
    expect(&t, "f32 row of 2^64 bytes", "size overflows");
    t = valid();
    t.type_b = 28, t.n_dims_b = 1, t.ne_b[0] = (1ull << 61) + 1; /* f64 */
    expect(&t, "f64 row of 2^64+8 bytes", "size overflows");
    t = valid();
    t.type_b = QK_GGML_F32, t.n_dims_b = 2, t.ne_b[0] = 1ull << 60, t.ne_b[1] = 4;
    expect(&t, "f32 rows of 2^64 bytes", "size overflows");

    /* a header that claims as many key/values as the bytes could hold (zeros: empty keys) must
     * be refused at the first bad one, before memory for the claim is taken */
    {
        size_t size = 64u << 20;
        uint8_t *zeros = calloc(1, size);
        uint64_t claim = QK_GGUF_MAX_KVS; /* what the reader takes; more is refused at once */
        memcpy(zeros, "GGUF\3\0\0\0", 8);
        memcpy(zeros + 16, &claim, 8);
        char e[512] = "";
        clock_t t0 = clock();
        qk_gguf *z = qk_gguf_open_memory(zeros, size, "mem.gguf", e, sizeof e);
        double cpu_s = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK(!z && strstr(e, "key/value 0") && strstr(e, "empty"), "zero-filled key/values: '%s'",
              e);
        CHECK(cpu_s < 0.5, "zero-filled key/values: %.2f s of CPU to refuse", cpu_s);
        if (z) qk_gguf_close(z);
        free(zeros);
    }
    /* two distinct keys then a repeat: refused when the repeat is read */
    t = valid();
    t.second_key = "general.alignment";
    expect(&t, "a repeated key", "key 'general.alignment': appears twice");
    /* a key longer than GGUF's 65535 bytes */
    /* a key longer than GGUF's 65535 bytes (it fits in the file) */
    {
        buf k = {0};
        put(&k, "GGUF", 4);
        u32(&k, 3);
        u64(&k, 0);
        u64(&k, 1);
        u64(&k, 70000);
        for (int i = 0; i < 70000; i++)
            put(&k, "a", 1);
        u32(&k, QK_GGUF_UINT8);
        put(&k, "\1", 1);
        char e[512] = "";
        CHECK(!open_exact(k.b, k.n, e, sizeof e) && strstr(e, "key/value 0: key:") &&
                  strstr(e, "65535"),
              "a 70000-byte key: '%s'", e);
        free(k.b);
    }

    /* files on disk: missing, empty, a directory */
    char err2[512];
    CHECK(!qk_gguf_open("/nonexistent/x.gguf", err2, sizeof err2) && strstr(err2, "cannot open"),
          "missing file: %s", err2);
    char path[64];
    snprintf(path, sizeof path, "/tmp/qk_gguf_empty_%d.gguf", (int)getpid());
    FILE *f = fopen(path, "wb");
    fclose(f);
    CHECK(!qk_gguf_open(path, err2, sizeof err2) && strstr(err2, "header"), "empty file: %s", err2);
    unlink(path);
    CHECK(!qk_gguf_open("/tmp", err2, sizeof err2) && strstr(err2, "not a regular file"),
          "directory: %s", err2);
    /* a FIFO with no writer: refused at once, not waited on (the alarm ends a hang) */
    snprintf(path, sizeof path, "/tmp/qk_gguf_fifo_%d", (int)getpid());
    CHECK(mkfifo(path, 0600) == 0, "mkfifo %s", path);
    alarm(10);
    CHECK(!qk_gguf_open(path, err2, sizeof err2) && strstr(err2, "not a regular file"), "FIFO: %s",
          err2);
    alarm(0);
    unlink(path);
    return qk_test_finish("gguf_errors");
}

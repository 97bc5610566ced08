#define _DEFAULT_SOURCE /* madvise(MADV_DONTNEED): posix_madvise's DONTNEED is a no-op in glibc */
#include "gguf.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ggml types: name, elements per block, bytes per block (GGUF files name types by number). */
static const struct {
    const char *name;
    uint32_t block, bytes;
} ggml_types[] = {
    [0] = {"f32", 1, 4},         [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},      [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},      [9] = {"q8_1", 32, 36},      [10] = {"q2_K", 256, 84},
    [11] = {"q3_K", 256, 110},   [12] = {"q4_K", 256, 144},   [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},   [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},  [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},   [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136}, [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},        [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},   [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},   [39] = {"mxfp4", 32, 17},
};
enum { N_GGML_TYPES = sizeof ggml_types / sizeof ggml_types[0] };

static const char *const value_type_names[QK_GGUF_VALUE_TYPES] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};
static const uint8_t value_sizes[QK_GGUF_VALUE_TYPES] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *qk_ggml_type_name(uint32_t type) {
    return type < N_GGML_TYPES && ggml_types[type].block ? ggml_types[type].name : NULL;
}
const char *qk_gguf_value_type_name(uint32_t type) {
    return type < QK_GGUF_VALUE_TYPES ? value_type_names[type] : "unknown";
}

/* Names to indices, open addressing: duplicates are caught as each name is read, and lookups do
 * not scan (a hostile file may hold millions of names). */
typedef struct {
    size_t *slots; /* index + 1; 0 is empty */
    size_t cap;    /* a power of two, kept at most half full */
} name_index;

struct qk_gguf {
    const uint8_t *base;
    size_t size;
    int mapped;
    uint32_t version;
    uint64_t alignment, data_offset;
    qk_gguf_kv *kvs;
    size_t n_kvs, kvs_cap;
    qk_gguf_tensor *tensors;
    size_t n_tensors, tensors_cap;
    name_index kv_index, tensor_index;
};

/* A seed per process, so that names crafted to collide (FNV-1a's low bits depend only on the
 * low bits of its state) cannot be computed in advance: 60,000 such names had taken 14 s. */
static uint64_t hash_seed(void) {
    static uint64_t seed;
    if (!seed) {
        uint64_t s = 0;
        if (getrandom(&s, sizeof s, GRND_NONBLOCK) != (ssize_t)sizeof s) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            s = (uint64_t)t.tv_nsec ^ ((uint64_t)t.tv_sec << 32) ^ (uint64_t)(uintptr_t)&seed ^
                (uint64_t)getpid() << 16;
        }
        seed = s | 1;
    }
    return seed;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull ^ hash_seed(); /* FNV-1a from a seeded start */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    h ^= h >> 33; /* murmur3's fmix64: every bit of h reaches the low bits the table uses */
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb53ca5a95ac3ull;
    h ^= h >> 33;
    return h;
}

/* The slot of name: the one holding it, or the empty one where it would go. names[i] is the name
 * of index i, reached through a pointer at stride bytes. */
static size_t *index_slot(const name_index *ix, const void *items, size_t stride,
                          const char *name) {
    size_t mask = ix->cap - 1;
    for (size_t k = (size_t)name_hash(name) & mask;; k = (k + 1) & mask) {
        size_t *slot = &ix->slots[k];
        if (!*slot) return slot;
        const char *other = *(const char *const *)((const char *)items + (*slot - 1) * stride);
        if (!strcmp(other, name)) return slot;
    }
}

/* Adds item i (its name already stored). 1 when the name was there already, -1 out of memory. */
static int index_add(name_index *ix, const void *items, size_t stride, size_t i) {
    if (2 * (i + 1) > ix->cap) {
        name_index grown = {calloc(ix->cap ? 2 * ix->cap : 16, sizeof *grown.slots),
                            ix->cap ? 2 * ix->cap : 16};
        if (!grown.slots) return -1;
        for (size_t k = 0; k < ix->cap; k++)
            if (ix->slots[k]) {
                const char *n =
                    *(const char *const *)((const char *)items + (ix->slots[k] - 1) * stride);
                *index_slot(&grown, items, stride, n) = ix->slots[k];
            }
        free(ix->slots);
        *ix = grown;
    }
    const char *name = *(const char *const *)((const char *)items + i * stride);
    size_t *slot = index_slot(ix, items, stride, name);
    if (*slot) return 1;
    *slot = i + 1;
    return 0;
}

static const void *index_find(const name_index *ix, const void *items, size_t stride,
                              const char *name) {
    if (!ix->cap) return NULL;
    size_t slot = *index_slot(ix, items, stride, name);
    return slot ? (const char *)items + (slot - 1) * stride : NULL;
}

/* Room for one more element in a growing array: memory follows what was read, never the counts
 * a header claims. 0, or -1 out of memory. */
static int reserve(void **items, size_t *cap, size_t n, size_t size) {
    if (n < *cap) return 0;
    size_t grown = *cap ? 2 * *cap : 16;
    void *p = realloc(*items, grown * size);
    if (!p) return -1;
    memset((char *)p + *cap * size, 0, (grown - *cap) * size);
    *items = p, *cap = grown;
    return 0;
}

/* A bounds-checked cursor; the first error sticks. */
typedef struct {
    const uint8_t *p, *end, *base;
    const char *name;
    char *err;
    size_t err_size;
    int failed;
    char field[160];         /* what is being read, for the message */
    int mapped;              /* base is our page-aligned mapping of the file */
    const uint8_t *released; /* pages before it were handed back (mapped files) */
    uint64_t array_strings;  /* strings in the arrays read so far */
    uint64_t key_bytes;      /* bytes of the keys copied so far */
} cursor;

__attribute__((format(printf, 2, 3))) static void fail(cursor *c, const char *fmt, ...) {
    if (c->failed) return;
    c->failed = 1;
    int k = snprintf(c->err, c->err_size, "%s: %s: ", c->name, c->field);
    if (k < 0 || (size_t)k >= c->err_size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + k, c->err_size - (size_t)k, fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 2, 3))) static void field(cursor *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->field, sizeof c->field, fmt, ap);
    va_end(ap);
}

const char *qk_gguf_printable(const char *s, size_t len, char *out, size_t out_size) {
    if (out_size < 8) { /* too small to say anything */
        if (out_size) out[0] = 0;
        return out;
    }
    size_t k = 0, i = 0;
    for (; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        int plain = ch >= 0x20 && ch < 0x7f && ch != '\\';
        if (k + (plain ? 1 : 4) + 3 >= out_size) break; /* keep room for "..." */
        if (plain)
            out[k++] = (char)ch;
        else
            k += (size_t)snprintf(out + k, 5, "\\x%02x", ch);
    }
    if (i < len) memcpy(out + k, "...", 3), k += 3;
    out[k] = 0;
    return out;
}

/* A name from the file as it may appear in a one-line message: at most about 100 bytes. */
static const char *shown(const char *s, char out[404]) {
    size_t n = strlen(s);
    return qk_gguf_printable(s, n < 100 ? n : 100, out, 404);
}

static size_t left(const cursor *c) {
    return (size_t)(c->end - c->p);
}

static int take(cursor *c, void *out, size_t n) {
    if (c->failed) return -1;
    if (left(c) < n) {
        fail(c, "the file ends at byte %zu, %zu bytes short", (size_t)(c->end - c->base),
             n - left(c));
        return -1;
    }
    memcpy(out, c->p, n);
    c->p += n;
    return 0;
}

/* GGUF is little-endian, as is every machine qkbench runs on. */
static uint32_t u32(cursor *c) {
    uint32_t v = 0;
    take(c, &v, 4);
    return v;
}
static uint64_t u64(cursor *c) {
    uint64_t v = 0;
    take(c, &v, 8);
    return v;
}

/* A GGUF string (u64 length + bytes) of at most max bytes (checked before the copy is made)
 * as a new NUL-terminated copy, or NULL. Keys and names only: values stay in the map. */
static char *string(cursor *c, uint64_t max, uint64_t *len_out) {
    uint64_t len = u64(c);
    if (c->failed) return NULL;
    if (len > left(c)) {
        fail(c, "string length %llu runs past the end of the file (%zu bytes left)",
             (unsigned long long)len, left(c));
        return NULL;
    }
    if (len > max) {
        fail(c, "%llu bytes long, GGUF allows %llu", (unsigned long long)len,
             (unsigned long long)max);
        return NULL;
    }
    char *s = malloc((size_t)len + 1);
    if (!s) {
        fail(c, "out of memory for a string of %llu bytes", (unsigned long long)len);
        return NULL;
    }
    memcpy(s, c->p, (size_t)len);
    s[len] = 0;
    c->p += len;
    if (len_out) *len_out = len;
    return s;
}

/* A mapped file's pages the cursor has passed are handed back every 16 MiB: a file of
 * millions of tiny strings must not keep all of itself resident while it is read. Later reads
 * (string values, array elements, tensors) fault them in again from the file. */
static void release_behind(cursor *c) {
    const size_t step = (size_t)16 << 20;
    if (!c->mapped || (size_t)(c->p - c->released) < 2 * step) return;
    const uint8_t *upto = c->released + step;
    madvise((void *)c->released, (size_t)(upto - c->released), MADV_DONTNEED);
    c->released = upto;
}

/* Skips over `count` strings, checking each length: a tight loop, since a hostile count can be
 * as large as the file divided by 8. */
static void skip_strings(cursor *c, uint64_t count) {
    if (c->failed) return;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t len;
        if (left(c) < 8) {
            fail(c, "element %llu: the file ends at byte %zu", (unsigned long long)i,
                 (size_t)(c->end - c->base));
            return;
        }
        memcpy(&len, c->p, 8);
        c->p += 8;
        if (len > left(c)) {
            fail(c, "element %llu: string length %llu runs past the end of the file",
                 (unsigned long long)i, (unsigned long long)len);
            return;
        }
        c->p += len;
        if (!(i & 0xfffff)) release_behind(c);
    }
}

static void read_value(cursor *c, qk_gguf_kv *kv) {
    uint32_t t = kv->type;
    if (t >= QK_GGUF_VALUE_TYPES) {
        fail(c, "value type %u is not a GGUF type (0..12)", t);
        return;
    }
    if (t == QK_GGUF_STRING) { /* not copied: a string may be as long as the file */
        kv->str_len = u64(c);
        if (c->failed) return;
        if (kv->str_len > left(c)) {
            fail(c, "string length %llu runs past the end of the file (%zu bytes left)",
                 (unsigned long long)kv->str_len, left(c));
            return;
        }
        kv->str = (const char *)c->p;
        c->p += kv->str_len;
        return;
    }
    if (t == QK_GGUF_ARRAY) {
        kv->array_type = u32(c);
        kv->array_count = u64(c);
        if (c->failed) return;
        if (kv->array_type >= QK_GGUF_VALUE_TYPES) {
            fail(c, "array element type %u is not a GGUF type (0..12)", kv->array_type);
            return;
        }
        if (kv->array_type == QK_GGUF_ARRAY) {
            fail(c, "arrays of arrays are not supported");
            return;
        }
        kv->array_data = c->p;
        if (kv->array_type == QK_GGUF_STRING) {
            /* each length is read: bounded by the file and by a budget for the whole file */
            if (kv->array_count > QK_GGUF_MAX_ARRAY_STRINGS - c->array_strings) {
                fail(c,
                     "%llu strings (after %llu in earlier arrays): more than the %d strings in "
                     "arrays bench reads from a file",
                     (unsigned long long)kv->array_count, (unsigned long long)c->array_strings,
                     (int)QK_GGUF_MAX_ARRAY_STRINGS);
                return;
            }
            c->array_strings += kv->array_count;
            if (kv->array_count > left(c) / 8) {
                fail(c, "%llu strings cannot fit in the %zu bytes left",
                     (unsigned long long)kv->array_count, left(c));
                return;
            }
            skip_strings(c, kv->array_count);
            return;
        }
        uint64_t size = value_sizes[kv->array_type];
        if (kv->array_count > left(c) / size) {
            fail(c, "%llu elements of %s run past the end of the file",
                 (unsigned long long)kv->array_count, value_type_names[kv->array_type]);
            return;
        }
        c->p += kv->array_count * size;
        return;
    }
    uint8_t raw[8] = {0};
    if (take(c, raw, value_sizes[t])) return;
    switch (t) {
    case QK_GGUF_UINT8:
        kv->v.u = raw[0];
        break;
    case QK_GGUF_BOOL:
        kv->v.u = raw[0] != 0;
        break;
    case QK_GGUF_INT8:
        kv->v.i = (int8_t)raw[0];
        break;
    case QK_GGUF_UINT16: {
        uint16_t x;
        memcpy(&x, raw, 2);
        kv->v.u = x;
        break;
    }
    case QK_GGUF_INT16: {
        int16_t x;
        memcpy(&x, raw, 2);
        kv->v.i = x;
        break;
    }
    case QK_GGUF_UINT32: {
        uint32_t x;
        memcpy(&x, raw, 4);
        kv->v.u = x;
        break;
    }
    case QK_GGUF_INT32: {
        int32_t x;
        memcpy(&x, raw, 4);
        kv->v.i = x;
        break;
    }
    case QK_GGUF_FLOAT32: {
        float x;
        memcpy(&x, raw, 4);
        kv->v.f = x;
        break;
    }
    case QK_GGUF_UINT64:
        memcpy(&kv->v.u, raw, 8);
        break;
    case QK_GGUF_INT64:
        memcpy(&kv->v.i, raw, 8);
        break;
    case QK_GGUF_FLOAT64:
        memcpy(&kv->v.f, raw, 8);
        break;
    }
}

void qk_gguf_close(qk_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kvs; i++) {
        free((char *)g->kvs[i].key);
    }
    for (size_t i = 0; i < g->n_tensors; i++)
        free((char *)g->tensors[i].name);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index.slots);
    free(g->tensor_index.slots);
    if (g->mapped) munmap((void *)g->base, g->size);
    free(g);
}

static qk_gguf *parse(qk_gguf *g, const char *name, char *err, size_t err_size) {
    cursor c = {.p = g->base,
                .end = g->base + g->size,
                .base = g->base,
                .mapped = g->mapped,
                .released = g->base,
                .name = name,
                .err = err,
                .err_size = err_size};
    field(&c, "header");
    char magic[4];
    if (take(&c, magic, 4)) goto bad;
    if (memcmp(magic, "GGUF", 4)) {
        field(&c, "magic");
        fail(&c, "not a GGUF file (the first 4 bytes are not 'GGUF')");
        goto bad;
    }
    field(&c, "version");
    g->version = u32(&c);
    if (!c.failed && g->version != 2 && g->version != 3)
        fail(&c, "version %u is not supported (2 and 3 are read)", g->version);
    field(&c, "tensor_count");
    uint64_t n_tensors = u64(&c);
    /* a tensor info is at least 8 (name length) + 4 + 8 + 4 + 8 bytes */
    if (!c.failed && n_tensors > QK_GGUF_MAX_TENSORS)
        fail(&c, "%llu tensors: more than the %d bench reads", (unsigned long long)n_tensors,
             (int)QK_GGUF_MAX_TENSORS);
    if (!c.failed && n_tensors > left(&c) / 32)
        fail(&c, "%llu tensors cannot fit in a file of %zu bytes", (unsigned long long)n_tensors,
             g->size);
    field(&c, "kv_count");
    uint64_t n_kvs = u64(&c);
    /* a key/value is at least 8 (key length) + 4 (type) + 1 bytes */
    if (!c.failed && n_kvs > QK_GGUF_MAX_KVS)
        fail(&c, "%llu key/values: more than the %d bench reads", (unsigned long long)n_kvs,
             (int)QK_GGUF_MAX_KVS);
    if (!c.failed && n_kvs > left(&c) / 13)
        fail(&c, "%llu key/values cannot fit in a file of %zu bytes", (unsigned long long)n_kvs,
             g->size);
    if (c.failed) goto bad;
    g->alignment = 32;
    char sh[404];
    for (uint64_t i = 0; i < n_kvs && !c.failed; i++) {
        field(&c, "key/value %llu: key", (unsigned long long)i);
        if (reserve((void **)&g->kvs, &g->kvs_cap, g->n_kvs, sizeof *g->kvs)) {
            fail(&c, "out of memory");
            break;
        }
        qk_gguf_kv *kv = &g->kvs[g->n_kvs];
        uint64_t key_len = 0;
        kv->key = string(&c, 65535, &key_len); /* GGUF's limit for keys */
        if (c.failed) break;
        c.key_bytes += key_len;
        g->n_kvs++;
        if (!*kv->key) { /* a run of zero bytes reads as empty keys */
            fail(&c, "empty (a GGUF key names its value, e.g. general.architecture)");
            break;
        }
        field(&c, "key '%s'", shown(kv->key, sh));
        if (c.key_bytes > QK_GGUF_MAX_KEY_BYTES) {
            fail(&c, "the keys so far hold %llu bytes, more than the %d bench reads",
                 (unsigned long long)c.key_bytes, (int)QK_GGUF_MAX_KEY_BYTES);
            break;
        }
        int dup = index_add(&g->kv_index, g->kvs, sizeof *g->kvs, g->n_kvs - 1);
        if (dup) {
            fail(&c, dup > 0 ? "appears twice" : "out of memory");
            break;
        }
        kv->type = u32(&c);
        read_value(&c, kv);
        release_behind(&c);
        if (!c.failed && !strcmp(kv->key, "general.alignment")) {
            if (kv->type != QK_GGUF_UINT32)
                fail(&c, "must be a uint32, not %s", qk_gguf_value_type_name(kv->type));
            else if (kv->v.u == 0 || (kv->v.u & (kv->v.u - 1)))
                fail(&c, "%llu is not a power of two", (unsigned long long)kv->v.u);
            else
                g->alignment = kv->v.u;
        }
    }
    if (c.failed) goto bad;
    for (uint64_t i = 0; i < n_tensors && !c.failed; i++) {
        field(&c, "tensor %llu: name", (unsigned long long)i);
        if (reserve((void **)&g->tensors, &g->tensors_cap, g->n_tensors, sizeof *g->tensors)) {
            fail(&c, "out of memory");
            break;
        }
        qk_gguf_tensor *t = &g->tensors[g->n_tensors];
        t->name = string(&c, 64, NULL);
        if (c.failed) break;
        g->n_tensors++;
        field(&c, "tensor '%s'", shown(t->name, sh));
        int dup = index_add(&g->tensor_index, g->tensors, sizeof *g->tensors, g->n_tensors - 1);
        if (dup) {
            fail(&c, dup > 0 ? "appears twice" : "out of memory");
            break;
        }
        field(&c, "tensor %llu '%s'", (unsigned long long)i, shown(t->name, sh));
        t->n_dims = u32(&c);
        if (!c.failed && (t->n_dims < 1 || t->n_dims > 4)) {
            fail(&c, "n_dims %u is not in 1..4", t->n_dims);
            break;
        }
        uint64_t elements = 1;
        for (uint32_t d = 0; d < 4 && !c.failed; d++) {
            t->ne[d] = d < t->n_dims ? u64(&c) : 1;
            if (c.failed) break;
            if (t->ne[d] > INT64_MAX || (t->ne[d] && elements > INT64_MAX / t->ne[d])) {
                fail(&c, "dimensions overflow a 64-bit element count");
                break;
            }
            elements *= t->ne[d];
        }
        t->type = u32(&c);
        t->offset = u64(&c);
        if (c.failed) break;
        const char *type_name = qk_ggml_type_name(t->type);
        if (!type_name) {
            fail(&c, "type %u is not a known ggml type", t->type);
            break;
        }
        uint32_t block = ggml_types[t->type].block, bytes = ggml_types[t->type].bytes;
        if (t->ne[0] % block) {
            fail(&c, "row length %llu is not a multiple of %s's block of %u",
                 (unsigned long long)t->ne[0], type_name, block);
            break;
        }
        /* each step is checked: a row alone can overflow (2^62 f32 would wrap to 0 bytes) */
        if (t->ne[0] / block > UINT64_MAX / bytes) {
            fail(&c, "size overflows 64 bits (a row of %llu %s elements)",
                 (unsigned long long)t->ne[0], type_name);
            break;
        }
        uint64_t rows = elements / (t->ne[0] ? t->ne[0] : 1), row_bytes = t->ne[0] / block * bytes;
        if (t->ne[0] == 0) rows = 0;
        if (rows && row_bytes > UINT64_MAX / rows) {
            fail(&c, "size overflows 64 bits");
            break;
        }
        t->bytes = row_bytes * rows;
        if (t->offset % g->alignment) {
            fail(&c, "data offset %llu is not a multiple of the alignment %llu",
                 (unsigned long long)t->offset, (unsigned long long)g->alignment);
            break;
        }
    }
    if (c.failed) goto bad;
    /* the data section starts at the next multiple of the alignment */
    uint64_t here = (uint64_t)(c.p - g->base);
    g->data_offset = (here + g->alignment - 1) / g->alignment * g->alignment;
    field(&c, "data section");
    if (g->n_tensors && g->data_offset > g->size) {
        fail(&c, "starts at byte %llu, past the end of the file (%zu bytes)",
             (unsigned long long)g->data_offset, g->size);
        goto bad;
    }
    uint64_t data_size = g->data_offset <= g->size ? g->size - g->data_offset : 0;
    for (size_t i = 0; i < g->n_tensors; i++) {
        qk_gguf_tensor *t = &g->tensors[i];
        if (t->offset > data_size || t->bytes > data_size - t->offset) {
            field(&c, "tensor '%s'", shown(t->name, sh));
            fail(&c,
                 "data at offset %llu, %llu bytes, runs past the end of the file (%llu data "
                 "bytes)",
                 (unsigned long long)t->offset, (unsigned long long)t->bytes,
                 (unsigned long long)data_size);
            goto bad;
        }
        t->data = g->base + g->data_offset + t->offset;
    }
    return g;
bad:
    qk_gguf_close(g);
    return NULL;
}

qk_gguf *qk_gguf_open_memory(const void *data, size_t size, const char *name, char *err,
                             size_t err_size) {
    qk_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        snprintf(err, err_size, "%s: out of memory", name);
        return NULL;
    }
    g->base = data;
    g->size = size;
    return parse(g, name, err, err_size);
}

qk_gguf *qk_gguf_open(const char *path, char *err, size_t err_size) {
    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    if (st.st_size < 24) {
        snprintf(err, err_size, "%s: header: the file is %lld bytes, a GGUF header needs 24", path,
                 (long long)st.st_size);
        close(fd);
        return NULL;
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(err, err_size, "%s: cannot map: %s", path, strerror(errno));
        return NULL;
    }
    qk_gguf *g = calloc(1, sizeof *g);
    if (!g) {
        munmap(map, (size_t)st.st_size);
        snprintf(err, err_size, "%s: out of memory", path);
        return NULL;
    }
    g->base = map;
    g->size = (size_t)st.st_size;
    g->mapped = 1;
    /* the metadata is read front to back: with sequential read-ahead each fault maps many
     * pages (a hostile file's millions of tiny strings cost 1.6 s of faults without it) */
    posix_madvise(map, (size_t)st.st_size, POSIX_MADV_SEQUENTIAL);
    g = parse(g, path, err, err_size);
    if (g)
        posix_madvise(map, (size_t)st.st_size,
                      POSIX_MADV_NORMAL); /* tensors are read in any order */
    return g;
}

uint32_t qk_gguf_version(const qk_gguf *g) {
    return g->version;
}
uint64_t qk_gguf_alignment(const qk_gguf *g) {
    return g->alignment;
}
uint64_t qk_gguf_data_offset(const qk_gguf *g) {
    return g->data_offset;
}
size_t qk_gguf_kv_count(const qk_gguf *g) {
    return g->n_kvs;
}
const qk_gguf_kv *qk_gguf_kv_at(const qk_gguf *g, size_t i) {
    return i < g->n_kvs ? &g->kvs[i] : NULL;
}
const qk_gguf_kv *qk_gguf_find_kv(const qk_gguf *g, const char *key) {
    return index_find(&g->kv_index, g->kvs, sizeof *g->kvs, key);
}
size_t qk_gguf_tensor_count(const qk_gguf *g) {
    return g->n_tensors;
}
const qk_gguf_tensor *qk_gguf_tensor_at(const qk_gguf *g, size_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}
const qk_gguf_tensor *qk_gguf_find_tensor(const qk_gguf *g, const char *name) {
    return index_find(&g->tensor_index, g->tensors, sizeof *g->tensors, name);
}

int qk_gguf_kv_uint(const qk_gguf_kv *kv, uint64_t *out) {
    if (!kv) return -1;
    switch (kv->type) {
    case QK_GGUF_UINT8:
    case QK_GGUF_UINT16:
    case QK_GGUF_UINT32:
    case QK_GGUF_UINT64:
    case QK_GGUF_BOOL:
        *out = kv->v.u;
        return 0;
    case QK_GGUF_INT8:
    case QK_GGUF_INT16:
    case QK_GGUF_INT32:
    case QK_GGUF_INT64:
        if (kv->v.i < 0) return -1;
        *out = (uint64_t)kv->v.i;
        return 0;
    default:
        return -1;
    }
}

const char *qk_gguf_array_string(const qk_gguf_kv *kv, uint64_t i, uint64_t *len) {
    if (!kv || kv->type != QK_GGUF_ARRAY || kv->array_type != QK_GGUF_STRING ||
        i >= kv->array_count)
        return NULL;
    /* lengths were checked when the file was opened */
    const uint8_t *p = kv->array_data;
    for (uint64_t k = 0;; k++) {
        uint64_t n;
        memcpy(&n, p, 8);
        if (k == i) {
            *len = n;
            return (const char *)p + 8;
        }
        p += 8 + n;
    }
}

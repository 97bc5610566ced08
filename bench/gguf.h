/* A GGUF (v2, v3) reader: the file is mapped, every field is checked against the file's bounds,
 * and tensors are handed out as pointers into the mapping (no copies). */
#ifndef QK_GGUF_H
#define QK_GGUF_H
#include <stddef.h>
#include <stdint.h>

/* GGUF metadata value types. */
enum {
    QK_GGUF_UINT8 = 0,
    QK_GGUF_INT8,
    QK_GGUF_UINT16,
    QK_GGUF_INT16,
    QK_GGUF_UINT32,
    QK_GGUF_INT32,
    QK_GGUF_FLOAT32,
    QK_GGUF_BOOL,
    QK_GGUF_STRING,
    QK_GGUF_ARRAY,
    QK_GGUF_UINT64,
    QK_GGUF_INT64,
    QK_GGUF_FLOAT64,
    QK_GGUF_VALUE_TYPES
};
/* What the reader takes from one file, so that a hostile file stays within 100 MB and a second
 * (a real model has about 50 key/values, up to a few thousand tensors and tokenizer arrays of
 * up to ~260k strings): more is refused in one line naming the count and the limit. */
enum {
    QK_GGUF_MAX_KVS = 65536,
    QK_GGUF_MAX_TENSORS = 65536,
    QK_GGUF_MAX_KEY_BYTES = 8 << 20,      /* all keys together */
    QK_GGUF_MAX_ARRAY_STRINGS = 16 << 20, /* the strings of all string arrays together */
};
/* The ggml tensor types qkbench names (the reader knows the sizes of all of them). */
enum { QK_GGML_F32 = 0, QK_GGML_F16 = 1, QK_GGML_Q4_K = 12, QK_GGML_Q6_K = 14 };

typedef struct {
    const char *key; /* NUL-terminated copy */
    uint32_t type;   /* QK_GGUF_* */
    union {
        uint64_t u; /* unsigned integers and bool */
        int64_t i;  /* signed integers */
        double f;   /* FLOAT32, FLOAT64 */
    } v;
    const char *str; /* STRING: str_len bytes in the map, not NUL-terminated */
    uint64_t str_len;
    uint32_t array_type;       /* ARRAY: element type (never ARRAY) */
    uint64_t array_count;      /* ARRAY: number of elements */
    const uint8_t *array_data; /* ARRAY: the elements as stored (little-endian, in the map) */
} qk_gguf_kv;

typedef struct {
    const char *name; /* NUL-terminated copy */
    uint32_t n_dims;  /* 1..4 */
    uint64_t ne[4];   /* ne[0] is the row length; unused dims are 1 */
    uint32_t type;    /* ggml type */
    uint64_t offset;  /* from the start of the data section */
    uint64_t bytes;
    const uint8_t *data;
} qk_gguf_tensor;

typedef struct qk_gguf qk_gguf;

/* Maps and checks path. NULL on any problem, with one line in err: "PATH: FIELD: problem". */
qk_gguf *qk_gguf_open(const char *path, char *err, size_t err_size);
/* The same over bytes in memory (borrowed; must outlive the handle); name is used in errors. */
qk_gguf *qk_gguf_open_memory(const void *data, size_t size, const char *name, char *err,
                             size_t err_size);
void qk_gguf_close(qk_gguf *g);

uint32_t qk_gguf_version(const qk_gguf *g);
uint64_t qk_gguf_alignment(const qk_gguf *g);
uint64_t qk_gguf_data_offset(const qk_gguf *g);
size_t qk_gguf_kv_count(const qk_gguf *g);
const qk_gguf_kv *qk_gguf_kv_at(const qk_gguf *g, size_t i);
const qk_gguf_kv *qk_gguf_find_kv(const qk_gguf *g, const char *key);
size_t qk_gguf_tensor_count(const qk_gguf *g);
const qk_gguf_tensor *qk_gguf_tensor_at(const qk_gguf *g, size_t i);
const qk_gguf_tensor *qk_gguf_find_tensor(const qk_gguf *g, const char *name);

/* The integer value of an integer or bool kv; -1 when kv is NULL or not an integer. */
int qk_gguf_kv_uint(const qk_gguf_kv *kv, uint64_t *out);
/* Element i of a STRING array: pointer into the map and length; NULL when out of range. */
const char *qk_gguf_array_string(const qk_gguf_kv *kv, uint64_t i, uint64_t *len);

/* Bytes from a file made fit for a one-line message: control bytes, backslashes and non-ASCII
 * as \xNN (so no escape sequence or newline reaches a terminal), cut with "..." to fit
 * out_size. Returns out. */
const char *qk_gguf_printable(const char *s, size_t len, char *out, size_t out_size);

/* "q4_K", "f32", ... or NULL for a type the reader does not know. */
const char *qk_ggml_type_name(uint32_t type);
const char *qk_gguf_value_type_name(uint32_t type);

#endif

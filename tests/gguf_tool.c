/* What the C GGUF reader sees, for the Python tests to compare with llama.cpp's `gguf`:
 *   gguf_tool kv FILE            one line per key: key, type, value (arrays: element type,
 *                                count and every element; strings as hex)
 *   gguf_tool tensors FILE       one line per tensor: name, type, dims, offset, bytes
 *   gguf_tool bytes FILE NAME OUT       the tensor's bytes, as stored
 *   gguf_tool dequant FILE NAME OUT.npy a Q4_K tensor dequantized by kernels/ (float32)
 * A bad file prints the reader's one line and exits 2. */
#include "../bench/gguf.h"
#include "../bench/npy.h"
#include "../kernels/qk_quant.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void hex(const char *s, uint64_t n) {
    for (uint64_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)s[i]);
}

static void scalar(uint32_t type, const uint8_t *p) {
    switch (type) {
    case QK_GGUF_UINT8:
        printf("%u", p[0]);
        break;
    case QK_GGUF_BOOL:
        printf("%u", p[0] != 0);
        break;
    case QK_GGUF_INT8:
        printf("%d", (int8_t)p[0]);
        break;
    case QK_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, p, 2);
        printf("%u", v);
        break;
    }
    case QK_GGUF_INT16: {
        int16_t v;
        memcpy(&v, p, 2);
        printf("%d", v);
        break;
    }
    case QK_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, p, 4);
        printf("%" PRIu32, v);
        break;
    }
    case QK_GGUF_INT32: {
        int32_t v;
        memcpy(&v, p, 4);
        printf("%" PRId32, v);
        break;
    }
    case QK_GGUF_FLOAT32: {
        float v;
        memcpy(&v, p, 4);
        printf("%.9g", v);
        break;
    }
    case QK_GGUF_UINT64: {
        uint64_t v;
        memcpy(&v, p, 8);
        printf("%" PRIu64, v);
        break;
    }
    case QK_GGUF_INT64: {
        int64_t v;
        memcpy(&v, p, 8);
        printf("%" PRId64, v);
        break;
    }
    case QK_GGUF_FLOAT64: {
        double v;
        memcpy(&v, p, 8);
        printf("%.17g", v);
        break;
    }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gguf_tool kv|tensors|bytes|dequant FILE [NAME OUT]\n");
        return 2;
    }
    char err[512];
    qk_gguf *g = qk_gguf_open(argv[2], err, sizeof err);
    if (!g) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "kv")) {
        static const uint8_t sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        for (size_t i = 0; i < qk_gguf_kv_count(g); i++) {
            const qk_gguf_kv *kv = qk_gguf_kv_at(g, i);
            printf("%s\t%s\t", kv->key, qk_gguf_value_type_name(kv->type));
            if (kv->type == QK_GGUF_STRING) {
                hex(kv->str, kv->str_len);
            } else if (kv->type == QK_GGUF_ARRAY) {
                printf("%s\t%" PRIu64 "\t", qk_gguf_value_type_name(kv->array_type),
                       kv->array_count);
                for (uint64_t k = 0; k < kv->array_count; k++) {
                    if (k) putchar(',');
                    if (kv->array_type == QK_GGUF_STRING) {
                        uint64_t len;
                        const char *s = qk_gguf_array_string(kv, k, &len);
                        hex(s, len);
                    } else {
                        scalar(kv->array_type, kv->array_data + k * sizes[kv->array_type]);
                    }
                }
            } else {
                uint8_t raw[8];
                memcpy(raw, &kv->v, 8);
                if (kv->type == QK_GGUF_FLOAT32 || kv->type == QK_GGUF_FLOAT64)
                    printf("%.17g", kv->v.f);
                else if (kv->type == QK_GGUF_INT8 || kv->type == QK_GGUF_INT16 ||
                         kv->type == QK_GGUF_INT32 || kv->type == QK_GGUF_INT64)
                    printf("%" PRId64, kv->v.i);
                else
                    printf("%" PRIu64, kv->v.u);
            }
            putchar('\n');
        }
    } else if (!strcmp(cmd, "tensors")) {
        for (size_t i = 0; i < qk_gguf_tensor_count(g); i++) {
            const qk_gguf_tensor *t = qk_gguf_tensor_at(g, i);
            printf("%s\t%s\t", t->name, qk_ggml_type_name(t->type));
            for (uint32_t d = 0; d < t->n_dims; d++)
                printf("%s%" PRIu64, d ? "," : "", t->ne[d]);
            printf("\t%" PRIu64 "\t%" PRIu64 "\n", t->offset, t->bytes);
        }
    } else if ((!strcmp(cmd, "bytes") || !strcmp(cmd, "dequant")) && argc == 5) {
        const qk_gguf_tensor *t = qk_gguf_find_tensor(g, argv[3]);
        if (!t) {
            fprintf(stderr, "%s: no tensor '%s'\n", argv[2], argv[3]);
            return 2;
        }
        if (!strcmp(cmd, "bytes")) {
            FILE *f = fopen(argv[4], "wb");
            if (!f || fwrite(t->data, 1, t->bytes, f) != t->bytes || fclose(f)) {
                fprintf(stderr, "cannot write %s\n", argv[4]);
                return 2;
            }
        } else {
            if (t->type != QK_GGML_Q4_K) {
                fprintf(stderr, "%s: '%s' is %s, not q4_K\n", argv[2], argv[3],
                        qk_ggml_type_name(t->type));
                return 2;
            }
            size_t n = (size_t)(t->bytes / 144 * 256);
            float *y = malloc(n * sizeof *y);
            qk_block_q4k *blocks = malloc(t->bytes); /* aligned copy of the mapped bytes */
            memcpy(blocks, t->data, t->bytes);
            qk_dequantize_q4k(blocks, y, n);
            if (qk_npy_write_f32(argv[4], y, n)) {
                fprintf(stderr, "cannot write %s\n", argv[4]);
                return 2;
            }
            free(y), free(blocks);
        }
    } else {
        fprintf(stderr, "gguf_tool: unknown command '%s'\n", cmd);
        return 2;
    }
    qk_gguf_close(g);
    return 0;
}

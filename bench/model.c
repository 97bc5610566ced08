#include "model.h"
#include "cli.h"
#include <inttypes.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static qk_gguf *open_or_die(const char *path) {
    char err[512];
    qk_gguf *g = qk_gguf_open(path, err, sizeof err);
    if (!g) qk_die("--model: %s", err);
    return g;
}

/* "<arch>.<suffix>" as an unsigned integer, or -1 when absent. */
static long long arch_uint(const qk_gguf *g, const char *suffix) {
    const qk_gguf_kv *kv = qk_gguf_find_kv(g, "general.architecture");
    const char *arch = "unknown";
    size_t len = strlen(arch);
    if (kv && kv->type == QK_GGUF_STRING) arch = kv->str, len = (size_t)kv->str_len;
    char key[256];
    /* a longer architecture cannot prefix a key of this file worth reading: absent */
    if (len + 1 + strlen(suffix) >= sizeof key) return -1;
    snprintf(key, sizeof key, "%.*s.%s", (int)len, arch, suffix);
    uint64_t v;
    if (qk_gguf_kv_uint(qk_gguf_find_kv(g, key), &v) || v > INT64_MAX) return -1;
    return (long long)v;
}

/* general.architecture as it may be printed: the file's bytes never reach the terminal raw. */
static void architecture(const qk_gguf *g, char *out, size_t size) {
    const qk_gguf_kv *kv = qk_gguf_find_kv(g, "general.architecture");
    if (kv && kv->type == QK_GGUF_STRING)
        qk_gguf_printable(kv->str, (size_t)kv->str_len, out, size);
    else
        snprintf(out, size, "unknown");
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* The distinct layer numbers L of the tensors named "blk.L....", ascending, in a new array
 * (NULL when there are none or no memory): the rows --inspect can fill. */
static uint64_t *named_layers(const qk_gguf *g, size_t *n_out) {
    size_t n = 0, count = qk_gguf_tensor_count(g);
    uint64_t *layers = count ? malloc(count * sizeof *layers) : NULL;
    for (size_t i = 0; layers && i < count; i++) {
        const char *name = qk_gguf_tensor_at(g, i)->name, *p = name + 4;
        if (strncmp(name, "blk.", 4) || *p < '0' || *p > '9') continue;
        if (p[0] == '0' && p[1] != '.') continue; /* "blk.007.": not how a layer is named */
        uint64_t l = 0;
        while (*p >= '0' && *p <= '9' && l < 1000000000)
            l = l * 10 + (uint64_t)(*p++ - '0');
        if (*p == '.') layers[n++] = l;
    }
    if (layers) qsort(layers, n, sizeof *layers, cmp_u64);
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        if (!distinct || layers[distinct - 1] != layers[i]) layers[distinct++] = layers[i];
    *n_out = distinct;
    return layers;
}

void qk_model_expert_tensor_name(int layer, const char *proj, char *out, size_t size) {
    snprintf(out, size, "blk.%d.ffn_%s_exps.weight", layer, proj);
}

void qk_model_open(const char *path, const char *name, qk_model_weights *m) {
    memset(m, 0, sizeof *m);
    m->gguf = open_or_die(path);
    architecture(m->gguf, m->architecture, sizeof m->architecture);
    const qk_gguf_tensor *t = qk_gguf_find_tensor(m->gguf, name);
    if (!t) { /* what the tensors name, not block_count (a claim of the file) */
        size_t n_named = 0;
        uint64_t *named = named_layers(m->gguf, &n_named);
        if (n_named)
            qk_die("--model: %s: no tensor '%s' (%s; the tensors name %zu layer%s, %" PRIu64
                   " to %" PRIu64 "; bench --model %s --inspect lists them)",
                   path, name, m->architecture, n_named, n_named == 1 ? "" : "s", named[0],
                   named[n_named - 1], path);
        qk_die("--model: %s: no tensor '%s' (%s; no tensor is named blk.L.*; bench --model %s "
               "--inspect lists them)",
               path, name, m->architecture, path);
    }
    if (t->type != QK_GGML_Q4_K)
        qk_die("--model: %s: tensor '%s' is %s; qkbench's variants read q4_K weights", path, name,
               qk_ggml_type_name(t->type));
    if (t->n_dims < 2 || t->n_dims > 3)
        qk_die("--model: %s: tensor '%s' has %u dimensions; a matrix (2) or one per expert (3) "
               "is needed",
               path, name, t->n_dims);
    if (t->ne[1] > 1u << 20 || t->ne[0] > 1u << 20 || t->ne[2] > 4096 || !t->ne[0] || !t->ne[1] ||
        !t->ne[2])
        qk_die("--model: %s: tensor '%s' is %" PRIu64 "x%" PRIu64 "x%" PRIu64
               " (cols x rows x experts), outside what bench runs (1 to 2^20 rows and cols, 1 to "
               "4096 experts)",
               path, name, t->ne[0], t->ne[1], t->ne[2]);
    m->tensor = t;
    m->cols = (size_t)t->ne[0];
    m->rows = (size_t)t->ne[1];
    m->n_experts = (size_t)t->ne[2];
}

const qk_block_q4k *qk_model_expert(const qk_model_weights *m, size_t e) {
    return (const qk_block_q4k *)(m->tensor->data +
                                  e * m->rows * (m->cols / QK_K) * sizeof(qk_block_q4k));
}

void qk_model_close(qk_model_weights *m) {
    qk_gguf_close(m->gguf);
    memset(m, 0, sizeof *m);
}

/* "q4_K 2048x768x128" for a tensor, "-" when absent. */
static void describe(const qk_gguf *g, const char *name, char *out, size_t size) {
    const qk_gguf_tensor *t = qk_gguf_find_tensor(g, name);
    if (!t) {
        snprintf(out, size, "-");
        return;
    }
    int k = snprintf(out, size, "%s ", qk_ggml_type_name(t->type));
    for (uint32_t d = 0; d < t->n_dims && k > 0 && (size_t)k < size; d++)
        k += snprintf(out + k, size - (size_t)k, "%s%" PRIu64, d ? "x" : "", t->ne[d]);
}

void qk_model_inspect(const char *path) {
    qk_gguf *g = open_or_die(path);
    char arch[160], name_shown[160];
    architecture(g, arch, sizeof arch);
    const qk_gguf_kv *name = qk_gguf_find_kv(g, "general.name");
    if (name && name->type == QK_GGUF_STRING)
        qk_gguf_printable(name->str, (size_t)name->str_len, name_shown, sizeof name_shown);
    else
        snprintf(name_shown, sizeof name_shown, "-");
    printf("file %s: GGUF v%u, %zu tensors, %zu metadata keys, alignment %" PRIu64 "\n", path,
           qk_gguf_version(g), qk_gguf_tensor_count(g), qk_gguf_kv_count(g), qk_gguf_alignment(g));
    printf("architecture %s, name %s\n", arch, name_shown);
    long long layers = arch_uint(g, "block_count");
    static const char *const keys[] = {"block_count",
                                       "expert_count",
                                       "expert_used_count",
                                       "embedding_length",
                                       "expert_feed_forward_length",
                                       "feed_forward_length"};
    static const char *const labels[] = {"layers", "experts",    "experts used per token",
                                         "hidden", "expert FFN", "dense FFN"};
    for (int k = 0; k < 6; k++) {
        long long v = arch_uint(g, keys[k]);
        char text[32] = "-";
        if (v >= 0) snprintf(text, sizeof text, "%lld", v);
        printf("%s%s %s", k ? ", " : "", labels[k], text);
    }
    printf("\n");
    printf("types are ggml's; shapes are ne[0]xne[1]x... (cols x rows x experts); bench reads "
           "q4_K\n");
    printf("%-6s %-26s %-26s %-26s\n", "layer", "gate", "up", "down");
    /* one row per layer the tensors name: block_count is only a claim of the file, and a
     * hostile one (4e9) must not drive the loop */
    size_t n_named = 0;
    uint64_t *named = named_layers(g, &n_named);
    if (!named && qk_gguf_tensor_count(g)) qk_die("--model: %s: out of memory", path);
    size_t below = 0;
    for (size_t i = 0; i < n_named; i++) {
        uint64_t l = named[i];
        below += layers >= 0 && l < (uint64_t)layers;
        char cells[3][64];
        static const char *const proj[3] = {"gate", "up", "down"};
        for (int p = 0; p < 3; p++) {
            char tn[96];
            snprintf(tn, sizeof tn, "blk.%" PRIu64 ".ffn_%s_exps.weight", l, proj[p]);
            describe(g, tn, cells[p], sizeof cells[p]);
            if (!strcmp(cells[p], "-")) { /* a dense FFN layer */
                snprintf(tn, sizeof tn, "blk.%" PRIu64 ".ffn_%s.weight", l, proj[p]);
                char dense[56];
                describe(g, tn, dense, sizeof dense);
                if (strcmp(dense, "-")) snprintf(cells[p], sizeof cells[p], "%s (dense)", dense);
            }
        }
        printf("%-6" PRIu64 " %-26s %-26s %-26s\n", l, cells[0], cells[1], cells[2]);
    }
    if (layers >= 0 && (below != (uint64_t)layers || below != n_named))
        printf("note: block_count is %lld, but the tensors name %zu layer%s (%zu of them below "
               "%lld); the rows above are the layers the file holds\n",
               layers, n_named, n_named == 1 ? "" : "s", below, layers);
    free(named);
    qk_gguf_close(g);
}

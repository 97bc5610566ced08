/* bench's plug-in loader (bench/plugin.h): dlopen, the entry point, every check of what a
 * plug-in registers, and the bit-identity check of its quantizers. */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700 /* realpath */
#include "plugin.h"
#include "peak.h"
#include "../cpu/cpu_kernels.h"
#include "../gpu/gpu_kernels.h"
#include "../kernels/qk_edge.h"
#include "../kernels/qk_q4k_scales.h"
#include "../kernels/qk_quant.h"
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static qk_plugin plugins[QK_MAX_PLUGINS];
static size_t n_plugins;

/* What bench lends every plug-in: the spec's own helpers, not copies. */
static void host_scale_min(const uint8_t scales[12], int j, uint8_t *sc, uint8_t *m) {
    qk_q4k_scale_min(scales, j, sc, m);
}
static void host_dequantize_q4k(const void *blocks, float *out, size_t n) {
    qk_dequantize_q4k(blocks, out, n);
}
static const qkb_host host = {QKB_PLUGIN_ABI, host_scale_min, host_dequantize_q4k, qk_evict};

__attribute__((format(printf, 3, 4))) static int refuse(char *err, size_t size, const char *fmt,
                                                        ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return -1;
}

/* The part of s (NULL allowed) that is safe to quote in one line. */
static const char *shown(const char *s, char *out, size_t size) {
    if (!s) return "(null)";
    size_t n = 0;
    for (; *s && n + 5 < size; s++)
        n += (unsigned char)*s < 0x20 || *s == 0x7f
                 ? (size_t)snprintf(out + n, size - n, "\\x%02x", (unsigned char)*s)
                 : (size_t)snprintf(out + n, size - n, "%c", *s);
    out[n] = 0;
    return out;
}

static int name_ok(const char *s, size_t max) {
    size_t n = 0;
    for (; s && s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') || s[n] == '_'))
            return 0;
    return n > 0 && n <= max;
}

/* Printable ASCII, 1..max characters: a plug-in's name and version go into the table, the JSON
 * and the context's keys. */
static int text_ok(const char *s, size_t max, int spaces) {
    size_t n = 0;
    for (; s && s[n]; n++)
        if (s[n] < 0x21 || s[n] > 0x7e) {
            if (!(spaces && s[n] == ' ')) return 0;
        }
    return n > 0 && n <= max;
}

static int format_of(const char *name, qk_format *f) {
    for (int i = 0; i < QK_FMT_COUNT; i++)
        if (name && !strcmp(name, qk_format_name((qk_format)i))) return *f = (qk_format)i, 1;
    return 0;
}

/* Who already uses a variant name: a built-in, a loaded plug-in, or NULL. */
static const char *name_taken(const char *name, char *who, size_t size) {
    if (qk_cpu_kernel(name) || qk_gpu_kernel(name)) return "the built-in variant of that name";
    if (!strcmp(name, "peak_read") || !strcmp(name, "peak_read_gpu"))
        return "the peak read rows' name (reserved)";
    for (size_t p = 0; p < n_plugins; p++)
        for (size_t i = 0; i < plugins[p].desc->n_variants; i++)
            if (!strcmp(plugins[p].kernels[i].name, name)) {
                snprintf(who, size, "the variant of plug-in '%s' (%s)", plugins[p].desc->name,
                         plugins[p].path);
                return who;
            }
    return NULL;
}

/* One variant's description, checked; its descriptor in k. */
static int check_variant(const qkb_plugin *d, size_t i, qk_kernel *k, char *err, size_t size) {
    const qkb_variant *v = &d->variants[i];
    char a[96], b[96], who[PATH_MAX + 128];
    if (!name_ok(v->name, 63))
        return refuse(err, size, "variant %zu: name '%s' is not [a-z0-9_]+ of 1..63 characters", i,
                      shown(v->name, a, sizeof a));
    for (size_t j = 0; j < i; j++)
        if (!strcmp(d->variants[j].name, v->name))
            return refuse(err, size, "variant '%s' is registered twice", v->name);
    const char *taken = name_taken(v->name, who, sizeof who);
    if (taken) return refuse(err, size, "variant '%s' clashes with %s", v->name, taken);
    if (v->device != QKB_DEVICE_CPU && v->device != QKB_DEVICE_CUDA)
        return refuse(err, size, "variant '%s': unknown device %d (0 cpu, 1 cuda)", v->name,
                      v->device);
    if (v->kind < QKB_KIND_MATVEC || v->kind > QKB_KIND_MOE)
        return refuse(err, size, "variant '%s': unknown kind %d (0 matvec, 1 quantize, 2 moe)",
                      v->name, v->kind);
    qk_format wf, af;
    if (!format_of(v->weight_format, &wf) || !format_of(v->act_format, &af))
        return refuse(err, size,
                      "variant '%s': unknown format '%s' (the formats are f32, q4_K, q8_K, q8_1)",
                      v->name,
                      shown(format_of(v->weight_format, &wf) ? v->act_format : v->weight_format, a,
                            sizeof a));
    if (v->summary && !text_ok(v->summary, 200, 1))
        return refuse(err, size, "variant '%s': summary is not one line of printable ASCII",
                      v->name);
    const char *kind = v->kind == QKB_KIND_MATVEC     ? "matvec"
                       : v->kind == QKB_KIND_QUANTIZE ? "quantize"
                                                      : "moe";
    if (v->device == QKB_DEVICE_CUDA && v->kind != QKB_KIND_MOE)
        return refuse(err, size,
                      "variant '%s': a CUDA variant of kind %s (ABI 1 takes CUDA variants as "
                      "moe only: the whole unit, run by the plug-in)",
                      v->name, kind);
    /* formats bench can check: oracles of q4_K weights, activations it can quantize itself */
    int act_ok = v->kind == QKB_KIND_MATVEC     ? af == QK_FMT_F32 || af == QK_FMT_Q8_K
                 : v->kind == QKB_KIND_QUANTIZE ? af == QK_FMT_Q8_K || af == QK_FMT_Q8_1
                                                : af != QK_FMT_Q4_K;
    int weight_ok = v->kind == QKB_KIND_QUANTIZE ? wf == QK_FMT_F32 : wf == QK_FMT_Q4_K;
    if (!weight_ok || !act_ok)
        return refuse(err, size,
                      "variant '%s': %s %s %s is not a combination bench can check (matvec: q4_K "
                      "x f32|q8_K; quantize: f32 -> q8_K|q8_1; moe: q4_K x f32|q8_K|q8_1)",
                      v->name, kind, shown(v->weight_format, a, sizeof a),
                      shown(v->act_format, b, sizeof b));
    const char *missing = NULL;
    if (v->kind == QKB_KIND_MATVEC && !v->matvec) missing = "matvec";
    if (v->kind == QKB_KIND_MATVEC && (v->pack == NULL) != (v->packed_size == NULL))
        missing = v->pack ? "packed_size (pack is given)" : "pack (packed_size is given)";
    if (v->kind == QKB_KIND_QUANTIZE && !v->quantize) missing = "quantize";
    if (v->kind == QKB_KIND_MOE)
        missing = !v->create    ? "create"
                  : !v->run     ? "run"
                  : !v->output  ? "output"
                  : !v->destroy ? "destroy"
                                : NULL;
    if (missing)
        return refuse(err, size, "variant '%s' of kind %s: its %s callback is NULL", v->name, kind,
                      missing);
    if (v->kind == QKB_KIND_MATVEC && v->row_group > 4096)
        return refuse(err, size, "variant '%s': row_group %zu (at most 4096)", v->name,
                      v->row_group);
    *k = (qk_kernel){.name = v->name,
                     .device = v->device == QKB_DEVICE_CUDA ? QK_DEV_GPU : QK_DEV_CPU,
                     .op = v->kind == QKB_KIND_MATVEC     ? QK_OP_MATVEC
                           : v->kind == QKB_KIND_QUANTIZE ? QK_OP_QUANTIZE
                                                          : QK_OP_MOE,
                     .weight_format = wf,
                     .act_format = af,
                     .isa = v->device == QKB_DEVICE_CUDA ? QK_ISA_CUDA : 0,
                     .matvec = v->matvec,
                     .quantize = v->quantize,
                     .row_group = v->row_group ? v->row_group : 1,
                     .packed_size = v->packed_size,
                     .pack = v->pack,
                     .summary = v->summary ? v->summary : "",
                     .ext = v};
    return 0;
}

/* A plug-in quantizer against the reference of its format on the edge-case series (the test
 * of the built-in ones, tests/test_quantizers.c), outputs poisoned: NULL or what differs. */
static void check_quantizer(const qk_kernel *k, char *verdict, size_t size) {
    enum { NB = QK_EDGE_CASES, N = NB * QK_K };
    float *x = malloc(N * sizeof *x);
    size_t bytes = qk_format_bytes(k->act_format, N), per = bytes / NB;
    unsigned char *ref = malloc(bytes), *got = malloc(bytes);
    const char *names[NB];
    verdict[0] = 0;
    if (!x || !ref || !got) snprintf(verdict, size, "not checked: out of memory");
    qk_rng r;
    qk_rng_seed(&r, 1234);
    for (int round = 0; round < 20 && !verdict[0]; round++) {
        for (int b = 0; b < NB; b++)
            names[b] = qk_edge_block(&r, b, x + b * QK_K);
        memset(ref, 0x5a, bytes);
        memset(got, 0xa5, bytes); /* every byte must be written */
        if (k->act_format == QK_FMT_Q8_K)
            qk_quantize_q8k_ref(x, (qk_block_q8k *)ref, N);
        else
            qk_quantize_q8_1_ref(x, (qk_block_q8_1 *)ref, N);
        k->quantize(x, got, N);
        for (int b = 0; b < NB && !verdict[0]; b++)
            if (memcmp(ref + b * per, got + b * per, per))
                snprintf(verdict, size,
                         "differs from the reference %s quantizer on the edge case '%s' (round "
                         "%d)",
                         qk_format_name(k->act_format), names[b], round);
    }
    free(x), free(ref), free(got);
}

int qk_plugin_load(const char *path, int is_default, char *err, size_t size) {
    char a[96], b[96];
    qk_plugin *p = &plugins[n_plugins];
    if (n_plugins == QK_MAX_PLUGINS)
        return refuse(err, size, "%s: more than %d plug-ins", path, QK_MAX_PLUGINS);
    memset(p, 0, sizeof *p);
    p->is_default = is_default;
    if (!realpath(path, p->path)) return refuse(err, size, "%s: %s", path, strerror(errno));
    FILE *f = fopen(p->path, "rb");
    if (!f) return refuse(err, size, "%s: %s", path, strerror(errno));
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, 4, f);
    fclose(f);
    if (got != 4 || memcmp(magic,
                           "\x7f"
                           "ELF",
                           4))
        return refuse(err, size, "%s: not a shared library (no ELF header)", path);
    dlerror();
    p->handle = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
    if (!p->handle) {
        const char *why = dlerror();
        return refuse(err, size, "%s: cannot load it: %s", path, why ? why : "dlopen failed");
    }
    qkb_plugin_entry_fn entry;
    void *sym = dlsym(p->handle, QKB_PLUGIN_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* POSIX: a function's address through void * */
    int rc = -1;
    if (!sym) {
        refuse(err, size,
               "%s: no entry point '%s' (a plug-in exports const qkb_plugin *%s(const qkb_host "
               "*), kernels/qkbench_plugin.h)",
               path, QKB_PLUGIN_ENTRY, QKB_PLUGIN_ENTRY);
    } else if (!(p->desc = entry(&host))) {
        refuse(err, size, "%s: its entry point returned NULL (it registered nothing)", path);
    } else if (p->desc->abi_version != QKB_PLUGIN_ABI) {
        refuse(err, size,
               "%s: plug-in ABI version %u, this bench loads version %d (rebuild it "
               "against this kernels/qkbench_plugin.h)",
               path, p->desc->abi_version, QKB_PLUGIN_ABI);
    } else if (!text_ok(p->desc->name, 64, 0) || strpbrk(p->desc->name, "\"\\,;")) {
        refuse(err, size,
               "%s: plug-in name '%s' is not 1..64 printable characters without "
               "spaces, quotes, backslashes, commas or semicolons",
               path, shown(p->desc->name, a, sizeof a));
    } else if (p->desc->version && !text_ok(p->desc->version, 64, 1)) {
        refuse(err, size, "%s: plug-in version '%s' is not 1..64 printable characters", path,
               shown(p->desc->version, b, sizeof b));
    } else if (!p->desc->n_variants || p->desc->n_variants > QK_MAX_PLUGIN_VARIANTS) {
        refuse(err, size, "%s: n_variants %zu (a plug-in registers 1..%d variants)", path,
               p->desc->n_variants, QK_MAX_PLUGIN_VARIANTS);
    } else if (!p->desc->variants) {
        refuse(err, size, "%s: n_variants %zu but variants is NULL", path, p->desc->n_variants);
    } else {
        size_t n = p->desc->n_variants;
        p->kernels = calloc(n, sizeof *p->kernels);
        p->quant_verdict = calloc(n, sizeof *p->quant_verdict);
        if (!p->kernels || !p->quant_verdict) {
            refuse(err, size, "%s: out of memory", path);
        } else {
            char why[512];
            rc = 0;
            for (size_t i = 0; i < n && !rc; i++) {
                rc = check_variant(p->desc, i, &p->kernels[i], why, sizeof why);
                p->kernels[i].plugin = p;
            }
            if (rc) refuse(err, size, "%s (plug-in '%s'): %s", path, p->desc->name, why);
        }
    }
    if (rc) {
        free(p->kernels), free(p->quant_verdict);
        dlclose(p->handle);
        memset(p, 0, sizeof *p);
        return -1;
    }
    for (size_t i = 0; i < p->desc->n_variants; i++)
        if (p->kernels[i].op == QK_OP_QUANTIZE)
            check_quantizer(&p->kernels[i], p->quant_verdict[i], sizeof p->quant_verdict[i]);
    n_plugins++;
    return 0;
}

size_t qk_plugin_count(void) {
    return n_plugins;
}
const qk_plugin *qk_plugin_at(size_t i) {
    return i < n_plugins ? &plugins[i] : NULL;
}
size_t qk_plugin_kernel_count(void) {
    size_t n = 0;
    for (size_t p = 0; p < n_plugins; p++)
        n += plugins[p].desc->n_variants;
    return n;
}
const qk_kernel *qk_plugin_kernel(size_t i) {
    for (size_t p = 0; p < n_plugins; p++) {
        if (i < plugins[p].desc->n_variants) return &plugins[p].kernels[i];
        i -= plugins[p].desc->n_variants;
    }
    return NULL;
}
const char *qk_plugin_quant_verdict(const qk_kernel *k) {
    const qk_plugin *p = k->plugin;
    if (!p || k->op != QK_OP_QUANTIZE) return NULL;
    const char *v = p->quant_verdict[k - p->kernels];
    return *v ? v : NULL;
}
const char *qk_plugin_label(const qk_plugin *p, char *out, size_t size) {
    snprintf(out, size, "%s%s%s", p->desc->name, p->desc->version ? " " : "",
             p->desc->version ? p->desc->version : "");
    return out;
}
const char *qk_op_name(qk_op op) {
    return op == QK_OP_MATVEC ? "matvec" : op == QK_OP_QUANTIZE ? "quantize" : "moe";
}
const char *qk_kernel_formats(const qk_kernel *k, char *out, size_t size) {
    snprintf(out, size, "%s %s %s", qk_format_name(k->weight_format),
             k->op == QK_OP_QUANTIZE ? "->" : "x", qk_format_name(k->act_format));
    return out;
}
void qk_plugin_unload_all(void) {
    for (size_t p = 0; p < n_plugins; p++) {
        free(plugins[p].kernels), free(plugins[p].quant_verdict);
        dlclose(plugins[p].handle);
    }
    n_plugins = 0;
}

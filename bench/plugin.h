/* bench's plug-in loader: shared libraries registering variants through kernels/qkbench_plugin.h
 * (`bench --plugin PATH`). Each variant becomes a qk_kernel like a built-in one (ext and plugin
 * set), so selection, listing, timing, checks and the JSON treat both alike. */
#ifndef QK_PLUGIN_H
#define QK_PLUGIN_H
#include "../kernels/qk_kernel.h"
#include <limits.h>
#include <stddef.h>

enum { QK_MAX_PLUGINS = 16, QK_MAX_PLUGIN_VARIANTS = 256 };

typedef struct qk_plugin {
    char path[PATH_MAX]; /* resolved (realpath) */
    const qkb_plugin *desc;
    void *handle;
    qk_kernel *kernels; /* one per variant, in the plug-in's order */
    /* QUANTIZE variants: NULL when bit-identical to the reference quantizer of their format on
     * the edge-case series (kernels/qk_edge.h), else what differs; per kernel */
    char (*quant_verdict)[200];
    int is_default; /* from QK_DEFAULT_PLUGINS */
} qk_plugin;

/* Loads the library at path, checks what it registers and adds its variants; 0, or -1 with
 * one line in err naming the problem (nothing is added then). A variant's name may not be a
 * built-in's, a reserved row name, or an earlier plug-in's. */
int qk_plugin_load(const char *path, int is_default, char *err, size_t err_size);
size_t qk_plugin_count(void);
const qk_plugin *qk_plugin_at(size_t i);
/* Every loaded plug-in variant, in load order. */
size_t qk_plugin_kernel_count(void);
const qk_kernel *qk_plugin_kernel(size_t i);
/* A plug-in quantizer's verdict (NULL: bit-identical to the reference), for any kernel. */
const char *qk_plugin_quant_verdict(const qk_kernel *k);
/* "NAME VERSION" of k's plug-in, for listings. */
const char *qk_plugin_label(const qk_plugin *p, char *out, size_t size);
/* "matvec", "quantize" or "moe". */
const char *qk_op_name(qk_op op);
/* "q4_K x f32" (matvec, moe) or "f32 -> q8_K" (quantize): the notation of --list and of the
 * contracts' "formats". */
const char *qk_kernel_formats(const qk_kernel *k, char *out, size_t size);
/* Closes every library (so leak checkers see a clean exit). */
void qk_plugin_unload_all(void);

#endif

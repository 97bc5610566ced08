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
    char real_path[PATH_MAX]; /* resolved (realpath), for dlopen */
    char path[4 * PATH_MAX];  /* the same, control characters escaped (\\xNN): what is shown */
    const qkb_plugin *desc;
    void *handle;
    qk_kernel *kernels; /* one per variant, in the plug-in's order */
    /* QUANTIZE variants: NULL when bit-identical to the reference quantizer of their format on
     * the edge-case series (kernels/qk_edge.h), else what differs; per kernel */
    char (*quant_verdict)[200];
    int is_default; /* from QK_DEFAULT_PLUGINS */
    /* per kernel: the crash handler's line naming it (bench: SIGNAL in <this>) */
    char (*crash_msg)[512];
    char crash_msg_entry[512]; /* ... naming its constructors and entry point */
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
/* Plug-in code is about to run (k a plug-in variant) or has returned (NULL). While it runs, a
 * crash (SIGSEGV, SIGBUS, SIGILL, SIGFPE) ends the run with one line on stderr naming k, exit 1
 * (a wrong kernel); outside it, the default action. Async-signal-safe to read. */
void qk_plugin_running(const qk_kernel *k);
/* The variant name is one bench uses for itself: a part of its row names (hot, cold, decode,
 * k<digits>, <digits>x<digits>), its peak rows' or a file it writes in --dump-output's folder
 * (activations, oracle_*); NULL, or what it is. */
const char *qk_reserved_name(const char *name);
/* Closes every library (so leak checkers see a clean exit). */
void qk_plugin_unload_all(void);

#endif

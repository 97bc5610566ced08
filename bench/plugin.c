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
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static int all_digits(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return 0;
    return n > 0;
}

const char *qk_reserved_name(const char *name) {
    if (!strcmp(name, "peak_read") || !strcmp(name, "peak_read_gpu"))
        return "the peak read rows' name (reserved)";
    if (!strcmp(name, "hot") || !strcmp(name, "cold") || !strcmp(name, "decode"))
        return "a temperature of the row names (reserved)";
    if (name[0] == 'k' && all_digits(name + 1, strlen(name + 1)))
        return "the k<digits> part of the row names (reserved)";
    const char *x = strchr(name, 'x');
    if (x && all_digits(name, (size_t)(x - name)) && all_digits(x + 1, strlen(x + 1)))
        return "the shape part of the row names (reserved)";
    if (!strcmp(name, "activations") || !strncmp(name, "oracle_", 7))
        return "a file bench writes in --dump-output's folder (reserved: activations, oracle_*)";
    return NULL;
}

/* Who already uses a variant name: a built-in, a loaded plug-in, or NULL. */
static const char *name_taken(const char *name, char *who, size_t size) {
    if (qk_cpu_kernel(name) || qk_gpu_kernel(name)) return "the built-in variant of that name";
    if (qk_reserved_name(name)) return qk_reserved_name(name);
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
                      "variant '%s': a CUDA variant of kind %s (ABI 2 takes CUDA variants as "
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
    if (v->sync && (v->kind != QKB_KIND_MOE || v->device != QKB_DEVICE_CUDA))
        return refuse(err, size,
                      "variant '%s': a %s variant of kind %s gives sync (only CUDA moe variants "
                      "may: its run then only queues the unit)",
                      v->name, v->device == QKB_DEVICE_CUDA ? "CUDA" : "CPU", kind);
    if ((v->park || v->wake) && (v->kind != QKB_KIND_MOE || v->device != QKB_DEVICE_CPU))
        return refuse(err, size,
                      "variant '%s': a %s variant of kind %s gives park or wake (only CPU moe "
                      "variants may: they rest and wake the plug-in's own threads)",
                      v->name, v->device == QKB_DEVICE_CUDA ? "CUDA" : "CPU", kind);
    if (!v->park != !v->wake)
        return refuse(err, size, "variant '%s': it gives %s without %s (both or neither)", v->name,
                      v->park ? "park" : "wake", v->park ? "wake" : "park");
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

/* The crash handler: while plug-in code runs, crash_what is the line naming it. */
static const char *volatile crash_what;
static char alt_stack[1 << 16];

static void on_crash(int sig) {
    const char *what = crash_what;
    if (!what) { /* not in plug-in code: the default action (a core, exit 128 + sig) */
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    const char *name = sig == SIGSEGV  ? "SIGSEGV (invalid memory access)"
                       : sig == SIGBUS ? "SIGBUS (bus error)"
                       : sig == SIGILL ? "SIGILL (illegal instruction)"
                                       : "SIGFPE (arithmetic exception)";
    const char *parts[] = {"bench: ", name, " in ", what, "\n"};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        size_t n = strlen(parts[i]);
        if (write(2, parts[i], n) != (ssize_t)n) break;
    }
    _exit(1);
}

static void install_crash_handler(void) {
    static int done;
    if (done) return;
    done = 1;
    stack_t st = {.ss_sp = alt_stack, .ss_size = sizeof alt_stack};
    sigaltstack(&st, NULL); /* a plug-in's stack overflow on the main thread is reported too */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++)
        sigaction(sigs[i], &sa, NULL);
}

void qk_plugin_running(const qk_kernel *k) {
    const qk_plugin *p = k ? k->plugin : NULL;
    crash_what = p ? p->crash_msg[k - p->kernels] : NULL;
}

/* stdout goes to stderr while a plug-in's constructors and entry point run (--list and the
 * table stay bench's own). */
static int stdout_aside(void) {
    fflush(stdout);
    int saved = dup(1);
    if (saved >= 0) dup2(2, 1);
    return saved;
}
static void stdout_back(int saved) {
    fflush(stdout);
    if (saved < 0) return;
    dup2(saved, 1);
    close(saved);
}

/* A plug-in quantizer against the reference of its format on the edge-case series (the test
 * of the built-in ones, tests/test_quantizers.c), outputs poisoned: NULL or what differs. A
 * write into the poisoned guard zones either side of its output is refused (overrun set). */
static void check_quantizer(const qk_kernel *k, char *verdict, size_t size, char *overrun,
                            size_t overrun_size) {
    enum { NB = QK_EDGE_CASES, N = NB * QK_K, GUARD = 4096 };
    float *x = malloc(N * sizeof *x);
    size_t bytes = qk_format_bytes(k->act_format, N), per = bytes / NB;
    unsigned char *ref = malloc(bytes), *buf = malloc(bytes + 2 * GUARD), *got = buf + GUARD;
    const char *names[NB];
    verdict[0] = overrun[0] = 0;
    if (!x || !ref || !buf) snprintf(verdict, size, "not checked: out of memory");
    qk_rng r;
    qk_rng_seed(&r, 1234);
    for (int round = 0; round < 20 && !verdict[0] && !overrun[0]; round++) {
        for (int b = 0; b < NB; b++)
            names[b] = qk_edge_block(&r, b, x + b * QK_K);
        memset(ref, 0x5a, bytes);
        memset(buf, 0xa5, bytes + 2 * GUARD); /* every byte must be written, none outside */
        if (k->act_format == QK_FMT_Q8_K)
            qk_quantize_q8k_ref(x, (qk_block_q8k *)ref, N);
        else
            qk_quantize_q8_1_ref(x, (qk_block_q8_1 *)ref, N);
        k->quantize(x, got, N);
        for (size_t i = 0; i < GUARD && !overrun[0]; i++)
            if (buf[i] != 0xa5 || got[bytes + i] != 0xa5)
                snprintf(overrun, overrun_size,
                         "it writes outside its output: byte %s%zu of the %zu bytes of %d %s "
                         "blocks",
                         buf[i] != 0xa5 ? "-" : "", buf[i] != 0xa5 ? GUARD - i : bytes + i, bytes,
                         NB, qk_format_name(k->act_format));
        for (int b = 0; b < NB && !verdict[0] && !overrun[0]; b++)
            if (memcmp(ref + b * per, got + b * per, per))
                snprintf(verdict, size,
                         "differs from the reference %s quantizer on the edge case '%s' (round "
                         "%d)",
                         qk_format_name(k->act_format), names[b], round);
    }
    free(x), free(ref), free(buf);
}

/* What an ELF file's e_machine is, in words. */
static const char *machine_name(unsigned m) {
    switch (m) {
    case EM_X86_64:
        return "x86_64";
    case EM_AARCH64:
        return "aarch64";
    case EM_386:
        return "i386";
    case EM_ARM:
        return "arm";
    case EM_PPC64:
        return "ppc64";
    case EM_S390:
        return "s390x";
    case EM_RISCV:
        return "riscv";
    default:
        return NULL;
    }
}
#if defined(__x86_64__)
#define HOST_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_MACHINE EM_AARCH64
#endif

/* The file at path (shown: escaped) is a shared library this machine can load: 0, or -1. */
static int check_file(const char *path, const char *shown_path, char *err, size_t size) {
    struct stat st;
    if (stat(path, &st)) return refuse(err, size, "%s: %s", shown_path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return refuse(err, size, "%s: is a directory", shown_path);
    FILE *f = fopen(path, "rb");
    if (!f) return refuse(err, size, "%s: %s", shown_path, strerror(errno));
    unsigned char h[64] = {0};
    size_t got = fread(h, 1, sizeof h, f);
    fclose(f);
    if (got < 4 || memcmp(h, ELFMAG, SELFMAG))
        return refuse(err, size, "%s: not a shared library (no ELF header)", shown_path);
    if (got < 20) return refuse(err, size, "%s: a truncated ELF file", shown_path);
    unsigned machine =
        h[EI_DATA] == ELFDATA2MSB ? (unsigned)h[18] << 8 | h[19] : (unsigned)h[19] << 8 | h[18];
#ifdef HOST_MACHINE
    if (machine != HOST_MACHINE || h[EI_CLASS] != ELFCLASS64) {
        const char *name = machine_name(machine);
        char number[32];
        snprintf(number, sizeof number, "e_machine %u", machine);
        return refuse(err, size, "%s: an ELF for another machine (%s%s; this is %s)", shown_path,
                      name ? name : number, h[EI_CLASS] == ELFCLASS32 ? ", 32-bit" : "",
                      machine_name(HOST_MACHINE));
    }
#else
    (void)machine;
#endif
    return 0;
}

/* A plug-in's version: 1..64 of [A-Za-z0-9_.+-] and spaces (no quotes, ';' or parentheses:
 * the JSON's `plugins` lists "NAME VERSION (PATH); ..."). */
static int version_ok(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || strchr("_.+- ", s[n])))
            return 0;
    return n > 0 && n <= 64;
}

/* The loaded library's entry point and what it registers, checked (sp: its path, shown). */
static int load_description(qk_plugin *p, const char *sp, char *err, size_t size) {
    char a[96], b[96];
    qkb_plugin_entry_fn entry;
    void *sym = dlsym(p->handle, QKB_PLUGIN_ENTRY);
    memcpy(&entry, &sym, sizeof entry); /* POSIX: a function's address through void * */
    if (!sym)
        return refuse(err, size,
                      "%s: no entry point '%s' (a plug-in exports const qkb_plugin *%s(const "
                      "qkb_host *), kernels/qkbench_plugin.h)",
                      sp, QKB_PLUGIN_ENTRY, QKB_PLUGIN_ENTRY);
    if (!(p->desc = entry(&host)))
        return refuse(err, size, "%s: its entry point returned NULL (it registered nothing)", sp);
    const qkb_plugin *d = p->desc;
    if (d->abi_version != QKB_PLUGIN_ABI)
        return refuse(err, size,
                      "%s: plug-in ABI version %u, this bench loads version %d (rebuild it "
                      "against this kernels/qkbench_plugin.h)",
                      sp, d->abi_version, QKB_PLUGIN_ABI);
    if (!text_ok(d->name, 64, 0) || strpbrk(d->name, "'\"\\,;()"))
        return refuse(err, size,
                      "%s: plug-in name '%s' is not 1..64 printable characters without "
                      "spaces, quotes (' or \"), backslashes, commas, semicolons or parentheses",
                      sp, shown(d->name, a, sizeof a));
    for (size_t i = 0; i < n_plugins; i++)
        if (!strcmp(plugins[i].desc->name, d->name))
            return refuse(err, size,
                          "%s: plug-in name '%s' is the name of the plug-in loaded from %s", sp,
                          d->name, plugins[i].path);
    if (d->version && !version_ok(d->version))
        return refuse(err, size,
                      "%s: plug-in version '%s' is not 1..64 of letters, digits, spaces and "
                      "'_.+-'",
                      sp, shown(d->version, b, sizeof b));
    if (!d->n_variants || d->n_variants > QK_MAX_PLUGIN_VARIANTS)
        return refuse(err, size, "%s: n_variants %zu (a plug-in registers 1..%d variants)", sp,
                      d->n_variants, QK_MAX_PLUGIN_VARIANTS);
    if (!d->variants)
        return refuse(err, size, "%s: n_variants %zu but variants is NULL", sp, d->n_variants);
    size_t n = d->n_variants;
    p->kernels = calloc(n, sizeof *p->kernels);
    p->quant_verdict = calloc(n, sizeof *p->quant_verdict);
    p->crash_msg = calloc(n, sizeof *p->crash_msg);
    if (!p->kernels || !p->quant_verdict || !p->crash_msg)
        return refuse(err, size, "%s: out of memory", sp);
    char why[512];
    for (size_t i = 0; i < n; i++) {
        if (check_variant(d, i, &p->kernels[i], why, sizeof why))
            return refuse(err, size, "%s (plug-in '%s'): %s", sp, d->name, why);
        p->kernels[i].plugin = p;
        int r = snprintf(p->crash_msg[i], sizeof p->crash_msg[i],
                         "plug-in code: variant '%s' of plug-in '%s' (%s)", d->variants[i].name,
                         d->name, sp);
        (void)r; /* a long path is cut */
    }
    for (size_t i = 0; i < n; i++) {
        if (p->kernels[i].op != QK_OP_QUANTIZE) continue;
        crash_what = p->crash_msg[i];
        check_quantizer(&p->kernels[i], p->quant_verdict[i], sizeof p->quant_verdict[i], why,
                        sizeof why);
        crash_what = p->crash_msg_entry;
        if (*why)
            return refuse(err, size, "%s (plug-in '%s'): quantizer '%s': %s", sp, d->name,
                          d->variants[i].name, why);
    }
    return 0;
}

int qk_plugin_load(const char *path, int is_default, char *err, size_t size) {
    char *sp = malloc(4 * PATH_MAX);
    if (!sp) return refuse(err, size, "out of memory");
    shown(path, sp, 4 * PATH_MAX);
    qk_plugin *p = &plugins[n_plugins];
    int rc = -1;
    if (n_plugins == QK_MAX_PLUGINS) {
        refuse(err, size, "%s: more than %d plug-ins", sp, QK_MAX_PLUGINS);
        free(sp);
        return -1;
    }
    memset(p, 0, sizeof *p);
    p->is_default = is_default;
    if (!realpath(path, p->real_path)) {
        refuse(err, size, "%s: %s", sp, strerror(errno));
    } else if (!check_file(p->real_path, sp, err, size)) {
        shown(p->real_path, p->path, sizeof p->path);
        install_crash_handler();
        int r = snprintf(p->crash_msg_entry, sizeof p->crash_msg_entry,
                         "plug-in code: the constructors or entry point of %s", sp);
        (void)r; /* a long path is cut */
        crash_what = p->crash_msg_entry;
        int saved = stdout_aside();
        dlerror();
        p->handle = dlopen(p->real_path, RTLD_NOW | RTLD_LOCAL);
        if (!p->handle) {
            const char *why = dlerror();
            char *w = malloc(2048);
            refuse(err, size, "%s: cannot load it: %s", sp,
                   why && w ? shown(why, w, 2048) : "dlopen failed");
            free(w);
        } else {
            rc = load_description(p, sp, err, size);
        }
        stdout_back(saved);
        crash_what = NULL;
    }
    free(sp);
    if (rc) {
        free(p->kernels), free(p->quant_verdict), free(p->crash_msg);
        if (p->handle) dlclose(p->handle);
        memset(p, 0, sizeof *p);
        return -1;
    }
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
        free(plugins[p].kernels), free(plugins[p].quant_verdict), free(plugins[p].crash_msg);
        dlclose(plugins[p].handle);
    }
    n_plugins = 0;
}

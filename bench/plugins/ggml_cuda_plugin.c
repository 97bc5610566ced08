/* bench's ggml CUDA row: llama.cpp's ggml MUL_MAT_ID on Q4_K experts on ggml's CUDA backend, as
 * a qkbench plug-in of kind MOE (qkbench_ggml_cuda.so; the CPU rows are ggml_plugin.c's). The
 * unit is one graph compute of one MUL_MAT_ID node: ggml quantizes x to Q8_1 (quantize_q8_1)
 * and runs mul_mat_vec_q over the selected experts, with CUDA graphs as llama.cpp builds it.
 *
 * Loading this library costs nothing of CUDA's: it links ggml-base alone, and its entry point
 * touches no backend. ggml-cuda (which links cuBLAS: its load alone maps ~150 MB resident, and
 * its first call enumerates the devices and creates the driver's state and threads) is opened
 * by `create`, the first time a case is made, from where the build put it (QK_GGML_CUDA_LIB),
 * and stays open. bench calls `create` only where its own GPU rows run (a device and a driver),
 * and lists the variant as not running here otherwise. */
#define _GNU_SOURCE
#include "ggml_plugin.h"
#include <dlfcn.h>

/* ggml-cuda's two entry points used here (include/ggml-cuda.h) */
typedef int (*cuda_device_count_fn)(void);
typedef ggml_backend_t (*cuda_init_fn)(int device);
static cuda_device_count_fn cuda_device_count;
static cuda_init_fn cuda_init;

static int open_ggml_cuda(char *err, size_t err_size) {
    if (cuda_init) return 0;
    void *lib = dlopen(QK_GGML_CUDA_LIB, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        fail(err, err_size, "cannot load ggml's CUDA backend: %s", why ? why : QK_GGML_CUDA_LIB);
        return -1;
    }
    void *count_sym = dlsym(lib, "ggml_backend_cuda_get_device_count");
    void *init_sym = dlsym(lib, "ggml_backend_cuda_init");
    if (!count_sym || !init_sym) {
        fail(err, err_size, "%s has no ggml_backend_cuda_init", QK_GGML_CUDA_LIB);
        return -1; /* not closed: a CUDA library does not unload cleanly */
    }
    /* POSIX: a function's address through void * */
    memcpy(&cuda_device_count, &count_sym, sizeof cuda_device_count);
    memcpy(&cuda_init, &init_sym, sizeof cuda_init);
    return 0;
}

static void moe_destroy(void *state) {
    ggml_moe *m = state;
    if (!m) return;
    moe_free_graph(m);
    free(m);
}

static void *create_cuda(const qkb_moe_case *c, char *err, size_t err_size) {
    const char *bad = check_case(c);
    if (bad) {
        fail(err, err_size, "%s", bad);
        return NULL;
    }
    if (open_ggml_cuda(err, err_size)) return NULL;
    int n_devices = cuda_device_count(); /* 0 when CUDA cannot start (ggml logs why) */
    if (c->cuda_device < 0 || c->cuda_device >= n_devices) {
        fail(err, err_size, "ggml sees %d CUDA devices, not device %d", n_devices, c->cuda_device);
        return NULL;
    }
    ggml_moe *m = calloc(1, sizeof *m);
    if (!m) {
        fail(err, err_size, "out of memory");
        return NULL;
    }
    m->backend = cuda_init(c->cuda_device);
    if (!m->backend) {
        fail(err, err_size, "ggml could not start its CUDA backend on device %d", c->cuda_device);
        goto failed;
    }
    if (moe_build(m, c, ggml_backend_get_default_buffer_type(m->backend), NULL, err, err_size))
        goto failed;
    return m;
failed:
    moe_destroy(m);
    return NULL;
}

/* The unit, queued: one graph compute on the backend's stream, returning once it is queued (a
 * CUDA graph launch after ggml's warm-up, the same executable graph each time: runs queued back
 * to back execute in order on that stream). bench calls moe_sync after a sample's runs. */
static int moe_run(void *state, char *err, size_t err_size) {
    ggml_moe *m = state;
    enum ggml_status status = ggml_backend_graph_compute_async(m->backend, m->graph);
    if (status != GGML_STATUS_SUCCESS) {
        fail(err, err_size, "ggml_backend_graph_compute_async: %s", ggml_status_to_string(status));
        return -1;
    }
    return 0;
}

static int moe_sync(void *state, char *err, size_t err_size) {
    ggml_moe *m = state;
    (void)err;
    (void)err_size;
    ggml_backend_synchronize(m->backend); /* cudaStreamSynchronize of the backend's stream */
    return 0;
}

static const qkb_variant variants[] = {
    {
        .name = "ggml_cuda",
        .device = QKB_DEVICE_CUDA,
        .kind = QKB_KIND_MOE,
        .weight_format = "q4_K",
        .act_format = "q8_1",
        .summary = "ggml's CUDA MUL_MAT_ID: quantize_q8_1 then mul_mat_vec_q, CUDA graphs on "
                   "(as llama.cpp builds it); a run is an async graph compute, synchronized "
                   "once per sample",
        .create = create_cuda,
        .run = moe_run,
        .output = moe_output,
        .evict = NULL, /* device memory: hot rows only */
        .destroy = moe_destroy,
        .sync = moe_sync,
    },
};

GGML_PLUGIN_ENTRY("ggml_cuda")

// The CUDA side of bench: device and its fingerprint, the copy-bandwidth peak, each variant's
// timed unit (buffers, launches, a CUDA graph of back-to-back units, L2 flushes) and its
// timing by CUDA events and CUPTI kernel records. Every CUDA call's return code is checked.
#include "gpu_kernels.h"
#include "gpu_launch.cuh"
#include <dlfcn.h>
#include <hwloc.h>
#include <hwloc/cudart.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if QK_HAVE_CUPTI
#include <cupti.h>
#endif

// Cold samples: reading twice the L2 from another buffer evicts the working set and leaves the
// L2 holding clean lines (a memset would leave dirty ones, whose write-back would then be timed
// with the variant). The sum is written only if impossible, so the reads are not optimized away.
__global__ void qk_flush_l2_kernel(const uint4 *__restrict__ buf, size_t n, unsigned *sink) {
    unsigned acc = 0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const uint4 v = __ldcg(buf + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == 0x9e3779b9u) *sink = acc;
}

namespace {

__attribute__((format(printf, 3, 4))) int fail(char *err, size_t n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

#define QK_CUDA(call)                                                                              \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess)                                                                     \
            return fail(err, err_size, "%s failed: %s (%s:%d)", #call, cudaGetErrorString(e_),     \
                        __FILE__, __LINE__);                                                       \
    } while (0)

cudaStream_t stream;
void *flush_buf; // twice the L2, read before each cold sample
size_t flush_bytes;
int flush_blocks;
int device_ready;

// ---- CUPTI: kernel records of a window (enabled only while a window is open) ----
#if QK_HAVE_CUPTI
unsigned long long window_ns, window_kernels;
int cupti_ok;
char cupti_error[160];

void CUPTIAPI buffer_requested(uint8_t **buffer, size_t *size, size_t *max_records) {
    *size = 1 << 20;
    *buffer = static_cast<uint8_t *>(aligned_alloc(8, *size));
    *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t *buffer, size_t, size_t valid) {
    CUpti_Activity *record = nullptr;
    while (buffer && cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
        if (record->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL ||
            record->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
            const CUpti_ActivityKernel10 *k = reinterpret_cast<CUpti_ActivityKernel10 *>(record);
            if (k->name && strstr(k->name, "qk_flush_l2_kernel")) continue; // not the variant's
            window_ns += k->end - k->start;
            window_kernels++;
        }
    }
    free(buffer);
}

int cupti_init() {
    CUptiResult r = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
    if (r != CUPTI_SUCCESS) {
        const char *s = "?";
        cuptiGetResultString(r, &s);
        snprintf(cupti_error, sizeof cupti_error, "CUPTI unavailable: %s", s);
        return 0;
    }
    return 1;
}
int window_open() {
    window_ns = window_kernels = 0;
    return cupti_ok && cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) == CUPTI_SUCCESS;
}
void window_close() {
    cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
    cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
}
#else
unsigned long long window_ns, window_kernels;
int window_open() {
    return 0;
}
void window_close() {}
#endif

const char *unsupported_reason;
char unsupported_text[256];

} // namespace

struct qk_gpu_case {
    const qk_kernel *k;
    qk_gpu_op op;
    qk_gpu_args a;
    size_t out_bytes; // y, or the quantizer's blocks
    int n;            // quantizers: elements
    cudaGraphExec_t graph;
    int graph_count;
    cudaEvent_t t0, t1;
};

int qk_gpu_rows_in_flight(int total_rows) {
    static int sms = 0;
    if (!sms) {
        int dev = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess)
            sms = 132;
    }
    return total_rows <= 64 * sms ? 2 : 1;
}

extern "C" {

const char *qk_gpu_unsupported(void) {
    static int checked;
    if (!checked) {
        checked = 1;
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        // The runtime says "driver version is insufficient" when there is no driver at all:
        // tell the two apart by looking for the driver's library.
        void *driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        int driver_cuda = 0, runtime_cuda = 0;
        cudaDriverGetVersion(&driver_cuda);
        cudaRuntimeGetVersion(&runtime_cuda);
        if (driver) dlclose(driver);
        if (e != cudaSuccess && !driver) {
            unsupported_reason = "no NVIDIA driver on this machine (libcuda.so.1 not found)";
        } else if (e == cudaErrorInsufficientDriver) {
            snprintf(unsupported_text, sizeof unsupported_text,
                     "the NVIDIA driver supports CUDA %d.%d, this build needs CUDA %d.%d",
                     driver_cuda / 1000, driver_cuda % 1000 / 10, runtime_cuda / 1000,
                     runtime_cuda % 1000 / 10);
            unsupported_reason = unsupported_text;
        } else if (e == cudaErrorNoDevice) {
            unsupported_reason = "no NVIDIA GPU found (the driver is installed)";
        } else if (e != cudaSuccess) {
            snprintf(unsupported_text, sizeof unsupported_text, "no CUDA device: %s",
                     cudaGetErrorString(e));
            unsupported_reason = unsupported_text;
        } else if (n == 0) {
            unsupported_reason = "no CUDA device";
        }
    }
    return unsupported_reason;
}

int qk_gpu_open(char *err, size_t err_size) {
    const char *why = qk_gpu_unsupported();
    if (why) return fail(err, err_size, "%s", why);
    if (device_ready) return 0;
    QK_CUDA(cudaSetDevice(0));
    QK_CUDA(cudaFree(nullptr)); // create the context now, not inside the first timing
    QK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    int l2 = 0;
    QK_CUDA(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0));
    flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
    QK_CUDA(cudaMalloc(&flush_buf, flush_bytes + 64)); // + the sink
    QK_CUDA(cudaMemset(flush_buf, 0x5a, flush_bytes + 64));
    int sms = 0;
    QK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    flush_blocks = 4 * sms;
#if QK_HAVE_CUPTI
    cupti_ok = cupti_init();
#endif
    device_ready = 1;
    return 0;
}

void qk_gpu_fingerprint(qk_gpu_kv_fn emit, void *ctx) {
    char v[512];
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        emit("gpu", "unknown (cudaGetDeviceProperties failed)", ctx);
        return;
    }
    emit("gpu_name", p.name, ctx);
    snprintf(v, sizeof v, "%d.%d", p.major, p.minor);
    emit("gpu_compute_capability", v, ctx);
    snprintf(v, sizeof v, "%d", p.multiProcessorCount);
    emit("gpu_sms", v, ctx);
    snprintf(v, sizeof v, "%d", p.l2CacheSize);
    emit("gpu_l2_bytes", v, ctx);
    snprintf(v, sizeof v, "%zu", p.totalGlobalMem);
    emit("gpu_memory_bytes", v, ctx);
    snprintf(v, sizeof v, "%d", p.memoryBusWidth);
    emit("gpu_memory_bus_bits", v, ctx);
    int clock = 0, mem_clock = 0;
    cudaDeviceGetAttribute(&clock, cudaDevAttrClockRate, 0);
    cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, 0);
    snprintf(v, sizeof v, "%d", clock / 1000);
    emit("gpu_sm_clock_max_mhz", v, ctx);
    snprintf(v, sizeof v, "%d", mem_clock / 1000);
    emit("gpu_memory_clock_max_mhz", v, ctx);
    char bus[32] = "";
    if (cudaDeviceGetPCIBusId(bus, sizeof bus, 0) == cudaSuccess) emit("gpu_pci_bus", bus, ctx);
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(v, sizeof v, "%d.%d", drv / 1000, drv % 1000 / 10);
    emit("cuda_driver_version", v, ctx);
    snprintf(v, sizeof v, "%d.%d", rt / 1000, rt % 1000 / 10);
    emit("cuda_runtime_version", v, ctx);
    // clocks now, from NVML (the driver's library, opened at run time: no build dependency)
    void *nvml = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    const char *sm_now = "unknown (no NVML)", *mem_now = sm_now;
    char sm_buf[32], mem_buf[32], driver[96] = "";
    if (nvml) {
        typedef int (*init_t)(void);
        typedef int (*handle_t)(const char *, void **);
        typedef int (*clock_t_)(void *, int, unsigned *);
        typedef int (*str_t)(char *, unsigned);
        init_t init = (init_t)dlsym(nvml, "nvmlInit_v2");
        handle_t by_bus = (handle_t)dlsym(nvml, "nvmlDeviceGetHandleByPciBusId_v2");
        clock_t_ get_clock = (clock_t_)dlsym(nvml, "nvmlDeviceGetClockInfo");
        str_t get_driver = (str_t)dlsym(nvml, "nvmlSystemGetDriverVersion");
        void *dev = nullptr;
        unsigned mhz = 0;
        if (init && by_bus && get_clock && init() == 0 && by_bus(bus, &dev) == 0) {
            if (get_clock(dev, 1 /* NVML_CLOCK_SM */, &mhz) == 0)
                snprintf(sm_buf, sizeof sm_buf, "%u", mhz), sm_now = sm_buf;
            if (get_clock(dev, 2 /* NVML_CLOCK_MEM */, &mhz) == 0)
                snprintf(mem_buf, sizeof mem_buf, "%u", mhz), mem_now = mem_buf;
            if (get_driver) get_driver(driver, sizeof driver);
        }
    }
    emit("gpu_sm_clock_now_mhz", sm_now, ctx);
    emit("gpu_memory_clock_now_mhz", mem_now, ctx);
    if (*driver) emit("nvidia_driver", driver, ctx);
#if QK_HAVE_CUPTI
    emit("cupti", cupti_ok ? "kernel records (CONCURRENT_KERNEL)" : cupti_error, ctx);
#else
    emit("cupti", "not built (CUPTI not found at configure time): event times only", ctx);
#endif
    // the host cores nearest the GPU
    hwloc_topology_t topo;
    if (!hwloc_topology_init(&topo) && !hwloc_topology_load(topo)) {
        hwloc_bitmap_t set = hwloc_bitmap_alloc();
        char *list = nullptr;
        if (set && !hwloc_cudart_get_device_cpuset(topo, 0, set) &&
            hwloc_bitmap_list_asprintf(&list, set) >= 0) {
            emit("gpu_near_cpus", list, ctx);
            free(list);
        }
        hwloc_bitmap_free(set);
        hwloc_topology_destroy(topo);
    }
}

double qk_gpu_copy_bandwidth(size_t bytes, int reps) {
    char err[256];
    size_t err_size = sizeof err;
    void *a = nullptr, *b = nullptr;
    cudaEvent_t t0 = nullptr, t1 = nullptr;
    double best = 0;
    auto run = [&]() -> int {
        QK_CUDA(cudaMalloc(&a, bytes));
        QK_CUDA(cudaMalloc(&b, bytes));
        QK_CUDA(cudaMemsetAsync(a, 1, bytes, stream));
        QK_CUDA(cudaEventCreate(&t0));
        QK_CUDA(cudaEventCreate(&t1));
        for (int r = 0; r <= reps; r++) { // the first is the warm-up
            QK_CUDA(cudaEventRecord(t0, stream));
            QK_CUDA(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice, stream));
            QK_CUDA(cudaEventRecord(t1, stream));
            QK_CUDA(cudaEventSynchronize(t1));
            float ms = 0;
            QK_CUDA(cudaEventElapsedTime(&ms, t0, t1));
            const double bw = 2.0 * (double)bytes / (ms * 1e-3);
            if (r && bw > best) best = bw;
        }
        return 0;
    };
    if (run()) {
        fprintf(stderr, "bench: device copy: %s\n", err);
        best = 0;
    }
    if (t0) cudaEventDestroy(t0);
    if (t1) cudaEventDestroy(t1);
    cudaFree(a);
    cudaFree(b);
    return best;
}

qk_gpu_case *qk_gpu_case_create(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                                size_t n_experts, const int32_t *ids, size_t n_ids, const float *x,
                                char *err, size_t err_size) {
    if (qk_gpu_open(err, err_size)) return nullptr;
    qk_gpu_case *c = static_cast<qk_gpu_case *>(calloc(1, sizeof *c));
    if (!c) {
        fail(err, err_size, "out of memory");
        return nullptr;
    }
    c->k = k;
    c->op = static_cast<const qk_gpu_launch *>(k->gpu)->op;
    auto setup = [&]() -> int {
        if (rows * n_ids > (size_t)1 << 30 || cols / QK_K > (size_t)1 << 20)
            return fail(err, err_size, "shape too large for one launch");
        const size_t w_bytes = n_experts * rows * (cols / QK_K) * sizeof(qk_block_q4k);
        void *dw, *dids, *dx, *dxq, *dy;
        QK_CUDA(cudaMalloc(&dw, w_bytes ? w_bytes : 16));
        QK_CUDA(cudaMemcpy(dw, w, w_bytes, cudaMemcpyHostToDevice));
        QK_CUDA(cudaMalloc(&dids, n_ids * sizeof(int32_t)));
        QK_CUDA(cudaMemcpy(dids, ids, n_ids * sizeof(int32_t), cudaMemcpyHostToDevice));
        QK_CUDA(cudaMalloc(&dx, cols * sizeof(float)));
        QK_CUDA(cudaMemcpy(dx, x, cols * sizeof(float), cudaMemcpyHostToDevice));
        const size_t xq_bytes =
            cols / QK8_1 * sizeof(qk_block_q8_1) > cols / QK_K * sizeof(qk_block_q8k)
                ? cols / QK8_1 * sizeof(qk_block_q8_1)
                : cols / QK_K * sizeof(qk_block_q8k);
        QK_CUDA(cudaMalloc(&dxq, xq_bytes));
        const bool quantizer = c->op == QK_GPU_QUANT_Q8K || c->op == QK_GPU_QUANT_Q8_1;
        c->out_bytes =
            quantizer ? qk_format_bytes(k->act_format, cols) : n_ids * rows * sizeof(float);
        QK_CUDA(cudaMalloc(&dy, c->out_bytes));
        c->a = {static_cast<const qk_block_q4k *>(dw),
                static_cast<const int32_t *>(dids),
                (int)rows,
                (int)(cols / QK_K),
                (int)(rows * n_ids),
                static_cast<const float *>(dx),
                dxq,
                static_cast<float *>(dy)};
        c->n = (int)cols;
        QK_CUDA(cudaEventCreate(&c->t0));
        QK_CUDA(cudaEventCreate(&c->t1));
        return 0;
    };
    if (setup()) {
        qk_gpu_case_destroy(c);
        return nullptr;
    }
    return c;
}

void qk_gpu_case_destroy(qk_gpu_case *c) {
    if (!c) return;
    if (c->graph) cudaGraphExecDestroy(c->graph);
    if (c->t0) cudaEventDestroy(c->t0);
    if (c->t1) cudaEventDestroy(c->t1);
    cudaFree(const_cast<qk_block_q4k *>(c->a.w));
    cudaFree(const_cast<int32_t *>(c->a.ids));
    cudaFree(const_cast<float *>(c->a.x_f32));
    cudaFree(c->a.x_q);
    cudaFree(c->a.y);
    free(c);
}

} // extern "C"

namespace {
// One timed unit: what the variant's row in the table stands for.
cudaError_t launch_unit(qk_gpu_case *c) {
    switch (c->op) {
    case QK_GPU_MATVEC_F32:
        return qk_launch_gpu_q4k_f32(c->a, stream);
    case QK_GPU_MATVEC_Q8K:
        return qk_launch_dp4a_q4k_q8(c->a, stream);
    case QK_GPU_MATVEC_Q8_1:
        return qk_launch_dp4a_q4k_q8_1(c->a, stream);
    case QK_GPU_MATVEC_Q8K_E2E:
        return qk_launch_dp4a_q4k_q8_e2e(c->a, stream);
    case QK_GPU_QUANT_Q8K:
        return qk_launch_gpu_quant_q8k(c->a.x_f32, c->a.y, c->n, stream);
    case QK_GPU_QUANT_Q8_1:
        return qk_launch_gpu_quant_q8_1(c->a.x_f32, c->a.y, c->n, stream);
    }
    return cudaErrorInvalidValue;
}
} // namespace

extern "C" {

int qk_gpu_case_run(qk_gpu_case *c, void *out_host, char *err, size_t err_size) {
    QK_CUDA(cudaMemsetAsync(c->a.y, 0xff, c->out_bytes, stream)); // NaN poison
    QK_CUDA(launch_unit(c));
    QK_CUDA(cudaStreamSynchronize(stream));
    QK_CUDA(cudaMemcpy(out_host, c->a.y, c->out_bytes, cudaMemcpyDeviceToHost));
    return 0;
}

int qk_gpu_case_output(qk_gpu_case *c, float *out_host, char *err, size_t err_size) {
    QK_CUDA(cudaStreamSynchronize(stream));
    QK_CUDA(cudaMemcpy(out_host, c->a.y, c->out_bytes, cudaMemcpyDeviceToHost));
    return 0;
}

int qk_gpu_case_time(qk_gpu_case *c, int cold, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    memset(out, 0, sizeof *out);
    float ms = 0;
    if (!cold) {
        if (!c->graph || c->graph_count != count) {
            if (c->graph) QK_CUDA(cudaGraphExecDestroy(c->graph));
            c->graph = nullptr;
            cudaGraph_t g;
            QK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
            for (int i = 0; i < count; i++) {
                cudaError_t e = launch_unit(c);
                if (e != cudaSuccess) {
                    cudaStreamEndCapture(stream, &g);
                    return fail(err, err_size, "launch during capture: %s", cudaGetErrorString(e));
                }
            }
            QK_CUDA(cudaStreamEndCapture(stream, &g));
            QK_CUDA(cudaGraphInstantiate(&c->graph, g, 0));
            QK_CUDA(cudaGraphDestroy(g));
            c->graph_count = count;
            QK_CUDA(cudaGraphLaunch(c->graph, stream)); // warm-up: upload, caches
            QK_CUDA(cudaStreamSynchronize(stream));
        }
        QK_CUDA(cudaEventRecord(c->t0, stream));
        QK_CUDA(cudaGraphLaunch(c->graph, stream));
        QK_CUDA(cudaEventRecord(c->t1, stream));
        QK_CUDA(cudaEventSynchronize(c->t1));
        QK_CUDA(cudaEventElapsedTime(&ms, c->t0, c->t1));
        out->event_s = ms * 1e-3 / count;
        if (window_open()) { // kernel durations from a second replay, so CUPTI costs no event time
            QK_CUDA(cudaGraphLaunch(c->graph, stream));
            QK_CUDA(cudaStreamSynchronize(stream));
            window_close();
            out->kernel_s = window_ns * 1e-9 / count;
            out->kernels = (int)(window_kernels / (unsigned long long)count);
        }
        return 0;
    }
    for (int pass = 0; pass < 2; pass++) {      // events, then CUPTI records
        if (pass == 1 && !window_open()) break; // the flush's own record is skipped
        qk_flush_l2_kernel<<<flush_blocks, 512, 0, stream>>>(
            static_cast<const uint4 *>(flush_buf), flush_bytes / 16,
            reinterpret_cast<unsigned *>(static_cast<char *>(flush_buf) + flush_bytes));
        QK_CUDA(cudaGetLastError());
        QK_CUDA(cudaEventRecord(c->t0, stream));
        QK_CUDA(launch_unit(c));
        QK_CUDA(cudaEventRecord(c->t1, stream));
        QK_CUDA(cudaEventSynchronize(c->t1));
        if (pass == 0) {
            QK_CUDA(cudaEventElapsedTime(&ms, c->t0, c->t1));
            out->event_s = ms * 1e-3;
        } else {
            window_close();
            out->kernel_s = window_ns * 1e-9;
            out->kernels = (int)window_kernels;
        }
    }
    return 0;
}

} // extern "C"

// The CUDA side of bench: device and its fingerprint, the copy-bandwidth peak and the read-only
// roof, each variant's timed unit (buffers, launches, CUDA graphs of back-to-back units, L2
// flushes, weight copies for decode) and its timing by CUDA events and CUPTI kernel records,
// with the stream held by a blocking kernel while a cold sample is queued; the SM clock from
// NVML. Every CUDA call's return code is checked.
#include "gpu_kernels.h"
#include "gpu_launch.cuh"
#include "mul_mat_id.cuh"
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

// Holds the stream until the host sets *go (mapped host memory), so that the start event, the
// unit and the stop event are all queued before the GPU reaches them (nvbench's blocking
// kernel). Gives up after timeout_ns of %globaltimer (or, should that timer not tick, 4 cycles
// of clock64 a nanosecond: far longer at any real clock) and says so in *timed_out.
__global__ void qk_hold_stream_kernel(const volatile unsigned *go, volatile unsigned *timed_out,
                                      unsigned long long timeout_ns) {
    unsigned long long t0, t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t0));
    const long long c0 = clock64();
    while (!*go) {
        asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
        if (t - t0 > timeout_ns || (unsigned long long)(clock64() - c0) > 4 * timeout_ns) {
            *timed_out = 1;
            __threadfence_system();
            return;
        }
#if __CUDA_ARCH__ >= 700
        __nanosleep(100);
#endif
    }
}

// The read-only roof: U independent 16-byte loads in flight per thread (through L2, as the
// flush), the block's U loads coalesced side by side; the XOR written only if impossible.
template <int U>
__global__ void __launch_bounds__(256)
    qk_read_kernel(const uint4 *__restrict__ p, size_t n, unsigned *sink) {
    unsigned acc = 0;
    const size_t stride = (size_t)gridDim.x * blockDim.x * U;
    size_t i = (size_t)blockIdx.x * blockDim.x * U + threadIdx.x;
    for (; i + (size_t)(U - 1) * blockDim.x < n; i += stride) {
        uint4 v[U];
#pragma unroll
        for (int u = 0; u < U; u++)
            v[u] = __ldcg(p + i + (size_t)u * blockDim.x);
#pragma unroll
        for (int u = 0; u < U; u++)
            acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
#pragma unroll
    for (int u = 0; u < U; u++) // the last, partial group
        if (i + (size_t)u * blockDim.x < n) {
            const uint4 v = __ldcg(p + i + (size_t)u * blockDim.x);
            acc ^= v.x ^ v.y ^ v.z ^ v.w;
        }
    if (acc == 0x9e3779b9u) *sink = acc;
}

// Buffers that are timed hold no zeros (a pattern from the index).
__global__ void qk_fill_kernel(uint4 *p, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const unsigned h = (unsigned)(i * 0x9e3779b97f4a7c15ull >> 32);
        p[i] = make_uint4(h, h ^ 0x5bd1e995u, h * 3u + 1u, ~h);
    }
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
size_t l2_bytes;
int sm_count;
int device_ready;

// The blocking kernel's flags, in mapped host memory: the host sets go once everything is
// queued; the kernel sets timed_out when it gave up waiting.
struct hold_flags {
    unsigned go, timed_out;
};
volatile hold_flags *hold_host;
hold_flags *hold_dev;
int hold_on = 1;
constexpr unsigned long long kHoldTimeoutNs = 100000000ull; // 100 ms
// A cold sample: a graph of this many (L2 flush, unit) pairs less a graph of as many flushes.
constexpr int kColdPairs = 8;

// Decode: a unit must not need more weight copies than this to read 3x the L2 in all.
constexpr size_t kMaxCopies = 4096;

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
            if (k->name &&
                (strstr(k->name, "qk_flush_l2_kernel") || strstr(k->name, "qk_hold_stream_kernel")))
                continue; // not the unit's
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

// ---- NVML (the driver's library, opened at run time: no build dependency) ----
// The few declarations used, as nvml.h has them: nvmlReturn_t (0: NVML_SUCCESS), nvmlDevice_t
// (a pointer), nvmlClockType_t (NVML_CLOCK_SM = 1, NVML_CLOCK_MEM = 2).
struct nvml_api {
    int tried;
    void *dev; // the device whose PCI bus id is CUDA device 0's (else NVML's index 0)
    int (*clock)(void *dev, int type, unsigned *mhz);     // nvmlDeviceGetClockInfo
    int (*max_clock)(void *dev, int type, unsigned *mhz); // nvmlDeviceGetMaxClockInfo
    int (*driver)(char *version, unsigned length);        // nvmlSystemGetDriverVersion
} nvml;
constexpr int kNvmlClockSm = 1, kNvmlClockMem = 2;

void *nvml_device() {
    if (nvml.tried) return nvml.dev;
    nvml.tried = 1;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return nullptr;
    typedef int (*init_t)(void);
    typedef int (*by_bus_t)(const char *, void **);
    typedef int (*by_index_t)(unsigned, void **);
    init_t init = (init_t)dlsym(lib, "nvmlInit_v2");
    by_bus_t by_bus = (by_bus_t)dlsym(lib, "nvmlDeviceGetHandleByPciBusId_v2");
    by_index_t by_index = (by_index_t)dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    nvml.clock = (int (*)(void *, int, unsigned *))dlsym(lib, "nvmlDeviceGetClockInfo");
    nvml.max_clock = (int (*)(void *, int, unsigned *))dlsym(lib, "nvmlDeviceGetMaxClockInfo");
    nvml.driver = (int (*)(char *, unsigned))dlsym(lib, "nvmlSystemGetDriverVersion");
    if (!init || !nvml.clock || init() != 0) return nullptr;
    char bus[32] = "";
    void *dev = nullptr;
    if (!(by_bus && cudaDeviceGetPCIBusId(bus, sizeof bus, 0) == cudaSuccess &&
          by_bus(bus, &dev) == 0) &&
        !(by_index && by_index(0, &dev) == 0))
        dev = nullptr;
    nvml.dev = dev;
    return dev;
}

double nvml_clock(int type, int max) {
    void *dev = nvml_device();
    unsigned mhz = 0;
    int (*get)(void *, int, unsigned *) = max ? nvml.max_clock : nvml.clock;
    if (!dev || !get || get(dev, type, &mhz) != 0) return 0;
    return mhz;
}

// What the timing of a case or a read keeps: a graph per count for hot and decode, the events.
struct qk_timer {
    cudaGraphExec_t graph[4]; // hot, decode, cold (flush + unit pairs), cold's flushes alone
    int graph_units[4];
    cudaEvent_t t0, t1;
};
void timer_destroy(qk_timer &t) {
    for (int i = 0; i < 4; i++)
        if (t.graph[i]) cudaGraphExecDestroy(t.graph[i]), t.graph[i] = nullptr;
    if (t.t0) cudaEventDestroy(t.t0), t.t0 = nullptr;
    if (t.t1) cudaEventDestroy(t.t1), t.t1 = nullptr;
}

// Copies a decode sample cycles through so that its units read more than 3x the L2 in all:
// ceil(3 L2 / unit bytes) + 1, at least 2; 0 when the unit reads nothing.
size_t decode_copies(size_t unit_bytes) {
    if (!unit_bytes) return 0;
    const size_t n = (3 * l2_bytes + unit_bytes - 1) / unit_bytes + 1;
    return n < 2 ? 2 : n;
}

} // namespace

struct qk_gpu_case {
    const qk_kernel *k;
    qk_gpu_op op;
    qk_gpu_args a;
    size_t out_bytes;    // y, or the quantizer's blocks
    int n;               // quantizers: elements
    size_t w_alloc;      // the weight buffer (every expert given), bytes
    size_t weight_bytes; // what one unit reads of it (each distinct selected expert once)
    char *copies;        // decode: copies 1.. of the weight buffer (copy 0 is a.w)
    size_t copy_stride;
    int n_copies;
    qk_timer t;
};

struct qk_gpu_read {
    uint4 *buf;     // copy 0
    uint4 *copies;  // decode: copies 1..
    unsigned *sink; // written only if impossible
    size_t n16;     // 16-byte vectors a read covers
    int n_copies;
    int loads, blocks_per_sm; // the kernel's shape (qk_gpu_read_shape)
    qk_timer t;
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
    l2_bytes = (size_t)(l2 > 0 ? l2 : 64 << 20);
    flush_bytes = 2 * l2_bytes;
    QK_CUDA(cudaMalloc(&flush_buf, flush_bytes + 64)); // + the sink
    QK_CUDA(cudaMemset(flush_buf, 0x5a, flush_bytes + 64));
    int sms = 0;
    QK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    sm_count = sms > 0 ? sms : 1;
    flush_blocks = 4 * sm_count;
    void *flags = nullptr, *flags_dev = nullptr;
    QK_CUDA(cudaHostAlloc(&flags, sizeof(hold_flags), cudaHostAllocMapped));
    memset(flags, 0, sizeof(hold_flags));
    QK_CUDA(cudaHostGetDevicePointer(&flags_dev, flags, 0));
    hold_host = static_cast<volatile hold_flags *>(flags);
    hold_dev = static_cast<hold_flags *>(flags_dev);
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
    // clocks now, from NVML
    const char *sm_now = "unknown (no NVML)", *mem_now = sm_now;
    char sm_buf[32], mem_buf[32], driver[96] = "";
    if (nvml_device()) {
        const double sm = nvml_clock(kNvmlClockSm, 0), mem = nvml_clock(kNvmlClockMem, 0);
        if (sm > 0) snprintf(sm_buf, sizeof sm_buf, "%.0f", sm), sm_now = sm_buf;
        if (mem > 0) snprintf(mem_buf, sizeof mem_buf, "%.0f", mem), mem_now = mem_buf;
        if (nvml.driver) nvml.driver(driver, sizeof driver);
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
                                size_t n_experts, const int32_t *ids, size_t n_tokens, size_t n_ids,
                                const float *x, char *err, size_t err_size) {
    if (qk_gpu_open(err, err_size)) return nullptr;
    qk_gpu_case *c = static_cast<qk_gpu_case *>(calloc(1, sizeof *c));
    if (!c) {
        fail(err, err_size, "out of memory");
        return nullptr;
    }
    c->k = k;
    c->op = static_cast<const qk_gpu_launch *>(k->gpu)->op;
    auto setup = [&]() -> int {
        const bool quantizer = c->op == QK_GPU_QUANT_Q8K || c->op == QK_GPU_QUANT_Q8_1;
        if (quantizer && n_tokens != 1)
            return fail(err, err_size, "%s: a quantizer case takes one token, not %zu", k->name,
                        n_tokens);
        const size_t slots = n_tokens * n_ids;
        if (!quantizer) {
            if (!n_tokens || !n_ids || slots / n_ids != n_tokens)
                return fail(err, err_size, "%zu tokens of %zu expert ids: none to run", n_tokens,
                            n_ids);
            for (size_t i = 0; i < slots; i++)
                if (ids[i] < 0 || (size_t)ids[i] >= n_experts)
                    return fail(err, err_size,
                                "expert id %d at slot %zu: not among the %zu experts", (int)ids[i],
                                i, n_experts);
        }
        // several tokens: the slot list and a pass's staged columns in one block's shared memory
        if (n_tokens > 1 &&
            (slots > 16384 || n_experts > 65536 || !qk_batch_fits((int)(cols / QK_K))))
            return fail(err, err_size,
                        "%zu tokens x %zu ids of %zu experts with rows of %zu columns: too large "
                        "for the batched launch (16384 slots, 65536 experts, %zu columns at most)",
                        n_tokens, n_ids, n_experts, cols,
                        QK_BATCH_STAGE_BYTES / sizeof(qk_q8k_shared) * QK_K);
        if (rows * slots > (size_t)1 << 30 || cols / QK_K > (size_t)1 << 20 ||
            n_tokens * cols > (size_t)1 << 30)
            return fail(err, err_size, "shape too large for one launch");
        const size_t w_bytes = n_experts * rows * (cols / QK_K) * sizeof(qk_block_q4k);
        void *dw, *dids, *dx, *dxq, *dy;
        QK_CUDA(cudaMalloc(&dw, w_bytes ? w_bytes : 16));
        QK_CUDA(cudaMemcpy(dw, w, w_bytes, cudaMemcpyHostToDevice));
        c->w_alloc = w_bytes;
        size_t distinct = 0; // experts selected by the whole batch, each once
        for (size_t i = 0; i < slots; i++) {
            size_t j = 0;
            while (j < i && ids[j] != ids[i])
                j++;
            distinct += j == i && ids[i] >= 0 && (size_t)ids[i] < n_experts;
        }
        c->weight_bytes = distinct * rows * (cols / QK_K) * sizeof(qk_block_q4k);
        QK_CUDA(cudaMalloc(&dids, slots * sizeof(int32_t)));
        QK_CUDA(cudaMemcpy(dids, ids, slots * sizeof(int32_t), cudaMemcpyHostToDevice));
        QK_CUDA(cudaMalloc(&dx, n_tokens * cols * sizeof(float)));
        QK_CUDA(cudaMemcpy(dx, x, n_tokens * cols * sizeof(float), cudaMemcpyHostToDevice));
        const size_t xq_bytes =
            n_tokens * (cols / QK8_1 * sizeof(qk_block_q8_1) > cols / QK_K * sizeof(qk_block_q8k)
                            ? cols / QK8_1 * sizeof(qk_block_q8_1)
                            : cols / QK_K * sizeof(qk_block_q8k));
        QK_CUDA(cudaMalloc(&dxq, xq_bytes));
        c->out_bytes =
            quantizer ? qk_format_bytes(k->act_format, cols) : slots * rows * sizeof(float);
        QK_CUDA(cudaMalloc(&dy, c->out_bytes));
        c->a = {static_cast<const qk_block_q4k *>(dw),
                static_cast<const int32_t *>(dids),
                (int)rows,
                (int)(cols / QK_K),
                (int)(rows * n_ids),
                static_cast<const float *>(dx),
                dxq,
                static_cast<float *>(dy),
                (int)n_tokens,
                (int)n_ids,
                (int)n_experts};
        c->n = (int)cols;
        QK_CUDA(cudaEventCreate(&c->t.t0));
        QK_CUDA(cudaEventCreate(&c->t.t1));
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
    timer_destroy(c->t);
    cudaFree(c->copies);
    cudaFree(const_cast<qk_block_q4k *>(c->a.w));
    cudaFree(const_cast<int32_t *>(c->a.ids));
    cudaFree(const_cast<float *>(c->a.x_f32));
    cudaFree(c->a.x_q);
    cudaFree(c->a.y);
    free(c);
}

} // extern "C"

namespace {
// One timed unit: what the variant's row in the table stands for (over the weights in a).
cudaError_t launch_unit(qk_gpu_case *c, const qk_gpu_args &a) {
    if (a.n_tokens > 1) switch (c->op) { // MUL_MAT_ID for the batch
        case QK_GPU_MATVEC_F32:
            return qk_launch_batch_gpu_q4k_f32(a, stream);
        case QK_GPU_MATVEC_Q8K:
            return qk_launch_batch_dp4a_q4k_q8(a, stream);
        case QK_GPU_MATVEC_Q8_1:
            return qk_launch_batch_dp4a_q4k_q8_1(a, stream);
        case QK_GPU_MATVEC_Q8K_E2E:
            return qk_launch_batch_dp4a_q4k_q8_e2e(a, stream);
        default:
            return cudaErrorInvalidValue;
        }
    switch (c->op) { // one token: the one-token kernels, unchanged
    case QK_GPU_MATVEC_F32:
        return qk_launch_gpu_q4k_f32(a, stream);
    case QK_GPU_MATVEC_Q8K:
        return qk_launch_dp4a_q4k_q8(a, stream);
    case QK_GPU_MATVEC_Q8_1:
        return qk_launch_dp4a_q4k_q8_1(a, stream);
    case QK_GPU_MATVEC_Q8K_E2E:
        return qk_launch_dp4a_q4k_q8_e2e(a, stream);
    case QK_GPU_QUANT_Q8K:
        return qk_launch_gpu_quant_q8k(a.x_f32, a.y, c->n, stream);
    case QK_GPU_QUANT_Q8_1:
        return qk_launch_gpu_quant_q8_1(a.x_f32, a.y, c->n, stream);
    }
    return cudaErrorInvalidValue;
}
// The unit over weight copy `copy` (0: the case's own weights).
cudaError_t launch_case_copy(qk_gpu_case *c, int copy) {
    if (copy == 0) return launch_unit(c, c->a);
    qk_gpu_args a = c->a;
    a.w = reinterpret_cast<const qk_block_q4k *>(c->copies + (size_t)(copy - 1) * c->copy_stride);
    return launch_unit(c, a);
}

// The read kernel over copy `copy` of r's buffer: a grid of at most blocks_per_sm blocks an SM,
// fewer when the buffer needs fewer for one pass.
template <int U> cudaError_t launch_read_u(const qk_gpu_read *r, const uint4 *p) {
    const size_t per_block = (size_t)256 * U, needed = (r->n16 + per_block - 1) / per_block;
    const size_t wave = (size_t)sm_count * r->blocks_per_sm;
    const int grid = (int)(needed < wave ? (needed ? needed : 1) : wave);
    qk_read_kernel<U><<<grid, 256, 0, stream>>>(p, r->n16, r->sink);
    return cudaGetLastError();
}
cudaError_t launch_read(const qk_gpu_read *r, int copy) {
    const uint4 *p = copy == 0 ? r->buf : r->copies + (size_t)(copy - 1) * r->n16;
    switch (r->loads) {
    case 1:
        return launch_read_u<1>(r, p);
    case 2:
        return launch_read_u<2>(r, p);
    case 4:
        return launch_read_u<4>(r, p);
    case 8:
        return launch_read_u<8>(r, p);
    }
    return cudaErrorInvalidValue;
}

cudaError_t launch_flush() {
    qk_flush_l2_kernel<<<flush_blocks, 512, 0, stream>>>(
        static_cast<const uint4 *>(flush_buf), flush_bytes / 16,
        reinterpret_cast<unsigned *>(static_cast<char *>(flush_buf) + flush_bytes));
    return cudaGetLastError();
}
int flush_l2(char *err, size_t err_size) {
    QK_CUDA(launch_flush());
    return 0;
}

// Captures `units` launches (launch(i) for unit i) into t's graph `which` unless it holds them
// already; one warm-up replay (upload, instruction caches).
template <class Launch>
int capture(qk_timer &t, int which, int units, Launch launch, char *err, size_t err_size) {
    if (t.graph[which] && t.graph_units[which] == units) return 0;
    if (t.graph[which]) {
        QK_CUDA(cudaGraphExecDestroy(t.graph[which]));
        t.graph[which] = nullptr;
    }
    cudaGraph_t g = nullptr;
    QK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < units; i++) {
        cudaError_t e = launch(i);
        if (e != cudaSuccess) {
            if (cudaStreamEndCapture(stream, &g) == cudaSuccess && g) cudaGraphDestroy(g);
            return fail(err, err_size, "launch during capture: %s", cudaGetErrorString(e));
        }
    }
    QK_CUDA(cudaStreamEndCapture(stream, &g));
    const cudaError_t e = cudaGraphInstantiate(&t.graph[which], g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess) {
        t.graph[which] = nullptr;
        return fail(err, err_size, "cudaGraphInstantiate failed: %s", cudaGetErrorString(e));
    }
    t.graph_units[which] = units;
    QK_CUDA(cudaGraphLaunch(t.graph[which], stream));
    QK_CUDA(cudaStreamSynchronize(stream));
    return 0;
}

// Queues the start event, queue()'s work and the stop event, and waits for the stop. With
// holding on, all three are queued behind the blocking kernel, which the host releases after
// the last (also when queuing failed: it never waits for its timeout then); *held says whether
// the kernel was still holding when released.
template <class Queue>
int timed_held(qk_timer &t, Queue queue, int *held, char *err, size_t err_size) {
    *held = 0;
    const int hold = hold_on;
    if (hold) {
        hold_host->go = 0;
        hold_host->timed_out = 0;
        qk_hold_stream_kernel<<<1, 1, 0, stream>>>(&hold_dev->go, &hold_dev->timed_out,
                                                   kHoldTimeoutNs);
        QK_CUDA(cudaGetLastError());
    }
    auto body = [&]() -> int {
        QK_CUDA(cudaEventRecord(t.t0, stream));
        QK_CUDA(queue());
        QK_CUDA(cudaEventRecord(t.t1, stream));
        return 0;
    };
    const int rc = body();
    if (hold) __atomic_store_n(&hold_host->go, 1u, __ATOMIC_SEQ_CST);
    if (rc) {
        cudaStreamSynchronize(stream);
        return rc;
    }
    QK_CUDA(cudaEventSynchronize(t.t1));
    if (hold) *held = !hold_host->timed_out;
    return 0;
}

// One sample at a temperature (qk_gpu_kernels.h says what each stands for). launch(copy)
// queues one unit over weight copy `copy`; `copies` of them exist (decode).
template <class Launch>
int time_units(qk_timer &t, Launch launch, int copies, qk_gpu_temp temp, int count,
               qk_gpu_sample *out, char *err, size_t err_size) {
    memset(out, 0, sizeof *out);
    if (count < 1) return fail(err, err_size, "count %d: at least one unit", count);
    float ms = 0;
    if (temp == QK_GPU_HOT) {
        if (capture(
                t, 0, count, [&](int) { return launch(0); }, err, err_size))
            return -1;
        // held too: the graph's launch is queued before the start event can fire, so that a
        // host slow to submit it is not timed as the GPU's
        int held = 0;
        if (timed_held(
                t, [&]() { return cudaGraphLaunch(t.graph[0], stream); }, &held, err, err_size))
            return -1;
        out->sm_clock_mhz = qk_gpu_sm_clock_mhz();
        QK_CUDA(cudaEventElapsedTime(&ms, t.t0, t.t1));
        out->event_s = ms * 1e-3 / count;
        out->held = held;
        out->units = count;
        out->copies = 1;
        if (window_open()) { // kernel durations from a second replay, so CUPTI costs no event time
            cudaError_t e = cudaGraphLaunch(t.graph[0], stream);
            if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
            window_close();
            if (e != cudaSuccess)
                return fail(err, err_size, "replay for CUPTI: %s", cudaGetErrorString(e));
            out->kernel_s = window_ns * 1e-9 / count;
            out->kernels = (int)(window_kernels / (unsigned long long)count);
        }
        return 0;
    }
    if (temp != QK_GPU_COLD && temp != QK_GPU_DECODE)
        return fail(err, err_size, "unknown temperature %d", (int)temp);
    if (temp == QK_GPU_COLD) {
        // Events around one unit alone add the device's own start and end of a lone launch
        // (2.3 us on an H200, the same for a 16-byte read and whether or not the launch was
        // queued before the start event). So a cold sample is a graph of kColdPairs (L2 flush,
        // unit) pairs less a graph of as many flushes, per unit: every unit reads cold memory,
        // launched as a decoder's graph launches it.
        if (capture(
                t, 2, 2 * kColdPairs, [&](int i) { return i % 2 ? launch(0) : launch_flush(); },
                err, err_size) ||
            capture(
                t, 3, kColdPairs, [&](int) { return launch_flush(); }, err, err_size))
            return -1;
        double both[2];
        int held[2];
        for (int which = 0; which < 2; which++) {
            cudaGraphExec_t graph = t.graph[2 + which];
            if (timed_held(
                    t, [&]() { return cudaGraphLaunch(graph, stream); }, &held[which], err,
                    err_size))
                return -1;
            QK_CUDA(cudaEventElapsedTime(&ms, t.t0, t.t1));
            both[which] = ms * 1e-3;
        }
        out->sm_clock_mhz = qk_gpu_sm_clock_mhz();
        out->event_s = (both[0] - both[1]) / kColdPairs;
        out->held = held[0] && held[1];
        if (window_open()) { // the flushes' records are skipped
            cudaError_t e = cudaGraphLaunch(t.graph[2], stream);
            if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
            window_close();
            if (e != cudaSuccess)
                return fail(err, err_size, "replay for CUPTI: %s", cudaGetErrorString(e));
            out->kernel_s = window_ns * 1e-9 / kColdPairs;
            out->kernels = (int)(window_kernels / (unsigned long long)kColdPairs);
        }
        out->units = 1;
        out->copies = 1;
        return 0;
    }
    const int units = count > copies ? count : copies;
    if (capture(
            t, 1, units, [&](int i) { return launch(i % copies); }, err, err_size))
        return -1;
    auto queue = [&]() -> cudaError_t { return cudaGraphLaunch(t.graph[1], stream); };
    for (int pass = 0; pass < 2; pass++) {      // events, then CUPTI records
        if (pass == 1 && !window_open()) break; // the flush's and the hold's records are skipped
        int held = 0;
        int rc = flush_l2(err, err_size);
        if (!rc) rc = timed_held(t, queue, &held, err, err_size);
        if (pass == 1) {
            window_close();
            if (rc) return rc;
            out->kernel_s = window_ns * 1e-9 / units;
            out->kernels = (int)(window_kernels / (unsigned long long)units);
            break;
        }
        if (rc) return rc;
        out->sm_clock_mhz = qk_gpu_sm_clock_mhz();
        QK_CUDA(cudaEventElapsedTime(&ms, t.t0, t.t1));
        out->event_s = ms * 1e-3 / units;
        out->held = held;
    }
    out->units = units;
    out->copies = copies;
    return 0;
}

// Makes sure `need` copies of a buffer of `bytes` exist (copy 0 is the original): the others
// in one allocation at `*copies`, `stride` apart, filled from the original. 0, or -1.
int ensure_copies(const void *original, size_t bytes, size_t need, void **copies, size_t stride,
                  int *have, char *err, size_t err_size) {
    if ((size_t)*have >= need) return 0;
    if (need > kMaxCopies)
        return fail(err, err_size,
                    "decode: a unit of %zu bytes would need %zu copies to read 3x the L2 (%zu "
                    "bytes); at most %zu",
                    bytes, need, 3 * l2_bytes, kMaxCopies);
    size_t free_b = 0, total_b = 0;
    QK_CUDA(cudaMemGetInfo(&free_b, &total_b));
    const size_t want = (need - 1) * stride;
    if (want + ((size_t)256 << 20) > free_b)
        return fail(err, err_size, "decode: %zu copies of %zu bytes do not fit (%zu bytes free)",
                    need, bytes, free_b);
    if (*copies) QK_CUDA(cudaFree(*copies));
    *copies = nullptr;
    *have = 0;
    QK_CUDA(cudaMalloc(copies, want));
    for (size_t i = 0; i + 1 < need; i++)
        QK_CUDA(cudaMemcpyAsync(static_cast<char *>(*copies) + i * stride, original, bytes,
                                cudaMemcpyDeviceToDevice, stream));
    QK_CUDA(cudaStreamSynchronize(stream));
    *have = (int)need;
    return 0;
}

} // namespace

extern "C" {

int qk_gpu_case_run(qk_gpu_case *c, void *out_host, char *err, size_t err_size) {
    QK_CUDA(cudaMemsetAsync(c->a.y, 0xff, c->out_bytes, stream)); // NaN poison
    QK_CUDA(launch_unit(c, c->a));
    QK_CUDA(cudaStreamSynchronize(stream));
    QK_CUDA(cudaMemcpy(out_host, c->a.y, c->out_bytes, cudaMemcpyDeviceToHost));
    return 0;
}

int qk_gpu_case_output(qk_gpu_case *c, float *out_host, char *err, size_t err_size) {
    QK_CUDA(cudaStreamSynchronize(stream));
    QK_CUDA(cudaMemcpy(out_host, c->a.y, c->out_bytes, cudaMemcpyDeviceToHost));
    return 0;
}

int qk_gpu_case_time(qk_gpu_case *c, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    memset(out, 0, sizeof *out);
    int copies = 1;
    if (temp == QK_GPU_DECODE) {
        if (c->op == QK_GPU_QUANT_Q8K || c->op == QK_GPU_QUANT_Q8_1 || !c->weight_bytes)
            return fail(err, err_size, "decode: %s reads no weights", c->k->name);
        const size_t need = decode_copies(c->weight_bytes);
        if ((size_t)c->n_copies < need && c->t.graph[1]) { // captured over the old copies
            QK_CUDA(cudaGraphExecDestroy(c->t.graph[1]));
            c->t.graph[1] = nullptr;
        }
        void *copies_buf = c->copies;
        c->copy_stride = (c->w_alloc + 255) / 256 * 256;
        const int rc = ensure_copies(c->a.w, c->w_alloc, need, &copies_buf, c->copy_stride,
                                     &c->n_copies, err, err_size);
        c->copies = static_cast<char *>(copies_buf);
        if (rc) return rc;
        copies = (int)need;
    }
    return time_units(
        c->t, [c](int copy) { return launch_case_copy(c, copy); }, copies, temp, count, out, err,
        err_size);
}

size_t qk_gpu_case_weight_bytes(const qk_gpu_case *c) {
    return c ? c->weight_bytes : 0;
}

size_t qk_gpu_l2_bytes(void) {
    return device_ready ? l2_bytes : 0;
}

int qk_gpu_set_hold(int on) {
    const int was = hold_on;
    hold_on = on != 0;
    return was;
}

double qk_gpu_sm_clock_mhz(void) {
    return qk_gpu_unsupported() ? 0 : nvml_clock(kNvmlClockSm, 0);
}

double qk_gpu_sm_clock_max_mhz(void) {
    return qk_gpu_unsupported() ? 0 : nvml_clock(kNvmlClockSm, 1);
}

qk_gpu_read *qk_gpu_read_create(size_t bytes, char *err, size_t err_size) {
    if (qk_gpu_open(err, err_size)) return nullptr;
    if (!bytes) {
        fail(err, err_size, "a read of 0 bytes");
        return nullptr;
    }
    qk_gpu_read *r = static_cast<qk_gpu_read *>(calloc(1, sizeof *r));
    if (!r) {
        fail(err, err_size, "out of memory");
        return nullptr;
    }
    r->n16 = (bytes + 15) / 16;
    r->loads = 4;         // 64 bytes in flight per thread
    r->blocks_per_sm = 8; // 2048 threads: a full SM
    auto setup = [&]() -> int {
        QK_CUDA(cudaMalloc(&r->buf, r->n16 * 16));
        QK_CUDA(cudaMalloc(&r->sink, 16));
        qk_fill_kernel<<<flush_blocks, 512, 0, stream>>>(r->buf, r->n16);
        QK_CUDA(cudaGetLastError());
        QK_CUDA(cudaEventCreate(&r->t.t0));
        QK_CUDA(cudaEventCreate(&r->t.t1));
        QK_CUDA(cudaStreamSynchronize(stream));
        return 0;
    };
    if (setup()) {
        qk_gpu_read_destroy(r);
        return nullptr;
    }
    return r;
}

void qk_gpu_read_destroy(qk_gpu_read *r) {
    if (!r) return;
    timer_destroy(r->t);
    cudaFree(r->copies);
    cudaFree(r->buf);
    cudaFree(r->sink);
    free(r);
}

int qk_gpu_read_time(qk_gpu_read *r, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size) {
    memset(out, 0, sizeof *out);
    int copies = 1;
    if (temp == QK_GPU_DECODE) {
        const size_t need = decode_copies(r->n16 * 16);
        if ((size_t)r->n_copies < need && r->t.graph[1]) { // captured over the old copies
            QK_CUDA(cudaGraphExecDestroy(r->t.graph[1]));
            r->t.graph[1] = nullptr;
        }
        void *copies_buf = r->copies;
        const int rc = ensure_copies(r->buf, r->n16 * 16, need, &copies_buf, r->n16 * 16,
                                     &r->n_copies, err, err_size);
        r->copies = static_cast<uint4 *>(copies_buf);
        if (rc) return rc;
        copies = (int)need;
    }
    return time_units(
        r->t, [r](int copy) { return launch_read(r, copy); }, copies, temp, count, out, err,
        err_size);
}

int qk_gpu_read_shape(qk_gpu_read *r, int loads_per_thread, int blocks_per_sm) {
    if (loads_per_thread && loads_per_thread != 1 && loads_per_thread != 2 &&
        loads_per_thread != 4 && loads_per_thread != 8)
        return -1;
    if (blocks_per_sm < 0 || blocks_per_sm > 8) return -1;
    if (loads_per_thread) r->loads = loads_per_thread;
    if (blocks_per_sm) r->blocks_per_sm = blocks_per_sm;
    for (int i = 0; i < 4; i++) // captured with the old shape
        if (r->t.graph[i]) cudaGraphExecDestroy(r->t.graph[i]), r->t.graph[i] = nullptr;
    return 0;
}

int qk_gpu_kernel_window(int (*fn)(void *arg), void *arg, double *kernel_s, int *kernels) {
    *kernel_s = 0;
    *kernels = 0;
    if (!window_open()) return 1;
    const int rc = fn(arg);
    cudaDeviceSynchronize(); // fn's work is complete (a plug-in synchronizes its own stream)
    window_close();
    if (rc) return rc;
    *kernel_s = window_ns * 1e-9;
    *kernels = (int)window_kernels;
    return 0;
}

} // extern "C"

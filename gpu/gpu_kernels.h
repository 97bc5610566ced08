/* The GPU variants: their table, the C emulation of each one's arithmetic (which CI runs and
 * tests against the f64 oracles), and the C interface of the CUDA runtime in gpu_runtime.cu. */
#ifndef QK_GPU_KERNELS_H
#define QK_GPU_KERNELS_H
#include "../kernels/qk_kernel.h"
#include <stddef.h>
#include <stdint.h>

QK_EXTERN_C_BEGIN
/* What a GPU row launches (the `gpu` field of its descriptor). */
typedef enum {
    QK_GPU_MATVEC_F32,     /* gpu_q4k_f32: f32 activations */
    QK_GPU_MATVEC_Q8K,     /* dp4a_q4k_q8: gpu_quant_q8k, then the DP4A matvec (two launches) */
    QK_GPU_MATVEC_Q8_1,    /* dp4a_q4k_q8_1: gpu_quant_q8_1, then the DP4A matvec */
    QK_GPU_MATVEC_Q8K_E2E, /* dp4a_q4k_q8_e2e: quantization fused into the matvec launch */
    QK_GPU_QUANT_Q8K,      /* gpu_quant_q8k */
    QK_GPU_QUANT_Q8_1,     /* gpu_quant_q8_1 */
} qk_gpu_op;
typedef struct {
    qk_gpu_op op;
} qk_gpu_launch;

extern const qk_kernel qk_gpu_kernels[];
extern const size_t qk_gpu_kernel_count;
const qk_kernel *qk_gpu_kernel(const char *name);
/* NULL when the GPU variants run here, else why not ("no CUDA device: ...", "built without
 * CUDA"). The emulations run everywhere. */
const char *qk_gpu_unsupported(void);

/* The emulations: the GPU kernels' arithmetic in the same order, in C (see each .cu file). */
void qk_emu_gpu_q4k_f32(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y);
void qk_emu_dp4a_q4k_q8(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                        const void *x, float *y);
void qk_emu_dp4a_q4k_q8_1(const void *w, size_t rows, size_t cols, size_t r0, size_t r1,
                          const void *x, float *y);
/* The GPU quantizers are bit-identical to the references by construction (each block's
 * reduction picks the same element, every float operation is the reference's): their
 * emulation is the reference itself. */
void qk_emu_gpu_quant_q8k(const float *x, void *out, size_t n);
void qk_emu_gpu_quant_q8_1(const float *x, void *out, size_t n);

/* ---- the CUDA runtime (gpu_runtime.cu; stubs when built without CUDA) ---- */
typedef void (*qk_gpu_kv_fn)(const char *key, const char *value, void *ctx);
/* Opens device 0; 0, or -1 with the reason in err. */
int qk_gpu_open(char *err, size_t err_size);
/* name, compute capability, SMs, L2, memory, bus width, clocks now, driver and runtime
 * versions, CUPTI, the host CPUs near the GPU. */
void qk_gpu_fingerprint(qk_gpu_kv_fn emit, void *ctx);
/* Device-to-device copy bandwidth over `bytes` (read + write counted), best of reps, B/s. */
double qk_gpu_copy_bandwidth(size_t bytes, int reps);

/* One variant's timed unit on the device, MUL_MAT_ID for a batch: weights of n_experts (rows x
 * cols each, plain Q4_K); n_tokens tokens, token t with its f32 activations x[t*cols ..) and its
 * n_ids expert ids ids[t*n_ids ..) (may repeat; each < n_experts); outputs
 * y[(t*n_ids + i)*rows + r]. One token runs the one-token kernels; several, each variant's
 * batched launch (gpu/mul_mat_id.cuh). A quantizer case takes one token. */
typedef struct qk_gpu_case qk_gpu_case;
qk_gpu_case *qk_gpu_case_create(const qk_kernel *k, const qk_block_q4k *w, size_t rows, size_t cols,
                                size_t n_experts, const int32_t *ids, size_t n_tokens, size_t n_ids,
                                const float *x, char *err, size_t err_size);
void qk_gpu_case_destroy(qk_gpu_case *c);
/* Runs the unit once (outputs poisoned first) and copies y (n_tokens * n_ids * rows floats) back;
 * for a quantizer, its output blocks. 0, or -1 with the reason. */
int qk_gpu_case_run(qk_gpu_case *c, void *out_host, char *err, size_t err_size);
/* Copies y (n_tokens * n_ids * rows floats) of the last unit run or timed back, without running it.
 * 0, or -1 with the reason. */
int qk_gpu_case_output(qk_gpu_case *c, float *out_host, char *err, size_t err_size);
/* What a timed sample stands for.
 * HOT: `count` units back to back in a CUDA graph (captured once per count), timed as one:
 *   launches and data warm (the weights stay in L2 when they fit); queued behind the blocking
 *   kernel like COLD, so that the host's submission of the graph is not timed.
 * COLD: every unit reads cold memory: a graph of 8 (L2 flush, unit) pairs less a graph of 8
 *   flushes, per unit (events around a lone launch would add the device's own start and end of
 *   it, 2.3 us on an H200); both graphs are queued behind a blocking kernel holding the stream.
 * DECODE: warm launches, cold weights: a CUDA graph of units each reading a different copy of
 *   the weights (more than 3x the L2 in all, like decoding through successive layers), after
 *   one L2 flush, held like COLD. At least `count` units, and at least as many as copies.
 * QK_GPU_HOT = 0 and QK_GPU_COLD = 1: a caller's `cold` flag is a valid temperature. */
typedef enum { QK_GPU_HOT, QK_GPU_COLD, QK_GPU_DECODE } qk_gpu_temp;
typedef struct {
    double event_s;      /* CUDA events: per unit */
    double kernel_s;     /* CUPTI: the unit's kernels' own durations, per unit (0: no CUPTI) */
    int kernels;         /* kernel records per unit */
    double sm_clock_mhz; /* NVML SM clock read right after the timed part (0: NVML unavailable) */
    int held;            /* 1 when the start event was recorded while a blocking kernel
                            held the stream and the host released it after queuing everything;
                            0 when the blocking kernel timed out (the sample is not clean) and
                            when holding is off (qk_gpu_set_hold) */
    int units;  /* units timed together (hot: count; cold: 1; decode: max(count, copies)) */
    int copies; /* different weight copies the units read (decode: > 3x L2; else 1) */
} qk_gpu_sample;
/* One sample of the case at a temperature; per-unit times in out. 0, or -1 with the reason
 * (decode: a quantizer reads no weights; a unit too small for the copies 3x L2 takes). */
int qk_gpu_case_time(qk_gpu_case *c, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size);
/* The weight bytes one unit reads (each distinct expert once): what a decode copy holds. */
size_t qk_gpu_case_weight_bytes(const qk_gpu_case *c);
/* The device's L2 size in bytes (0 when no device is open). */
size_t qk_gpu_l2_bytes(void);
/* Whether cold and decode samples hold the stream with the blocking kernel (on by default).
 * Off reproduces the timing before issue 13 (flush, start event, unit, stop event), for
 * comparison only. Returns the previous setting. */
int qk_gpu_set_hold(int on);

/* CUPTI's kernel records of whatever work fn(arg) does, every CUDA context of the process
 * included (a plug-in's own; the flush's and the hold's skipped): for the second pass of a
 * sample whose units bench does not launch itself, so that CUPTI costs the timed pass nothing.
 * 0 with the records' summed durations in *kernel_s and their count in *kernels; 1 when no
 * CUPTI window can be had (fn is not run); fn's own nonzero return when it fails. */
int qk_gpu_kernel_window(int (*fn)(void *arg), void *arg, double *kernel_s, int *kernels);

/* The SM clock from NVML (libnvidia-ml.so.1, opened at run time), MHz: now, and its maximum; 0
 * when NVML is unavailable (never an error). */
double qk_gpu_sm_clock_mhz(void);
double qk_gpu_sm_clock_max_mhz(void);

/* The read-only roof: a stream over `bytes` bytes of device memory (its own buffer, 16-byte
 * loads through L2, several in flight per thread, a grid that fills the GPU), with the same
 * three temperatures as a case (decode: different copies of the buffer, > 3x L2 in all). */
typedef struct qk_gpu_read qk_gpu_read;
qk_gpu_read *qk_gpu_read_create(size_t bytes, char *err, size_t err_size);
void qk_gpu_read_destroy(qk_gpu_read *r);
int qk_gpu_read_time(qk_gpu_read *r, qk_gpu_temp temp, int count, qk_gpu_sample *out, char *err,
                     size_t err_size);
/* For the tuning measurement only: 16-byte loads in flight per thread (1, 2, 4 or 8) and blocks
 * of 256 threads per SM (1..8); 0 keeps a setting. Drops the captured graphs. 0, or -1. */
int qk_gpu_read_shape(qk_gpu_read *r, int loads_per_thread, int blocks_per_sm);
QK_EXTERN_C_END

#endif

/* The machine, as hwloc sees it: a fingerprint for result files and thread pinning. */
#ifndef QK_HW_H
#define QK_HW_H
#include <stddef.h>

typedef struct qk_hw qk_hw;
typedef void (*qk_kv_fn)(const char *key, const char *value, void *ctx);

/* NULL when hwloc cannot load the topology (the reason goes to err). */
qk_hw *qk_hw_open(char *err, size_t err_size);
void qk_hw_close(qk_hw *hw);
/* cpu_model, cpu_vendor, cpu_family, cpu_model_number, packages, cores, pus, numa_nodes,
 * cpu_caches (one line) and cache_<level>_bytes, hwloc_version, os. */
void qk_hw_fingerprint(qk_hw *hw, qk_kv_fn emit, void *ctx);
/* The number of CPUs (PUs) this process may run on (its affinity, as taskset or a cgroup set
 * it), and their list ("0-3,8") in list. */
int qk_hw_allowed_cpus(const qk_hw *hw, char *list, size_t list_size);
/* Chooses a distinct core for each of n threads (distinct PUs when there are fewer cores than
 * threads), among the CPUs this process may run on, and describes the plan in desc ("cores
 * 0,1"). Returns 0, or -1 when the process may run on fewer PUs than n. */
int qk_hw_plan_pinning(qk_hw *hw, int n, char *desc, size_t desc_size);
/* Binds the calling thread to the planned place of thread ti. Returns 0 or -1. */
int qk_hw_pin_self(qk_hw *hw, int ti);
/* The first logical CPU (PU) of thread ti's planned place, or -1: what a plug-in's thread ti
 * is pinned to. */
int qk_hw_place_cpu(const qk_hw *hw, int ti);

#endif

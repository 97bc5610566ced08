#define _POSIX_C_SOURCE 200809L
#include "hw.h"
#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

struct qk_hw {
    hwloc_topology_t topo;
    hwloc_bitmap_t allowed; /* the CPUs this process may run on (taskset, cgroups) */
    hwloc_bitmap_t *places;
    int n_places;
};

qk_hw *qk_hw_open(char *err, size_t err_size) {
    qk_hw *hw = calloc(1, sizeof *hw);
    if (!hw) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    if (hwloc_topology_init(&hw->topo) || hwloc_topology_load(hw->topo)) {
        snprintf(err, err_size, "hwloc cannot load this machine's topology");
        free(hw);
        return NULL;
    }
    /* read before any worker thread exists: the process's binding is the main thread's */
    hw->allowed = hwloc_bitmap_alloc();
    if (!hw->allowed) {
        snprintf(err, err_size, "out of memory");
        qk_hw_close(hw);
        return NULL;
    }
    if (hwloc_get_cpubind(hw->topo, hw->allowed, HWLOC_CPUBIND_PROCESS))
        hwloc_bitmap_copy(hw->allowed, hwloc_topology_get_allowed_cpuset(hw->topo));
    hwloc_bitmap_and(hw->allowed, hw->allowed, hwloc_topology_get_allowed_cpuset(hw->topo));
    if (hwloc_bitmap_iszero(hw->allowed)) {
        snprintf(err, err_size, "hwloc finds no CPU this process may run on");
        qk_hw_close(hw);
        return NULL;
    }
    return hw;
}

int qk_hw_allowed_cpus(const qk_hw *hw, char *list, size_t list_size) {
    if (list_size) hwloc_bitmap_list_snprintf(list, list_size, hw->allowed);
    return hwloc_bitmap_weight(hw->allowed);
}

void qk_hw_close(qk_hw *hw) {
    if (!hw) return;
    for (int i = 0; i < hw->n_places; i++)
        hwloc_bitmap_free(hw->places[i]);
    free(hw->places);
    if (hw->allowed) hwloc_bitmap_free(hw->allowed);
    hwloc_topology_destroy(hw->topo);
    free(hw);
}

static const char *info(hwloc_obj_t o, const char *name) {
    const char *v = o ? hwloc_obj_get_info_by_name(o, name) : NULL;
    return v ? v : "unknown";
}

static void human_bytes(char *buf, size_t size, unsigned long long b) {
    if (b >= 1 << 20 && b % (1 << 20) == 0)
        snprintf(buf, size, "%llu MiB", b >> 20);
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, size, "%llu KiB", b >> 10);
    else
        snprintf(buf, size, "%llu B", b);
}

void qk_hw_fingerprint(qk_hw *hw, qk_kv_fn emit, void *ctx) {
    hwloc_obj_t pkg = hwloc_get_obj_by_type(hw->topo, HWLOC_OBJ_PACKAGE, 0);
    /* some VMs put the CPU strings on the machine object only */
    if (!pkg || !hwloc_obj_get_info_by_name(pkg, "CPUModel")) pkg = hwloc_get_root_obj(hw->topo);
    emit("cpu_model", info(pkg, "CPUModel"), ctx);
    emit("cpu_vendor", info(pkg, "CPUVendor"), ctx);
    emit("cpu_family", info(pkg, "CPUFamilyNumber"), ctx);
    emit("cpu_model_number", info(pkg, "CPUModelNumber"), ctx);
    char v[256];
    static const struct {
        hwloc_obj_type_t type;
        const char *key;
    } counts[] = {{HWLOC_OBJ_PACKAGE, "packages"},
                  {HWLOC_OBJ_CORE, "cores"},
                  {HWLOC_OBJ_PU, "pus"},
                  {HWLOC_OBJ_NUMANODE, "numa_nodes"}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        snprintf(v, sizeof v, "%d", hwloc_get_nbobjs_by_type(hw->topo, counts[i].type));
        emit(counts[i].key, v, ctx);
    }
    static const struct {
        hwloc_obj_type_t type;
        const char *name;
    } caches[] = {{HWLOC_OBJ_L1CACHE, "l1d"},
                  {HWLOC_OBJ_L2CACHE, "l2"},
                  {HWLOC_OBJ_L3CACHE, "l3"},
                  {HWLOC_OBJ_L4CACHE, "l4"},
                  {HWLOC_OBJ_L5CACHE, "l5"}};
    char line[512] = "";
    for (size_t i = 0; i < sizeof caches / sizeof caches[0]; i++) {
        int n = hwloc_get_nbobjs_by_type(hw->topo, caches[i].type);
        if (n <= 0) continue;
        hwloc_obj_t c = hwloc_get_obj_by_type(hw->topo, caches[i].type, 0);
        char key[32], size[32];
        snprintf(key, sizeof key, "cache_%s_bytes", caches[i].name);
        snprintf(v, sizeof v, "%llu", (unsigned long long)c->attr->cache.size);
        emit(key, v, ctx);
        human_bytes(size, sizeof size, c->attr->cache.size);
        size_t len = strlen(line);
        snprintf(line + len, sizeof line - len, "%s%s %s x%d", len ? ", " : "", caches[i].name,
                 size, n);
    }
    emit("cpu_caches", line, ctx);
    unsigned api = hwloc_get_api_version();
    snprintf(v, sizeof v, "%u.%u.%u", api >> 16, (api >> 8) & 0xff, api & 0xff);
    emit("hwloc_version", v, ctx);
    struct utsname u;
    if (!uname(&u)) {
        snprintf(v, sizeof v, "%s %s %s", u.sysname, u.release, u.machine);
        emit("os", v, ctx);
    }
}

int qk_hw_plan_pinning(qk_hw *hw, int n, char *desc, size_t desc_size) {
    /* the cores (else PUs) that hold an allowed CPU, in order */
    int cores = 0, pus = hwloc_bitmap_weight(hw->allowed);
    for (hwloc_obj_t c = NULL; (c = hwloc_get_next_obj_by_type(hw->topo, HWLOC_OBJ_CORE, c));)
        cores += hwloc_bitmap_intersects(c->cpuset, hw->allowed);
    hwloc_obj_type_t type = n <= cores ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
    if (n > pus) return -1;
    hw->places = calloc((size_t)n, sizeof *hw->places);
    if (!hw->places) return -1;
    size_t len = (size_t)snprintf(desc, desc_size, "%s", type == HWLOC_OBJ_CORE ? "cores" : "pus");
    hwloc_obj_t o = NULL;
    for (int i = 0; i < n; i++) {
        do
            o = hwloc_get_next_obj_by_type(hw->topo, type, o);
        while (o && !hwloc_bitmap_intersects(o->cpuset, hw->allowed));
        if (!o) return -1;
        /* one allowed PU of the core, so the OS cannot move the thread between its
         * hyperthreads, nor onto a CPU the process was not given */
        hw->places[i] = hwloc_bitmap_alloc();
        if (!hw->places[i]) return -1;
        hwloc_bitmap_and(hw->places[i], o->cpuset, hw->allowed);
        hwloc_bitmap_singlify(hw->places[i]);
        hw->n_places = i + 1;
        if (len < desc_size)
            len +=
                (size_t)snprintf(desc + len, desc_size - len, "%s%u", i ? "," : " ", o->os_index);
    }
    return 0;
}

int qk_hw_pin_self(qk_hw *hw, int ti) {
    if (ti >= hw->n_places) return -1;
    return hwloc_set_cpubind(hw->topo, hw->places[ti], HWLOC_CPUBIND_THREAD) ? -1 : 0;
}

int qk_hw_place_cpu(const qk_hw *hw, int ti) {
    if (ti >= hw->n_places) return -1;
    return hwloc_bitmap_first(hw->places[ti]);
}

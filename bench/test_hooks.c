#define _POSIX_C_SOURCE 200809L /* nanosleep, clock_gettime */
#include "test_hooks.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double qk_hook_slowdown(const char *name) {
    return qk_hook_fraction("QK_INJECT_SLOWDOWN", name);
}

double qk_hook_fraction(const char *variable, const char *name) {
    const char *v = getenv(variable);
    if (!v || !*v) return 0;
    const char *eq = strchr(v, '=');
    char *end;
    double f = eq ? strtod(eq + 1, &end) : -1;
    if (!eq || eq == v || *end || !(f > 0 && f <= 10)) return -1;
    return strlen(name) == (size_t)(eq - v) && !strncmp(name, v, (size_t)(eq - v)) ? f : 0;
}

int qk_hook_slowdown_target(char *out, size_t size) {
    const char *v = getenv("QK_INJECT_SLOWDOWN");
    if (!v || !*v) return 0;
    snprintf(out, size, "%.*s", (int)strcspn(v, "="), v);
    return 1;
}

double qk_hook_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void qk_hook_spin(double t0, double fraction) {
    const double until = t0 + (qk_hook_now() - t0) * (1 + fraction);
    while (qk_hook_now() < until) {
    }
}

void qk_hook_sleep(double t0, double fraction) {
    const double s = (qk_hook_now() - t0) * fraction;
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

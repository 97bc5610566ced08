/* Test hooks read from the environment, shared by bench and gate_worker: the tests of the CI
 * gate and of compare.py slow one variant down for real. */
#ifndef QK_TEST_HOOKS_H
#define QK_TEST_HOOKS_H
#include <stddef.h>

/* QK_INJECT_SLOWDOWN=NAME=FRACTION: FRACTION for the variant called `name`, 0 when the variable
 * is unset or names another variant, -1 when it is not NAME=FRACTION with 0 < FRACTION <= 10. */
double qk_hook_slowdown(const char *name);
/* The same NAME=FRACTION form read from any variable (QK_INJECT_SLEEP: gate_worker's calls of
 * that variant sleep FRACTION of their time, off the CPU). */
double qk_hook_fraction(const char *variable, const char *name);
/* 1 with the NAME part of QK_INJECT_SLOWDOWN in out (cut to size), 0 when it is unset: a
 * program that times only some variants checks that NAME is one of them. */
int qk_hook_slowdown_target(char *out, size_t size);
/* Monotonic seconds, the clock the slowdown is measured on. */
double qk_hook_now(void);
/* After a call that began at t0: spins until the call has taken (1 + fraction) times as long. */
void qk_hook_spin(double t0, double fraction);
/* The same, asleep. */
void qk_hook_sleep(double t0, double fraction);

#endif

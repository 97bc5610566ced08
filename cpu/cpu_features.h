/* Which QK_ISA_* bits this CPU (and its OS) supports, from CPUID and XGETBV. */
#ifndef QK_CPU_FEATURES_H
#define QK_CPU_FEATURES_H
#include <stdint.h>

uint32_t qk_cpu_isa(void);
/* NULL, or one line saying what is wrong with QK_DISABLE_ISA (a token that names no instruction
 * set is otherwise ignored). */
const char *qk_cpu_isa_env_error(void);
/* Names of the missing bits of `need`, e.g. "avx512_vnni", or "" when none is missing. */
const char *qk_cpu_missing_isa(uint32_t need);

#endif

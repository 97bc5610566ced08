#define _POSIX_C_SOURCE 200809L
#include "cpu_features.h"
#include "../kernels/qk_kernel.h"
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint64_t read_xcr0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static uint32_t detect(void) {
    uint32_t a, b, c, d, isa = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
    if (!osxsave) return 0;
    uint64_t xcr0 = read_xcr0();
    int ymm_os = (xcr0 & 0x6) == 0x6;
    int zmm_os = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = (b >> 5) & 1;
    int f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    int vnni = (c >> 11) & 1;
    if (ymm_os && avx2 && fma && f16c) isa |= QK_ISA_AVX2;
    if (zmm_os && (isa & QK_ISA_AVX2) && f && dq && bw && vl) isa |= QK_ISA_AVX512;
    if ((isa & QK_ISA_AVX512) && vnni) isa |= QK_ISA_AVX512_VNNI;
    return isa;
}

/* QK_DISABLE_ISA=avx512,avx512_vnni hides instruction sets, to run the fallbacks a weaker
 * CPU would (the test of an AVX2-only CI runner on an AVX-512 machine). Tokens are matched
 * without regard to case; one that names nothing is kept for qk_cpu_isa_env_error. */
static char env_error[200];
uint32_t qk_cpu_isa(void) {
    static int done;
    static uint32_t isa;
    if (!done) {
        isa = detect();
        const char *off = getenv("QK_DISABLE_ISA");
        if (off) {
            char buf[128];
            if (snprintf(buf, sizeof buf, "%s", off) >= (int)sizeof buf)
                snprintf(env_error, sizeof env_error,
                         "QK_DISABLE_ISA: longer than %zu characters (avx2, avx512, avx512_vnni, "
                         "comma-separated)",
                         sizeof buf - 1);
            char *save = NULL;
            for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (!strcasecmp(t, "avx2"))
                    isa &= ~(uint32_t)(QK_ISA_AVX2 | QK_ISA_AVX512 | QK_ISA_AVX512_VNNI);
                else if (!strcasecmp(t, "avx512"))
                    isa &= ~(uint32_t)(QK_ISA_AVX512 | QK_ISA_AVX512_VNNI);
                else if (!strcasecmp(t, "avx512_vnni"))
                    isa &= ~(uint32_t)QK_ISA_AVX512_VNNI;
                else if (!*env_error) {
                    char shown[64];
                    size_t k = 0;
                    for (const char *c = t; *c && k + 5 < sizeof shown; c++) {
                        if (*c >= 0x20 && *c < 0x7f && *c != '\\')
                            shown[k++] = *c;
                        else
                            k += (size_t)snprintf(shown + k, 5, "\\x%02x", (unsigned char)*c);
                    }
                    shown[k] = 0;
                    snprintf(env_error, sizeof env_error,
                             "QK_DISABLE_ISA: '%s' is not avx2, avx512 or avx512_vnni", shown);
                }
            }
        }
        done = 1;
    }
    return isa;
}

const char *qk_cpu_isa_env_error(void) {
    qk_cpu_isa();
    return *env_error ? env_error : NULL;
}

const char *qk_cpu_missing_isa(uint32_t need) {
    uint32_t miss = need & ~qk_cpu_isa();
    if (miss & QK_ISA_CUDA) return "cuda";
    if (miss & QK_ISA_AVX2) return "avx2+fma+f16c";
    if (miss & QK_ISA_AVX512) return "avx512f+bw+dq+vl";
    if (miss & QK_ISA_AVX512_VNNI) return "avx512_vnni";
    return "";
}

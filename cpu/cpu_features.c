#include "cpu_features.h"
#include "../kernels/qk_kernel.h"
#include <cpuid.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
 * CPU would (the test of an AVX2-only CI runner on an AVX-512 machine). */
uint32_t qk_cpu_isa(void) {
    static int done;
    static uint32_t isa;
    if (!done) {
        isa = detect();
        const char *off = getenv("QK_DISABLE_ISA");
        if (off) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", off);
            for (char *t = strtok(buf, ","); t; t = strtok(NULL, ",")) {
                if (!strcmp(t, "avx2"))
                    isa &= ~(uint32_t)(QK_ISA_AVX2 | QK_ISA_AVX512 | QK_ISA_AVX512_VNNI);
                if (!strcmp(t, "avx512")) isa &= ~(uint32_t)(QK_ISA_AVX512 | QK_ISA_AVX512_VNNI);
                if (!strcmp(t, "avx512_vnni")) isa &= ~(uint32_t)QK_ISA_AVX512_VNNI;
            }
        }
        done = 1;
    }
    return isa;
}

const char *qk_cpu_missing_isa(uint32_t need) {
    uint32_t miss = need & ~qk_cpu_isa();
    if (miss & QK_ISA_CUDA) return "cuda";
    if (miss & QK_ISA_AVX2) return "avx2+fma+f16c";
    if (miss & QK_ISA_AVX512) return "avx512f+bw+dq+vl";
    if (miss & QK_ISA_AVX512_VNNI) return "avx512_vnni";
    return "";
}

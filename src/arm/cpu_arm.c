/* AArch64 feature detection from the hwcaps the Linux kernel passes in the auxiliary vector.
   Advanced SIMD is part of every AArch64 implementation Linux supports, but its bit is still
   read: a kernel (or an emulator) that does not announce it keeps us on the scalar tier.
   HWCAP2_BF16 gates the neonbf16 tier (BFDOT); the other bits are only reported
   (spattn-info). */
#define _POSIX_C_SOURCE 200809L /* pthread_once */
#include "cpu.h"

#if defined(__aarch64__)

#include <sys/auxv.h>
#include <pthread.h>

/* Older C libraries lack some names; the bit numbers are the kernel's ABI and never move. */
#ifndef AT_HWCAP2
#define AT_HWCAP2 26
#endif
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1ul << 1)
#endif
#ifndef HWCAP_FPHP
#define HWCAP_FPHP (1ul << 9)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1ul << 10)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP_SVE
#define HWCAP_SVE (1ul << 22)
#endif
#ifndef HWCAP2_BF16
#define HWCAP2_BF16 (1ul << 14)
#endif

static spattn_cpu_info info;
/* pthread_once rather than C11 call_once: glibc runs call_once through an internal entry that
   ThreadSanitizer cannot see, so every first use would be reported as a race. */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void detect(void)
{
    unsigned long hw = getauxval(AT_HWCAP);
    unsigned long hw2 = getauxval(AT_HWCAP2);
    if (hw & HWCAP_ASIMD)
        info.bits |= SPATTN_CPU_NEON;
    /* Scalar and vector half precision arithmetic come as a pair on every core that has
       either; require both so the bit means "fp16 arithmetic in NEON registers". */
    if ((hw & HWCAP_FPHP) && (hw & HWCAP_ASIMDHP))
        info.bits |= SPATTN_CPU_ARM_FP16;
    if (hw & HWCAP_ASIMDDP)
        info.bits |= SPATTN_CPU_ARM_DOTPROD;
    if (hw & HWCAP_SVE)
        info.bits |= SPATTN_CPU_ARM_SVE;
    if (hw2 & HWCAP2_BF16)
        info.bits |= SPATTN_CPU_ARM_BF16;

    spattn__cpu_feature(&info, "neon", (info.bits & SPATTN_CPU_NEON) != 0);
    spattn__cpu_feature(&info, "fp16", (info.bits & SPATTN_CPU_ARM_FP16) != 0);
    spattn__cpu_feature(&info, "bf16", (info.bits & SPATTN_CPU_ARM_BF16) != 0);
    spattn__cpu_feature(&info, "dotprod", (info.bits & SPATTN_CPU_ARM_DOTPROD) != 0);
    spattn__cpu_feature(&info, "sve", (info.bits & SPATTN_CPU_ARM_SVE) != 0);
}

const spattn_cpu_info *spattn__cpu(void)
{
    pthread_once(&once, detect);
    return &info;
}

const char *spattn__cpu_lacks(uint32_t bits)
{
    const uint32_t missing = bits & ~spattn__cpu()->bits;
    if (missing == 0)
        return NULL;
    if (missing & SPATTN_CPU_NEON)
        return "CPU lacks Advanced SIMD";
    if (missing & SPATTN_CPU_ARM_BF16)
        return "CPU lacks BF16 (bfdot)";
    return "CPU lacks a feature these kernels need";
}

#endif

/* Keeps the translation unit non-empty on other targets. */
typedef int spattn_cpu_arm_unit;

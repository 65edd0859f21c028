/* x86 feature detection: cpuid bits are trusted only when the OS saves the matching register
   state (xgetbv), since a kernel that enables AVX-512 in cpuid but not in XCR0 faults on use. */
#define _POSIX_C_SOURCE 200809L /* pthread_once */
#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <pthread.h>

static spattn_cpu_info info;
/* pthread_once rather than C11 call_once: glibc runs call_once through an internal entry that
   ThreadSanitizer cannot see, so every first use would be reported as a race. */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    /* xgetbv by opcode bytes, so the file needs no -mxsave. */
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static void detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1;
    info.has_fma_cpuid = (c >> 12) & 1;
    int avx = (c >> 28) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    /* XMM (bit 1) and YMM (bit 2) state; opmask, ZMM_Hi256, Hi16_ZMM (bits 5-7). */
    info.os_ymm = avx && (xcr0 & 0x6) == 0x6;
    info.os_zmm = info.os_ymm && (xcr0 & 0xe0) == 0xe0;

    unsigned max_leaf = __get_cpuid_max(0, 0);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        info.has_avx2_cpuid = (b >> 5) & 1;
        info.has_avx512f = (b >> 16) & 1;
        info.has_avx512dq = (b >> 17) & 1;
        info.has_avx512bw = (b >> 30) & 1;
        info.has_avx512vl = (b >> 31) & 1;
        if (info.os_zmm && ((d >> 23) & 1))
            info.bits |= SPATTN_CPU_AVX512_FP16;
        if ((d >> 24) & 1)
            info.bits |= SPATTN_CPU_AMX;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        (void)b1, (void)c1, (void)d1;
        if (info.os_zmm && ((a1 >> 5) & 1))
            info.bits |= SPATTN_CPU_AVX512_BF16;
    }
    if (info.os_ymm && info.has_avx2_cpuid && info.has_fma_cpuid)
        info.bits |= SPATTN_CPU_AVX2;
    if ((info.bits & SPATTN_CPU_AVX2) && info.os_zmm && info.has_avx512f && info.has_avx512bw &&
        info.has_avx512dq && info.has_avx512vl)
        info.bits |= SPATTN_CPU_AVX512;
}

const spattn_cpu_info *spattn__cpu(void)
{
    pthread_once(&once, detect);
    return &info;
}

#endif

/* Keeps the translation unit non-empty on other targets. */
typedef int spattn_cpu_x86_unit;

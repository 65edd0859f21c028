/* x86 feature detection: cpuid bits are trusted only when the OS saves the matching register
   state (xgetbv), since a kernel that enables AVX-512 in cpuid but not in XCR0 faults on use. */
#define _POSIX_C_SOURCE 200809L /* pthread_once */
#define _DEFAULT_SOURCE         /* syscall */
#include "cpu.h"
#include "spattn_config.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <pthread.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

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

/* AMX tile data is an XSAVE feature Linux enables per process, on request: until then the
   first tile instruction faults. The request is process-wide and permanent, and makes signal
   frames larger (about 8 KiB more), so it is made only by a build with the AMX kernels, on a
   CPU with AMX-TILE and AMX-BF16 whose XCR0 has the tile state. Returns why AMX cannot be
   used, or NULL. */
static const char *request_amx(uint64_t xcr0)
{
    if ((xcr0 & (3ull << 17)) != (3ull << 17))
        return "OS has not enabled AMX tile state (XCR0)";
#if !defined(SPATTN_HAVE_AVX512AMX)
    return "not compiled in: the compiler could not build the AMX kernels";
#elif defined(__linux__) && defined(SYS_arch_prctl)
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    if (syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0)
        return "Linux refused AMX tile data to this process (arch_prctl ARCH_REQ_XCOMP_PERM)";
    return NULL;
#else
    return "AMX is used only on Linux, which grants tile data per process";
#endif
}

static void detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    int osxsave = (c >> 27) & 1;
    info.has_fma_cpuid = (c >> 12) & 1;
    info.has_f16c_cpuid = (c >> 29) & 1;
    if ((c >> 23) & 1)
        info.bits |= SPATTN_CPU_POPCNT;
    int avx = (c >> 28) & 1;
    uint64_t xcr0 = osxsave ? read_xcr0() : 0;
    /* XMM (bit 1) and YMM (bit 2) state; opmask, ZMM_Hi256, Hi16_ZMM (bits 5-7). */
    info.os_ymm = avx && (xcr0 & 0x6) == 0x6;
    info.os_zmm = info.os_ymm && (xcr0 & 0xe0) == 0xe0;

    unsigned max_leaf = __get_cpuid(0, &a, &b, &c, &d) ? a : 0;
    memcpy(info.vendor, &b, 4);
    memcpy(info.vendor + 4, &d, 4);
    memcpy(info.vendor + 8, &c, 4);
    info.vendor[12] = '\0';
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
        /* AMX-TILE (bit 24) and AMX-BF16 (bit 22) */
        if (((d >> 24) & 1) && ((d >> 22) & 1))
            info.amx_reason = request_amx(xcr0);
        else
            info.amx_reason = "CPU lacks AMX-BF16 (tdpbf16ps)";
        if (info.amx_reason == NULL)
            info.bits |= SPATTN_CPU_AMX_BF16;
        unsigned a1, b1, c1, d1;
        __cpuid_count(7, 1, a1, b1, c1, d1);
        (void)b1, (void)c1, (void)d1;
        if (info.os_zmm && ((a1 >> 5) & 1))
            info.bits |= SPATTN_CPU_AVX512_BF16;
        /* Measured on Zen 4 and on Sapphire/Emerald Rapids (docs/dtypes.md): no cpuid bit
           tells the rate, so the vendor does. */
        if ((info.bits & SPATTN_CPU_AVX512_BF16) && strcmp(info.vendor, "AuthenticAMD") == 0)
            info.bits |= SPATTN_CPU_BF16_DOT_FAST;
    }
    if (info.os_ymm && info.has_avx2_cpuid && info.has_fma_cpuid && info.has_f16c_cpuid)
        info.bits |= SPATTN_CPU_AVX2;
    /* The V stage measured slower on Zen 4 and 7-8 % faster on an Intel Xeon (family 6, model
       207; docs/dtypes.md); no cpuid bit tells the ports, so the vendor does. */
    if (strcmp(info.vendor, "AuthenticAMD") == 0)
        info.bits |= SPATTN_CPU_WIDEN_BESIDE_FMA;
    if ((info.bits & SPATTN_CPU_AVX2) && info.os_zmm && info.has_avx512f && info.has_avx512bw &&
        info.has_avx512dq && info.has_avx512vl)
        info.bits |= SPATTN_CPU_AVX512;

    spattn__cpu_feature(&info, "avx2", info.has_avx2_cpuid);
    spattn__cpu_feature(&info, "fma", info.has_fma_cpuid);
    spattn__cpu_feature(&info, "f16c", info.has_f16c_cpuid);
    spattn__cpu_feature(&info, "os-ymm", info.os_ymm);
    spattn__cpu_feature(&info, "avx512f", info.has_avx512f);
    spattn__cpu_feature(&info, "avx512bw", info.has_avx512bw);
    spattn__cpu_feature(&info, "avx512dq", info.has_avx512dq);
    spattn__cpu_feature(&info, "avx512vl", info.has_avx512vl);
    spattn__cpu_feature(&info, "os-zmm", info.os_zmm);
    spattn__cpu_feature(&info, "popcnt", (info.bits & SPATTN_CPU_POPCNT) != 0);
    spattn__cpu_feature(&info, "avx512bf16", (info.bits & SPATTN_CPU_AVX512_BF16) != 0);
    spattn__cpu_feature(&info, "avx512fp16", (info.bits & SPATTN_CPU_AVX512_FP16) != 0);
    spattn__cpu_feature(&info, "amx", (info.bits & SPATTN_CPU_AMX) != 0);
}

const spattn_cpu_info *spattn__cpu(void)
{
    pthread_once(&once, detect);
    return &info;
}

const char *spattn__cpu_lacks(uint32_t bits)
{
    const spattn_cpu_info *c = spattn__cpu();
    if (bits & SPATTN_CPU_AVX512) {
        if (!c->has_avx512f)
            return "CPU lacks AVX512F";
        if (!c->has_avx512bw)
            return "CPU lacks AVX512BW";
        if (!c->has_avx512dq)
            return "CPU lacks AVX512DQ";
        if (!c->has_avx512vl)
            return "CPU lacks AVX512VL";
        if (!c->os_zmm)
            return "OS has not enabled ZMM and opmask state (XCR0)";
        if (!(c->bits & SPATTN_CPU_AVX2))
            return "CPU lacks AVX2+FMA+F16C, which the AVX-512 kernels also use";
    }
    if ((bits & SPATTN_CPU_AVX512_BF16) && !(c->bits & SPATTN_CPU_AVX512_BF16))
        return "CPU lacks AVX512-BF16 (vdpbf16ps)";
    if ((bits & SPATTN_CPU_AMX_BF16) && !(c->bits & SPATTN_CPU_AMX_BF16))
        return c->amx_reason != NULL ? c->amx_reason : "CPU lacks AMX-BF16 (tdpbf16ps)";
    if (bits & SPATTN_CPU_AVX2) {
        if (!c->has_avx2_cpuid)
            return "CPU lacks AVX2";
        if (!c->has_fma_cpuid)
            return "CPU lacks FMA";
        if (!c->has_f16c_cpuid)
            return "CPU lacks F16C";
        if (!c->os_ymm)
            return "OS has not enabled YMM state (XCR0)";
    }
    return (c->bits & bits) == bits ? NULL : "CPU lacks a feature these kernels need";
}

#endif

/* Keeps the translation unit non-empty on other targets. */
typedef int spattn_cpu_x86_unit;

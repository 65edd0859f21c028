/* What the CPU and OS can run, detected once. */
#ifndef SPATTN_CPU_H
#define SPATTN_CPU_H

#include <stdint.h>
#include <string.h>

/* Bits that gate kernels. */
#define SPATTN_CPU_AVX2 (1u << 0)   /* AVX2 + FMA + F16C, YMM state enabled by the OS */
#define SPATTN_CPU_AVX512 (1u << 1) /* AVX-512 F+BW+DQ+VL, ZMM and opmask state enabled */
#define SPATTN_CPU_NEON (1u << 2)   /* AArch64 Advanced SIMD */
/* AVX512-BF16 (vdpbf16ps), with ZMM state enabled */
#define SPATTN_CPU_AVX512_BF16 (1u << 8)
/* vdpbf16ps issues at the float FMA's rate per vector, so its two products per lane double the
   multiply-add rate: AMD's cores (Zen 4 and later). Intel's issue it at a quarter of the FMA
   rate (half the float flops; docs/dtypes.md), where AUTO passes over the avx512bf16 tier. */
#define SPATTN_CPU_BF16_DOT_FAST (1u << 15)
/* AMX-TILE and AMX-BF16, tile state enabled in XCR0 and granted to the process by Linux
   (arch_prctl ARCH_REQ_XCOMP_PERM, asked once by the detection) */
#define SPATTN_CPU_AMX_BF16 (1u << 16)
/* POPCNT: the plan's passes over mask words count bits with it (plan/bit_count.h) */
#define SPATTN_CPU_POPCNT (1u << 17)
/* f16 widening (vcvtph2ps) issues beside the FMAs, so the row-major P V converts 16-bit V as it
   loads it: AMD's cores. On Intel's it takes uops on the two FMA ports, and a tile's V is
   widened once into a stage first (the plan's v16_stage; docs/dtypes.md). */
#define SPATTN_CPU_WIDEN_BESIDE_FMA (1u << 18)
/* Bits that are only reported. */
#define SPATTN_CPU_AVX512_FP16 (1u << 9)
#define SPATTN_CPU_AMX (1u << 10)
#define SPATTN_CPU_ARM_FP16 (1u << 11)
#define SPATTN_CPU_ARM_BF16 (1u << 12) /* FEAT_BF16 (BFDOT); also gates neonbf16 */
#define SPATTN_CPU_ARM_SVE (1u << 13)
#define SPATTN_CPU_ARM_DOTPROD (1u << 14)

/* Architecture families, for the reason an ISA is not compiled in (isas.inc). */
#define SPATTN_FAMILY_ANY 0
#define SPATTN_FAMILY_X86 1
#define SPATTN_FAMILY_AARCH64 2
#if defined(__x86_64__) || defined(__i386__)
#define SPATTN_FAMILY_HERE SPATTN_FAMILY_X86
#elif defined(__aarch64__)
#define SPATTN_FAMILY_HERE SPATTN_FAMILY_AARCH64
#else
#define SPATTN_FAMILY_HERE SPATTN_FAMILY_ANY
#endif

typedef struct spattn_cpu_info {
    uint32_t bits;
    /* Raw findings, for reasons. */
    int has_avx2_cpuid, has_fma_cpuid, has_f16c_cpuid, os_ymm;
    int has_avx512f, has_avx512bw, has_avx512dq, has_avx512vl, os_zmm;
    const char *amx_reason; /* why SPATTN_CPU_AMX_BF16 is off, NULL when on */
    char vendor[13];    /* cpuid's vendor string on x86 ("AuthenticAMD", "GenuineIntel"), or "" */
    char features[192]; /* what spattn_cpu_features() returns */
} spattn_cpu_info;

/* Appends `name` to c->features when `on` (space-separated). */
static inline void spattn__cpu_feature(spattn_cpu_info *c, const char *name, int on)
{
    size_t n = strlen(c->features);
    if (on && n + 1 + strlen(name) < sizeof c->features) {
        if (n > 0)
            c->features[n++] = ' ';
        strcpy(c->features + n, name);
    }
}

/* Detected on first call (thread-safe), constant afterwards. Implemented per architecture
   (x86/cpu_x86.c, arm/cpu_arm.c, scalar/cpu_other.c); the architecture's CMakeLists.txt
   compiles the one for the target. */
const spattn_cpu_info *spattn__cpu(void);

/* Why this CPU cannot run kernels that need `bits` (its first missing feature, or the state the
   OS has not enabled); implemented beside spattn__cpu. */
const char *spattn__cpu_lacks(uint32_t bits);

#endif

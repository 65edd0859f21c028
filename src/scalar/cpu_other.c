/* Targets with no SIMD tier of ours: only the scalar kernels run. */
#include "cpu.h"

#if !defined(__x86_64__) && !defined(__i386__) && !defined(__aarch64__)

static const spattn_cpu_info none;

const spattn_cpu_info *spattn__cpu(void)
{
    return &none;
}

const char *spattn__cpu_lacks(uint32_t bits)
{
    return bits == 0 ? NULL : "no SIMD tier of this library runs on this target";
}

#endif

/* Keeps the translation unit non-empty on other targets. */
typedef int spattn_cpu_other_unit;

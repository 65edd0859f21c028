/* spattn-info: what this build and this machine can run, and what AUTO picks. */
#include <stdio.h>
#include <stdlib.h>

#include "cpu.h"
#include "spattn.h"

static void feature(const char *name, int on, int *first)
{
    if (!on)
        return;
    printf("%s%s", *first ? "" : " ", name);
    *first = 0;
}

int main(void)
{
    const spattn_cpu_info *cpu = spattn__cpu();
    printf("spattn %s\n", spattn_version());
    printf("cpu features: ");
    int first = 1;
#if defined(__x86_64__) || defined(__i386__)
    feature("avx2", cpu->has_avx2_cpuid, &first);
    feature("fma", cpu->has_fma_cpuid, &first);
    feature("os-ymm", cpu->os_ymm, &first);
    feature("avx512f", cpu->has_avx512f, &first);
    feature("avx512bw", cpu->has_avx512bw, &first);
    feature("avx512dq", cpu->has_avx512dq, &first);
    feature("avx512vl", cpu->has_avx512vl, &first);
    feature("os-zmm", cpu->os_zmm, &first);
    feature("avx512bf16", (cpu->bits & SPATTN_CPU_AVX512_BF16) != 0, &first);
    feature("avx512fp16", (cpu->bits & SPATTN_CPU_AVX512_FP16) != 0, &first);
    feature("amx", (cpu->bits & SPATTN_CPU_AMX) != 0, &first);
#else
    feature("neon", (cpu->bits & SPATTN_CPU_NEON) != 0, &first);
    feature("fp16", (cpu->bits & SPATTN_CPU_ARM_FP16) != 0, &first);
    feature("bf16", (cpu->bits & SPATTN_CPU_ARM_BF16) != 0, &first);
    feature("dotprod", (cpu->bits & SPATTN_CPU_ARM_DOTPROD) != 0, &first);
    feature("sve", (cpu->bits & SPATTN_CPU_ARM_SVE) != 0, &first);
#endif
    if (first)
        printf("(none)");
    printf("\n");

    printf("isa:\n");
    for (int i = SPATTN_ISA_SCALAR; i <= SPATTN_ISA_NEON; i++) {
        spattn_isa isa = (spattn_isa)i;
        const char *why = spattn_isa_unavailable_reason(isa);
        if (why)
            printf("  %-7s available: no (%s)\n", spattn_isa_name(isa), why);
        else
            printf("  %-7s available: yes\n", spattn_isa_name(isa));
    }
    const char *env = getenv("SPATTN_ISA");
    spattn_isa sel = spattn_isa_selected();
    if (env != NULL && env[0] != '\0')
        printf("SPATTN_ISA=%s\n", env);
    else
        printf("SPATTN_ISA: not set (AUTO picks the best available)\n");
    if (sel == SPATTN_ISA_AUTO) {
        printf("auto selects: nothing: %s; calls using AUTO fail with SPATTN_E_UNSUPPORTED\n",
               spattn_isa_unavailable_reason(SPATTN_ISA_AUTO));
        return 1;
    }
    printf("auto selects: %s\n", spattn_isa_name(sel));
    return 0;
}

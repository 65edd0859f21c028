/* The dispatch table: every kernel table of kernels.inc that this CPU can run, filled once.
   SPATTN_ISA is read at the same time, so no call ever re-reads the environment. */
#define _POSIX_C_SOURCE 200809L /* pthread_once */
#include "kernels/dispatch.h"

#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include "cpu.h"

typedef struct kernel_entry {
    spattn_isa isa;
    const spattn_kernel_table *table;
    uint32_t cpu_bits;
} kernel_entry;

static const kernel_entry all_kernels[] = {
#define SPATTN_KERNEL(isa, table, cpu_bits) {isa, &table, cpu_bits},
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL
};
#define N_KERNELS (sizeof all_kernels / sizeof all_kernels[0])
#define N_ISAS (SPATTN_ISA_NEON + 1)

static struct {
    const spattn_kernel_table *by_isa[N_ISAS]; /* NULL where not runnable */
    spattn_isa auto_isa;                       /* SPATTN_ISA_AUTO when SPATTN_ISA is bad */
    char env_reason[160];
} state;
/* pthread_once rather than C11 call_once: glibc runs call_once through an internal entry that
   ThreadSanitizer cannot see, so every first use would be reported as a race. */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill(void)
{
    const spattn_cpu_info *cpu = spattn__cpu();
    spattn_isa best = SPATTN_ISA_AUTO;
    for (size_t i = 0; i < N_KERNELS; i++) {
        const kernel_entry *e = &all_kernels[i];
        if ((cpu->bits & e->cpu_bits) != e->cpu_bits)
            continue;
        state.by_isa[e->isa] = e->table;
        if (best == SPATTN_ISA_AUTO)
            best = e->isa; /* the list is best first */
    }
    state.auto_isa = best;

    const char *env = getenv("SPATTN_ISA");
    if (env == NULL || env[0] == '\0' || strcmp(env, "auto") == 0)
        return;
    for (int isa = SPATTN_ISA_SCALAR; isa < N_ISAS; isa++) {
        if (strcmp(env, spattn_isa_name((spattn_isa)isa)) != 0)
            continue;
        if (state.by_isa[isa] != NULL) {
            state.auto_isa = (spattn_isa)isa;
        } else {
            state.auto_isa = SPATTN_ISA_AUTO;
            strcpy(state.env_reason, "SPATTN_ISA names an ISA that is not available here");
        }
        return;
    }
    state.auto_isa = SPATTN_ISA_AUTO;
    strcpy(state.env_reason,
           "SPATTN_ISA is not one of auto, scalar, avx2, avx512, neon");
}

static int isa_in_range(spattn_isa isa)
{
    return (int)isa >= SPATTN_ISA_AUTO && (int)isa < N_ISAS;
}

const spattn_kernel_table *spattn__kernels_for(spattn_isa isa)
{
    pthread_once(&once, fill);
    if (!isa_in_range(isa) || isa == SPATTN_ISA_AUTO)
        return NULL;
    return state.by_isa[isa];
}

int spattn_isa_available(spattn_isa isa)
{
    if (isa == SPATTN_ISA_AUTO)
        return spattn_isa_selected() != SPATTN_ISA_AUTO;
    return spattn__kernels_for(isa) != NULL;
}

spattn_isa spattn_isa_selected(void)
{
    pthread_once(&once, fill);
    return state.auto_isa;
}

static int compiled_in(spattn_isa isa)
{
    for (size_t i = 0; i < N_KERNELS; i++)
        if (all_kernels[i].isa == isa)
            return 1;
    return 0;
}

const char *spattn_isa_unavailable_reason(spattn_isa isa)
{
    pthread_once(&once, fill);
    if (!isa_in_range(isa))
        return "not an ISA of this library";
    if (isa == SPATTN_ISA_AUTO)
        return state.auto_isa == SPATTN_ISA_AUTO ? state.env_reason : NULL;
    if (state.by_isa[isa] != NULL)
        return NULL;
    if (!compiled_in(isa)) {
        switch (isa) {
        case SPATTN_ISA_AVX2:
        case SPATTN_ISA_AVX512:
#if defined(__x86_64__) || defined(__i386__)
            return "not compiled in: the compiler could not build these kernels";
#else
            return "not compiled in: x86 kernels are built only for x86 targets";
#endif
        case SPATTN_ISA_NEON:
#if defined(__aarch64__)
            return "not compiled in: the compiler could not build these kernels";
#else
            return "not compiled in: NEON kernels are built only for AArch64 targets";
#endif
        default:
            return "not compiled in";
        }
    }
    const spattn_cpu_info *cpu = spattn__cpu();
    if (isa == SPATTN_ISA_AVX2) {
        if (!cpu->has_avx2_cpuid) return "CPU lacks AVX2";
        if (!cpu->has_fma_cpuid) return "CPU lacks FMA";
        return "OS has not enabled YMM state (XCR0)";
    }
    if (isa == SPATTN_ISA_AVX512) {
        if (!cpu->has_avx512f) return "CPU lacks AVX512F";
        if (!cpu->has_avx512bw) return "CPU lacks AVX512BW";
        if (!cpu->has_avx512dq) return "CPU lacks AVX512DQ";
        if (!cpu->has_avx512vl) return "CPU lacks AVX512VL";
        if (!cpu->os_zmm) return "OS has not enabled ZMM and opmask state (XCR0)";
        return "CPU lacks AVX2+FMA, which the AVX-512 kernels also use";
    }
    return "CPU lacks Advanced SIMD";
}

spattn_status spattn__resolve(const spattn_options *opt, const spattn_kernel_table **table,
                              int *num_threads)
{
    spattn_isa isa = opt ? opt->isa : SPATTN_ISA_AUTO;
    int nt = opt ? opt->num_threads : 0;
    if (!isa_in_range(isa) || nt < 0)
        return SPATTN_E_ARG;
    if (isa == SPATTN_ISA_AUTO) {
        isa = spattn_isa_selected();
        if (isa == SPATTN_ISA_AUTO)
            return SPATTN_E_UNSUPPORTED;
    }
    const spattn_kernel_table *t = spattn__kernels_for(isa);
    if (t == NULL)
        return SPATTN_E_UNSUPPORTED;
    *table = t;
    *num_threads = nt;
    return SPATTN_OK;
}

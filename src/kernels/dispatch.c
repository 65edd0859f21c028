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
    uint32_t auto_bits;
} kernel_entry;

static const kernel_entry all_kernels[] = {
#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits) {isa, &table, cpu_bits, auto_bits},
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL
};
#define N_KERNELS (sizeof all_kernels / sizeof all_kernels[0])

typedef struct isa_row {
    spattn_isa isa;
    const char *name;
    int family;
    const char *elsewhere;
} isa_row;

static const isa_row all_isas[] = {
#define SPATTN_ISA_ROW(isa, name, family, elsewhere)                                               \
    {isa, name, family, "not compiled in: " elsewhere},
#include "kernels/isas.inc"
#undef SPATTN_ISA_ROW
};
/* Enum values 0 (AUTO) .. N_ISAS - 1. */
#define N_ISAS ((int)(sizeof all_isas / sizeof all_isas[0]) + 1)

static const isa_row *row_of(spattn_isa isa)
{
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++)
        if (all_isas[i].isa == isa)
            return &all_isas[i];
    return NULL;
}

const char *spattn_isa_name(spattn_isa isa)
{
    if (isa == SPATTN_ISA_AUTO)
        return "auto";
    const isa_row *r = row_of(isa);
    return r ? r->name : "unknown";
}

static const char *reason_of(spattn_isa isa);

static struct {
    const spattn_kernel_table *by_isa[N_ISAS]; /* NULL where not runnable */
    spattn_isa auto_isa;                       /* SPATTN_ISA_AUTO when SPATTN_ISA is bad */
    char env_reason[256];
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
        if (best == SPATTN_ISA_AUTO && (cpu->bits & e->auto_bits) == e->auto_bits)
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
            const char *why = reason_of((spattn_isa)isa);
            if (why != NULL) {
                strcat(state.env_reason, ": ");
                strncat(state.env_reason, why,
                        sizeof state.env_reason - strlen(state.env_reason) - 1);
            }
        }
        return;
    }
    state.auto_isa = SPATTN_ISA_AUTO;
    strcpy(state.env_reason, "SPATTN_ISA is not one of auto");
    for (size_t i = 0; i < sizeof all_isas / sizeof all_isas[0]; i++) {
        strcat(state.env_reason, ", ");
        strcat(state.env_reason, all_isas[i].name);
    }
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
    return reason_of(isa);
}

/* Why an ISA of the enum (not AUTO) that this CPU cannot run is unavailable. */
static const char *reason_of(spattn_isa isa)
{
    if (!compiled_in(isa))
        return row_of(isa)->family == SPATTN_FAMILY_HERE
                   ? "not compiled in: the compiler could not build these kernels"
                   : row_of(isa)->elsewhere;
    for (size_t i = 0; i < N_KERNELS; i++)
        if (all_kernels[i].isa == isa)
            return spattn__cpu_lacks(all_kernels[i].cpu_bits);
    return NULL;
}

const char *spattn_isa_auto_skip_reason(spattn_isa isa)
{
    if (spattn__kernels_for(isa) == NULL)
        return NULL;
    const spattn_cpu_info *cpu = spattn__cpu();
    for (size_t i = 0; i < N_KERNELS; i++) {
        const kernel_entry *e = &all_kernels[i];
        if (e->isa != isa || (cpu->bits & e->auto_bits) == e->auto_bits)
            continue;
        if (e->auto_bits & SPATTN_CPU_BF16_DOT_FAST)
            return "vdpbf16ps runs at half the float FMA's flop rate on cores other than AMD's, so "
                   "avx512 (bf16 widened to float) is faster";
        return "this CPU runs the ISA but not faster than the next one";
    }
    return NULL;
}

size_t spattn_isas_compiled(spattn_isa *out, size_t cap)
{
    for (size_t i = 0; i < N_KERNELS && i < cap; i++)
        out[i] = all_kernels[i].isa;
    return N_KERNELS;
}

const char *spattn_cpu_features(void)
{
    return spattn__cpu()->features;
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

/* AVX-512 + AVX512-BF16 kernels: the AVX-512 template with Q.K as bf16 pair dot products
   (vdpbf16ps, kernels/qk_pairs.h) for jobs whose Q and K are both bf16. Every other job, and
   every call off the tile path, runs exactly what the AVX-512 tier runs. */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__) || !defined(__AVX512BF16__)
#error                                                                                             \
    "attn_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx512bf16"
#endif

#include "x86/vec_avx512bf16.h"

#include "kernels/template.h"

/* A pair never reaches past its row when dim_qk is even. */
static int takes_pairs(const spattn_head_job *job)
{
    return job->q_dtype == SPATTN_DTYPE_BF16 && job->kv_dtype == SPATTN_DTYPE_BF16 &&
           job->dim_qk % 2 == 0;
}

static void bf16_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    if (takes_pairs(job))
        tpl_tiles(job, m, qt, scratch);
    else
        spattn_kernels_avx512.attn_tiles(job, m, qt, scratch);
}

static void bf16_tiles2(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    if (takes_pairs(job))
        tpl_tiles2(job, m, qt, scratch);
    else
        spattn_kernels_avx512.attn_tiles2(job, m, qt, scratch);
}

/* Mixed query tiles (listed keys, then tiles) keep float products on every job: their listed
   keys accumulate O in dim order, which the P.V pairs of the tile walk do not keep. */
static void bf16_mixed(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                       size_t qt, size_t nqt, float *scratch)
{
    spattn_kernels_avx512.attn_mixed(job, m, kr, qt, nqt, scratch);
}

/* The peak of this tier's dot product: PROBE_CHAINS independent vdpbf16ps chains, 4 flops per
   lane each (two multiplies, two adds), as the kernels' flops are counted. */
static float bf16_dot_probe(size_t iters, double *flops)
{
    col_t a[PROBE_CHAINS];
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        a[c] = col_set1(1.0f + 0.01f * (float)c);
    const uint16_t one_milli[2] = {0x3a83, 0x3a83}; /* 1.0e-3 in bf16, twice */
    const col_t x = col_bcast_pair(one_milli);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int c = 0; c < PROBE_CHAINS; c++)
            a[c] = col_dot_pair(x, x, a[c]);
    }
    col_t s = col_zero();
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        s = col_add(s, a[c]);
    *flops = 4.0 * 16 * PROBE_CHAINS * (double)iters;
    return col_hsum(s);
}

/* The template's mixed kernel is the AVX-512 tier's (bf16_mixed); here it is replaced. */
static void (*const tpl_mixed_unused)(const spattn_head_job *, const spattn_mask *,
                                      const spattn_keyrows *, size_t, size_t, float *)
    __attribute__((unused)) = tpl_mixed;

/* The float FMA probe of the template is the AVX-512 tier's; here it is replaced. */
static float (*const fp32_probe)(size_t, double *) __attribute__((unused)) = tpl_fma_probe;

/* The template's table with the entries above in place of its own: the macro names every
   entry, so entries added to it later reach this table too. */
#define tpl_tiles bf16_tiles
#define tpl_tiles2 bf16_tiles2
#define tpl_mixed bf16_mixed
#define tpl_fma_probe bf16_dot_probe
SPATTN_TEMPLATE_TABLE(spattn_kernels_avx512bf16, SPATTN_ISA_AVX512BF16, "avx512bf16", 0.45);

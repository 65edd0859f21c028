/* NEON + FEAT_BF16 kernels: the tile path of the NEON template with Q.K as bf16 pair dot
   products (BFDOT, kernels/qk_pairs.h) for jobs whose Q and K are both bf16. Every other job,
   and every other entry of the table, is the NEON tier's own function: its results here are
   bitwise NEON's, and this file compiles only the tile walk. */
#if !defined(__aarch64__) || !defined(__ARM_NEON) || !defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#error "attn_neon_bf16.c must be compiled for AArch64 with -march=armv8.2-a+bf16 (or later)"
#endif

#include "arm/vec_neon_bf16.h"

/* The rest of the template is never referenced here (the table below takes the NEON tier's
   entries instead), so it is parsed but not compiled. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kernels/template.h"
#pragma GCC diagnostic pop

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
        spattn_kernels_neon.attn_tiles(job, m, qt, scratch);
}

static void bf16_tiles2(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    if (takes_pairs(job))
        tpl_tiles2(job, m, qt, scratch);
    else
        spattn_kernels_neon.attn_tiles2(job, m, qt, scratch);
}

/* The pairs of a query tile take 16 * (dim_qk / 2 + 1) floats where the float layout takes
   16 * dim_qk, so NEON's scratch covers them. */
static size_t neon_scratch_floats(size_t dim_qk, size_t dim_v, size_t gather_rows,
                                  size_t gather_keys)
{
    return spattn_kernels_neon.scratch_floats(dim_qk, dim_v, gather_rows, gather_keys);
}

static void neon_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt, size_t nqt,
                        float *scratch)
{
    spattn_kernels_neon.attn_gather(job, kr, qt, nqt, scratch);
}

/* Mixed query tiles keep float products on every job, as on avx512bf16. */
static void neon_mixed(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                       size_t qt, size_t nqt, float *scratch)
{
    spattn_kernels_neon.attn_mixed(job, m, kr, qt, nqt, scratch);
}

static void neon_softmax(const float *x, float *y, size_t ld, const spattn_mask *m, size_t qt,
                         float scale)
{
    spattn_kernels_neon.softmax_tile(x, y, ld, m, qt, scale);
}

static void neon_merge_rows(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                            const float *const *lse_parts, float *o, float *lse)
{
    spattn_kernels_neon.merge_rows(n_parts, rows, dim, o_parts, lse_parts, o, lse);
}

static size_t neon_bwd_scratch_floats(size_t dim_qk, size_t dim_v)
{
    return spattn_kernels_neon.bwd_scratch_floats(dim_qk, dim_v);
}

static void neon_bwd_kv(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                        const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                        int fresh, float *ds, size_t ds0, float *scratch)
{
    spattn_kernels_neon.bwd_kv(job, m, packs, en, n, kt, dk, dv, fresh, ds, ds0, scratch);
}

static void neon_bwd_q(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                       const float *pack, float *dq, ptrdiff_t dq_ts, const float *ds,
                       const spattn_bwd_slots *sl, size_t tile0, float *scratch)
{
    spattn_kernels_neon.bwd_q(job, m, qt, pack, dq, dq_ts, ds, sl, tile0, scratch);
}

/* The peak of this tier's dot product: PROBE_CHAINS / 4 independent chains of col_t (four q
   registers each, PROBE_CHAINS BFDOTs per round), 4 flops per lane each (two multiplies, two
   adds), as the kernels' flops are counted. */
static float bf16_dot_probe(size_t iters, double *flops)
{
    enum { CHAINS = PROBE_CHAINS / 4 };
    col_t a[CHAINS];
#pragma GCC unroll 32
    for (int c = 0; c < CHAINS; c++)
        a[c] = col_set1(1.0f + 0.01f * (float)c);
    const uint16_t one_milli[2] = {0x3a83, 0x3a83}; /* 1.0e-3 in bf16, twice */
    const col_t x = col_bcast_pair(one_milli);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int c = 0; c < CHAINS; c++)
            a[c] = col_dot_pair(x, x, a[c]);
    }
    col_t s = col_zero();
#pragma GCC unroll 32
    for (int c = 0; c < CHAINS; c++)
        s = col_add(s, a[c]);
    *flops = 4.0 * 16 * CHAINS * (double)iters;
    return col_hsum(s);
}

/* The template's table with the entries above in place of its own. A kernel added to the
   template's table later is compiled here from the template until it is delegated too. */
#define tpl_scratch_floats neon_scratch_floats
#define tpl_tiles bf16_tiles
#define tpl_tiles2 bf16_tiles2
#define tpl_gather neon_gather
#define tpl_mixed neon_mixed
#define tpl_softmax neon_softmax
#define tpl_fma_probe bf16_dot_probe
#define tpl_merge_rows neon_merge_rows
#define tpl_bwd_scratch_floats neon_bwd_scratch_floats
#define tpl_bwd_kv neon_bwd_kv
#define tpl_bwd_q neon_bwd_q
/* gather_below: NEON's (not measured on Arm hardware; the pairs halve the dot instructions of
   the tile path's Q.K, which would move the crossover lower). */
SPATTN_TEMPLATE_TABLE(spattn_kernels_neonbf16, SPATTN_ISA_NEON_BF16, "neonbf16", 0.3);

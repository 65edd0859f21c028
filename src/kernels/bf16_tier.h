/*
 * A bf16 pair tier's kernels (avx512bf16, neonbf16, avx512amx): the template's tile walk with
 * Q.K as bf16 pair dot products (kernels/qk_pairs.h; P.V too where the vocabulary defines
 * VEC_BF16_PV; tile products on AMX) for jobs whose Q and K are both bf16, and on AMX for f16
 * K/V with f16 or float32 Q (x86/amx_f16.h). Every other job, and every other entry of the
 * table, is the base tier's own function, so its results are bitwise the base tier's and the
 * tier's file compiles only the tile walk and its peak probe.
 *
 * The tier's file includes its vector header, defines BF16_BASE_TABLE (the base tier's
 * kernel table), includes this file, then defines its table with SPATTN_TEMPLATE_TABLE.
 */
#ifndef SPATTN_KERNELS_BF16_TIER_H
#define SPATTN_KERNELS_BF16_TIER_H

#if !defined(VEC_BF16_DOT) || !defined(BF16_BASE_TABLE)
#error "bf16_tier.h: include the tier's vector header and define BF16_BASE_TABLE first"
#endif

/* The template's code runs here only on jobs whose K and V are bf16, or f16 on the AMX tier
   (takes_tier), so its loops are compiled for those types alone, not also for float32. Any
   other type here would be a fault of this file's table, and stops. */
#ifdef VEC_AMX
#define KV_DISPATCH(kvt_rt, call)                                                                  \
    do {                                                                                           \
        if ((kvt_rt) == SPATTN_DTYPE_BF16) {                                                       \
            enum { KVT = KV_BF16 };                                                                \
            call;                                                                                  \
        } else if ((kvt_rt) == SPATTN_DTYPE_F16) {                                                 \
            enum { KVT = KV_F16 };                                                                 \
            call;                                                                                  \
        } else                                                                                     \
            __builtin_trap();                                                                      \
    } while (0)
#else
#define KV_DISPATCH(kvt_rt, call)                                                                  \
    do {                                                                                           \
        if ((kvt_rt) != SPATTN_DTYPE_BF16)                                                         \
            __builtin_trap();                                                                      \
        enum { KVT = KV_BF16 };                                                                    \
        call;                                                                                      \
    } while (0)
#endif

/* The rest of the template is never referenced here (the table takes the base tier's entries
   instead), so it is parsed but not compiled. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include "kernels/template.h"
#pragma GCC diagnostic pop

/* Tiers whose vocabulary holds state for the walk (AMX tiles) set it up and drop it here. */
#ifndef VEC_AMX
SPATTN_ALWAYS_INLINE void vec_tier_begin(void) {}
SPATTN_ALWAYS_INLINE void vec_tier_end(void) {}
#endif

/* What the AMX P V keeps between tiles of one job (x86/amx_pv.h) is dropped when a job
   enters the walk. */
#ifdef VEC_AMX
#define TIER_FORGET() pv_amx_forget()
#else
#define TIER_FORGET() ((void)0)
#endif

/* Jobs whose Q.K the tier takes in pairs, on the tile walk and the gather path: bf16 Q and
   K/V (a pair never reaches past its row when dim_qk is even). */
static int bf16_pairs_job(const spattn_head_job *job)
{
    return job->q_dtype == SPATTN_DTYPE_BF16 && job->kv_dtype == SPATTN_DTYPE_BF16 &&
           job->dim_qk % 2 == 0;
}

/* Jobs the tier's walk takes: those, and on the AMX tier also f16 K/V with f16 or float32 Q
   where dim_qk is a multiple of 32 (the tile products of x86/amx_f16.h). */
static int takes_tier(const spattn_head_job *job)
{
    if (bf16_pairs_job(job))
        return 1;
#ifdef VEC_AMX
    if (job->kv_dtype == SPATTN_DTYPE_F16 && job->q_dtype != SPATTN_DTYPE_BF16)
        return job->dim_qk % 32 == 0;
#endif
    return 0;
}

static void bf16_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    if (takes_tier(job)) {
        vec_tier_begin();
        TIER_FORGET();
        tpl_tiles(job, m, qt, scratch);
        vec_tier_end();
    } else
        BF16_BASE_TABLE.attn_tiles(job, m, qt, scratch);
}

static void bf16_tiles2(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    if (takes_tier(job)) {
        vec_tier_begin();
        TIER_FORGET();
        tpl_tiles2(job, m, qt, scratch);
        vec_tier_end();
    } else
        BF16_BASE_TABLE.attn_tiles2(job, m, qt, scratch);
}

/* The pairs of a query tile take 16 * (dim_qk / 2 + 1) floats where the float layout takes
   16 * dim_qk, so the base tier's scratch covers them. */
static size_t base_scratch_floats(size_t dim_qk, size_t dim_v, size_t gather_rows,
                                  size_t gather_keys)
{
    return BF16_BASE_TABLE.scratch_floats(dim_qk, dim_v, gather_rows, gather_keys);
}

static void base_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt, size_t nqt,
                        float *scratch)
{
    BF16_BASE_TABLE.attn_gather(job, kr, qt, nqt, scratch);
}

/* The gather path takes bf16_pairs_job's jobs (gather.h) and gives every other job to the
   base tier. */
static void bf16_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt, size_t nqt,
                        float *scratch)
{
    if (bf16_pairs_job(job))
        tpl_gather(job, kr, qt, nqt, scratch);
    else
        base_gather(job, kr, qt, nqt, scratch);
}

/* Mixed query tiles (listed keys, then tiles) keep float products on every job: their listed
   keys accumulate O in dim order, which the P.V pairs of the tile walk do not keep. */
static void base_mixed(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                       size_t qt, size_t nqt, float *scratch)
{
    BF16_BASE_TABLE.attn_mixed(job, m, kr, qt, nqt, scratch);
}

static void base_softmax(const float *x, float *y, size_t ld, const spattn_mask *m, size_t qt,
                         float scale)
{
    BF16_BASE_TABLE.softmax_tile(x, y, ld, m, qt, scale);
}

static void base_merge_rows(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                            const float *const *lse_parts, float *o, float *lse)
{
    BF16_BASE_TABLE.merge_rows(n_parts, rows, dim, o_parts, lse_parts, o, lse);
}

static size_t base_bwd_scratch_floats(size_t dim_qk, size_t dim_v)
{
    return BF16_BASE_TABLE.bwd_scratch_floats(dim_qk, dim_v);
}

static void base_bwd_kv(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                        const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                        int fresh, float *ds, size_t ds0, float *dq, ptrdiff_t dq_ts,
                        float *scratch)
{
    BF16_BASE_TABLE.bwd_kv(job, m, packs, en, n, kt, dk, dv, fresh, ds, ds0, dq, dq_ts, scratch);
}

static void base_bwd_q(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                       const float *pack, float *dq, ptrdiff_t dq_ts, const float *ds,
                       const spattn_bwd_slots *sl, size_t tile0, float *scratch)
{
    BF16_BASE_TABLE.bwd_q(job, m, qt, pack, dq, dq_ts, ds, sl, tile0, scratch);
}

static void base_bwd_cols_of_rows(const float *rows, size_t ld, size_t n_rows, size_t dim,
                                  float *cols)
{
    BF16_BASE_TABLE.bwd_cols_of_rows(rows, ld, n_rows, dim, cols);
}

/* The peak of the tier's dot product: as many registers of chains as the float probe has (a
   col_t is one zmm on AVX-512, four q registers on NEON), 4 flops per lane a step (two
   multiplies, two adds), as the kernels' flops are counted. The AMX tier's is its tile
   product's (amx_dot_probe). */
#ifndef VEC_AMX
#define BF16_PROBE_CHAINS (PROBE_CHAINS * VL / 16)
#define BF16_PROBE_STEP(x, acc) col_dot_pair(x, x, acc)
static const uint16_t bf16_one_milli[2] = {0x3a83, 0x3a83}; /* 1.0e-3 in bf16, twice */
SPATTN_PEAK_PROBE(bf16_dot_probe, col, BF16_PROBE_CHAINS, col_bcast_pair(bf16_one_milli),
                  BF16_PROBE_STEP, 4.0 * 16)
#endif

/* The template's table with the entries above in place of its own. A kernel added to the
   template's table later is compiled in the tier from the template until it is delegated
   here too. */
#define tpl_scratch_floats base_scratch_floats
#define tpl_tiles bf16_tiles
#define tpl_tiles2 bf16_tiles2
#define tpl_gather bf16_gather
#define tpl_mixed base_mixed
#define tpl_softmax base_softmax
#ifdef VEC_AMX
#define tpl_fma_probe amx_dot_probe
#else
#define tpl_fma_probe bf16_dot_probe
#endif
#define tpl_merge_rows base_merge_rows
#define tpl_bwd_scratch_floats base_bwd_scratch_floats
#define tpl_bwd_kv base_bwd_kv
#define tpl_bwd_q base_bwd_q
#define tpl_bwd_cols_of_rows base_bwd_cols_of_rows

#endif

/*
 * The contract between the plan and the per-ISA kernels. One table per ISA, listed once in
 * kernels.inc; dispatch, tests and benchmarks all read that list.
 *
 * The plan hands a kernel one query tile (SPATTN_TQ rows) of one (batch, head) at a time (for
 * decode with GQA, the rows are instead the query heads of one KV head: row stride = head
 * stride, one mask row repeated; the kernel cannot tell the difference);
 * which rows a thread gets never changes what a row computes, so output is bitwise the same for
 * any thread count. A kernel must:
 *  - write every row of the tile: O rows, and lse entries when lse != NULL;
 *  - give O = 0 and lse = -INFINITY for a row with no allowed key (lse = its sink when the job
 *    has sinks);
 *  - never read a key (K or V row) that no allowed pair of that row touches into that row's
 *    result (a NaN there must not propagate), and never load past key len_k - 1;
 *  - use only the scratch it was given (scratch_floats(...) floats, 64-byte aligned);
 *  - write each O row once, when it is final, and never read O: spattn_probs runs the kernels
 *    for lse alone with every O row aliased to one dummy row (o_ts = 0, dim_v = 1).
 */
#ifndef SPATTN_KERNEL_H
#define SPATTN_KERNEL_H

#include <math.h>
#include <stddef.h>

#include "kernels/bwd_slots.h"
#include "plan/keyrows.h"
#include "mask/mask_impl.h"
#include "spattn.h"

/* One (batch, head) of a problem, pointers already at token 0 of that head. */
typedef struct spattn_head_job {
    /* Element types: q of q_dtype, k and v of kv_dtype, o of o_dtype. Strides count elements
       of each tensor's own type. A kernel reads K and V in their own type (widened in
       registers, never copied), may widen Q where it packs a query tile, accumulates O in
       float and rounds each O row to o_dtype (nearest even) when it writes it. */
    const void *q; /* row i at element i * q_ts */
    const void *k; /* key j at element j * k_ts */
    const void *v;
    void *o;
    float *lse; /* NULL, or lse[i] for row i */
    ptrdiff_t q_ts, k_ts, v_ts, o_ts;
    spattn_dtype q_dtype, kv_dtype, o_dtype;
    size_t dim_qk, dim_v;
    float scale;   /* already resolved (never 0) */
    float softcap; /* 0 = off */
    /* 1 when this call reads each K/V tile of the head once (a single query tile, as in
       decode): the tiles then come from DRAM and are worth prefetching, while tiles that
       several query tiles re-read are in L2 and prefetches only take load slots. */
    int stream_kv;
    /* 1: a tile's 16-bit V is widened once into a float stage before a row-major P V that
       would widen each element once per row block (where the ISA has that stage); 0: widened
       as loaded. Either way the same FMAs and bits (the plan decides: plan/test_hooks.h). */
    int v16_stage;
    /* Score modifiers. Row r of the job has slope slopes[r * mod_step] (NULL: no ALiBi), sink
       sinks[r * mod_step] (NULL: no sinks; -inf: none for that row) and query position
       i' = pos0 + r * pos_step; mod_step is 0 when every row is of one head and 1 when the rows
       are consecutive heads (packed decode, pos_step 0). */
    const float *slopes;
    const float *sinks;
    ptrdiff_t mod_step;
    ptrdiff_t pos0, pos_step;
} spattn_head_job;

/* A row's lse from its softmax shift (natural-log units) and its sum of exp(s - shift): the
   one formula every kernel uses, in double so that a large shift does not swallow log(l);
   -inf for a row that summed nothing. */
static inline float spattn__row_lse(double shift, double l)
{
    return l != 0.0 ? (float)(shift + log(l)) : -INFINITY;
}

typedef struct spattn_kernel_table {
    spattn_isa isa;
    const char *name;
    /* Use the gather path for a query tile whose allowed pairs are fewer than this fraction
       of the area of the PARTIAL key tiles it visits (measured per ISA on scattered keys,
       where no tile is FULL; see docs/kernels.md). */
    double gather_below;
    /* ... counting each pair whose key the row above also allows this fraction less (the
       gather passes find its K and V rows in L1); measured per ISA on causal windows, for
       every K/V type (docs/kernels.md); 0: not measured, the fill alone. */
    double gather_shared;
    /* Floats of scratch one thread needs; gather_rows bounds the rows of a head one
       attn_gather call may get (0: the plan has no gather tiles), gather_keys the keys of
       any one of them. */
    size_t (*scratch_floats)(size_t dim_qk, size_t dim_v, size_t gather_rows, size_t gather_keys);
    /* Tile path: every stored key tile of query tile qt, FULL tiles without per-key tests. */
    void (*attn_tiles)(const spattn_head_job *job, const spattn_mask *mask, size_t qt,
                       float *scratch);
    /* Optional (NULL: not offered): query tiles qt (even) and qt + 1 together, both on the
       tile path, each row's result bitwise what attn_tiles gives it; scratch as for one. */
    void (*attn_tiles2)(const spattn_head_job *job, const spattn_mask *mask, size_t qt,
                        float *scratch);
    /* Gather path: the rows of query tiles qt .. qt + nqt - 1 (all on this path), visiting
       only each row's allowed keys, as the plan listed them in kr. A row's result does not
       depend on nqt: the caller may cut a run of tiles anywhere. */
    void (*attn_gather)(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt, size_t nqt,
                        float *scratch);
    /* Optional (NULL: the plan never mixes paths): query tiles qt .. qt + nqt - 1 (all mixed)
       on both paths, one online softmax across them per row. The tiles flagged in
       kr->tile_gather (PARTIAL ones; their pairs only, read from their bits) come first, then
       every other stored tile of the query tile on the tile path. A row's result does not
       depend on nqt. The plan flags a PARTIAL tile when its allowed pairs are fewer than
       mixed_pairs_per_col times the keys some of its rows allow (measured per ISA, see
       docs/kernels.md; 0: never). */
    void (*attn_mixed)(const spattn_head_job *job, const spattn_mask *mask,
                       const spattn_keyrows *kr, size_t qt, size_t nqt, float *scratch);
    double mixed_pairs_per_col;
    /* Masked softmax of the rows of query tile qt: y[i*ld + j] for every j < len_k is
       exp(scale*x - max)/sum over allowed j, 0 elsewhere (and 0 for rows with none allowed).
       x may equal y. */
    void (*softmax_tile)(const float *x, float *y, size_t ld, const spattn_mask *mask, size_t qt,
                         float scale);
    /* For the benchmark's peak measurement: `iters` rounds of independent FMA chains in this
       ISA's widest vectors (enough chains to cover FMA latency), returning a value that
       depends on all of them; *flops gets the flops done (2 per lane per FMA). */
    float (*fma_probe)(size_t iters, double *flops);
    /* spattn_merge on validated arguments (include/spattn.h): rows x dim, o and lse possibly
       o_parts[0] and lse_parts[0]. Bitwise the same on every ISA (kernels/merge_rows.h). */
    void (*merge_rows)(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                       const float *const *lse_parts, float *o, float *lse);
    /* Backward (F32; plan/backward.c drives it, kernels/bwd.h implements it). The plan lays
       out each query tile's Q, dO, D and lse once per call (kernels/bwd_pack.h), for the
       head's query tiles in order from `packs`. Both kernels visit only stored tiles and
       only their allowed pairs (never reading into a result a K or V row no allowed pair
       touches); dS carries softcap's derivative; the job's q, o, lse and sinks are unused.
       bwd_kv: key tile kt against query tiles en->qt[0 .. n) (increasing) through their
       stored tiles m->tiles[en->tile[e]]: adds P^T dO into dv and dS^T Q (not yet times
       scale) into dk, whose row c (key kt*TK + c) has round16(dim) floats; with `fresh` they
       hold nothing yet (the key tile's first call) and are set, not added to. With
       bwd_solo_dq set and dq not NULL, a query tile whose only stored tile is the entry's
       column-path tile gets its dQ rows at dq + i * dq_ts here (as bwd_q would write them,
       bit for bit; the plan does not call bwd_q for it), and its dS is not kept.
       bwd_q: every stored tile of query tile qt; writes its rows' dQ = scale dS K at
       dq + i * dq_ts (rows with no allowed key get 0). Scratch: bwd_scratch_floats.
       sl: the mask's tile slots and pair lists, en the same of the key tile's entries
       (kernels/bwd_slots.h). ds (may be NULL): the kept dS of a band, which starts at the
       tile whose slot offset is ds0 (bwd_kv) or at stored tile tile0 (bwd_q): dS of stored
       tile t at ds + sl->ds_off[t] - ds0, as kernels/bwd_slots.h lays it out, written by
       bwd_kv and read back by bwd_q instead of recomputing S and dP. */
    size_t (*bwd_scratch_floats)(size_t dim_qk, size_t dim_v);
    void (*bwd_kv)(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                   const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                   int fresh, float *ds, size_t ds0, float *dq, ptrdiff_t dq_ts, float *scratch);
    int bwd_solo_dq;
    void (*bwd_q)(const spattn_head_job *job, const spattn_mask *m, size_t qt, const float *pack,
                  float *dq, ptrdiff_t dq_ts, const float *ds, const spattn_bwd_slots *sl,
                  size_t tile0, float *scratch);
    /* The pack's transposed parts from its rows: cols[16 d + r] = rows[r ld + d] for d < dim
       and r < n_rows <= 16, and 0 in lanes n_rows .. 16 (cols 64-byte aligned). */
    void (*bwd_cols_of_rows)(const float *rows, size_t ld, size_t n_rows, size_t dim, float *cols);
} spattn_kernel_table;

#define SPATTN_KERNEL(isa, table, cpu_bits, auto_bits) extern const spattn_kernel_table table;
#include "kernels/kernels.inc"
#undef SPATTN_KERNEL

#endif

/*
 * The kernel template: every kernel of the table (kernel.h) written once over the vector
 * vocabulary (vec.h). An ISA's translation unit includes its vector header, then this file,
 * then defines its table with SPATTN_TEMPLATE_TABLE. Everything here is static: each ISA file
 * gets its own copy, compiled with its own flags, and exports only its table.
 *
 * The parts, by job:
 *   qk_cols.h          S^T of a 16-row query tile as columns (Q packed transposed)
 *   qk_rows.h          S^T of tiles of at most QR_MAX rows as row dot products
 *   pv_rows.h          P V into row-major O, and its row finish
 *   pv_cols.h          P V into transposed O^T (PV_ROWS 0), and its row finish
 *   softmax_online.h   a query tile's state and the online softmax over its key tiles
 *   tile_walk.h        attn_tiles and attn_tiles2: the walk over the stored key tiles
 *   gather.h           attn_gather: rows through their listed keys
 *   mixed.h            attn_mixed: a query tile's listed keys, then its other tiles
 *   masked_softmax.h   softmax_tile
 *   fma_probe.h        fma_probe
 *   merge.h            merge_rows
 *   bwd.h              the backward: bwd_kv, bwd_q
 */
#ifndef SPATTN_KERNELS_TEMPLATE_H
#define SPATTN_KERNELS_TEMPLATE_H

#include "kernels/bwd.h"
#include "kernels/fma_probe.h"
#include "kernels/gather.h"
#include "kernels/masked_softmax.h"
#include "kernels/merge.h"
#include "kernels/mixed.h"
#include "kernels/tile_walk.h"

/* Tile path, per query tile (two for tpl_tiles2): see tile_state_floats. Gather path: see
   tpl_gather. The plan gives each thread the larger of the two. */
static size_t tpl_scratch_floats(size_t dim_qk, size_t dim_v, size_t gather_rows,
                                 size_t gather_keys)
{
#ifdef QK_NB2
    size_t tile = 2 * tile_state_floats(dim_qk, dim_v);
#else
    size_t tile = tile_state_floats(dim_qk, dim_v);
#endif
    const size_t mixed =
        MIXED_STATES * tile_state_floats(dim_qk, dim_v) + mixed_floats(dim_qk, dim_v);
    tile = tile > mixed ? tile : mixed;
    size_t gather = gather_scores(gather_rows, gather_keys) + gather_sums(gather_rows) +
                    round16(dim_qk) + (gather_rows != 0 ? gather_stage_floats(dim_qk, dim_v) : 0);
    return tile > gather ? tile : gather;
}

#ifdef QK_NB2
#define SPATTN_TEMPLATE_TILES2 tpl_tiles2
#else
#define SPATTN_TEMPLATE_TILES2 NULL
#endif

/* The kernel table of this ISA: `gather_below` and `gather_shared` are the measured crossover
   of the two paths (docs/kernels.md). */
#define SPATTN_TEMPLATE_TABLE(table, isa_id, isa_name, gather_below_, gather_shared_)              \
    const spattn_kernel_table table = {                                                            \
        .isa = isa_id,                                                                             \
        .name = isa_name,                                                                          \
        .gather_below = gather_below_,                                                             \
        .gather_shared = gather_shared_,                                                           \
        .scratch_floats = tpl_scratch_floats,                                                      \
        .attn_tiles = tpl_tiles,                                                                   \
        .attn_tiles2 = SPATTN_TEMPLATE_TILES2,                                                     \
        .attn_gather = tpl_gather,                                                                 \
        .attn_mixed = tpl_mixed,                                                                   \
        .mixed_pairs_per_col = MIXED_PAIRS_PER_COL,                                                \
        .softmax_tile = tpl_softmax,                                                               \
        .fma_probe = tpl_fma_probe,                                                                \
        .merge_rows = tpl_merge_rows,                                                              \
        .bwd_scratch_floats = tpl_bwd_scratch_floats,                                              \
        .bwd_kv = tpl_bwd_kv,                                                                      \
        .bwd_solo_dq = 1,                                                                          \
        .bwd_q = tpl_bwd_q,                                                                        \
        .bwd_cols_of_rows = tpl_bwd_cols_of_rows,                                                  \
    }

#endif

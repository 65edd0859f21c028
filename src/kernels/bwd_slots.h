/*
 * How much dS the backward keeps of each stored tile between its dK/dV pass and its dQ pass
 * (plan/backward.c), and which path a tile takes, which that depends on: ISA-independent, so
 * that the plan can lay the slots out from the masks alone. A tile that is not FULL over 16
 * rows goes pair by pair (kernels/bwd_pairs.h) when its keys average at most
 * BWD_PAIRS_PER_KEY allowed rows, and keeps one float per allowed pair, row by row and each
 * row's keys increasing (rounded up to 16 floats); every other tile goes down the column path and
 * keeps TQ x TK floats, 16 per key (lane r = row r).
 */
#ifndef SPATTN_KERNELS_BWD_SLOTS_H
#define SPATTN_KERNELS_BWD_SLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "mask/mask_impl.h"

#define BWD_PAIRS_PER_KEY 2

/* A mask's stored tiles as the backward's kernels see them, laid out by the plan
   (plan/tiles_by_key.c) in the mask's tile order: where each tile's kept dS starts, and the
   allowed pairs of the tiles that go pair by pair, listed once so that the kernels neither
   test a tile's 16 rows of bits nor find its pairs again on every visit. */
typedef struct spattn_bwd_slots {
    size_t *ds_off;    /* ntiles + 1: kept dS of tile t starts ds_off[t] floats in */
    size_t *pair_off;  /* ntiles + 1: pairs of tile t are pair_rc[pair_off[t] .. pair_off[t + 1]),
                          none for a tile on the column path */
    uint16_t *pair_rc; /* r * TK + c of each pair, row by row, each row's keys increasing: the
                          order of its kept dS */
} spattn_bwd_slots;

/* The entries of one key tile's list (plan/tiles_by_key.h) as bwd_kv reads them, each entry's
   data at its own index so that the walk down a key column reads them in order rather than
   at its tiles' places in the mask. */
typedef struct spattn_bwd_entries {
    const uint32_t *qt;   /* query tile of each entry */
    const uint32_t *tile; /* its stored tile (index into the mask's tiles) */
    const size_t *ds_off; /* where the tile's kept dS starts (spattn_bwd_slots.ds_off) */
    const size_t
        *pair_off; /* n + 1: pairs of entry e are pair_rc[pair_off[e] .. pair_off[e + 1]) */
    const uint16_t *pair_rc; /* as spattn_bwd_slots.pair_rc */
} spattn_bwd_entries;

/* Whether stored tile t goes pair by pair. */
static inline int spattn__bwd_is_pairs(const spattn_bwd_slots *sl, size_t t)
{
    return sl->pair_off[t + 1] != sl->pair_off[t];
}

/* Whether stored tile t of query tile qt goes pair by pair; when it may (not FULL over 16
   rows), its row bits go to rb and its allowed pairs to *pairs. */
static inline int spattn__bwd_tile_pairs(const spattn_mask *m, const spattn_ktile *t, size_t qt,
                                         uint64_t *rb, size_t *pairs)
{
    *pairs = 0;
    if (t->part == SPATTN_FULL && spattn__qt_rows(m, qt) == SPATTN_TQ)
        return 0;
    uint64_t any = 0;
    for (size_t r = 0; r < SPATTN_TQ; r++) {
        rb[r] = spattn__tile_row_bits(m, t, qt, r);
        any |= rb[r];
        *pairs += (size_t)spattn__popcount64(rb[r]);
    }
    return *pairs <= BWD_PAIRS_PER_KEY * (size_t)spattn__popcount64(any);
}

/* Floats of dS kept for stored tile t of query tile qt. */
static inline size_t spattn__bwd_tile_floats(const spattn_mask *m, const spattn_ktile *t, size_t qt)
{
    uint64_t rb[SPATTN_TQ];
    size_t pairs;
    /* whole multiples of 16 floats keep every column-path tile's columns 64-byte aligned */
    return spattn__bwd_tile_pairs(m, t, qt, rb, &pairs) ? (pairs + 15) & ~(size_t)15
                                                        : (size_t)SPATTN_TQ * SPATTN_TK;
}

#endif

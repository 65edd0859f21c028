/* The transposed tile lists of a plan's masks for the backward: for every key tile, the query
   tiles that store a tile in its column (increasing), with the index of that tile. Built once
   per plan, on its first backward call; dK and dV of a key tile are then computed by one
   thread from this list alone. With them, the layout of the dS the backward keeps per tile
   and the pair-path tiles' pairs. */
#ifndef SPATTN_PLAN_TILES_BY_KEY_H
#define SPATTN_PLAN_TILES_BY_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/bwd_slots.h"
#include "mask/mask_impl.h"

typedef struct spattn_keytiles {
    size_t nkt;
    size_t *kt_ptr;         /* nkt + 1: key tile kt's entries are [kt_ptr[kt], kt_ptr[kt + 1]) */
    uint32_t *qt;           /* query tile of each entry */
    uint32_t *tile;         /* index into the mask's tiles of each entry */
    spattn_bwd_slots slots; /* kept dS and pair lists of the tiles (kernels/bwd_slots.h) */
    /* The same per entry, in the entries' order (spattn_bwd_entries): */
    size_t *e_ds_off;    /* ntiles */
    size_t *e_pair_off;  /* ntiles + 1 */
    uint16_t *e_pair_rc; /* as many pairs as slots.pair_rc */
} spattn_keytiles;

typedef struct spattn_bwd_index {
    size_t n_masks;
    spattn_keytiles *by_mask; /* one per mask of the plan's plain schedule (zeroed for NULL) */
} spattn_bwd_index;

/* The lists of masks[0 .. n_masks) (entries may be NULL); NULL when out of memory. */
spattn_bwd_index *spattn__bwd_index_build(const spattn_mask *const *masks, size_t n_masks);
void spattn__bwd_index_free(spattn_bwd_index *x); /* NULL is a no-op */

#endif

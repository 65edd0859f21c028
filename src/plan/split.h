/* Split-KV: the keys of a unit head cut into segments that run as units of their own and are
 * merged afterwards, for problems whose units alone cannot keep threads busy (decode: a few
 * KV heads, long len_k).
 *
 * The segments of a mask are key ranges that depend on the shape and the mask only, never on
 * the thread count, and every row's segments are merged in segment order by the kernel
 * table's merge_rows: a row's result is the same bits for any num_threads.
 *
 * A segment is the run schedule's mask sliced to its keys (spattn_mask_slice), run with K and
 * V advanced to its first key, ALiBi positions moved back by that key, and the sinks in the
 * first segment only; its (o, lse) go to scratch. A mask of one segment runs as in an unsplit
 * plan, straight into o. */
#ifndef SPATTN_SPLIT_H
#define SPATTN_SPLIT_H

#include "plan/schedule.h"

/* The most segments one mask is cut into. */
#define SPATTN_SPLIT_MAX_SEGS 64

/* One piece of work: query tile qt of unit head g (b * heads + hh) on segment seg. */
typedef struct spattn_split_item {
    size_t g, seg, qt;
} spattn_split_item;

typedef struct spattn_split {
    size_t nseg;     /* segments over all masks; 0: the plan does not split */
    size_t *first;   /* n_masks + 1: mask mi's segments are first[mi] .. first[mi + 1] - 1 */
    size_t *k0, *k1; /* nseg: segment i covers keys [k0[i], k1[i]) of its mask */
    /* masks[i]: segment i's mask (its mask sliced to its keys, or the mask itself when it has
       one segment), with each query tile's path and key lists; chunks cut over the items. */
    spattn_schedule segs;
    spattn_split_item *items;
    size_t nitems;
    /* Per unit head: the float offset of its segment results in the split scratch, or
       SIZE_MAX when its mask has a single segment (no merge). Segment s of unit head g keeps
       its o rows at slot[g] + s * rows * dim_v and its lse at slot[g] + nseg(g) * rows * dim_v
       + s * rows, rows being the schedule's. */
    size_t *slot;
    size_t scratch_floats; /* the segment results of one execute */
    size_t merge_units;    /* units (unit head, query tile) that merge: listed in merges */
    size_t *merges;
    size_t gather_rows; /* as spattn__schedule_gather_rows, for the items' chunks */
} spattn_split;

/* Decides whether the run schedule `run` splits and, when it does, builds *sp (left zeroed
   otherwise). SPATTN_E_NOMEM on failure (free *sp then). */
spattn_status spattn__split_build(const spattn_schedule *run, const spattn_kernel_table *kt,
                                  spattn_path path, int nthreads, spattn_split *sp);

/* The segments of mask mi of the run schedule: their count, at least 1. */
static inline size_t spattn__split_nseg(const spattn_split *sp, size_t mi)
{
    return sp->nseg == 0 ? 1 : sp->first[mi + 1] - sp->first[mi];
}

void spattn__split_free(spattn_split *sp);

#endif

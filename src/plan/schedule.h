/* A schedule: which kernel call computes which part of a problem, and how the calls are cut
 * into chunks for threads.
 *
 * The unit of work is one query tile of one unit head: u = (b * heads + hh) * nqt + qt. A unit
 * is computed by exactly one thread and its result does not depend on which other units that
 * thread runs, so output is bitwise the same for any thread count.
 *
 * A plain schedule has one unit head per query head (rows = the head's tokens). A packed
 * decode schedule (len_q == 1, GQA) has one per KV head: its rows are the group's query heads,
 * one mask row repeated (see pack.c). Execute runs either the same way. */
#ifndef SPATTN_SCHEDULE_H
#define SPATTN_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernel.h"
#include "plan/keyrows.h"
#include "plan/test_hooks.h"
#include "validate.h"

typedef struct spattn_schedule {
    spattn_shape shape; /* the problem's */
    size_t n_masks_arg; /* masks as the caller gave them, for spattn__mask_index */
    /* Unit heads: batch * heads of them; unit head hh is query head hh * head_step. */
    size_t heads, head_step;
    int rows_are_heads;        /* tile rows are query heads (row stride = head stride) */
    size_t rows;               /* rows of a unit head: len_q, or head_step when packed */
    size_t nqt;                /* query tiles of a unit head: ceil(rows / TQ) */
    const spattn_mask **masks; /* n_masks references, owned; NULL where no unit uses one */
    size_t n_masks;
    uint8_t *gather;         /* [mask][qt]: SPATTN_QT_TILES, _GATHER or _MIXED (keyrows.h) */
    spattn_keyrows *keyrows; /* [mask]: the rows of its gathered tiles (none: all zero) */
    size_t gather_tiles;     /* units on the gather path */
    size_t mixed_tiles;      /* units on both paths (attn_mixed) */
    int pairs;               /* units qt (even) and qt + 1 of a head may run as one call */
    size_t nchunks;
    size_t *chunk_start; /* nchunks + 1 unit indices */
} spattn_schedule;

/* Where unit u is: batch b, query head h (row 0's), KV head hk, query tile qt, mask mi. */
typedef struct spattn_unit {
    size_t b, h, hk, qt, mi;
} spattn_unit;

static inline spattn_unit spattn__schedule_unit(const spattn_schedule *s, size_t u)
{
    spattn_unit x;
    const size_t g = u / s->nqt;
    x.qt = u % s->nqt;
    x.b = g / s->heads;
    x.h = g % s->heads * s->head_step;
    x.hk = x.h / (s->shape.heads_q / s->shape.heads_kv);
    x.mi = spattn__mask_index(&s->shape, s->n_masks_arg, x.b, x.h);
    return x;
}

static inline size_t spattn__schedule_units(const spattn_schedule *s)
{
    return s->shape.batch * s->heads * s->nqt;
}

/* Sets the unit layout of a schedule with `head_step` query heads per unit head (1: plain;
   more: packed decode rows) and allocates masks[n_masks] (all NULL) for the caller to fill.
   SPATTN_E_NOMEM on failure. */
spattn_status spattn__schedule_init(spattn_schedule *s, const spattn_shape *shape,
                                    size_t n_masks_arg, size_t head_step, size_t n_masks);

/* With the masks in place: the path of every query tile, the key lists of the gathered ones
   and the work split for nthreads. SPATTN_E_NOMEM on failure (free the schedule then). */
spattn_status spattn__schedule_plan(spattn_schedule *s, const spattn_kernel_table *kt,
                                    spattn_path path, int nthreads);

/* The first half of spattn__schedule_plan: the path of every query tile of every mask, the key
   lists of the gathered ones, and whether tile pairs may run. SPATTN_E_NOMEM on failure. */
spattn_status spattn__schedule_paths(spattn_schedule *s, const spattn_kernel_table *kt,
                                     spattn_path path);

/* Items to cut into chunks: cost(ctx, i) of item i (i < n); keep_with_next (NULL: none) says
   that no chunk may end right after item i. */
typedef struct spattn_cut_src {
    uint64_t (*cost)(const void *ctx, size_t i);
    int (*keep_with_next)(const void *ctx, size_t i);
    const void *ctx;
    size_t n;
} spattn_cut_src;

/* The work split of n >= 1 items of cost `total` for nthreads (schedule.c explains it): chunk c
   is items (*chunk_start)[c] .. (*chunk_start)[c + 1] - 1, *nchunks of them. Returns 0 when
   out of memory. */
int spattn__cut_chunks(const spattn_cut_src *src, int nthreads, uint64_t total, int equal_mode,
                       size_t **chunk_start, size_t *nchunks);

/* Estimated cost of query tile qt of m on path `gather` (SPATTN_QT_*; kr: m's key lists, read
   for a mixed one), in pair-operations. */
uint64_t spattn__tile_cost(const spattn_mask *m, const spattn_keyrows *kr, size_t qt, int gather);

/* Estimated cost of unit u, in pair-operations. */
uint64_t spattn__schedule_unit_cost(const spattn_schedule *s, size_t u);

/* The most rows one attn_gather call can get (a run of gather tiles of one head within one
   chunk), or 0 when no unit takes the gather path. */
size_t spattn__schedule_gather_rows(const spattn_schedule *s);

/* Frees what the schedule holds and drops its mask references; a zeroed schedule is fine. */
void spattn__schedule_free(spattn_schedule *s);

#endif

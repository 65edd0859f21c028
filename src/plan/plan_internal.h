/* The plan's fields, shared by plan.c (creation) and execute.c. */
#ifndef SPATTN_PLAN_INTERNAL_H
#define SPATTN_PLAN_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kernels/kernel.h"
#include "plan/test_hooks.h"

struct spattn_plan {
    spattn_shape shape;
    const spattn_kernel_table *kt;
    int nthreads;
    const spattn_mask **masks; /* retained; n_masks of them (1 when the caller gave none) */
    size_t n_masks;
    size_t n_masks_arg;        /* as the caller gave it, for mask indexing */
    size_t nqt;
    uint8_t *gather;           /* [mask][qt]: 1 = gather path */
    spattn_keyrows *keyrows;   /* [mask]: the rows of its gathered tiles (none: all zero) */
    size_t gather_tiles;       /* over all (batch, head) */
    size_t nchunks;
    size_t *chunk_start;       /* nchunks + 1 unit indices */
    /* Decode with GQA (len_q == 1, the heads of a KV group sharing a mask): execute runs the
       group's query heads as the rows of one tile, so each K/V tile is loaded once for all of
       them instead of once per head. pk_masks[mi] repeats row 0 of masks[mi] `group` times.
       The fields above keep describing the plain per-head schedule (spattn_probs uses it). */
    int packed;
    size_t group;
    const spattn_mask **pk_masks; /* n_masks of them, NULL where no group uses that mask */
    size_t pk_n_masks;
    size_t pk_nqt;                /* query tiles of a packed mask: ceil(group / TQ) */
    uint8_t *pk_gather;           /* [mask][pk qt] */
    spattn_keyrows *pk_keyrows;   /* [mask] */
    size_t pk_nchunks;
    size_t *pk_chunk_start;       /* units (b * heads_kv + hk) * pk_nqt + qt */
    size_t scratch_per_thread; /* floats */
    float *scratch;            /* nthreads parts, used by one execute at a time */
    atomic_flag scratch_busy;  /* a concurrent execute allocates its own scratch instead */
};

/* Shared by plan.c and plan_pack.c. */
uint64_t spattn__unit_cost(const spattn_mask *m, size_t qt, int gather);
int spattn__choose_gather(const spattn_kernel_table *kt, const spattn_mask *m, size_t qt,
                          spattn_path path);
/* Lists the gathered rows of masks[0..n) (gather: [mask][nqt]) in kr[0..n); masks that are
   NULL or have no gathered tile get none. */
spattn_status spattn__plan_keyrows(const spattn_mask *const *masks, size_t n, size_t nqt,
                                   const uint8_t *gather, spattn_keyrows *kr);
/* Cuts units 0..nunits-1 (costs from `cost`) into chunks for nthreads: guided (each chunk
   a fixed fraction of the cost left, the last ones short), or when gather_bound (most of the
   cost is gather tiles) a few long chunks of equal cost per thread; never between units u
   (u % pair_period even) and u + 1 when pair_period != 0; 0 when out of memory. */
int spattn__split_units(size_t nunits, int nthreads,
                        uint64_t (*cost)(const spattn_plan *, size_t), const spattn_plan *p,
                        size_t pair_period, int gather_bound, size_t **starts,
                        size_t *nchunks);
/* Sets up the packed decode schedule when the plan qualifies (else leaves packed = 0). */
spattn_status spattn__plan_pack(spattn_plan *p, spattn_path path);

#endif

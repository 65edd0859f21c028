/* The plan's fields, shared by plan.c (creation) and execute.c. */
#ifndef SPATTN_PLAN_INTERNAL_H
#define SPATTN_PLAN_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kernel.h"
#include "plan_impl.h"

struct spattn_plan {
    spattn_shape shape;
    const spattn_kernel_table *kt;
    int nthreads;
    const spattn_mask **masks; /* retained; n_masks of them (1 when the caller gave none) */
    size_t n_masks;
    size_t n_masks_arg;        /* as the caller gave it, for mask indexing */
    size_t nqt;
    uint8_t *gather;           /* [mask][qt]: 1 = gather path */
    size_t gather_tiles;       /* over all (batch, head) */
    size_t nchunks;
    size_t *chunk_start;       /* nchunks + 1 unit indices */
    size_t scratch_per_thread; /* floats */
    float *scratch;            /* nthreads parts, used by one execute at a time */
    atomic_flag scratch_busy;  /* a concurrent execute allocates its own scratch instead */
};

#endif

/* The plan's fields, shared by plan.c (creation), execute.c and probs.c. */
#ifndef SPATTN_PLAN_INTERNAL_H
#define SPATTN_PLAN_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "kernels/kernel.h"
#include "plan/backward_ws.h"
#include "plan/schedule.h"
#include "plan/split.h"
#include "plan/tiles_by_key.h"

struct spattn_plan {
    spattn_shape shape;
    const spattn_kernel_table *kt;
    int nthreads;
    int v16_stage; /* the jobs' spattn_head_job.v16_stage: the CPU's, or the test hook's */
    /* One unit head per query head, over the caller's masks (an all-allowed one owned by the
       plan when the caller gave none); spattn_probs always uses this one. */
    spattn_schedule plain;
    /* For decode with GQA: the group's query heads as the rows of one tile (pack.h); unused
       (zeroed) otherwise. */
    spattn_schedule packed;
    const spattn_schedule *run; /* what execute runs: &plain or &packed */
    /* Split-KV over run's units (split.h); split.nseg == 0 when the plan does not split. */
    spattn_split split;
    size_t scratch_per_thread; /* floats */
    size_t scratch_floats;     /* nthreads parts, then split.scratch_floats */
    float *scratch;            /* used by one execute at a time */
    atomic_flag scratch_busy;  /* a concurrent execute allocates its own scratch instead */
    /* The backward's key-tile lists of plain's masks, built by the first backward call (the
       first to finish publishes; a concurrent builder frees its copy). */
    _Atomic(spattn_bwd_index *) bwd;
    /* The backward's buffers, kept from one call to the next (backward_ws.h). */
    _Atomic(spattn_bwd_ws *) bwd_ws;
};

#endif

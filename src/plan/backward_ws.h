/* The backward's large buffers (packs, dK/dV accumulators, kept dS, per-thread scratch), kept
   by the plan between spattn_plan_backward calls: a training loop calls the backward of one
   plan again and again, and fresh buffers of this size would come back from the allocator as
   new pages to fault in and clear on every call. One call at a time uses the kept set; a
   concurrent call allocates its own. */
#ifndef SPATTN_PLAN_BACKWARD_WS_H
#define SPATTN_PLAN_BACKWARD_WS_H

#include <stddef.h>

typedef struct spattn_bwd_ws {
    size_t n_packs, n_dkv, n_ds, n_scratch; /* floats each holds */
    float *packs, *dkv, *ds, *scratch;      /* 64-byte aligned; ds NULL when n_ds is 0 */
} spattn_bwd_ws;

struct spattn_plan;

/* The plan's kept set if it holds at least the floats asked for, else a new one; NULL when
   out of memory. Its contents are whatever the last call left. */
spattn_bwd_ws *spattn__bwd_ws_take(struct spattn_plan *p, size_t n_packs, size_t n_dkv, size_t n_ds,
                                   size_t n_scratch);
/* Back to the plan for the next call, or freed when the plan already keeps one. */
void spattn__bwd_ws_give(struct spattn_plan *p, spattn_bwd_ws *w);
void spattn__bwd_ws_free(spattn_bwd_ws *w); /* NULL is a no-op */

#endif

/* The backward's kept buffers (backward_ws.h). */
#include "plan/backward_ws.h"

#include <stdatomic.h>

#include "alloc.h"
#include "plan/plan_internal.h"

void spattn__bwd_ws_free(spattn_bwd_ws *w)
{
    if (w == NULL)
        return;
    spattn__aligned_free(w->packs);
    spattn__aligned_free(w->dkv);
    spattn__aligned_free(w->ds);
    spattn__aligned_free(w->scratch);
    spattn__free(w);
}

static int holds(const spattn_bwd_ws *w, size_t n_packs, size_t n_dkv, size_t n_ds,
                 size_t n_scratch)
{
    return w->n_packs >= n_packs && w->n_dkv >= n_dkv && w->n_ds >= n_ds &&
           w->n_scratch >= n_scratch;
}

spattn_bwd_ws *spattn__bwd_ws_take(struct spattn_plan *p, size_t n_packs, size_t n_dkv, size_t n_ds,
                                   size_t n_scratch)
{
    spattn_bwd_ws *w = atomic_exchange(&p->bwd_ws, NULL);
    if (w != NULL && holds(w, n_packs, n_dkv, n_ds, n_scratch))
        return w;
    spattn__bwd_ws_free(w);
    w = spattn__malloc(sizeof *w);
    if (w == NULL)
        return NULL;
    w->n_packs = n_packs;
    w->n_dkv = n_dkv;
    w->n_ds = n_ds;
    w->n_scratch = n_scratch;
    /* at least one float each, so that a buffer is never a NULL that means failure */
    w->packs = spattn__aligned_alloc((n_packs ? n_packs : 1) * sizeof(float));
    w->dkv = spattn__aligned_alloc((n_dkv ? n_dkv : 1) * sizeof(float));
    w->ds = n_ds > 0 ? spattn__aligned_alloc(n_ds * sizeof(float)) : NULL;
    w->scratch = spattn__aligned_alloc((n_scratch ? n_scratch : 1) * sizeof(float));
    if (w->packs == NULL || w->dkv == NULL || (n_ds > 0 && w->ds == NULL) || w->scratch == NULL) {
        spattn__bwd_ws_free(w);
        return NULL;
    }
    return w;
}

void spattn__bwd_ws_give(struct spattn_plan *p, spattn_bwd_ws *w)
{
    spattn_bwd_ws *none = NULL;
    if (!atomic_compare_exchange_strong(&p->bwd_ws, &none, w))
        spattn__bwd_ws_free(w);
}

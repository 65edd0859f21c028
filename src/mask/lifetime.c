/* Mask lifetime: reference counts, the destructor and the size queries. A mask is immutable
   once built, so sharing it between plans and threads needs only the count. */
#include "mask/mask_impl.h"

#include "alloc.h"

void spattn__mask_retain(const spattn_mask *m)
{
    /* refs is the one mutable part of an otherwise immutable mask */
    atomic_fetch_add_explicit(&((spattn_mask *)m)->refs, 1, memory_order_relaxed);
}

void spattn_mask_free(spattn_mask *m)
{
    if (!m)
        return;
    /* release our writes before the last owner frees; that owner acquires them */
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        spattn__mask_destroy(m);
}

size_t spattn_mask_len_q(const spattn_mask *m)
{
    return m ? m->len_q : 0;
}

size_t spattn_mask_len_k(const spattn_mask *m)
{
    return m ? m->len_k : 0;
}

uint64_t spattn_mask_nnz(const spattn_mask *m)
{
    return m ? m->nnz : 0;
}

void spattn__mask_destroy(spattn_mask *m)
{
    if (!m)
        return;
    spattn__free(m->qt_ptr);
    spattn__free(m->tiles);
    spattn__free(m->bits);
    spattn__free(m->qt_nnz);
    spattn__free(m);
}

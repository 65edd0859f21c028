/* The packed decode schedule (see plan_internal.h): one query row per head, several query heads
   per KV head. Per head, a tile kernel would run 1 row of its 16 and stream all of K and V
   through it; packing the group's heads as rows of one tile streams K and V once per group. */
#include "alloc.h"
#include "plan/plan_internal.h"
#include "validate.h"

/* The mask of `group` rows that each allow what row 0 of m allows. */
static spattn_status repeat_row0(const spattn_mask *m, size_t group, spattn_mask **out)
{
    uint64_t nnz = m->qt_nnz[0];
    int64_t rp1[2];
    int32_t *cols = nnz ? spattn__malloc(nnz * sizeof *cols) : NULL;
    int64_t *rp = spattn__malloc((group + 1) * sizeof *rp);
    int32_t *ci = nnz ? spattn__malloc(group * nnz * sizeof *ci) : NULL;
    spattn_status st = SPATTN_E_NOMEM;
    if ((nnz && (cols == NULL || ci == NULL)) || rp == NULL)
        goto done;
    /* Row 0 alone: its first query tile holds only row 0's pairs when len_q == 1. */
    st = spattn_mask_to_csr(m, rp1, cols);
    if (st != SPATTN_OK)
        goto done;
    rp[0] = 0;
    for (size_t r = 0; r < group; r++) {
        for (uint64_t t = 0; t < nnz; t++)
            ci[r * nnz + t] = cols[t];
        rp[r + 1] = rp[r] + (int64_t)nnz;
    }
    st = spattn_mask_from_csr(group, m->len_k, rp, ci, out);
done:
    spattn__free(cols);
    spattn__free(rp);
    spattn__free(ci);
    return st;
}

static size_t source_index(const spattn_plan *p, size_t b, size_t hk)
{
    return p->n_masks_arg == 0 ? 0
                               : spattn__mask_index(&p->shape, p->n_masks_arg, b, hk * p->group);
}

static uint64_t packed_cost(const spattn_plan *p, size_t u)
{
    size_t g = u / p->pk_nqt, qt = u % p->pk_nqt;
    size_t mi = source_index(p, g / p->shape.heads_kv, g % p->shape.heads_kv);
    return spattn__unit_cost(p->pk_masks[mi], qt, p->pk_gather[mi * p->pk_nqt + qt]);
}

spattn_status spattn__plan_pack(spattn_plan *p, spattn_path path)
{
    const spattn_shape *s = &p->shape;
    size_t group = s->heads_q / s->heads_kv;
    if (s->len_q != 1 || group < 2)
        return SPATTN_OK;
    /* Every head of a group must use the same mask (trivially so with 0 or 1 masks). */
    if (p->n_masks_arg > 1)
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_q; h++)
                if (p->masks[spattn__mask_index(s, p->n_masks_arg, b, h)] !=
                    p->masks[spattn__mask_index(s, p->n_masks_arg, b, h - h % group)])
                    return SPATTN_OK;

    p->group = group;
    p->pk_nqt = (group + SPATTN_TQ - 1) / SPATTN_TQ;
    p->pk_masks = spattn__calloc(p->n_masks, sizeof *p->pk_masks);
    p->pk_gather = spattn__calloc(p->n_masks, p->pk_nqt);
    p->pk_keyrows = spattn__calloc(p->n_masks, sizeof *p->pk_keyrows);
    if (p->pk_masks == NULL || p->pk_gather == NULL || p->pk_keyrows == NULL)
        return SPATTN_E_NOMEM;
    p->pk_n_masks = p->n_masks;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t hk = 0; hk < s->heads_kv; hk++) {
            size_t mi = source_index(p, b, hk);
            if (p->pk_masks[mi] != NULL)
                continue;
            spattn_mask *pm;
            spattn_status st = repeat_row0(p->masks[mi], group, &pm);
            if (st != SPATTN_OK)
                return st;
            p->pk_masks[mi] = pm;
            for (size_t qt = 0; qt < p->pk_nqt; qt++)
                p->pk_gather[mi * p->pk_nqt + qt] =
                    (uint8_t)spattn__choose_gather(p->kt, pm, qt, path);
        }
    spattn_status st = spattn__plan_keyrows(p->pk_masks, p->pk_n_masks, p->pk_nqt, p->pk_gather,
                                            p->pk_keyrows);
    if (st != SPATTN_OK)
        return st;
    if (!spattn__split_units(s->batch * s->heads_kv * p->pk_nqt, p->nthreads, packed_cost, p, 0,
                             0, &p->pk_chunk_start, &p->pk_nchunks))
        return SPATTN_E_NOMEM;
    p->packed = 1;
    return SPATTN_OK;
}

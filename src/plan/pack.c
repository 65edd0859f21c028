/* The packed decode schedule: one query row per head, several query heads per KV head. Per
   head, a tile kernel would run 1 row of its 16 and stream all of K and V through it; packing
   the group's heads as rows of one tile streams K and V once per group. */
#include "plan/pack.h"

#include "alloc.h"

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

spattn_status spattn__schedule_pack(const spattn_schedule *plain, const spattn_kernel_table *kt,
                                    spattn_path path, int nthreads, spattn_schedule *out,
                                    int *packed)
{
    const spattn_shape *s = &plain->shape;
    const size_t group = s->heads_q / s->heads_kv, nm = plain->n_masks_arg;
    *packed = 0;
    if (s->len_q != 1 || group < 2)
        return SPATTN_OK;
    /* Every head of a group must use the same mask (trivially so with 0 or 1 masks). */
    if (nm > 1)
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_q; h++)
                if (plain->masks[spattn__mask_index(s, nm, b, h)] !=
                    plain->masks[spattn__mask_index(s, nm, b, h - h % group)])
                    return SPATTN_OK;

    spattn_status st = spattn__schedule_init(out, s, nm, group, plain->n_masks);
    for (size_t b = 0; b < s->batch && st == SPATTN_OK; b++)
        for (size_t hk = 0; hk < s->heads_kv && st == SPATTN_OK; hk++) {
            size_t mi = spattn__mask_index(s, nm, b, hk * group);
            if (out->masks[mi] == NULL) {
                spattn_mask *pm;
                st = repeat_row0(plain->masks[mi], group, &pm);
                if (st == SPATTN_OK)
                    out->masks[mi] = pm;
            }
        }
    if (st == SPATTN_OK)
        st = spattn__schedule_plan(out, kt, path, nthreads);
    if (st != SPATTN_OK) {
        spattn__schedule_free(out);
        return st;
    }
    *packed = 1;
    return SPATTN_OK;
}

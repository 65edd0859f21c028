/* spattn_merge: validation, then the AUTO ISA's merge_rows (kernels/merge_rows.h). */
#include <stdint.h>

#include "kernels/dispatch.h"
#include "validate.h"
#include "spattn.h"

/* Whether n floats from p fit the address space. */
static int fits(const float *p, size_t n)
{
    return (uintptr_t)p <= UINTPTR_MAX - n * sizeof(float);
}

static spattn_status check(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                           const float *const *lse_parts, const float *o, const float *lse)
{
    if (!o_parts || !lse_parts || !o || !lse)
        return SPATTN_E_NULL;
    if (n_parts == 0 || rows == 0 || dim == 0)
        return SPATTN_E_SHAPE;
    if (rows > (size_t)PTRDIFF_MAX / sizeof(float) / dim)
        return SPATTN_E_SHAPE;
    size_t n = rows * dim;
    for (size_t s = 0; s < n_parts; s++)
        if (!o_parts[s] || !lse_parts[s])
            return SPATTN_E_NULL;
    if (!fits(o, n) || !fits(lse, rows))
        return SPATTN_E_SHAPE;
    for (size_t s = 0; s < n_parts; s++)
        if (!fits(o_parts[s], n) || !fits(lse_parts[s], rows))
            return SPATTN_E_SHAPE;
    spattn_range so = spattn__range(o, n), sl = spattn__range(lse, rows);
    if (spattn__overlap(so, sl))
        return SPATTN_E_ARG;
    for (size_t s = 0; s < n_parts; s++) {
        spattn_range po = spattn__range(o_parts[s], n), pl = spattn__range(lse_parts[s], rows);
        int same_o = s == 0 && o_parts[0] == o, same_l = s == 0 && lse_parts[0] == lse;
        if ((!same_o && spattn__overlap(so, po)) || (!same_l && spattn__overlap(sl, pl)) ||
            spattn__overlap(so, pl) || spattn__overlap(sl, po))
            return SPATTN_E_ARG;
    }
    return SPATTN_OK;
}

spattn_status spattn_merge(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                           const float *const *lse_parts, float *o, float *lse)
{
    spattn_status st = check(n_parts, rows, dim, o_parts, lse_parts, o, lse);
    if (st != SPATTN_OK)
        return st;
    const spattn_kernel_table *t;
    int nt;
    st = spattn__resolve(NULL, &t, &nt);
    if (st != SPATTN_OK)
        return st;
    t->merge_rows(n_parts, rows, dim, o_parts, lse_parts, o, lse);
    return SPATTN_OK;
}

/* merge_rows (kernel.h) of the kernel template: the weighted sum of one row's parts along
   dim in vectors, each lane the fma chain that merge_rows.h describes. */
#ifndef SPATTN_KERNELS_MERGE_H
#define SPATTN_KERNELS_MERGE_H

#include "kernels/merge_rows.h"
#include "kernels/vec.h"

static void tpl_merge_group(float *o, size_t dim, const float *w, const float *const *src, size_t g,
                            int started)
{
    vec_t wv[SPATTN_MERGE_GROUP];
    for (size_t k = 0; k < g; k++)
        wv[k] = vec_set1(w[k]);
    size_t k0 = started ? 0 : 1;
    size_t d = 0;
    for (; d + VL <= dim; d += VL) {
        vec_t acc = started ? vec_loadu(o + d) : vec_mul(wv[0], vec_loadu(src[0] + d));
        for (size_t k = k0; k < g; k++)
            acc = vec_fma(wv[k], vec_loadu(src[k] + d), acc);
        vec_storeu(o + d, acc);
    }
    if (d < dim) {
        vmask_t mk = vmask_first(dim - d);
        vec_t acc = started ? vec_loadu_m(o + d, mk) : vec_mul(wv[0], vec_loadu_m(src[0] + d, mk));
        for (size_t k = k0; k < g; k++)
            acc = vec_fma(wv[k], vec_loadu_m(src[k] + d, mk), acc);
        vec_storeu_m(o + d, mk, acc);
    }
}

static void tpl_merge_rows(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                           const float *const *lse_parts, float *o, float *lse)
{
    spattn__merge_rows_with(tpl_merge_group, n_parts, rows, dim, o_parts, lse_parts, o, lse);
}

#endif

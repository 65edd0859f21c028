/* merge_rows of the scalar tier: the vector template's arithmetic one lane at a time, with
   fmaf where the vectors fuse, so that it gives the same bits (merge_rows.h). */
#include "scalar/merge_scalar.h"

#include "kernels/merge_rows.h"

static void scalar_merge_group(float *o, size_t dim, const float *w, const float *const *src,
                               size_t g, int started)
{
    size_t k0 = started ? 0 : 1;
    for (size_t d = 0; d < dim; d++) {
        float acc = started ? o[d] : w[0] * src[0][d];
        for (size_t k = k0; k < g; k++)
            acc = fmaf(w[k], src[k][d], acc);
        o[d] = acc;
    }
}

void spattn__merge_rows_scalar(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                               const float *const *lse_parts, float *o, float *lse)
{
    spattn__merge_rows_with(scalar_merge_group, n_parts, rows, dim, o_parts, lse_parts, o, lse);
}

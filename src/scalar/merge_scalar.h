/* merge_rows (kernel.h) of the scalar tier. */
#ifndef SPATTN_SCALAR_MERGE_SCALAR_H
#define SPATTN_SCALAR_MERGE_SCALAR_H

#include <stddef.h>

void spattn__merge_rows_scalar(size_t n_parts, size_t rows, size_t dim, const float *const *o_parts,
                               const float *const *lse_parts, float *o, float *lse);

#endif

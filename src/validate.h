/* Argument checks shared by forward, plans, softmax and the reference, so every entry point
   returns the same status for the same mistake. */
#ifndef SPATTN_VALIDATE_H
#define SPATTN_VALIDATE_H

#include "spattn.h"

spattn_status spattn__check_shape(const spattn_shape *s);
spattn_status spattn__check_masks(const spattn_shape *s, const spattn_mask *const *masks,
                                  size_t n_masks);
/* Pointers, layouts, aliasing, scale and softcap of args (its shape already checked). */
spattn_status spattn__check_tensors(const spattn_args *a);
/* scale as given (0 = default) -> the value to use. */
float spattn__resolve_scale(float scale, size_t dim_qk);
/* Index of the mask of (b, h) among n_masks (0 when n_masks <= 1). */
size_t spattn__mask_index(const spattn_shape *s, size_t n_masks, size_t b, size_t h);

/* Softmax arguments (all but options). */
spattn_status spattn__check_softmax(const float *x, const float *y, size_t rows, size_t cols,
                                    size_t ld, const spattn_mask *mask, float scale);

#endif

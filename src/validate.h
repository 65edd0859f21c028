/* Argument checks shared by forward, plans, softmax and the reference, so every entry point
   returns the same status for the same mistake. */
#ifndef SPATTN_VALIDATE_H
#define SPATTN_VALIDATE_H

#include <stdint.h>

#include "spattn.h"

spattn_status spattn__check_shape(const spattn_shape *s);
spattn_status spattn__check_masks(const spattn_shape *s, const spattn_mask *const *masks,
                                  size_t n_masks);
/* Pointers, element types, layouts, aliasing, scale and softcap of args (its shape already
   checked). */
spattn_status spattn__check_tensors(const spattn_args *a);
/* The inputs and outputs of spattn_probs (shape already equal to the plan's): q and k
   (NULL -> E_NULL), their element types (E_ARG), their views and the np floats of probs / the
   column sums (E_SHAPE), outputs overlapping the inputs or each other (E_ARG), scale and softcap.
 */
spattn_status spattn__check_probs(const spattn_args *a, const float *probs, uint64_t np,
                                  const float *col_sums);
/* 1 when the two shapes are equal in every field. */
int spattn__same_shape(const spattn_shape *a, const spattn_shape *b);
/* scale as given (0 = default) -> the value to use. */
float spattn__resolve_scale(float scale, size_t dim_qk);
/* Index of the mask of (b, h) among n_masks (0 when n_masks <= 1). */
size_t spattn__mask_index(const spattn_shape *s, size_t n_masks, size_t b, size_t h);

/* A strided [batch][head][token][dim] view (dim contiguous), for the checks of every entry
   point that takes tensors. */
typedef struct spattn_view {
    size_t n[4];
    ptrdiff_t st[4];
} spattn_view;
spattn_view spattn__view(size_t b, size_t h, size_t t, size_t d, spattn_layout l);
/* Its span in elements (last offset + 1), or 0 when a stride is negative, the span overflows
   or its bytes (es each) exceed PTRDIFF_MAX. */
size_t spattn__view_span(const spattn_view *v, size_t es);
/* Sufficient for no two elements sharing an address: ordered by stride, each axis of size > 1
   steps past everything the smaller axes reach (the view's span already checked). */
int spattn__view_injective(const spattn_view *v);

/* The bytes of n floats from p, [lo, hi), for overlap checks. */
typedef struct spattn_range {
    uintptr_t lo, hi;
} spattn_range;
static inline spattn_range spattn__range(const void *p, size_t n)
{
    spattn_range r = {(uintptr_t)p, (uintptr_t)p + n * sizeof(float)};
    return r;
}
/* The bytes of n elements of es bytes each from p. */
static inline spattn_range spattn__range_of(const void *p, size_t n, size_t es)
{
    spattn_range r = {(uintptr_t)p, (uintptr_t)p + n * es};
    return r;
}
static inline int spattn__overlap(spattn_range a, spattn_range b)
{
    return a.lo < b.hi && b.lo < a.hi;
}

/* Softmax arguments (all but options). */
spattn_status spattn__check_softmax(const float *x, const float *y, size_t rows, size_t cols,
                                    size_t ld, const spattn_mask *mask, float scale);

#endif

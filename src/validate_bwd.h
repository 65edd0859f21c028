/* Argument checks of the backward (plan and reference alike). */
#ifndef SPATTN_VALIDATE_BWD_H
#define SPATTN_VALIDATE_BWD_H

#include "spattn.h"

/* Everything of a backward call but the shape and masks (checked first by the caller): the
   forward tensors as spattn__check_tensors, lse and the gradient pointers present, gradient
   views in range (outputs injective), and no output overlapping an input or another output.
   Statuses as documented at spattn_plan_backward. */
spattn_status spattn__check_backward(const spattn_args *a, const spattn_grads *g);

#endif

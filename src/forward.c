#include "spattn.h"

spattn_status spattn_forward(const spattn_args *args, const spattn_mask *const *masks,
                             size_t n_masks, const spattn_options *opt)
{
    if (args == NULL)
        return SPATTN_E_NULL;
    spattn_plan *plan;
    spattn_status st = spattn_plan_create(&args->shape, masks, n_masks, opt, &plan);
    if (st != SPATTN_OK)
        return st;
    st = spattn_plan_execute(plan, args);
    spattn_plan_free(plan);
    return st;
}

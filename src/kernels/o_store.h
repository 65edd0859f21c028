/*
 * Writing O rows in the job's o_dtype: a row is accumulated in float and rounded to nearest
 * even once, as it is stored (each O row is written once, kernel.h). 16-bit rows are narrowed
 * in registers by the vocabulary's vec_storeu_{bf16,f16}, bit for bit spattn__store_row.
 */
#ifndef SPATTN_KERNELS_O_STORE_H
#define SPATTN_KERNELS_O_STORE_H

#include "convert.h"
#include "kernels/common.h"

/* Row i of the job's O. */
static inline void *o_row(const spattn_head_job *job, size_t i)
{
    return (char *)job->o + (ptrdiff_t)i * job->o_ts * (ptrdiff_t)spattn__dtype_size(job->o_dtype);
}

/* Lanes [0, n) of x (1 <= n <= VL) to elements e .. e + n of O row o. */
SPATTN_ALWAYS_INLINE void o_store(const spattn_head_job *job, void *o, size_t e, size_t n, vec_t x)
{
    if (job->o_dtype == SPATTN_DTYPE_F32) {
        if (n == VL)
            vec_storeu((float *)o + e, x);
        else
            vec_storeu_m((float *)o + e, vmask_first(n), x);
    } else if (job->o_dtype == SPATTN_DTYPE_BF16) {
        if (n == VL)
            vec_storeu_bf16((uint16_t *)o + e, x);
        else
            vec_storeu_bf16_m((uint16_t *)o + e, vmask_first(n), x);
    } else {
        if (n == VL)
            vec_storeu_f16((uint16_t *)o + e, x);
        else
            vec_storeu_f16_m((uint16_t *)o + e, vmask_first(n), x);
    }
}

#endif

/*
 * The gather path's stage (gather.h, gather_staged): 16-bit K and V rows of a run of rows
 * whose keys lie close together, widened once into scratch for the passes to read as float32.
 */
#ifndef SPATTN_KERNELS_GATHER_STAGE_H
#define SPATTN_KERNELS_GATHER_STAGE_H

#include "kernels/common.h"
#include "kernels/gather_dots.h"
#include "kernels/kv_load.h"
#include "kernels/o_store.h"

/* 16-bit K and V on rows whose keys lie close together (windows, local heads): the passes
   widen a K or V row for every pair that reads it, as many times as rows share the key, and
   the widening instructions take the ports the FMAs need. Such rows go in sub-batches whose
   keys span at most spattn__stage_keys: their K and V rows are widened once into the stage, and
   the passes run on it as float32 rows (keys relative to the span's first), which are the
   same values in the same products and order, so the same bits. */
#define GATHER_STAGE_ROWS 256
#define GATHER_STAGE_LIST 16384 /* keys of a sub-batch's rows, together */
/* The 16-bit K/V types that take it (measured): AVX-512 both; AVX2 bf16, not f16, whose one
   conversion instruction per vector costs less there than the stage (docs/kernels.md); NEON
   none (not measured), nor scratch for it. */
#if VL == 16
#define GATHER_STAGE_TYPE(kvt) ((kvt) != SPATTN_DTYPE_F32)
#elif VL == 8
#define GATHER_STAGE_TYPE(kvt) ((kvt) == SPATTN_DTYPE_BF16)
#else
#define GATHER_STAGE_TYPE(kvt) ((void)(kvt), 0)
#define GATHER_STAGE_NONE
#endif

/* The stage: K rows (round16(dim_qk) floats apart), V rows (round16(dim_v)), then the
   sub-batch's row offsets (size_t) and relative keys (uint32). */
static size_t gather_stage_floats(size_t dq, size_t dv)
{
#ifdef GATHER_STAGE_NONE
    (void)dq;
    (void)dv;
    return 0;
#else
    const size_t offs = round16((GATHER_STAGE_ROWS + 1) * sizeof(size_t) / sizeof(float));
    return spattn__stage_keys(dq, dv) * (round16(dq) + round16(dv)) + offs + GATHER_STAGE_LIST;
#endif
}

/* Whether kr's rows take the stage in job's call: the plan found them local (kr->local), K
   and V are of a type that takes it and read by the passes as floats (not as bf16 pairs), and
   there are no residue blocks (their scratch is where the stage would be). */
static int gather_stage_pays(const spattn_head_job *job, const spattn_keyrows *kr)
{
    return kr->local && kr->prog_stride == 0 && GATHER_STAGE_TYPE(job->kv_dtype) &&
           !GATHER_PAIRS((int)job->kv_dtype, job);
}

/* The job of rows b .. of job, whose K and V are the stage's float32 rows for keys lo ..: row
   r of the result is row b + r of job, key j is key lo + j. */
static spattn_head_job gather_stage_job(const spattn_head_job *job, size_t b, size_t lo,
                                        const float *ks, const float *vs)
{
    spattn_head_job x = *job;
    const ptrdiff_t r = (ptrdiff_t)b;
    x.q = (const char *)job->q + r * job->q_ts * (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    x.o = o_row(job, b);
    x.lse = job->lse != NULL ? job->lse + b : NULL;
    x.slopes = job->slopes != NULL ? job->slopes + r * job->mod_step : NULL;
    x.sinks = job->sinks != NULL ? job->sinks + r * job->mod_step : NULL;
    x.pos0 = job->pos0 + r * job->pos_step - (ptrdiff_t)lo;
    x.k = ks;
    x.v = vs;
    x.k_ts = (ptrdiff_t)round16(job->dim_qk);
    x.v_ts = (ptrdiff_t)round16(job->dim_v);
    x.kv_dtype = SPATTN_DTYPE_F32;
    return x;
}

/* Rows lo .. hi of x (dim elements of type kvt, ts apart) widened into dst, ld floats apart. */
SPATTN_ALWAYS_INLINE void gather_stage_rows(const int kvt, float *dst, size_t ld, const void *x,
                                            ptrdiff_t ts, size_t lo, size_t hi, size_t dim)
{
    for (size_t j = lo; j <= hi; j++)
        kv_widen_row(kvt, dst + (j - lo) * ld, kv_row(kvt, x, (ptrdiff_t)j, ts), dim);
}

#endif

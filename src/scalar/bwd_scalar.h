/* The portable tier's backward kernels (kernel.h: bwd_scratch_floats, bwd_kv, bwd_q,
   bwd_cols_of_rows). */
#ifndef SPATTN_SCALAR_BWD_SCALAR_H
#define SPATTN_SCALAR_BWD_SCALAR_H

#include "kernels/kernel.h"

size_t spattn__bwd_scratch_scalar(size_t dim_qk, size_t dim_v);
void spattn__bwd_kv_scalar(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                           const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                           int fresh, float *ds_keep, size_t ds0, float *dq_out, ptrdiff_t dq_ts,
                           float *scratch);
void spattn__bwd_q_scalar(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                          const float *pack, float *dq, ptrdiff_t dq_ts, const float *ds_keep,
                          const spattn_bwd_slots *sl, size_t tile0, float *scratch);
void spattn__bwd_cols_of_rows_scalar(const float *rows, size_t ld, size_t n_rows, size_t dim,
                                     float *cols);

#endif

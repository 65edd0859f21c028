/* The packed decode schedule of a plan (pack.c). */
#ifndef SPATTN_PACK_H
#define SPATTN_PACK_H

#include "plan/schedule.h"

/* When the plain schedule is decode with GQA (len_q == 1, every head of a KV group sharing
   a mask), builds in *out the schedule that runs the group's query heads as the rows of one
   tile, so each K/V tile is loaded once for all of them, and sets *packed = 1; otherwise
   leaves *out alone and sets *packed = 0. On SPATTN_E_NOMEM *out is freed. */
spattn_status spattn__schedule_pack(const spattn_schedule *plain, const spattn_kernel_table *kt,
                                    spattn_path path, int nthreads, spattn_schedule *out,
                                    int *packed);

#endif

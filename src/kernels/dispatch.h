/* Kernel selection: the one table of kernels per ISA, filled once from kernels.inc. */
#ifndef SPATTN_DISPATCH_H
#define SPATTN_DISPATCH_H

#include "kernels/kernel.h"
#include "spattn.h"

/* The table for `isa` (not AUTO) when it is compiled in and runnable here, else NULL. */
const spattn_kernel_table *spattn__kernels_for(spattn_isa isa);

/* Resolves options (NULL = defaults) to a kernel table and a thread count >= 1.
   SPATTN_E_ARG for a bad enum or negative thread count, SPATTN_E_UNSUPPORTED for an ISA that
   is not available (or AUTO when SPATTN_ISA names one that is not). */
spattn_status spattn__resolve(const spattn_options *opt, const spattn_kernel_table **table,
                              int *num_threads);

#endif

/* AVX-512 + AMX-BF16 kernels: the AVX-512 template's tile path with Q.K and P.V as AMX tile
   products (tdpbf16ps) for jobs whose Q and K are both bf16 (x86/amx_qk.h,
   x86/amx_pv.h), every other job and entry the AVX-512 tier's own function
   (kernels/bf16_tier.h). */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__) || !defined(__AVX512BF16__)
#error                                                                                             \
    "attn_avx512amx.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx512bf16 -mamx-tile -mamx-bf16"
#endif

#include "x86/vec_avx512amx.h"

#define BF16_BASE_TABLE spattn_kernels_avx512
#include "kernels/bf16_tier.h"

/* The crossovers are avx512's (its gather path is avx512's; not measured with AMX). */
SPATTN_TEMPLATE_TABLE(spattn_kernels_avx512amx, SPATTN_ISA_AVX512AMX, "avx512amx", 0.45, 0.4);

/* NEON + FEAT_BF16 kernels: the tile path of the NEON template with Q.K as bf16 pair dot
   products (BFDOT) for jobs whose Q and K are both bf16, every other job and entry the NEON
   tier's own function (kernels/bf16_tier.h). */
#if !defined(__aarch64__) || !defined(__ARM_NEON) || !defined(__ARM_FEATURE_BF16_VECTOR_ARITHMETIC)
#error "attn_neon_bf16.c must be compiled for AArch64 with -march=armv8.2-a+bf16 (or later)"
#endif

#include "arm/vec_neon_bf16.h"

#define BF16_BASE_TABLE spattn_kernels_neon
#include "kernels/bf16_tier.h"

/* gather_below: NEON's (not measured on Arm hardware; the pairs halve the dot instructions of
   the tile path's Q.K, which would move the crossover lower). */
SPATTN_TEMPLATE_TABLE(spattn_kernels_neonbf16, SPATTN_ISA_NEON_BF16, "neonbf16", 0.3, 0.0);

/* AVX-512 + AVX512-BF16 kernels: the AVX-512 template's tile path with Q.K and P.V as bf16
   pair dot products (vdpbf16ps) for jobs whose Q and K are both bf16, every other job and
   entry the AVX-512 tier's own function (kernels/bf16_tier.h). */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__) || !defined(__AVX512BF16__)
#error                                                                                             \
    "attn_avx512bf16.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma -mavx512bf16"
#endif

#include "x86/vec_avx512bf16.h"

#define BF16_BASE_TABLE spattn_kernels_avx512
#include "kernels/bf16_tier.h"

SPATTN_TEMPLATE_TABLE(spattn_kernels_avx512bf16, SPATTN_ISA_AVX512BF16, "avx512bf16", 0.45, 0.4);

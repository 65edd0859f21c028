/* AVX2 + FMA kernels: the kernel template over pairs of ymm columns. */
#if !defined(__AVX2__) || !defined(__FMA__) || !defined(__F16C__)
#error "attn_avx2.c must be compiled with -mavx2 -mfma -mf16c"
#endif

#include "x86/vec_avx2.h"
#include "x86/vec_avx2_bf16eo.h" /* before the template, which tests VEC_BF16_EO */

#include "kernels/template.h"

SPATTN_TEMPLATE_TABLE(spattn_kernels_avx2, SPATTN_ISA_AVX2, "avx2", 0.6, 0.25);

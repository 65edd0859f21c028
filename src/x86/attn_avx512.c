/* AVX-512 (F/BW/DQ/VL) + FMA kernels: the kernel template over zmm columns. */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512DQ__) ||                   \
    !defined(__AVX512VL__) || !defined(__FMA__)
#error "attn_avx512.c must be compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma"
#endif

#include "x86/vec_avx512.h"
#include "x86/vec_avx512_bf16eo.h" /* before the template, which tests VEC_BF16_EO */

#include "kernels/template.h"

SPATTN_TEMPLATE_TABLE(spattn_kernels_avx512, SPATTN_ISA_AVX512, "avx512", 0.45, 0.4);

/*
 * exp2 for the x86 kernels: SLEEF's exp2f (1.0 ULP), wrapped so that it never returns a
 * subnormal. The kernels only need 2^x for x <= 0 (scores minus their running max); lanes below
 * 2^-125 (masked keys are x = -inf) come out as exact 0 instead, because a subnormal result, or
 * a multiply by one, takes a microcode assist costing hundreds of cycles and made PARTIAL tiles
 * three times slower than FULL ones. Flushing below 2^-125 is harmless here: every sum it
 * enters holds a term >= 1. NaN compares unordered and stays NaN.
 */
#ifndef SPATTN_X86_MATH_H
#define SPATTN_X86_MATH_H

#include <immintrin.h>
#include <sleef.h>

#if defined(__AVX512F__)
static inline __attribute__((always_inline)) __m512 spattn__exp2_zmm(__m512 x)
{
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ);
    x = _mm512_max_ps(_mm512_set1_ps(-125.0f), x);
    return _mm512_maskz_mov_ps(keep, Sleef_exp2f16_u10avx512f(x));
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __attribute__((always_inline)) __m256 spattn__exp2_ymm(__m256 x)
{
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-125.0f), _CMP_NLT_UQ);
    x = _mm256_max_ps(_mm256_set1_ps(-125.0f), x);
    return _mm256_and_ps(Sleef_exp2f8_u10avx2(x), keep);
}
#endif

#endif

/*
 * exp2 for the x86 kernels. SLEEF's exp2f measures 0.30 ns/element (u10) and 0.36 (u35) on
 * AVX-512 here, about 18 cycles a zmm: a quarter of a dense tile's time. The kernels only need
 * 2^x for x <= 0 (scores minus their running max), which a degree-7 polynomial on the rounded
 * fraction gives within ~1 ulp in about ten instructions (docs/kernels-x86.md).
 *
 * Contract: exact 0 for x = -inf and for x below the float range, NaN for NaN, x <= 128.
 */
#ifndef SPATTN_X86_MATH_H
#define SPATTN_X86_MATH_H

#include <immintrin.h>

/* Taylor coefficients ln(2)^k / k! of 2^f; on |f| <= 1/2 the first dropped term is 5e-9. */
#define SPATTN_EXP2_C1 0.693147180559945f
#define SPATTN_EXP2_C2 0.240226506959101f
#define SPATTN_EXP2_C3 0.0555041086648216f
#define SPATTN_EXP2_C4 0.00961812910762848f
#define SPATTN_EXP2_C5 0.00133335581464284f
#define SPATTN_EXP2_C6 0.000154035303933816f
#define SPATTN_EXP2_C7 1.52527338040598e-05f

#if defined(__AVX512F__)
static inline __attribute__((always_inline)) __m512 spattn__exp2_zmm(__m512 x)
{
    /* x second: vmaxps returns it when it is NaN. -151 scales to 2^-151, which rounds to 0. */
    x = _mm512_max_ps(_mm512_set1_ps(-151.0f), x);
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(SPATTN_EXP2_C7);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C6));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C5));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C4));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C3));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C2));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(SPATTN_EXP2_C1));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __attribute__((always_inline)) __m256 spattn__exp2_ymm(__m256 x)
{
    /* Clamped to [-127, 128] (NaN kept): 2^-127 is built as the all-zero bit pattern, so
       everything below -126.5 comes out exactly 0; 128 gives the infinity pattern. */
    x = _mm256_max_ps(_mm256_set1_ps(-127.0f), x);
    x = _mm256_min_ps(_mm256_set1_ps(128.0f), x);
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(SPATTN_EXP2_C7);
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C6));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C5));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C4));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C3));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C2));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(SPATTN_EXP2_C1));
    p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif

#endif

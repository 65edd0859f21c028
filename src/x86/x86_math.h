/*
 * exp2 for the x86 kernels. SLEEF's exp2f measures 0.30 ns/element (u10) and 0.36 (u35) on
 * AVX-512 here, about 18 cycles a zmm: a quarter of a dense tile's time. The kernels only need
 * 2^x for x <= 0 (scores minus their running max), which a degree-7 polynomial on the rounded
 * fraction gives within ~1 ulp in about ten instructions (docs/kernels-x86.md).
 *
 * Contract: exact 0 for x < -125 (including -inf) instead of a subnormal, NaN for NaN; x <= 128.
 * Flushing below 2^-125 is harmless here: every sum it enters holds a term >= 1.
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
    /* Lanes that would come out subnormal are not computed but zeroed by the mask: a scalef
       that underflows takes a microcode assist costing hundreds of cycles, and masked-out
       keys (x = -inf) hit it on every PARTIAL tile. NaN compares unordered, so it is kept. */
    __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-125.0f), _CMP_NLT_UQ);
    x = _mm512_max_ps(_mm512_set1_ps(-125.0f), x);
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
    return _mm512_maskz_scalef_ps(keep, p, n);
}
#endif

#if defined(__AVX2__) && defined(__FMA__)
static inline __attribute__((always_inline)) __m256 spattn__exp2_ymm(__m256 x)
{
    /* Below -125 the result is 0, never a subnormal (whose multiply would take a microcode
       assist): the scale factor is zeroed there. NaN compares unordered and stays NaN. */
    __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-125.0f), _CMP_NLT_UQ);
    x = _mm256_max_ps(_mm256_set1_ps(-125.0f), x);
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
    __m256i e =
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_and_ps(_mm256_castsi256_ps(e), keep));
}
#endif

#endif

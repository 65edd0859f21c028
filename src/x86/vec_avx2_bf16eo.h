/*
 * bf16 rows as even and odd elements (part of the AVX2 vector layer, vec_avx2.h).
 *
 * Widening 8 bf16 to floats takes a widening load and a shift, which on a Zen 1-class core
 * showed as FMA time (docs/kernels.md, "Small query tiles on AVX2"). One 32-byte load of 16
 * bf16 gives two vectors of floats with one instruction each instead: the even elements are
 * the low halves of its 32-bit lanes, shifted up, the odd ones the high halves, which are
 * floats once the low half is cleared. The row-major P V (pv_rows.h) takes bf16 V this way
 * and keeps O's accumulators in the same order, put back in order once per pass; each O
 * element still takes the same FMAs in the same order, so its bits do not change. (Q.K is
 * not taken this way: its dot products would sum in another order than float32 K's, and a
 * bf16 call gives the bits of the float32 call on the same values, docs/dtypes.md.)
 */
#ifndef SPATTN_VEC_AVX2_BF16EO_H
#define SPATTN_VEC_AVX2_BF16EO_H

#define VEC_BF16_EO 1

/* Elements 0, 2, .. 14 of p into *even and 1, 3, .. 15 into *odd. */
SPATTN_ALWAYS_INLINE void vec_loadu_bf16_eo(const uint16_t *p, vec_t *even, vec_t *odd)
{
    const __m256i w = _mm256_loadu_si256((const __m256i *)(const void *)p);
    *even = _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    *odd = _mm256_and_ps(_mm256_castsi256_ps(w),
                         _mm256_castsi256_ps(_mm256_set1_epi32((int)0xFFFF0000u)));
}

/* a = elements 0-7 and b = 8-15 of 16 floats as their even and odd elements, and back. */
SPATTN_ALWAYS_INLINE void vec_to_eo(vec_t a, vec_t b, vec_t *even, vec_t *odd)
{
    *even = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xD8));
    *odd = _mm256_castpd_ps(
        _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xDD)), 0xD8));
}
SPATTN_ALWAYS_INLINE void vec_from_eo(vec_t even, vec_t odd, vec_t *a, vec_t *b)
{
    const __m256 lo = _mm256_unpacklo_ps(even, odd), hi = _mm256_unpackhi_ps(even, odd);
    *a = _mm256_permute2f128_ps(lo, hi, 0x20);
    *b = _mm256_permute2f128_ps(lo, hi, 0x31);
}

#endif

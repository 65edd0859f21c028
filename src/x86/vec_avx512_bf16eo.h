/*
 * bf16 rows as even and odd elements (part of the AVX-512 vector layer, vec_avx512.h), as
 * vec_avx2_bf16eo.h does for AVX2: one 64-byte load of 32 bf16 gives two vectors of floats
 * with one instruction each (the even elements shifted up out of the low halves of the 32-bit
 * lanes, the odd ones with the low halves cleared), where widening 16 at a time takes a
 * widening load and a shift, both on the FMA ports of Intel cores. The row-major P V
 * (pv_rows.h) and the gather path's P V (gather.h) keep O's accumulators in the same order
 * and put them back once per row; each O element takes the same FMAs in the same order, so
 * its bits do not change.
 */
#ifndef SPATTN_VEC_AVX512_BF16EO_H
#define SPATTN_VEC_AVX512_BF16EO_H

#define VEC_BF16_EO 1

/* Elements 0, 2, .. 30 of p into *even and 1, 3, .. 31 into *odd. */
SPATTN_ALWAYS_INLINE void vec_loadu_bf16_eo(const uint16_t *p, vec_t *even, vec_t *odd)
{
    const __m512i w = _mm512_loadu_si512((const void *)p);
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xFFFF0000u)));
}

/* a = elements 0-15 and b = 16-31 of 32 floats as their even and odd elements, and back. */
SPATTN_ALWAYS_INLINE void vec_to_eo(vec_t a, vec_t b, vec_t *even, vec_t *odd)
{
    const __m512i ie = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i io = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    *even = _mm512_permutex2var_ps(a, ie, b);
    *odd = _mm512_permutex2var_ps(a, io, b);
}
SPATTN_ALWAYS_INLINE void vec_from_eo(vec_t even, vec_t odd, vec_t *a, vec_t *b)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi =
        _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    *a = _mm512_permutex2var_ps(even, lo, odd);
    *b = _mm512_permutex2var_ps(even, hi, odd);
}

#endif

/* What the AVX2 and AVX-512 vector headers share: the 4-float type of vec_hsums4 and the
   prefetches, which are the same instructions at either width. */
#ifndef SPATTN_VEC_X86_H
#define SPATTN_VEC_X86_H

#include <immintrin.h>

#define SPATTN_ALWAYS_INLINE static inline __attribute__((always_inline))

typedef __m128 q4_t;
SPATTN_ALWAYS_INLINE q4_t q4_zero(void)
{
    return _mm_setzero_ps();
}
SPATTN_ALWAYS_INLINE void vec_prefetch_l1(const void *p)
{
    _mm_prefetch((const char *)p, _MM_HINT_T0);
}
SPATTN_ALWAYS_INLINE void vec_prefetch_l2(const void *p)
{
    _mm_prefetch((const char *)p, _MM_HINT_T1);
}

#endif

/*
 * The AVX-512 vocabulary plus the bf16 pair dot product of AVX512-BF16 (vdpbf16ps): a col_t
 * whose 32-bit lanes each hold two bfloat16 values (the lower-addressed one in the low half),
 * multiplied lane-wise by another such pair and both products added to a float lane. The
 * products of two bf16 values are exact in float; the two additions round to nearest even,
 * and subnormal inputs and results are taken as zero (the instruction's fixed behaviour).
 */
#ifndef SPATTN_VEC_AVX512BF16_H
#define SPATTN_VEC_AVX512BF16_H

#ifndef __AVX512BF16__
#error "vec_avx512bf16.h needs -mavx512bf16"
#endif

#include <string.h>

#include "x86/vec_avx512.h"

/* The template's QK in column form takes dim pairs where K is bf16 (kernels/qk_cols.h). */
#define VEC_BF16_DOT 1

/* Two adjacent bf16 values at p, as a pair in every lane. */
SPATTN_ALWAYS_INLINE col_t col_bcast_pair(const uint16_t *p)
{
    int32_t w;
    memcpy(&w, p, sizeof w);
    return _mm512_castsi512_ps(_mm512_set1_epi32(w));
}

/* acc + qp . kp per lane, both operands bf16 pairs. */
SPATTN_ALWAYS_INLINE col_t col_dot_pair(col_t qp, col_t kp, col_t acc)
{
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_castps_si512(qp),
                            (__m512bh)_mm512_castps_si512(kp));
}

/* acc + qp . (the pair at p), the pair broadcast from memory inside the instruction. */
SPATTN_ALWAYS_INLINE col_t col_dot_pair_bc(col_t qp, const uint16_t *p, col_t acc)
{
    return col_dot_pair(qp, col_bcast_pair(p), acc);
}

#endif

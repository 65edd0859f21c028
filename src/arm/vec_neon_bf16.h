/*
 * The NEON vocabulary plus the bf16 pair dot product of FEAT_BF16 (BFDOT): a col_t whose
 * 32-bit lanes each hold two bfloat16 values (the lower-addressed one in the low half),
 * multiplied lane-wise by another such pair and both products added to a float lane. The
 * products of two bf16 values are exact in float; unlike vdpbf16ps, the instruction rounds the
 * sum of the two products and then the sum with the accumulator to odd, not to nearest even,
 * and takes subnormal inputs and results as zero, whatever FPCR says (FEAT_EBF16 can change
 * that; it is left at its default). Only Q.K takes pairs on this tier: P.V runs transposed
 * (PV_ROWS 0), where pairs of keys would need a zip of two V rows per dot.
 */
#ifndef SPATTN_VEC_NEON_BF16_H
#define SPATTN_VEC_NEON_BF16_H

#ifndef __ARM_FEATURE_BF16_VECTOR_ARITHMETIC
#error "vec_neon_bf16.h needs -march=armv8.2-a+bf16 (or armv8.6-a)"
#endif

#include <string.h>

#include "arm/vec_neon.h"

/* The template's QK in column form takes dim pairs where K is bf16 (kernels/qk_cols.h). */
#define VEC_BF16_DOT 1

/* Two adjacent bf16 values at p, as a pair in every lane. */
SPATTN_ALWAYS_INLINE col_t col_bcast_pair(const uint16_t *p)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    const float32x4_t v = vreinterpretq_f32_u32(vdupq_n_u32(w));
    return col_mk(v, v, v, v);
}

SPATTN_ALWAYS_INLINE float32x4_t spattn__bfdot_q(float32x4_t acc, float32x4_t x, float32x4_t y)
{
    return vbfdotq_f32(acc, vreinterpretq_bf16_f32(x), vreinterpretq_bf16_f32(y));
}

/* acc + qp . kp per lane, both operands bf16 pairs. */
SPATTN_ALWAYS_INLINE col_t col_dot_pair(col_t qp, col_t kp, col_t acc)
{
    return col_mk(spattn__bfdot_q(acc.a, qp.a, kp.a), spattn__bfdot_q(acc.b, qp.b, kp.b),
                  spattn__bfdot_q(acc.c, qp.c, kp.c), spattn__bfdot_q(acc.d, qp.d, kp.d));
}

/* acc + qp . (the pair at p): the pair is loaded once into a d register and taken by element
   (BFDOT's indexed form), as the float kernels take their broadcast scalar. */
SPATTN_ALWAYS_INLINE col_t col_dot_pair_bc(col_t qp, const uint16_t *p, col_t acc)
{
    uint32_t w;
    memcpy(&w, p, sizeof w);
    const bfloat16x4_t k = vreinterpret_bf16_u32(vdup_n_u32(w));
    return col_mk(vbfdotq_lane_f32(acc.a, vreinterpretq_bf16_f32(qp.a), k, 0),
                  vbfdotq_lane_f32(acc.b, vreinterpretq_bf16_f32(qp.b), k, 0),
                  vbfdotq_lane_f32(acc.c, vreinterpretq_bf16_f32(qp.c), k, 0),
                  vbfdotq_lane_f32(acc.d, vreinterpretq_bf16_f32(qp.d), k, 0));
}

/* Along dims: 8 bf16 values as 4 pairs, bits unchanged; the first n of them; their dot. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_pairs(const uint16_t *p)
{
    return vreinterpretq_f32_u16(vld1q_u16(p));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_pairs_m(const uint16_t *p, size_t n)
{
    uint16_t w[8] = {0};
    memcpy(w, p, n * sizeof *p);
    return vreinterpretq_f32_u16(vld1q_u16(w));
}
SPATTN_ALWAYS_INLINE vec_t vec_dot_pair(vec_t qp, vec_t kp, vec_t acc)
{
    return spattn__bfdot_q(acc, qp, kp);
}

/* Pairs p < np of rows r < rows (ts elements apart), transposed with their bits unchanged:
   out[16 p + r] = the 32 bits of (q[r ts + 2p], q[r ts + 2p + 1]); lanes from `rows` on hold
   0. Nothing past the rows' 2 np elements is read. 4x4 blocks of pairs (words_transpose4x4). */
SPATTN_ALWAYS_INLINE void col_transpose_pairs(const uint16_t *q, ptrdiff_t ts, size_t rows,
                                              size_t np, float *out)
{
    for (size_t e = 0; e < np; e += 4) {
        const size_t we = np - e < 4 ? np - e : 4;
        for (size_t g = 0; g < 4; g++) {
            uint32x4_t col[4];
            words_transpose4x4(q + 2 * e, ts * (ptrdiff_t)sizeof(uint16_t), 4 * g, rows, we, col);
            for (size_t k = 0; k < we; k++)
                vst1q_f32(out + 16 * (e + k) + 4 * g, vreinterpretq_f32_u32(col[k]));
        }
    }
}

#endif

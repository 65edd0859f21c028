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
#include "x86/vec_avx512_bf16eo.h"

/* The template's QK in column form takes dim pairs where K is bf16 (kernels/qk_cols.h). */
#define VEC_BF16_DOT 1
/* ... and P.V from key pairs where V is bf16 (kernels/pv_pairs.h), except under the AMX tier,
   which takes P.V through tiles (its CPUs, Intel's, run vdpbf16ps at half the float FMA's
   flop rate: docs/dtypes.md). */
#ifndef VEC_AMX
#define VEC_BF16_PV 1
#endif

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

/* Along dims: 32 bf16 values as 16 pairs, bits unchanged; the first n of them; their dot. */
SPATTN_ALWAYS_INLINE vec_t vec_loadu_pairs(const uint16_t *p)
{
    return _mm512_castsi512_ps(_mm512_loadu_si512((const void *)p));
}
SPATTN_ALWAYS_INLINE vec_t vec_loadu_pairs_m(const uint16_t *p, size_t n)
{
    return _mm512_castsi512_ps(_mm512_maskz_loadu_epi16((__mmask32)((1ull << n) - 1u), p));
}
SPATTN_ALWAYS_INLINE vec_t vec_dot_pair(vec_t qp, vec_t kp, vec_t acc)
{
    return col_dot_pair(qp, kp, acc);
}

/* Pairs p < np of rows r < rows (ts elements apart), transposed with their bits unchanged:
   out[16 p + r] = the 32 bits of (q[r ts + 2p], q[r ts + 2p + 1]); lanes from `rows` on hold
   0. Nothing past the rows' 2 np elements is read. */
SPATTN_ALWAYS_INLINE void col_transpose_pairs(const uint16_t *q, ptrdiff_t ts, size_t rows,
                                              size_t np, float *out)
{
    for (size_t p0 = 0; p0 < np; p0 += 16) {
        const size_t w = np - p0 < 16 ? np - p0 : 16;
        const __mmask16 m = (__mmask16)((1u << w) - 1u);
        __m512 r[16], t[16];
        for (int i = 0; i < 16; i++)
            r[i] = (size_t)i < rows
                       ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, q + i * ts + 2 * p0))
                       : _mm512_setzero_ps();
        col_transpose16(r, t);
        if (w == 16) /* no rep movsq of a spilled t: see col_transpose_rows */
            for (int d = 0; d < 16; d++)
                _mm512_store_ps(out + 16 * (p0 + (size_t)d), t[d]);
        else
            for (size_t d = 0; d < w; d++)
                _mm512_store_ps(out + 16 * (p0 + d), t[d]);
    }
}

/* ---- P V from bf16 pairs of keys (kernels/pv_pairs.h) -------------------------------------
   32 dims of two V rows a and b are zipped into two vectors of pairs (a[e], b[e]) by one
   vpunpck{l,h}wd each, which keeps 128-bit lanes: `lo` holds dims 8k..8k+3 of lane k, `hi`
   dims 8k+4..8k+7. O is accumulated in that order and put back in order when it is stored. */

/* The pairs (a[e], b[e]) of dims e < 32, in zipped order. */
SPATTN_ALWAYS_INLINE void vec_zip_bf16(const uint16_t *a, const uint16_t *b, vec_t *lo, vec_t *hi)
{
    const __m512i x = _mm512_loadu_si512(a), y = _mm512_loadu_si512(b);
    *lo = _mm512_castsi512_ps(_mm512_unpacklo_epi16(x, y));
    *hi = _mm512_castsi512_ps(_mm512_unpackhi_epi16(x, y));
}
/* a[e] widened to float for dims e < 32, in zipped order (a bf16 value in the high half of a
   zero lane is its float). */
SPATTN_ALWAYS_INLINE void vec_zip_widen_bf16(const uint16_t *a, vec_t *lo, vec_t *hi)
{
    const __m512i x = _mm512_loadu_si512(a), z = _mm512_setzero_si512();
    *lo = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, x));
    *hi = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, x));
}
/* 32 floats in zipped order back in dim order: dims 0..15 to *d0, 16..31 to *d1. */
SPATTN_ALWAYS_INLINE void vec_unzip(vec_t lo, vec_t hi, vec_t *d0, vec_t *d1)
{
    const __m512i i0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
    const __m512i i1 =
        _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
    *d0 = _mm512_permutex2var_ps(lo, i0, hi);
    *d1 = _mm512_permutex2var_ps(lo, i1, hi);
}
/* Lane r = (a[r], b[r]) rounded to bf16 (nearest even), a in the low half. */
SPATTN_ALWAYS_INLINE col_t col_pairs_bf16(col_t a, col_t b)
{
    /* vcvtne2ps2bf16 puts b's 16 values below a's; the word permutation interleaves them. */
    const __m512i w = (__m512i)_mm512_cvtne2ps_pbh(b, a);
    const __m512i ix = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                        8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(ix, w));
}

/* Compact scores of 32 / w keys (w = 4 or 8 rows per key): key k's row r at lane w k + r of
   a, b continuing it from lane 16. Pair p = w jp + r of the result is row r's (key 2 jp,
   key 2 jp + 1), rounded to bf16. */
SPATTN_ALWAYS_INLINE col_t col_pairs_bf16_compact(col_t a, col_t b, const int w)
{
    /* word i of the conversion is key i / w, row i % w (a's words first) */
    const __m512i v = (__m512i)_mm512_cvtne2ps_pbh(b, a);
    const __m512i ix =
        w == 4 ? _mm512_set_epi16(31, 27, 30, 26, 29, 25, 28, 24, 23, 19, 22, 18, 21, 17, 20, 16,
                                  15, 11, 14, 10, 13, 9, 12, 8, 7, 3, 6, 2, 5, 1, 4, 0)
               : _mm512_set_epi16(31, 23, 30, 22, 29, 21, 28, 20, 27, 19, 26, 18, 25, 17, 24, 16,
                                  15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
    return _mm512_castsi512_ps(_mm512_permutexvar_epi16(ix, v));
}

#endif

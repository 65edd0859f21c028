/*
 * f16 Q, K and V through the AMX tier's bf16 tile products (VEC_AMX). An f16 value x has 11
 * significant bits, a bf16 8: x = hi + lo exactly, hi = x rounded to bf16 and lo the rest (at
 * most 4 significant bits, never a bf16 subnormal). So
 *   q . k = qh . kh + qh . kl + ql . kh  (+ ql . kl, at most 2^-18 |q| |k|, dropped)
 * are three products of one C tile, each exact in float before the tile's float sums. P (float,
 * in [0, 1]) splits the same way into two bf16 parts (16 bits of it), and P V takes ph vh +
 * ph vl + pl vh. A non-finite x splits into hi = x, lo = 0; where a key or query row holds
 * one, the products with a lo operand pair it with a hi whose non-finite values are zeroed,
 * so that no 0 * Inf appears that the float computation would not have. V tiles with a
 * non-finite element go to the float kernel (amx_pv.h's fallback).
 */
#ifndef SPATTN_X86_AMX_F16_H
#define SPATTN_X86_AMX_F16_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"
#include "x86/amx_qk.h"

/* 32 floats (x0's 16, then x1's) as bf16 parts: hi = s rounded to bf16 (in order), lo = x - hi
   rounded to bf16 (exact for f16 values; within 2^-17 |x| for others), or 0 where hi is not
   finite. s is x, or for float32 Q x with its finite values beyond bf16's range brought to
   bf16's largest (f32_split32). Returns the lanes whose hi is not finite. */
SPATTN_ALWAYS_INLINE __mmask32 bf16_split32_of(__m512 x0, __m512 x1, __m512 s0, __m512 s1,
                                               __m512i *hi, __m512i *lo)
{
    const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(s1, s0), ex = _mm512_set1_epi16(0x7f80);
    const __mmask32 bad = _mm512_cmpeq_epi16_mask(_mm512_and_si512(h, ex), ex);
    const __m512 h0 = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
    const __m512 h1 = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
    const __m512i l = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0));
    *hi = h;
    *lo = _mm512_maskz_mov_epi16(~bad, l);
    return bad;
}

SPATTN_ALWAYS_INLINE __mmask32 bf16_split32(__m512 x0, __m512 x1, __m512i *hi, __m512i *lo)
{
    return bf16_split32_of(x0, x1, x0, x1, hi, lo);
}

/* x with its finite values beyond bf16's largest finite value (0x1.fep127, about 3.39e38)
   replaced by that value, signed: rounded to nearest they would make an Inf hi part, and so an
   Inf score, where the float computation has a finite one. What is left of them (x - hi, at
   most 2^-8 |x|) goes to the lo part. */
SPATTN_ALWAYS_INLINE __m512 bf16_range_hi(__m512 x)
{
    const __m512 big = _mm512_set1_ps(0x1.fep127f), ax = _mm512_abs_ps(x);
    const __mmask16 over = _mm512_cmp_ps_mask(ax, big, _CMP_GT_OQ) &
                           _mm512_cmp_ps_mask(ax, _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
    const __m512i sign = _mm512_andnot_si512(_mm512_castps_si512(ax), _mm512_castps_si512(x));
    return _mm512_mask_mov_ps(x, over,
                              _mm512_castsi512_ps(_mm512_or_si512(sign, _mm512_castps_si512(big))));
}

/* 32 float32 values at p (float32 Q over f16 K/V), split. */
SPATTN_ALWAYS_INLINE __mmask32 f32_split32(const float *p, __m512i *hi, __m512i *lo)
{
    const __m512 x0 = _mm512_loadu_ps(p), x1 = _mm512_loadu_ps(p + 16);
    return bf16_split32_of(x0, x1, bf16_range_hi(x0), bf16_range_hi(x1), hi, lo);
}

/* 32 f16 values at p, widened and split. */
SPATTN_ALWAYS_INLINE __mmask32 f16_split32(const uint16_t *p, __m512i *hi, __m512i *lo)
{
    const __m512i raw = _mm512_loadu_si512(p);
    return bf16_split32(_mm512_cvtph_ps(_mm512_castsi512_si256(raw)),
                        _mm512_cvtph_ps(_mm512_extracti64x4_epi64(raw, 1)), hi, lo);
}

/* bf16 values at p (n 64-byte rows) with the non-finite ones zeroed, into out. */
SPATTN_ALWAYS_INLINE void bf16_finite_rows(const void *p, size_t n, void *out)
{
    const __m512i ex = _mm512_set1_epi16(0x7f80);
    for (size_t r = 0; r < n; r++) {
        const __m512i x = _mm512_loadu_si512((const char *)p + 64 * r);
        const __mmask32 bad = _mm512_cmpeq_epi16_mask(_mm512_and_si512(x, ex), ex);
        _mm512_store_si512((char *)out + 64 * r, _mm512_maskz_mov_epi16(~bad, x));
    }
}

/* ---- Q ------------------------------------------------------------------------------------ */

/* Q rows i0 .. i0 + rows (f16, or float32 with f16 K/V) in split pairs: hi pairs (dim_qk / 2
   columns of 16 pairs; lanes from `rows` on 0), lo pairs, the score factor column, a flag
   column (nonzero: some row holds a non-finite hi), 16 * dim_qk + 32 floats (the tile
   state's QT_FLOATS). tmp: 16 * 64 floats. */
static void pack_q_f16_split(const spattn_head_job *job, size_t i0, size_t rows, float *qt,
                             float *tmp)
{
    const size_t dq = job->dim_qk;
    uint16_t *th = (uint16_t *)(void *)tmp, *tl = th + 16 * 64;
    __mmask32 bad = 0;
    for (size_t d0 = 0; d0 < dq; d0 += 64) {
        const size_t w = dq - d0 < 64 ? dq - d0 : 64; /* a multiple of 32 */
        for (size_t r = 0; r < rows; r++) {
            const ptrdiff_t at = (ptrdiff_t)(i0 + r) * job->q_ts + (ptrdiff_t)d0;
            for (size_t e = 0; e < w; e += 32) {
                __m512i h, l;
                if (job->q_dtype == SPATTN_DTYPE_F32) {
                    bad |= f32_split32((const float *)job->q + at + e, &h, &l);
                } else {
                    bad |= f16_split32((const uint16_t *)job->q + at + e, &h, &l);
                }
                _mm512_store_si512(th + 64 * r + e, h);
                _mm512_store_si512(tl + 64 * r + e, l);
            }
        }
        col_transpose_pairs(th, 64, rows, w / 2, qt + 8 * d0);
        col_transpose_pairs(tl, 64, rows, w / 2, qt + 8 * dq + 8 * d0);
    }
    col_store(qt + 16 * dq, col_set1(q_factor(job)));
    col_store(qt + 16 * dq + 16, col_set1(bad ? 1.0f : 0.0f));
}

/* ---- Q.K ---------------------------------------------------------------------------------- */

/* K rows idx[g .. g + 16), dims d .. d + 32, split into kh and kl (rows of keys past nk zero).
   Returns nonzero when one of them is not finite. */
SPATTN_ALWAYS_INLINE int amx_k_split(const void *kb, ptrdiff_t k_ts, size_t j0, const uint32_t *idx,
                                     size_t g, size_t nk, size_t d, uint16_t *kh, uint16_t *kl)
{
    const size_t m = nk - g < 16 ? nk - g : 16;
    __mmask32 bad = 0;
    for (size_t r = 0; r < 16; r++) {
        __m512i h = _mm512_setzero_si512(), l = _mm512_setzero_si512();
        if (r < m)
            bad |= f16_split32((const uint16_t *)(const void *)kv_row(
                                   KV_F16, kb, (ptrdiff_t)(j0 + idx[g + r]), k_ts) +
                                   d,
                               &h, &l);
        _mm512_store_si512(kh + 32 * r, h);
        _mm512_store_si512(kl + 32 * r, l);
    }
    return bad != 0;
}

/* S^T of keys idx[g .. g + 16) for nq query tiles of split Q (qbad: one of them holds a
   non-finite value), into st[t] + 16 g. Tiles: C 0 and 1, A 2 (kh) and 7 (kl), B 3-6. */
SPATTN_ALWAYS_INLINE void amx_group_f16(const int nq, const float *const *qt, size_t dq,
                                        const void *kb, ptrdiff_t k_ts, size_t j0,
                                        const uint32_t *idx, size_t g, size_t nk, int qbad,
                                        float *const *st)
{
    uint16_t kh[16 * 32] __attribute__((aligned(64))), kl[16 * 32] __attribute__((aligned(64)));
    uint16_t kf[16 * 32] __attribute__((aligned(64))), qf[2][16 * 32] __attribute__((aligned(64)));
    _tile_zero(0);
    if (nq == 2)
        _tile_zero(1);
    for (size_t d = 0; d < dq; d += 32) {
        const int kbad = amx_k_split(kb, k_ts, j0, idx, g, nk, d, kh, kl);
        AMX_LOADD(2, kh, 64);
        AMX_LOADD(7, kl, 64);
        const float *qh0 = qt[0] + 8 * d, *ql0 = qt[0] + 8 * dq + 8 * d;
        if (!kbad && !qbad) {
            AMX_LOADD(3, qh0, 64);
            AMX_LOADD(4, ql0, 64);
            _tile_dpbf16ps(0, 2, 3);
            _tile_dpbf16ps(0, 7, 3);
            _tile_dpbf16ps(0, 2, 4);
            if (nq == 2) {
                AMX_LOADD(5, qt[1] + 8 * d, 64);
                AMX_LOADD(6, qt[1] + 8 * dq + 8 * d, 64);
                _tile_dpbf16ps(1, 2, 5);
                _tile_dpbf16ps(1, 7, 5);
                _tile_dpbf16ps(1, 2, 6);
            }
            continue;
        }
        /* kh . qh + kl . qh_f + kh_f . ql: the lo parts meet finite values only */
        bf16_finite_rows(kh, 16, kf);
        AMX_LOADD(6, kf, 64);
        bf16_finite_rows(qh0, 16, qf[0]);
        AMX_LOADD(3, qh0, 64);
        AMX_LOADD(4, qf[0], 64);
        AMX_LOADD(5, ql0, 64);
        _tile_dpbf16ps(0, 2, 3);
        _tile_dpbf16ps(0, 7, 4);
        _tile_dpbf16ps(0, 6, 5);
        if (nq == 2) {
            const float *qh1 = qt[1] + 8 * d;
            bf16_finite_rows(qh1, 16, qf[1]);
            AMX_LOADD(3, qh1, 64);
            AMX_LOADD(4, qf[1], 64);
            AMX_LOADD(5, qt[1] + 8 * dq + 8 * d, 64);
            _tile_dpbf16ps(1, 2, 3);
            _tile_dpbf16ps(1, 7, 4);
            _tile_dpbf16ps(1, 6, 5);
        }
    }
    _tile_stored(0, st[0] + 16 * g, 64);
    if (nq == 2)
        _tile_stored(1, st[1] + 16 * g, 64);
}

/* qk_cols_nq for f16 K and split Q (pack_q_f16_split): dq a multiple of 32. */
SPATTN_ALWAYS_INLINE void qk_amx_f16_nq(const int nq, const float *const *qt, size_t dq,
                                        const void *kb, ptrdiff_t k_ts, size_t j0,
                                        const uint32_t *idx, size_t nk, const uint32_t *cm,
                                        float *const *st, const tile_prefetch *pf,
                                        const qk_alibi *al, col_t *mt)
{
    int qbad = 0;
    for (int t = 0; t < nq; t++)
        qbad |= qt[t][16 * dq + 16] != 0.0f;
    for (size_t g = 0; g < nk; g += 16) {
        if (pf != NULL)
            prefetch_keys(pf, g, 16);
        amx_group_f16(nq, qt, dq, kb, k_ts, j0, idx, g, nk, qbad, st);
    }
    amx_scores_finish(nq, col_load(qt[0] + 16 * dq), idx, nk, cm, st, al, mt);
}

/* ---- P V operands ------------------------------------------------------------------------ */

/* A for keys 32 kc .. 32 kc + 32 in two parts: ah = P rounded to bf16, al = the rest rounded
   (pairs transposed as pv_amx_a's). */
SPATTN_ALWAYS_INLINE void pv_amx_a_split(const float *st, size_t nk, size_t kc, float *ah,
                                         float *al)
{
    col_t wh[16], wl[16], t[16];
    const __m512i hi_half = _mm512_set1_epi32((int)0xffff0000u);
    for (size_t i = 0; i < 16; i++) {
        const size_t j = 32 * kc + 2 * i;
        const col_t x = j < nk ? col_load(st + 16 * j) : col_zero();
        const col_t y = j + 1 < nk ? col_load(st + 16 * (j + 1)) : col_zero();
        wh[i] = col_pairs_bf16(x, y);
        const __m512i u = _mm512_castps_si512(wh[i]);
        const col_t xh = _mm512_castsi512_ps(_mm512_slli_epi32(u, 16));
        const col_t yh = _mm512_castsi512_ps(_mm512_and_si512(u, hi_half));
        wl[i] = col_pairs_bf16(col_sub(x, xh), col_sub(y, yh));
    }
    col_transpose16(wh, t);
    for (size_t r = 0; r < 16; r++)
        col_store(ah + 16 * r, t[r]);
    col_transpose16(wl, t);
    for (size_t r = 0; r < 16; r++)
        col_store(al + 16 * r, t[r]);
}

/* B for keys 32 kc .. 32 kc + 32 and dims 32 h .. 32 h + 32 of f16 V, as pv_amx_b builds it,
   in hi (bh0, bh1) and lo (bl0, bl1) parts. Returns nonzero when an element read is not
   finite (the B blocks are then of no use). */
SPATTN_ALWAYS_INLINE int pv_amx_b_f16(const char *const *vp, size_t nk, size_t kc, size_t h,
                                      uint16_t *bh0, uint16_t *bh1, uint16_t *bl0, uint16_t *bl1)
{
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40,
                                        8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    __mmask32 bad = 0;
    for (size_t p = 0; p < 16; p++) {
        const size_t j = 32 * kc + 2 * p;
        __m512i xh = _mm512_setzero_si512(), xl = xh, yh = xh, yl = xh;
        if (j < nk)
            bad |= f16_split32((const uint16_t *)(const void *)vp[j] + 32 * h, &xh, &xl);
        if (j + 1 < nk)
            bad |= f16_split32((const uint16_t *)(const void *)vp[j + 1] + 32 * h, &yh, &yl);
        _mm512_store_si512(bh0 + 32 * p, _mm512_permutex2var_epi16(xh, lo, yh));
        _mm512_store_si512(bh1 + 32 * p, _mm512_permutex2var_epi16(xh, hi, yh));
        _mm512_store_si512(bl0 + 32 * p, _mm512_permutex2var_epi16(xl, lo, yl));
        _mm512_store_si512(bl1 + 32 * p, _mm512_permutex2var_epi16(xl, hi, yl));
    }
    return bad != 0;
}

#endif

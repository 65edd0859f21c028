/*
 * QK as row dot products along dim, for query tiles of at most QR_MAX rows, reduced into
 * the same column form as qk_cols.h produces.
 */
#ifndef SPATTN_KERNELS_QK_ROWS_H
#define SPATTN_KERNELS_QK_ROWS_H

#include "convert.h"
#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"

/* Query tiles of at most QR_MAX rows take their QK along dim (qk_rowdot, see there), in groups
   of 4 rows, QR_KEYS keys at a time for one group and half as many for two, so that the
   accumulators and Q vectors stay in registers. AVX2 only up to 4 rows: its half columns
   serve 8 rows with as many ymm FMAs as two groups of 4 would take. */
#define QR_KEYS (VL == 16 ? 4 : 2)
#define QR_MAX (VL == 16 ? 8 : 4)

/* Where the tier's pair dot product runs at the float FMA's rate (those that take P.V in
   pairs too, VEC_BF16_PV: not the AMX tier's CPUs), tiles of bf16 Q and K (the only ones such
   a tier's walk takes with bf16 K, bf16_tier.h) take their row dot products in pairs of dims
   as well: per 32 dims one load of K and one pair dot per row, where widening K takes two
   loads, two widenings and two FMAs per row. Q is then kept as it is in bf16 (Q * scale is
   not exact in bf16) and the factor applied to each score. */
#ifdef VEC_BF16_PV
#define ROWDOT_PAIRS(kvt) ((kvt) == KV_BF16)
#else
#define ROWDOT_PAIRS(kvt) 0
#endif

/* The rows of a query tile row-major for qk_rowdot: 4 or 8 rows of dim_qk (within the 16 *
   dim_qk floats a packed Q takes), the rows past `rows` zero; 16-bit Q widened here, or, for
   ROWDOT_PAIRS, bf16 Q rows copied as they are (dim_qk 16-bit values each). */
static void pack_q_rows(const spattn_head_job *job, size_t i0, size_t rows, float *qr)
{
    const float c = q_factor(job);
    const size_t dq = job->dim_qk;
    memset(qr, 0, (rows <= 4 ? 4 : 8) * dq * sizeof(float));
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    if (ROWDOT_PAIRS((int)job->kv_dtype)) {
        for (size_t r = 0; r < rows; r++)
            memcpy((uint16_t *)(void *)qr + r * dq,
                   (const char *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts * qs,
                   dq * sizeof(uint16_t));
        return;
    }
    for (size_t r = 0; r < rows; r++) {
        const void *qv = (const char *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts * qs;
        if (job->q_dtype == SPATTN_DTYPE_F32) {
            const float *q = qv;
            for (size_t d = 0; d < dq; d++)
                qr[r * dq + d] = q[d] * c;
        } else {
            for (size_t d = 0; d < dq; d++)
                qr[r * dq + d] = spattn__load_f32(qv, (ptrdiff_t)d, job->q_dtype) * c;
        }
    }
}

/* Tiles of at most QR_MAX rows (decode with GQA groups of up to 8, a head's last rows): the
   column form spends a 16-lane FMA per key and dim on them with half the lanes or fewer of
   use, so here each row's dot product runs along dim instead (dim / VL FMAs per row and key,
   several keys at a time for independent chains) and vec_hsums4 turns each group of four
   rows' partial sums of a key into 4 lanes of its column, lanes past the rows zero (as the
   zero Q of padding rows gives them in the column form), masked and stored as qk_cols_nq stores
   it. Decode (dim 128): QK 128 FMAs per key -> 32 plus one hsums4 for 4 rows, 64 plus two
   for 8. qr: the rows' pre-scaled Q, row-major dq apart, rows past the tile's zero; ng
   groups of 4 rows, nkeys keys per step; K of type kvt (kv_load.h); the ALiBi term al added
   when given. `compact` (4 for one group, 8 for two, else 0): key j's compact lanes go to
   st + compact j instead of its column at st + 16 j (tile_compact says when). */
SPATTN_ALWAYS_INLINE col_t qk_rowdot_g(const int kvt, const int ng, const int nkeys,
                                       const int compact, const float *qr, float qf, size_t dq,
                                       const char *kb, ptrdiff_t k_ts, size_t j0,
                                       const uint32_t *idx, size_t nk, const uint32_t *cm,
                                       float *st, const tile_prefetch *pf, const qk_alibi *al)
{
    const col_t ninf = col_set1(K_NINF);
    col_t mt = ninf;
    pf_pace pp = {0};
    if (pf != NULL)
        pf_pace_begin(&pp, pf, pf_qk_parts(pf), nk);
    for (size_t jj = 0; jj < nk; jj += (size_t)nkeys) {
        if (pf != NULL)
            pf_pace_step(&pp, (size_t)nkeys);
        const char *kp[QR_KEYS];
        for (int b = 0; b < nkeys; b++) {
            const size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = kv_row(kvt, kb, (ptrdiff_t)(j0 + idx[jb]), k_ts);
        }
        vec_t acc[QR_KEYS][8];
        for (int b = 0; b < nkeys; b++)
            for (int r = 0; r < 4 * ng; r++)
                acc[b][r] = vec_zero();
        size_t d = 0;
#ifdef VEC_BF16_PV
        if (ROWDOT_PAIRS(kvt)) {
            const uint16_t *qh = (const uint16_t *)(const void *)qr;
            for (; d < dq; d += 2 * VL) {
                const size_t w = dq - d < 2 * VL ? dq - d : 2 * VL;
                vec_t q[8];
                for (int r = 0; r < 4 * ng; r++)
                    q[r] = w == 2 * VL ? vec_loadu_pairs(qh + (size_t)r * dq + d)
                                       : vec_loadu_pairs_m(qh + (size_t)r * dq + d, w);
                for (int b = 0; b < nkeys; b++) {
                    const uint16_t *kh = (const uint16_t *)(const void *)kp[b] + d;
                    const vec_t k = w == 2 * VL ? vec_loadu_pairs(kh) : vec_loadu_pairs_m(kh, w);
                    for (int r = 0; r < 4 * ng; r++)
                        acc[b][r] = vec_dot_pair(q[r], k, acc[b][r]);
                }
            }
        }
#endif
        for (; d + VL <= dq; d += VL) {
            vec_t q[8];
            for (int r = 0; r < 4 * ng; r++) {
                q[r] = vec_loadu(qr + (size_t)r * dq + d);
#if VL == 8
                /* AVX2, float32 K: gcc folded each q load into the FMAs of both keys, 10 loads
                   for 8 FMAs (docs/kernels.md); the wider ISAs were not measured with it */
                if (kvt == KV_F32)
                    OPAQUE_VEC(q[r]);
#endif
            }
            for (int b = 0; b < nkeys; b++) {
                const vec_t k = kv_loadu(kvt, kp[b], d);
                for (int r = 0; r < 4 * ng; r++)
                    acc[b][r] = vec_fma(q[r], k, acc[b][r]);
            }
        }
        if (d < dq) {
            const vmask_t mk = vmask_first(dq - d);
            vec_t q[8];
            for (int r = 0; r < 4 * ng; r++)
                q[r] = vec_loadu_m(qr + (size_t)r * dq + d, mk);
            for (int b = 0; b < nkeys; b++) {
                const vec_t k = kv_loadu_m(kvt, kp[b], d, mk);
                for (int r = 0; r < 4 * ng; r++)
                    acc[b][r] = vec_fma(q[r], k, acc[b][r]);
            }
        }
        for (int b = 0; b < nkeys && jj + (size_t)b < nk; b++) {
            col_t a4 =
                col_from_quarters(vec_hsums4(acc[b]), ng == 1 ? q4_zero() : vec_hsums4(acc[b] + 4));
            if (ROWDOT_PAIRS(kvt))
                a4 = col_mul(a4, col_set1(qf));
            if (al != NULL)
                a4 = qk_alibi_add(al, idx[jj + (size_t)b], a4);
            const col_t a = cm != NULL ? col_select(cmask_bits(cm[jj + (size_t)b]), a4, ninf) : a4;
            if (compact == 4)
                col_store_q4(st + (jj + (size_t)b) * 4, a);
            else if (compact == 8)
                col_store_h8(st + (jj + (size_t)b) * 8, a);
            else
                col_store(st + (jj + (size_t)b) * 16, a);
            mt = col_max(mt, a);
        }
    }
    if (pf != NULL)
        pf_pace_end(&pp);
    return mt;
}

SPATTN_ALWAYS_INLINE col_t qk_rowdot_t(const int kvt, size_t rows, int compact, const float *qr,
                                       float qf, size_t dq, const char *kb, ptrdiff_t k_ts,
                                       size_t j0, const uint32_t *idx, size_t nk,
                                       const uint32_t *cm, float *st, const tile_prefetch *pf,
                                       const qk_alibi *al)
{
    if (QR_MAX > 4 && rows > 4) {
        if (compact)
            return qk_rowdot_g(kvt, 2, QR_KEYS / 2, 8, qr, qf, dq, kb, k_ts, j0, idx, nk, cm, st,
                               pf, al);
        return qk_rowdot_g(kvt, 2, QR_KEYS / 2, 0, qr, qf, dq, kb, k_ts, j0, idx, nk, cm, st, pf,
                           al);
    }
    if (compact)
        return qk_rowdot_g(kvt, 1, QR_KEYS, 4, qr, qf, dq, kb, k_ts, j0, idx, nk, cm, st, pf, al);
    return qk_rowdot_g(kvt, 1, QR_KEYS, 0, qr, qf, dq, kb, k_ts, j0, idx, nk, cm, st, pf, al);
}

/* K of type kvt (the job's kv_dtype), kb a pointer to its key 0; al: the ALiBi term, or
   NULL; compact: the tile's compact width (tile_compact: 4 for at most 4 rows, 8 for more),
   or 0 for columns; qf: q_factor, which ROWDOT_PAIRS tiles apply to their scores (the others'
   qr is pre-scaled). */
SPATTN_ALWAYS_INLINE col_t qk_rowdot(int kvt, size_t rows, int compact, const float *qr, float qf,
                                     size_t dq, const void *kb, ptrdiff_t k_ts, size_t j0,
                                     const uint32_t *idx, size_t nk, const uint32_t *cm, float *st,
                                     const tile_prefetch *pf, const qk_alibi *al)
{
    col_t mt;
    KV_DISPATCH(kvt, mt = qk_rowdot_t(KVT, rows, compact, qr, qf, dq, kb, k_ts, j0, idx, nk, cm, st,
                                      pf, al));
    return mt;
}

#endif

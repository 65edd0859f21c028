/*
 * The gather path's dot products: one query row against the K rows of listed keys, as
 * vectors of partial sums along dims (one per key), summed across lanes 16 keys at a time.
 */
#ifndef SPATTN_KERNELS_GATHER_DOTS_H
#define SPATTN_KERNELS_GATHER_DOTS_H

#include "kernels/common.h"
#include "kernels/kv_load.h"

/* q . K_row, as a vector of partial sums; q may be the caller's row: the dim tail is a masked
   load. K of type kvt (kv_load.h), kp a byte pointer to the row. */
SPATTN_ALWAYS_INLINE vec_t qk_dot_vec(const int kvt, const float *q, size_t dq, const char *kp)
{
    vec_t acc = vec_zero();
    size_t d = 0;
    for (; d + VL <= dq; d += VL)
        acc = vec_fma(vec_loadu(q + d), kv_loadu(kvt, kp, d), acc);
    if (d < dq) {
        const vmask_t mk = vmask_first(dq - d);
        acc = vec_fma(vec_loadu_m(q + d, mk), kv_loadu_m(kvt, kp, d, mk), acc);
    }
    return acc;
}

/* a[c] = q . K[keys[c0 + c]] as vectors of partial sums for c < m (m VL or VL / 2; keys
   past n repeat key n - 1). Dims outer, keys inner, four Q vectors at a time: each sum
   still takes its dims in order (qk_dot_vec's chain), but the whole Q row is never held in
   registers beside the m accumulators. */
SPATTN_ALWAYS_INLINE void qk_dots_m(const int kvt, const float *q, size_t dq, const void *k,
                                    ptrdiff_t k_ts, const uint32_t *keys, size_t c0, size_t n,
                                    const int m, vec_t *a)
{
    const char *kp[VL];
    for (int c = 0; c < m; c++) {
        kp[c] = kv_row(kvt, k, (ptrdiff_t)keys[c0 + (size_t)c < n ? c0 + (size_t)c : n - 1], k_ts);
        a[c] = vec_zero();
    }
    size_t d = 0;
    for (; d + 4 * VL <= dq; d += 4 * VL) {
        const vec_t q0 = vec_loadu(q + d), q1 = vec_loadu(q + d + VL);
        const vec_t q2 = vec_loadu(q + d + 2 * VL), q3 = vec_loadu(q + d + 3 * VL);
        for (int c = 0; c < m; c++) {
            a[c] = vec_fma(q0, kv_loadu(kvt, kp[c], d), a[c]);
            a[c] = vec_fma(q1, kv_loadu(kvt, kp[c], d + VL), a[c]);
            a[c] = vec_fma(q2, kv_loadu(kvt, kp[c], d + 2 * VL), a[c]);
            a[c] = vec_fma(q3, kv_loadu(kvt, kp[c], d + 3 * VL), a[c]);
        }
    }
    for (; d + VL <= dq; d += VL) {
        const vec_t q0 = vec_loadu(q + d);
        for (int c = 0; c < m; c++)
            a[c] = vec_fma(q0, kv_loadu(kvt, kp[c], d), a[c]);
    }
    if (d < dq) {
        const vmask_t mk = vmask_first(dq - d);
        const vec_t q0 = vec_loadu_m(q + d, mk);
        for (int c = 0; c < m; c++)
            a[c] = vec_fma(q0, kv_loadu_m(kvt, kp[c], d, mk), a[c]);
    }
}

/* Tiers with bf16 pair dot products (VEC_BF16_DOT) take Q.K of bf16 Q and K as pairs here
   too: qp (a compile-time constant) says the row q is the job's bf16 Q row, read in place as
   pairs, and K is read as pairs of the same dims. Each dot then sums per lane two products
   at a time (the tier's rounding, docs/dtypes.md), where the float form widens every element
   of K first: two more instructions per 16 elements beside each FMA. The same dims and keys
   as the float form; lane sums in another order, so other bits. */
#ifdef VEC_BF16_DOT
#define GATHER_PAIRS(kvt, job) ((kvt) == KV_BF16 && (job)->q_dtype == SPATTN_DTYPE_BF16)

/* qk_dot_vec in pairs (q the row's bf16 Q, kp a bf16 K row). */
SPATTN_ALWAYS_INLINE vec_t qk_dot_vec_pairs(const uint16_t *q, size_t dq, const char *kp)
{
    const uint16_t *k = (const uint16_t *)(const void *)kp;
    vec_t acc = vec_zero();
    size_t d = 0;
    for (; d + 2 * VL <= dq; d += 2 * VL)
        acc = vec_dot_pair(vec_loadu_pairs(q + d), vec_loadu_pairs(k + d), acc);
    if (d < dq)
        acc = vec_dot_pair(vec_loadu_pairs_m(q + d, dq - d), vec_loadu_pairs_m(k + d, dq - d), acc);
    return acc;
}

/* qk_dots_m in pairs: a[c] = q . K[keys[c0 + c]] for c < m, each lane summing its pairs of
   dims in order. */
SPATTN_ALWAYS_INLINE void qk_dots_m_pairs(const uint16_t *q, size_t dq, const void *k,
                                          ptrdiff_t k_ts, const uint32_t *keys, size_t c0, size_t n,
                                          const int m, vec_t *a)
{
    const uint16_t *kp[VL];
    for (int c = 0; c < m; c++) {
        kp[c] = (const uint16_t *)(const void *)kv_row(
            KV_BF16, k, (ptrdiff_t)keys[c0 + (size_t)c < n ? c0 + (size_t)c : n - 1], k_ts);
        a[c] = vec_zero();
    }
    size_t d = 0;
    for (; d + 4 * VL <= dq; d += 4 * VL) {
        const vec_t q0 = vec_loadu_pairs(q + d), q1 = vec_loadu_pairs(q + d + 2 * VL);
        for (int c = 0; c < m; c++) {
            a[c] = vec_dot_pair(q0, vec_loadu_pairs(kp[c] + d), a[c]);
            a[c] = vec_dot_pair(q1, vec_loadu_pairs(kp[c] + d + 2 * VL), a[c]);
        }
    }
    for (; d + 2 * VL <= dq; d += 2 * VL) {
        const vec_t q0 = vec_loadu_pairs(q + d);
        for (int c = 0; c < m; c++)
            a[c] = vec_dot_pair(q0, vec_loadu_pairs(kp[c] + d), a[c]);
    }
    if (d < dq) {
        const vec_t q0 = vec_loadu_pairs_m(q + d, dq - d);
        for (int c = 0; c < m; c++)
            a[c] = vec_dot_pair(q0, vec_loadu_pairs_m(kp[c] + d, dq - d), a[c]);
    }
}
#else
#define GATHER_PAIRS(kvt, job) 0
#endif

/* One row against keys c0 .. c0 + m of the list: qk_dots_m, or its pairs form (qp). */
SPATTN_ALWAYS_INLINE void qk_dots_mq(const int kvt, const int qp, const void *q, size_t dq,
                                     const void *k, ptrdiff_t k_ts, const uint32_t *keys, size_t c0,
                                     size_t n, const int m, vec_t *a)
{
#ifdef VEC_BF16_DOT
    if (qp) {
        qk_dots_m_pairs(q, dq, k, k_ts, keys, c0, n, m, a);
        return;
    }
#else
    (void)qp;
#endif
    qk_dots_m(kvt, q, dq, k, k_ts, keys, c0, n, m, a);
}

SPATTN_ALWAYS_INLINE vec_t qk_dot_vecq(const int kvt, const int qp, const void *q, size_t dq,
                                       const char *kp)
{
#ifdef VEC_BF16_DOT
    if (qp)
        return qk_dot_vec_pairs(q, dq, kp);
#else
    (void)qp;
#endif
    return qk_dot_vec(kvt, q, dq, kp);
}

/* q . K[keys[c]] in lane c for c < 16 (raw, unscaled), for 1 <= n <= 16 keys. Lanes past n
   hold a repeat of key n - 1 or 0 (the caller masks them): repeats keep the loop free of
   tests on n, except that rows of at most 4 keys, half vectors of repeats, and the second
   pair of a row of 1 or 2 keys are skipped (rows of a handful of keys would otherwise pay
   for 16). */
SPATTN_ALWAYS_INLINE col_t qk_dots16(const int kvt, const int qp, const void *q, size_t dq,
                                     const void *k, ptrdiff_t k_ts, const uint32_t *keys, size_t n)
{
    if (n <= 4) {
        vec_t a[4];
        for (size_t c = 0; c < 2; c++)
            a[c] = qk_dot_vecq(kvt, qp, q, dq,
                               kv_row(kvt, k, (ptrdiff_t)keys[c < n ? c : n - 1], k_ts));
        if (n > 2)
            for (size_t c = 2; c < 4; c++)
                a[c] = qk_dot_vecq(kvt, qp, q, dq,
                                   kv_row(kvt, k, (ptrdiff_t)keys[c < n ? c : n - 1], k_ts));
        else
            a[2] = a[3] = vec_zero();
        return col_from_quarters(vec_hsums4(a), q4_zero());
    }
    vec_t part[16 / VL];
    for (size_t g = 0; g < 16 / VL; g++) {
        vec_t a[VL];
        const size_t c0 = g * VL;
        if (c0 >= n) {
            part[g] = vec_zero();
            continue;
        }
        if (n - c0 > VL / 2) {
            qk_dots_mq(kvt, qp, q, dq, k, k_ts, keys, c0, n, VL, a);
        } else {
            qk_dots_mq(kvt, qp, q, dq, k, k_ts, keys, c0, n, VL / 2, a);
            for (size_t c = VL / 2; c < VL; c++)
                a[c] = vec_zero();
        }
        part[g] = vec_hsums(a);
    }
    return col_from_vecs(part);
}

#endif

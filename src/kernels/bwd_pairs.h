/*
 * The backward's pair path, for PARTIAL tiles whose keys few rows see (scattered keys: a
 * few per row). The column path computes S and dP for all 16 rows of every key some row
 * sees, so a key seen by one row costs 16 times its work; here each allowed pair's score and
 * dP are dot products along dim, and its terms go straight into dK and dV (bwd_kv) or into
 * row-major dQ (bwd_q). The plan lists each such tile's pairs once (kernels/bwd_slots.h).
 * Pairs are evaluated in batches of 16, one lane each, with the column path's arithmetic
 * after the dot products: a batch may span tiles and query tiles, so that its loads of
 * scattered rows are in flight together, and a pair's P and dS depend on its own lane alone,
 * so they are the same in whatever batch it comes. Which path a tile takes depends on its
 * mask bits alone, so results stay the same for any thread count.
 */
#ifndef SPATTN_KERNELS_BWD_PAIRS_H
#define SPATTN_KERNELS_BWD_PAIRS_H

#include "kernels/bwd_cols.h"
#include "kernels/bwd_slots.h"

/* dot(a, b) over n floats: a is a zero-padded pack row, b a caller's row (masked tail). */
static float bwd_vdot(const float *a, const float *b, size_t n)
{
    vec_t acc = vec_zero();
    size_t d = 0;
    for (; d + VL <= n; d += VL)
        acc = vec_fma(vec_loadu(a + d), vec_loadu(b + d), acc);
    if (d < n) {
        const vmask_t m = vmask_first(n - d);
        acc = vec_fma(vec_loadu_m(a + d, m), vec_loadu_m(b + d, m), acc);
    }
    return vec_hsum(acc);
}

/* out[0 .. n) += w * x[0 .. n), x read with a masked tail (a caller's row). */
static void bwd_vaxpy(float w, const float *x, size_t n, float *out)
{
    const vec_t wv = vec_set1(w);
    size_t d = 0;
    for (; d + VL <= n; d += VL)
        vec_storeu(out + d, vec_fma(wv, vec_loadu(x + d), vec_loadu(out + d)));
    if (d < n) {
        const vmask_t m = vmask_first(n - d);
        vec_storeu_m(out + d, m, vec_fma(wv, vec_loadu_m(x + d, m), vec_loadu_m(out + d, m)));
    }
}

/* Up to 16 pairs waiting for their P and dS, one lane each. */
typedef struct bwd_batch {
    size_t n;
    const float *qr[16], *dor[16];               /* the pairs' pack rows of Q and dO */
    const float *kr[16], *vr[16];                /* their K and V rows */
    float l2[16] __attribute__((aligned(64)));   /* lse log2(e) of the row */
    float d[16] __attribute__((aligned(64)));    /* D of the row */
    float sl[16] __attribute__((aligned(64)));   /* ALiBi factor of the row (alibi_factor) */
    float dist[16] __attribute__((aligned(64))); /* |i' - j| */
    uint32_t to[16]; /* where the terms go: key c of the tile (bwd_kv), row r (bwd_q) */
    float *slot[16]; /* where bwd_kv keeps dS, or NULL */
} bwd_batch;

/* Queue row r of the query tile whose pack is `pack` (rows from i0) against key j. */
static void bwd_batch_add(const spattn_head_job *job, const float *pack, size_t i0, size_t r,
                          size_t j, uint32_t to, float *slot, bwd_batch *b)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    const size_t k = b->n++;
    b->qr[k] = pack + spattn__bwd_pack_qr(dq, dv) + r * spattn__bwd_round16(dq);
    b->dor[k] = pack + spattn__bwd_pack_dor(dq, dv) + r * spattn__bwd_round16(dv);
    b->kr[k] = (const float *)job->k + (ptrdiff_t)j * job->k_ts;
    b->vr[k] = (const float *)job->v + (ptrdiff_t)j * job->v_ts;
    b->l2[k] = pack[spattn__bwd_pack_l2(dq, dv) + r];
    b->d[k] = pack[spattn__bwd_pack_d(dq, dv) + r];
    b->sl[k] = 0.0f;
    b->dist[k] = 0.0f;
    if (job->slopes != NULL) {
        const ptrdiff_t dist = job->pos0 + (ptrdiff_t)(i0 + r) * job->pos_step - (ptrdiff_t)j;
        b->sl[k] = alibi_factor(job, i0 + r);
        b->dist[k] = (float)(dist < 0 ? -dist : dist); /* exact: validation bounds it by 2^24 */
    }
    b->to[k] = to;
    b->slot[k] = slot;
}

/* P and dS (not yet times scale) of the batch's pairs, lanes past n unused. */
static void bwd_batch_eval(const spattn_head_job *job, bwd_batch *b, float *p, float *ds)
{
    float s[16] __attribute__((aligned(64))), dp[16] __attribute__((aligned(64)));
    for (size_t k = 0; k < b->n; k++) {
        s[k] = bwd_vdot(b->qr[k], b->kr[k], job->dim_qk);
        dp[k] = bwd_vdot(b->dor[k], b->vr[k], job->dim_v);
    }
    for (size_t k = b->n; k < 16; k++) {
        s[k] = dp[k] = 0.0f;
        b->l2[k] = b->d[k] = b->sl[k] = b->dist[k] = 0.0f;
    }
    const col_t zero = col_zero(), one = col_set1(1.0f), cs = col_set1(q_factor(job));
    const col_t sv = col_load(s);
    col_t z, t = zero;
    if (job->softcap != 0.0f) {
        t = col_tanh(col_mul(sv, cs));
        z = col_mul(t, col_set1(job->softcap * K_LOG2E));
    } else {
        z = col_mul(sv, cs);
    }
    if (job->slopes != NULL)
        z = col_fma(col_load(b->dist), col_load(b->sl), z);
    const col_t pv = col_exp2(col_sub(z, col_load(b->l2)));
    col_t dsv = col_mul(pv, col_sub(col_load(dp), col_load(b->d)));
    if (job->softcap != 0.0f)
        dsv = col_mul(dsv, col_sub(one, col_mul(t, t)));
    col_store(p, pv);
    col_store(ds, dsv);
}

/* bwd_kv's terms of the queued pairs, in queue order: dK row c += dS Q row, dV row c += P dO
   row (rows of ldq / ldv floats), dS kept where asked. */
static void bwd_batch_kv(const spattn_head_job *job, bwd_batch *b, float *dk, float *dv)
{
    if (b->n == 0)
        return;
    const size_t ldq = spattn__bwd_round16(job->dim_qk), ldv = spattn__bwd_round16(job->dim_v);
    float p[16] __attribute__((aligned(64))), ds[16] __attribute__((aligned(64)));
    bwd_batch_eval(job, b, p, ds);
    for (size_t k = 0; k < b->n; k++) {
        bwd_vaxpy(ds[k], b->qr[k], ldq, dk + b->to[k] * ldq);
        bwd_vaxpy(p[k], b->dor[k], ldv, dv + b->to[k] * ldv);
        if (b->slot[k] != NULL)
            *b->slot[k] = ds[k];
    }
    b->n = 0;
}

/* bwd_q's terms of the queued pairs, in queue order: dQ row r (ldq floats) += dS K row. */
static void bwd_batch_q(const spattn_head_job *job, bwd_batch *b, float *dqr)
{
    if (b->n == 0)
        return;
    const size_t ldq = spattn__bwd_round16(job->dim_qk);
    float p[16] __attribute__((aligned(64))), ds[16] __attribute__((aligned(64)));
    bwd_batch_eval(job, b, p, ds);
    for (size_t k = 0; k < b->n; k++)
        bwd_vaxpy(ds[k], b->kr[k], job->dim_qk, dqr + b->to[k] * ldq);
    b->n = 0;
}

/* Ask for the Q and dO pack rows of n pairs (r * TK + c) of the query tile packed at `pack`,
   and its rows' D and lse. */
static void bwd_pairs_prefetch_rows(const spattn_head_job *job, const uint16_t *rc, size_t n,
                                    const float *pack)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    const float *qr = pack + spattn__bwd_pack_qr(dq, dv);
    const float *dor = pack + spattn__bwd_pack_dor(dq, dv);
    const size_t ldq = spattn__bwd_round16(dq), ldv = spattn__bwd_round16(dv);
    vec_prefetch_l1(pack + spattn__bwd_pack_d(dq, dv));
    vec_prefetch_l1(pack + spattn__bwd_pack_l2(dq, dv));
    for (size_t e = 0; e < n; e++) {
        const size_t r = rc[e] / SPATTN_TK;
        for (size_t d = 0; d < ldq; d += 16)
            vec_prefetch_l1(qr + r * ldq + d);
        for (size_t d = 0; d < ldv; d += 16)
            vec_prefetch_l1(dor + r * ldv + d);
    }
}

/* Ask for the K rows of n pairs (r * TK + c) in key tile kt. */
static void bwd_pairs_prefetch_k(const spattn_head_job *job, const uint16_t *rc, size_t n,
                                 size_t kt)
{
    for (size_t e = 0; e < n; e++) {
        const size_t j = kt * SPATTN_TK + rc[e] % SPATTN_TK;
        const float *kr = (const float *)job->k + (ptrdiff_t)j * job->k_ts;
        for (size_t d = 0; d < job->dim_qk; d += 16)
            vec_prefetch_l1(kr + d);
    }
}

#endif

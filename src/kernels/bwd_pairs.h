/*
 * The backward's pair path, for PARTIAL tiles whose keys few rows see (scattered keys: a
 * few per row). The column path computes S and dP for all 16 rows of every key some row
 * sees, so a key seen by one row costs 16 times its work; here each allowed pair's score and
 * dP are dot products along dim (vectors over the pack's padded rows), and its terms go
 * straight into dK and dV (bwd_kv) or into row-major dQ (bwd_q). Which path a tile takes
 * depends on its mask bits alone, so results stay the same for any thread count.
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

/* P and dS (not yet times scale) of row r of the tile against key j: the column path's
   arithmetic for one lane. */
static void bwd_pair(const spattn_head_job *job, const bwd_rows *br, size_t r, size_t j, float *p,
                     float *ds)
{
    const size_t ldq = spattn__bwd_round16(job->dim_qk), ldv = spattn__bwd_round16(job->dim_v);
    const float s =
        bwd_vdot(br->qr + r * ldq, (const float *)job->k + (ptrdiff_t)j * job->k_ts, job->dim_qk);
    const float dp =
        bwd_vdot(br->dor + r * ldv, (const float *)job->v + (ptrdiff_t)j * job->v_ts, job->dim_v);
    float z, t = 0.0f;
    if (job->softcap != 0.0f) {
        t = tanhf(s * q_factor(job));
        z = t * (job->softcap * K_LOG2E);
    } else {
        z = s * q_factor(job);
    }
    if (job->slopes != NULL) {
        const ptrdiff_t dist = br->pos[r] - (ptrdiff_t)j;
        z += br->sl[r] * (float)(dist < 0 ? -dist : dist);
    }
    *p = exp2f(z - br->l2s[r]);
    *ds = *p * (dp - br->ds[r]);
    if (job->softcap != 0.0f)
        *ds *= 1.0f - t * t;
}

/* bwd_kv's work on one tile, pair by pair: each key's sums run over its rows in increasing
   order, as on the column path. dS of the pairs also goes to dsk in the order they come
   (row by row) when dsk is not NULL, for bwd_pairs_q (bwd_slots.h). */
static void bwd_pairs_kv(const spattn_head_job *job, const bwd_rows *br, size_t kt,
                         const uint64_t *rb, float *dk, float *dv, float *dsk)
{
    const size_t ldq = spattn__bwd_round16(job->dim_qk), ldv = spattn__bwd_round16(job->dim_v);
    for (size_t r = 0; r < 16; r++)
        for (uint64_t bits = rb[r]; bits != 0; bits &= bits - 1) {
            const size_t c = (size_t)__builtin_ctzll(bits);
            float p, ds;
            bwd_pair(job, br, r, kt * SPATTN_TK + c, &p, &ds);
            bwd_vaxpy(ds, br->qr + r * ldq, ldq, dk + c * ldq);
            bwd_vaxpy(p, br->dor + r * ldv, ldv, dv + c * ldv);
            if (dsk != NULL)
                *dsk++ = ds;
        }
}

/* bwd_q's work on one tile, pair by pair (each row's keys in increasing order), into
   row-major dQ rows (ldq floats each); dS from dsk when bwd_pairs_kv kept it there. */
static void bwd_pairs_q(const spattn_head_job *job, const bwd_rows *br, size_t kt,
                        const uint64_t *rb, const float *dsk, float *dqr)
{
    const size_t ldq = spattn__bwd_round16(job->dim_qk);
    for (size_t r = 0; r < 16; r++)
        for (uint64_t bits = rb[r]; bits != 0; bits &= bits - 1) {
            const size_t c = (size_t)__builtin_ctzll(bits), j = kt * SPATTN_TK + c;
            float p, ds;
            if (dsk != NULL)
                ds = *dsk++;
            else
                bwd_pair(job, br, r, j, &p, &ds);
            bwd_vaxpy(ds, (const float *)job->k + (ptrdiff_t)j * job->k_ts, job->dim_qk,
                      dqr + r * ldq);
        }
}

#endif

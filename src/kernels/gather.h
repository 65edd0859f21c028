/*
 * The gather path: rows of very sparse query tiles visit only the keys the plan listed for
 * them (spattn_keyrows), in passes over many rows (attn_gather).
 */
#ifndef SPATTN_KERNELS_GATHER_H
#define SPATTN_KERNELS_GATHER_H

#include "convert.h"
#include "kernels/common.h"
#include "kernels/gather_dots.h"
#include "kernels/gather_prog.h"
#include "kernels/gather_stage.h"
#include "kernels/kv_load.h"
#include "kernels/o_store.h"

/* The gather path's passes (see there) take at most GATHER_BATCH rows at a time: their
   scores (16 floats per started 16 keys) and sums stay in scratch between passes. */
#define GATHER_BATCH 8192

/* Sums and scores one gather call over `rows` rows holds: enough for the call's rows (or a
   batch) of 16 keys each, and always for its longest row (`keys`, in two parts: see
   gather_row_floats), so that every batch takes at least one row. */
static size_t gather_sums(size_t rows)
{
    return rows < GATHER_BATCH ? round16(rows) : GATHER_BATCH;
}
static size_t gather_scores(size_t rows, size_t keys)
{
    const size_t per_row = 16 * gather_sums(rows), longest = round16(keys) + 16;
    return per_row > longest ? per_row : longest;
}

/* The gather path's passes. A call takes a run of a head's query tiles, and its rows go
   through three passes over the whole run (every row's scores, then their probabilities, then
   every row's P V), not row by row: with 16 random keys per row,
   each key serves ~16 rows spread over the head, so it is a pass over many rows that finds K
   (then V) still in L2 from an earlier row, and one row's chain (dots, max, exp, sum,
   products) has the rows beside it to overlap with. */

/* Scores (log2 units, softcap applied) of row q against keys[0 .. n), 1 <= n <= 16; -inf in
   the lanes past n. */
SPATTN_ALWAYS_INLINE col_t row_scores16(const int kvt, const int qp, const spattn_head_job *job,
                                        const void *q, size_t dq, const void *k, ptrdiff_t k_ts,
                                        const uint32_t *keys, size_t n)
{
    col_t s = col_mul(qk_dots16(kvt, qp, q, dq, k, k_ts, keys, n), col_set1(q_factor(job)));
    if (job->softcap != 0.0f)
        s = col_mul(col_tanh(s), col_set1(job->softcap * K_LOG2E));
    return col_select(cmask_bits((uint32_t)((1u << n) - 1u)), s, col_set1(K_NINF));
}

/* Floats of the score rows of a row of n keys, a of them its progression: each part starts
   a block of 16. */
static inline size_t gather_row_floats(size_t n, size_t a)
{
    return round16(a) + round16(n - a);
}

/* ALiBi over the scores the first pass stored for rows i0 .. i0 + rows (laid out as there),
   a pass of its own so that the score loop of the common case stays as it is. |i' - j| is
   formed as an exact integer, then converted (exact below 2^24); lanes past a row's keys are
   -inf and stay so. */
static void gather_alibi(const spattn_head_job *job, const spattn_keyrows *kr, size_t i0,
                         size_t rows, float *sb)
{
    float dist[16] __attribute__((aligned(64)));
    float *s = sb;
    for (size_t r = 0; r < rows; r++) {
        size_t n;
        const uint32_t *keys = spattn__keyrows_row(kr, i0 + r, &n);
        const ptrdiff_t pos = job->pos0 + (ptrdiff_t)(i0 + r) * job->pos_step;
        const col_t f = col_set1(alibi_factor(job, i0 + r));
        /* the row's progression and the rest of its keys, each from a block boundary */
        const size_t a = prog_keys(kr, i0 + r);
        for (int part = 0; part < 2; part++) {
            const uint32_t *ks = part ? keys + a : keys;
            const size_t m = part ? n - a : a;
            for (size_t c0 = 0; c0 < m; c0 += 16, s += 16) {
                for (size_t c = 0; c < 16; c++) {
                    const ptrdiff_t d = pos - (ptrdiff_t)ks[c0 + c < m ? c0 + c : m - 1];
                    dist[c] = (float)(d < 0 ? -d : d);
                }
                col_store(s, col_fma(f, col_load(dist), col_load(s)));
            }
        }
    }
}

/* The 4 VL elements of a V row from element e: in order, or for bf16 V read as even and odd
   elements (eo, KV_EO) the even and odd elements of the first 2 VL in x[0], x[1], of the next
   2 VL in x[2], x[3]. */
SPATTN_ALWAYS_INLINE void pv_row_4v(const int kvt, const int eo, const char *row, size_t e,
                                    vec_t *x)
{
#ifdef VEC_BF16_EO
    if (eo) {
        const uint16_t *h = (const uint16_t *)(const void *)row + e;
        vec_loadu_bf16_eo(h, &x[0], &x[1]);
        vec_loadu_bf16_eo(h + 2 * VL, &x[2], &x[3]);
        return;
    }
#else
    (void)eo;
#endif
    for (int i = 0; i < 4; i++)
        x[i] = kv_loadu(kvt, row, e + (size_t)i * VL);
}

/* acc[x] += sum over c < n of p[c] * V[keys[c]][e + x VL ..], x < 4 (in pv_row_4v's order);
   odd keys go to a second set of accumulators (two chains of n/2 FMAs, not one of n), added
   in at the end. Each O element takes the same products in the same order either way. */
SPATTN_ALWAYS_INLINE void pv_keys_4v(const int kvt, const int eo, vec_t *acc, const void *v,
                                     ptrdiff_t v_ts, const uint32_t *keys, const float *p, size_t n,
                                     size_t e)
{
    vec_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    vec_t b0 = vec_zero(), b1 = vec_zero(), b2 = vec_zero(), b3 = vec_zero();
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const vec_t pj = vec_set1(p[j]), pk = vec_set1(p[j + 1]);
        vec_t x[4], y[4];
        pv_row_4v(kvt, eo, kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts), e, x);
        pv_row_4v(kvt, eo, kv_row(kvt, v, (ptrdiff_t)keys[j + 1], v_ts), e, y);
        a0 = vec_fma(pj, x[0], a0);
        a1 = vec_fma(pj, x[1], a1);
        a2 = vec_fma(pj, x[2], a2);
        a3 = vec_fma(pj, x[3], a3);
        b0 = vec_fma(pk, y[0], b0);
        b1 = vec_fma(pk, y[1], b1);
        b2 = vec_fma(pk, y[2], b2);
        b3 = vec_fma(pk, y[3], b3);
    }
    if (j < n) {
        const vec_t pj = vec_set1(p[j]);
        vec_t x[4];
        pv_row_4v(kvt, eo, kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts), e, x);
        a0 = vec_fma(pj, x[0], a0);
        a1 = vec_fma(pj, x[1], a1);
        a2 = vec_fma(pj, x[2], a2);
        a3 = vec_fma(pj, x[3], a3);
    }
    acc[0] = vec_add(a0, b0);
    acc[1] = vec_add(a1, b1);
    acc[2] = vec_add(a2, b2);
    acc[3] = vec_add(a3, b3);
}

/* The same for one vector of the row's last 4 or fewer, w <= VL lanes of it: masked loads
   only for the row's tail (w < VL; V rows are not padded), not for whole vectors
   (vmaskmovps, AVX2's masked load, is slow on some cores). The test on w is made once, outside
   the loop over keys. */
SPATTN_ALWAYS_INLINE vec_t pv_keys_1v(const int kvt, vec_t a0, const void *v, ptrdiff_t v_ts,
                                      const uint32_t *keys, const float *p, size_t n, size_t e,
                                      size_t w)
{
    if (w == VL) {
        for (size_t j = 0; j < n; j++)
            a0 = vec_fma(vec_set1(p[j]), kv_loadu(kvt, kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts), e),
                         a0);
        return a0;
    }
    const vmask_t mk = vmask_first(w);
    for (size_t j = 0; j < n; j++)
        a0 = vec_fma(vec_set1(p[j]),
                     kv_loadu_m(kvt, kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts), e, mk), a0);
    return a0;
}

/* O = (init + sum over c < n of p[c] V[keys[c]]) * f, written to o (f: 1 / l, see
   row_scale; init: the P V sums of the row's progression, or NULL); exact zeros when f == 0
   (no finite score, l == 0: 0 * an infinite V would be NaN). p unnormalised and O scaled
   once at the end keep the sum and its reciprocal off the chain the products wait on. V of
   type kvt; o is the row in the job's o_dtype. */
SPATTN_ALWAYS_INLINE void pv_gather_row(const int kvt, const spattn_head_job *job, const size_t dv,
                                        const uint32_t *keys, size_t n, const float *p, float f,
                                        void *o, const float *init)
{
    if (f == 0.0f) {
        for (size_t e = 0; e < dv; e += VL)
            o_store(job, o, e, dv - e < VL ? dv - e : VL, vec_zero());
        return;
    }
    const vec_t inv = vec_set1(f);
    size_t e = 0;
    for (; e + 4 * VL <= dv; e += 4 * VL) {
        vec_t acc[4] = {vec_zero(), vec_zero(), vec_zero(), vec_zero()};
        if (init != NULL)
            for (int x = 0; x < 4; x++)
                acc[x] = vec_loadu(init + e + (size_t)x * VL);
#ifdef VEC_BF16_EO
        if (KV_EO(kvt)) {
            if (init != NULL)
                vecs_eo(acc, 4, 1);
            pv_keys_4v(kvt, 1, acc, job->v, job->v_ts, keys, p, n, e);
            vecs_eo(acc, 4, 0);
        } else
#endif
            pv_keys_4v(kvt, 0, acc, job->v, job->v_ts, keys, p, n, e);
        for (int x = 0; x < 4; x++)
            o_store(job, o, e + (size_t)x * VL, VL, vec_mul(acc[x], inv));
    }
    for (; e < dv; e += VL) {
        const size_t w = dv - e < VL ? dv - e : VL;
        vec_t acc = init != NULL ? vec_loadu_m(init + e, vmask_first(w)) : vec_zero();
        acc = pv_keys_1v(kvt, acc, job->v, job->v_ts, keys, p, n, e, w);
        o_store(job, o, e, w, vec_mul(acc, inv));
    }
}

/* The most keys of rows i .. i + 15 of kr when each has 1 to 16 (one block of scores each),
   else 0. */
static inline size_t rows_block_keys(const spattn_keyrows *kr, size_t i)
{
    size_t nmax = 0;
    for (size_t r = i; r < i + 16; r++) {
        const size_t n = kr->off[r + 1] - kr->off[r];
        if (n == 0 || n > 16)
            return 0;
        nmax = n > nmax ? n : nmax;
    }
    return nmax;
}

/* The probability pass for 16 rows of one block each, at most nmax keys a row (s: their 16
   blocks, row after row): the blocks transposed so that lane r is row r, the max and the sum
   taken lane-wise over the rows' key positions in order, exp2 only of the positions some row
   has, and the probabilities transposed back. Row by row, each row pays a horizontal max and
   sum and an exp2 of its own, which rows of a handful of keys (a narrow window, few-key heads)
   notice. lb: the rows' factors (row_scale). */
static void probs16(const spattn_head_job *job, size_t i, size_t nmax, float *s, float *lb)
{
    float t[16 * 16] __attribute__((aligned(64)));
    const col_t one = col_set1(1.0f);
    col_transpose_rows(s, 16, 16, 16, one, t); /* lanes past a row's keys: -inf */
    col_t mx = col_load(t);
    for (size_t c = 1; c < nmax; c++)
        mx = col_max(mx, col_load(t + 16 * c));
    const col_t shift = col_select(col_is_neginf(mx), col_zero(), mx);
    col_t sum = col_zero();
    for (size_t c = 0; c < nmax; c++) {
        const col_t p = col_exp2(col_sub(col_load(t + 16 * c), shift));
        col_store(t + 16 * c, p);
        sum = col_add(sum, p);
    }
    col_transpose_rows(t, 16, nmax, 16, one, s); /* positions past nmax: 0 */
    float m[16] __attribute__((aligned(64))), l[16] __attribute__((aligned(64)));
    col_store(m, mx);
    col_store(l, sum);
    if (job->sinks == NULL && job->lse == NULL) { /* row_scale's factor, in one vector */
        for (size_t r = 0; r < 16; r++)
            lb[r] = row_inv(l[r]);
        return;
    }
    for (size_t r = 0; r < 16; r++)
        lb[r] = row_scale(job, i + r, m[r], l[r], job->lse ? job->lse + i + r : NULL);
}

/* Rows i0 .. i0 + rows of kr: scores into sb (row after row, in blocks of 16 floats: the
   row's progression, then the rest of its keys, gather_row_floats), turned into
   probabilities with the factors of their O in lb, then P V. q is read in place and the
   scale applied to the scores. A row with no key gets factor 0, so zeros, and lse -inf (or
   its sink). K and V of type kvt; a 16-bit Q row is widened into qb (dim_qk floats) first.
   gp: the call's residue blocks, NULL when kr has none; then the progressions' scores and
   P V go residue by residue (prog_scores, prog_pv), the rest of each row's keys row by row. */
SPATTN_ALWAYS_INLINE void gather_passes_d(const int kvt, const int qp, const spattn_head_job *job,
                                          const size_t dq, const size_t dv,
                                          const spattn_keyrows *kr, size_t i0, size_t rows,
                                          float *sb, float *lb, float *qb, gather_prog *gp)
{
    size_t n;
    float *s = sb;
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *keys = spattn__keyrows_row(kr, i0 + r, &n);
        if (n == 0)
            continue;
        const size_t a = gp != NULL ? prog_keys(kr, i0 + r) : 0;
        if (gp != NULL)
            gp->off[r] = (uint32_t)(s - sb);
        s += round16(a);
        keys += a;
        n -= a;
        if (n == 0)
            continue;
        const void *q = (const char *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts * qs;
        if (!qp && job->q_dtype != SPATTN_DTYPE_F32) {
            row_widen((int)job->q_dtype, qb, q, dq);
            q = qb;
        }
        if (n <= 16) {
            col_store(s, row_scores16(kvt, qp, job, q, dq, job->k, job->k_ts, keys, n));
            s += 16;
            continue;
        }
        for (size_t c = 0; c < n; c += 16, s += 16)
            col_store(s, row_scores16(kvt, qp, job, q, dq, job->k, job->k_ts, keys + c,
                                      n - c < 16 ? n - c : 16));
    }
    if (gp != NULL) {
        prog_list_rows(kr, i0, rows, gp);
        prog_scores(kvt, job, dq, kr, i0, sb, gp);
    }
    if (job->slopes != NULL)
        gather_alibi(job, kr, i0, rows, sb);
    s = sb;
    for (size_t r = 0; r < rows; r++) {
        const size_t nmax =
            gp == NULL && r % 16 == 0 && r + 16 <= rows ? rows_block_keys(kr, i0 + r) : 0;
        if (nmax != 0) {
            probs16(job, i0 + r, nmax, s, lb + r);
            s += 16 * 16;
            r += 15;
            continue;
        }
        spattn__keyrows_row(kr, i0 + r, &n);
        float *lse = job->lse ? job->lse + i0 + r : NULL;
        if (n == 0) {
            lb[r] = row_scale(job, i0 + r, K_NINF, 0.0f, lse);
            continue;
        }
        const size_t w = gather_row_floats(n, gp != NULL ? prog_keys(kr, i0 + r) : 0);
        col_t mx = col_load(s);
        for (size_t c = 16; c < w; c += 16)
            mx = col_max(mx, col_load(s + c));
        const float mt = col_hmax(mx), shift = mt == K_NINF ? 0.0f : mt;
        if (w == 16) { /* one block, the common case: mx is its scores, no loop */
            /* lanes past n are -inf, whose exp2 is the 0 col_exp2_lo gives */
            const col_t x = col_sub(mx, col_set1(shift));
            col_store(s, n <= 8 ? col_exp2_lo(x) : col_exp2(x));
            /* Summed in key order, as probs16 sums its rows: a row's bits do not depend on
               which of the two took it (a call's rows can start anywhere in a group of 16). */
            float l = 0.0f;
            for (size_t c = 0; c < n; c++)
                l += s[c];
            lb[r] = row_scale(job, i0 + r, mt, l, lse);
            s += w;
            continue;
        }
        col_t sum = col_zero();
        for (size_t c = 0; c < w; c += 16) {
            const col_t p = col_exp2(col_sub(col_load(s + c), col_set1(shift)));
            col_store(s + c, p);
            sum = col_add(sum, p);
        }
        /* lb: the row's factor for O (1 / l, and the sink's share when it has one). */
        lb[r] = row_scale(job, i0 + r, mt, col_hsum(sum), lse);
        s += w;
    }
    if (gp != NULL)
        prog_pv(kvt, job, dv, kr, i0, sb, lb, gp);
    s = sb;
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *keys = spattn__keyrows_row(kr, i0 + r, &n);
        const size_t a = gp != NULL ? prog_keys(kr, i0 + r) : 0;
        const float *init = a != 0 && lb[r] != 0.0f ? gp->stash + r * gp->ldv : NULL;
        pv_gather_row(kvt, job, dv, keys + a, n - a, s + round16(a), lb[r], o_row(job, i0 + r),
                      init);
        s += n != 0 ? gather_row_floats(n, a) : 0;
    }
}

/* Common head dims as constants, so the dot and P V loops unroll completely; each for every
   K/V type. */
SPATTN_ALWAYS_INLINE void gather_passes_q(const int kvt, const int qp, const spattn_head_job *job,
                                          const spattn_keyrows *kr, size_t i0, size_t rows,
                                          float *sb, float *lb, float *qb, gather_prog *gp)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    if (dq == 64 && dv == 64)
        gather_passes_d(kvt, qp, job, 64, 64, kr, i0, rows, sb, lb, qb, gp);
    else if (dq == 128 && dv == 128)
        gather_passes_d(kvt, qp, job, 128, 128, kr, i0, rows, sb, lb, qb, gp);
    else
        gather_passes_d(kvt, qp, job, dq, dv, kr, i0, rows, sb, lb, qb, gp);
}

/* ... and Q.K in pairs or not, a constant too (GATHER_PAIRS). */
SPATTN_ALWAYS_INLINE void gather_passes_t(const int kvt, const spattn_head_job *job,
                                          const spattn_keyrows *kr, size_t i0, size_t rows,
                                          float *sb, float *lb, float *qb, gather_prog *gp)
{
    if (GATHER_PAIRS(kvt, job))
        gather_passes_q(kvt, 1, job, kr, i0, rows, sb, lb, qb, gp);
    else
        gather_passes_q(kvt, 0, job, kr, i0, rows, sb, lb, qb, gp);
}

static void gather_passes(const spattn_head_job *job, const spattn_keyrows *kr, size_t i0,
                          size_t rows, float *sb, float *lb, float *qb, gather_prog *gp)
{
    KV_DISPATCH(job->kv_dtype, gather_passes_t(KVT, job, kr, i0, rows, sb, lb, qb, gp));
}

/* Rows b .. e of kr through the passes: on the stage (st: gather_stage_floats) a run of rows
   at a time where the run's keys fit it and it reads each staged key at least twice on
   average, on K and V in place otherwise. */
static void gather_staged(const spattn_head_job *job, const spattn_keyrows *kr, size_t b, size_t e,
                          float *sb, float *lb, float *qb, float *st)
{
    const size_t dq = job->dim_qk, dv = job->dim_v, kw = round16(dq), vw = round16(dv);
    const size_t span = spattn__stage_keys(dq, dv);
    float *ks = st, *vs = ks + span * kw;
    size_t *off = (size_t *)(void *)(vs + span * vw);
    uint32_t *keys =
        (uint32_t *)(void *)((float *)(void *)off +
                             round16((GATHER_STAGE_ROWS + 1) * sizeof(size_t) / sizeof(float)));
    for (size_t r = b, t; r < e; r = t) {
        size_t lo = SIZE_MAX, hi = 0, pairs = 0, n;
        for (t = r; t < e && t - r < GATHER_STAGE_ROWS; t++) {
            const uint32_t *k = spattn__keyrows_row(kr, t, &n);
            if (n == 0)
                continue;
            const size_t l = k[0] < lo ? k[0] : lo, h = k[n - 1] > hi ? k[n - 1] : hi;
            if (h - l >= span || pairs + n > GATHER_STAGE_LIST)
                break;
            lo = l;
            hi = h;
            pairs += n;
        }
        if (pairs == 0 || pairs < 2 * (hi - lo + 1)) {
            t = t > r ? t : r + 1;
            gather_passes(job, kr, r, t - r, sb, lb, qb, NULL);
            continue;
        }
        KV_DISPATCH(job->kv_dtype, gather_stage_rows(KVT, ks, kw, job->k, job->k_ts, lo, hi, dq));
        KV_DISPATCH(job->kv_dtype, gather_stage_rows(KVT, vs, vw, job->v, job->v_ts, lo, hi, dv));
        spattn_keyrows rel = {0}; /* the passes read its lists only */
        rel.len_q = t - r;
        rel.off = off;
        rel.keys = keys;
        off[0] = 0;
        for (size_t i = r; i < t; i++) {
            const uint32_t *k = spattn__keyrows_row(kr, i, &n);
            for (size_t c = 0; c < n; c++)
                keys[off[i - r] + c] = k[c] - (uint32_t)lo;
            off[i - r + 1] = off[i - r] + n;
        }
        const spattn_head_job x = gather_stage_job(job, r, lo, ks, vs);
        gather_passes(&x, &rel, 0, t - r, sb, lb, qb, NULL);
    }
}

/* Query tiles qt .. qt + nqt - 1 through the keys the plan listed for their rows, in batches
   of rows whose scores fit the scratch: gather_scores floats of scores, then gather_sums
   sums, sized by the call's rows and longest row (the plan's scratch is for its longest
   call), then round16(dim_qk) floats for a widened 16-bit Q row, then the residue blocks
   when kr has them (spattn__keyrows_prog_floats: the plan adds them), or else the stage
   (gather_stage_floats, counted by scratch_floats). (Software prefetch of
   the next rows' K and V measured slower: the passes already keep enough loads in flight.) */
static void tpl_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt, size_t nqt,
                       float *scratch)
{
    size_t i0;
    const size_t i1 = spattn__keyrows_span(kr, qt, nqt, &i0);
    const size_t max_rows = gather_sums(i1 - i0);
    const size_t max_scores = gather_scores(i1 - i0, kr->longest);
    float *sb = scratch, *lb = sb + max_scores, *qb = lb + max_rows;
    gather_prog g, *gp = NULL;
    size_t batch_rows = max_rows;
    if (kr->prog_stride != 0) {
        const size_t st = kr->prog_stride, len = kr->prog_len, dq = job->dim_qk;
        g.ldt = round16(len);
        g.ldv = round16(job->dim_v);
        g.kt = qb + round16(dq);
        g.v = g.kt + st * dq * g.ldt;
        g.stage = g.v + st * len * g.ldv;
        g.tt = g.stage + 16 * round16(dq) + SPATTN_PROG_TT_PAD;
        g.stash = g.tt + 256;
        g.kn = (uint32_t *)(void *)(g.stash + SPATTN_PROG_BATCH * g.ldv);
        g.vn = g.kn + st;
        g.off = g.vn + st;
        g.list = g.off + SPATTN_PROG_BATCH;
        g.start = g.list + SPATTN_PROG_BATCH;
        memset(g.kn, 0, 2 * st * sizeof *g.kn);
        memset(g.tt - SPATTN_PROG_TT_PAD, 0, SPATTN_PROG_TT_PAD * sizeof *g.tt);
        gp = &g;
        batch_rows = max_rows < SPATTN_PROG_BATCH ? max_rows : SPATTN_PROG_BATCH;
    }
    for (size_t b = i0, e; b < i1; b = e) {
        size_t used = 0, n;
        for (e = b; e < i1 && e - b < batch_rows; e++) {
            spattn__keyrows_row(kr, e, &n);
            const size_t w = n != 0 ? gather_row_floats(n, gp != NULL ? prog_keys(kr, e) : 0) : 0;
            if (e > b && used + w > max_scores)
                break;
            used += w;
        }
        if (gp == NULL && gather_stage_pays(job, kr))
            gather_staged(job, kr, b, e, sb, lb, qb, qb + round16(job->dim_qk));
        else
            gather_passes(job, kr, b, e - b, sb, lb, qb, gp);
    }
}

#endif

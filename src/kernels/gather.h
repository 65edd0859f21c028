/*
 * The gather path: rows of very sparse query tiles visit only the keys the plan listed for
 * them (spattn_keyrows), in passes over many rows (attn_gather).
 */
#ifndef SPATTN_KERNELS_GATHER_H
#define SPATTN_KERNELS_GATHER_H

#include "convert.h"
#include "kernels/common.h"
#include "kernels/gather_prog.h"
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

/* q . K[keys[c]] in lane c for c < 16 (raw, unscaled), for 1 <= n <= 16 keys. Lanes past n
   hold a repeat of key n - 1 or 0 (the caller masks them): repeats keep the loop free of
   tests on n, except that rows of at most 4 keys, half vectors of repeats, and the second
   pair of a row of 1 or 2 keys are skipped (rows of a handful of keys would otherwise pay
   for 16). */
SPATTN_ALWAYS_INLINE col_t qk_dots16(const int kvt, const float *q, size_t dq, const void *k,
                                     ptrdiff_t k_ts, const uint32_t *keys, size_t n)
{
    if (n <= 4) {
        vec_t a[4];
        for (size_t c = 0; c < 2; c++)
            a[c] = qk_dot_vec(kvt, q, dq, kv_row(kvt, k, (ptrdiff_t)keys[c < n ? c : n - 1], k_ts));
        if (n > 2)
            for (size_t c = 2; c < 4; c++)
                a[c] = qk_dot_vec(kvt, q, dq,
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
            qk_dots_m(kvt, q, dq, k, k_ts, keys, c0, n, VL, a);
        } else {
            qk_dots_m(kvt, q, dq, k, k_ts, keys, c0, n, VL / 2, a);
            for (size_t c = VL / 2; c < VL; c++)
                a[c] = vec_zero();
        }
        part[g] = vec_hsums(a);
    }
    return col_from_vecs(part);
}

/* Scores (log2 units, softcap applied) of row q against keys[0 .. n), 1 <= n <= 16; -inf in
   the lanes past n. */
SPATTN_ALWAYS_INLINE col_t row_scores16(const int kvt, const spattn_head_job *job, const float *q,
                                        size_t dq, const void *k, ptrdiff_t k_ts,
                                        const uint32_t *keys, size_t n)
{
    col_t s = col_mul(qk_dots16(kvt, q, dq, k, k_ts, keys, n), col_set1(q_factor(job)));
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

/* acc[x] += sum over c < n of p[c] * V[keys[c]][e + x VL ..], x < 4; odd keys go to a second
   set of accumulators (two chains of n/2 FMAs, not one of n), added in at the end. */
SPATTN_ALWAYS_INLINE void pv_keys_4v(const int kvt, vec_t *acc, const void *v, ptrdiff_t v_ts,
                                     const uint32_t *keys, const float *p, size_t n, size_t e)
{
    vec_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    vec_t b0 = vec_zero(), b1 = vec_zero(), b2 = vec_zero(), b3 = vec_zero();
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const vec_t pj = vec_set1(p[j]), pk = vec_set1(p[j + 1]);
        const char *x = kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts);
        const char *y = kv_row(kvt, v, (ptrdiff_t)keys[j + 1], v_ts);
        a0 = vec_fma(pj, kv_loadu(kvt, x, e), a0);
        a1 = vec_fma(pj, kv_loadu(kvt, x, e + VL), a1);
        a2 = vec_fma(pj, kv_loadu(kvt, x, e + 2 * VL), a2);
        a3 = vec_fma(pj, kv_loadu(kvt, x, e + 3 * VL), a3);
        b0 = vec_fma(pk, kv_loadu(kvt, y, e), b0);
        b1 = vec_fma(pk, kv_loadu(kvt, y, e + VL), b1);
        b2 = vec_fma(pk, kv_loadu(kvt, y, e + 2 * VL), b2);
        b3 = vec_fma(pk, kv_loadu(kvt, y, e + 3 * VL), b3);
    }
    if (j < n) {
        const vec_t pj = vec_set1(p[j]);
        const char *x = kv_row(kvt, v, (ptrdiff_t)keys[j], v_ts);
        a0 = vec_fma(pj, kv_loadu(kvt, x, e), a0);
        a1 = vec_fma(pj, kv_loadu(kvt, x, e + VL), a1);
        a2 = vec_fma(pj, kv_loadu(kvt, x, e + 2 * VL), a2);
        a3 = vec_fma(pj, kv_loadu(kvt, x, e + 3 * VL), a3);
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
        pv_keys_4v(kvt, acc, job->v, job->v_ts, keys, p, n, e);
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

/* Rows i0 .. i0 + rows of kr: scores into sb (row after row, in blocks of 16 floats: the
   row's progression, then the rest of its keys, gather_row_floats), turned into
   probabilities with the factors of their O in lb, then P V. q is read in place and the
   scale applied to the scores. A row with no key gets factor 0, so zeros, and lse -inf (or
   its sink). K and V of type kvt; a 16-bit Q row is widened into qb (dim_qk floats) first.
   gp: the call's residue blocks, NULL when kr has none; then the progressions' scores and
   P V go residue by residue (prog_scores, prog_pv), the rest of each row's keys row by row. */
SPATTN_ALWAYS_INLINE void gather_passes_d(const int kvt, const spattn_head_job *job,
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
        const void *qv = (const char *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts * qs;
        const float *q = qv;
        if (job->q_dtype != SPATTN_DTYPE_F32) {
            row_widen((int)job->q_dtype, qb, qv, dq);
            q = qb;
        }
        if (n <= 16) {
            col_store(s, row_scores16(kvt, job, q, dq, job->k, job->k_ts, keys, n));
            s += 16;
            continue;
        }
        for (size_t c = 0; c < n; c += 16, s += 16)
            col_store(s, row_scores16(kvt, job, q, dq, job->k, job->k_ts, keys + c,
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
        col_t sum;
        if (w == 16) { /* one block, the common case: mx is its scores, no loop */
            /* lanes past n are -inf, whose exp2 is the 0 col_exp2_lo gives */
            const col_t x = col_sub(mx, col_set1(shift));
            sum = n <= 8 ? col_exp2_lo(x) : col_exp2(x);
            col_store(s, sum);
        } else {
            sum = col_zero();
            for (size_t c = 0; c < w; c += 16) {
                const col_t p = col_exp2(col_sub(col_load(s + c), col_set1(shift)));
                col_store(s + c, p);
                sum = col_add(sum, p);
            }
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
SPATTN_ALWAYS_INLINE void gather_passes_t(const int kvt, const spattn_head_job *job,
                                          const spattn_keyrows *kr, size_t i0, size_t rows,
                                          float *sb, float *lb, float *qb, gather_prog *gp)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    if (dq == 64 && dv == 64)
        gather_passes_d(kvt, job, 64, 64, kr, i0, rows, sb, lb, qb, gp);
    else if (dq == 128 && dv == 128)
        gather_passes_d(kvt, job, 128, 128, kr, i0, rows, sb, lb, qb, gp);
    else
        gather_passes_d(kvt, job, dq, dv, kr, i0, rows, sb, lb, qb, gp);
}

static void gather_passes(const spattn_head_job *job, const spattn_keyrows *kr, size_t i0,
                          size_t rows, float *sb, float *lb, float *qb, gather_prog *gp)
{
    KV_DISPATCH(job->kv_dtype, gather_passes_t(KVT, job, kr, i0, rows, sb, lb, qb, gp));
}

/* Query tiles qt .. qt + nqt - 1 through the keys the plan listed for their rows, in batches
   of rows whose scores fit the scratch: gather_scores floats of scores, then gather_sums
   sums, sized by the call's rows and longest row (the plan's scratch is for its longest
   call), then round16(dim_qk) floats for a widened 16-bit Q row, then the residue blocks
   when kr has them (spattn__keyrows_prog_floats: the plan adds them). (Software prefetch of
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
        gather_passes(job, kr, b, e - b, sb, lb, qb, gp);
    }
}

#endif

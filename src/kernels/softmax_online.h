/*
 * One query tile's state on the tile path and the online softmax that folds each key tile's
 * scores into it: running max and sum per row (lane), rescale, exp2, then P V.
 */
#ifndef SPATTN_KERNELS_SOFTMAX_ONLINE_H
#define SPATTN_KERNELS_SOFTMAX_ONLINE_H

/* In the order the tile path runs them (which also keeps gcc's inlining choices). */
#include "kernels/qk_cols.h"
#include "kernels/qk_rows.h"
#include "kernels/pv_cols.h"
#include "kernels/pv_rows.h"

/* Floats of scratch one tile_state takes: Q (16 * dim_qk + 32, which the AMX tier's split
   f16 pairs fill) | O (16 * dim_v rounded up to 16) | scores (16 per key, 64 + QK_NB keys) |
   m, l, alpha; each part a multiple of 16, so each stays 64-byte aligned. */
#define QT_FLOATS(dq) (16 * (dq) + 32)
static size_t tile_state_floats(size_t dq, size_t dv)
{
    return QT_FLOATS(dq) + 16 * (round16(dv) + SPATTN_TK + QK_NB + 3);
}

/* One query tile's state on the tile path: Q (packed for its QK form), unnormalised O, scores
   of the current key tile, and the running max and sum. */
typedef struct tile_state {
    float *qtp, *ot, *st, *ml;
    size_t i0, rows;
    enum { QK_COLUMNS, QK_ROW_DOTS } qk; /* qk_cols (Q packed transposed) or qk_rowdot */
    enum { O_ROWS, O_COLUMNS } o;        /* pv_rows_tile or pv_cols_tile (PV_ROWS 0) */
    const tile_prefetch *pv_pf;          /* what pv_rows_tile asks for of the next tile */
    /* COL_HALVES: the rows fit the low half of a col_t, whose high half QK and exp2 skip. */
    int low_half;
    /* Tiles taking qk_rowdot (at most 8 rows: decode with GQA groups of 4 or 8): scores
       compact, key j's 4 (or 8) rows at st + 4 j (8 j), so that one exp2 serves 4 (2) keys
       instead of one key on 4 (8) of its 16 lanes; 0 for columns (tile_compact). */
    int compact;
    /* No P V has added to O yet (its rows still the zeros of tile_begin): the AMX P V starts
       its C tiles at zero instead of loading and rescaling O. */
    int pv_fresh;
    col_t mrun, lrun;
    /* ALiBi (job->slopes): -slope * log2(e) per row, the rows' offsets from the tile's first
       query position, and that position. */
    int alibi;
    col_t nslope, row_pos;
    ptrdiff_t pos;
} tile_state;

/* ALiBi, set up per query tile. (A sink joins each row's softmax once, when the row is
   finished: row_scale.) */
static void tile_begin_modifiers(tile_state *ts, const spattn_head_job *job)
{
    float a[16] __attribute__((aligned(64))), b[16] __attribute__((aligned(64)));
    ts->alibi = job->slopes != NULL;
    ts->nslope = ts->row_pos = col_zero();
    ts->pos = 0;
    if (!ts->alibi)
        return;
    for (size_t r = 0; r < 16; r++) {
        a[r] = r < ts->rows ? alibi_factor(job, ts->i0 + r) : 0.0f;
        b[r] = (float)((ptrdiff_t)r * job->pos_step);
    }
    ts->nslope = col_load(a);
    ts->row_pos = col_load(b);
    ts->pos = job->pos0 + (ptrdiff_t)ts->i0 * job->pos_step;
}

/* Lanes per key of the tile's compact scores (tile_state), or 0: rows and QK as said there,
   and a P V that reads P with a stride (pv_rows_tile, and the vdpbf16ps pairs, which pair keys
   from the compact layout) after an exp2 pass that is tile_fold's own (no softcap pass, which
   works on columns). */
static int tile_compact(const tile_state *ts, const spattn_head_job *job)
{
    if (ts->qk != QK_ROW_DOTS || ts->o != O_ROWS || scores_pass(job))
        return 0;
    return ts->rows <= 4 ? 4 : 8;
}

static void tile_begin(tile_state *ts, const spattn_head_job *job, const spattn_mask *m, size_t qt,
                       float *scratch)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    ts->rows = spattn__qt_rows(m, qt);
    ts->i0 = qt * SPATTN_TQ;
    ts->o = PV_ROWS || ts->rows <= PV_ROWS_BELOW ? O_ROWS : O_COLUMNS;
    ts->low_half = COL_HALVES && ts->rows <= SPATTN_TQ / 2;
    ts->qtp = scratch;
    ts->ot = ts->qtp + QT_FLOATS(dq);
    ts->st = ts->ot + 16 * round16(dv);
    ts->ml = ts->st + 16 * (SPATTN_TK + QK_NB);
    ts->qk = ts->rows <= QR_MAX ? QK_ROW_DOTS : QK_COLUMNS;
    ts->compact = tile_compact(ts, job);
    ts->pv_pf = NULL;
    ts->pv_fresh = 1;
    if (ts->qk == QK_ROW_DOTS)
        pack_q_rows(job, ts->i0, ts->rows, ts->qtp);
    else
        pack_q_cols(job, ts->i0, ts->rows, ts->qtp, ts->st);
    /* Inline stores, not a memset call, which showed in profiles of block masks whose query
       tiles have one key tile. */
    for (size_t e = 0; e < 16 * round16(dv); e += 16)
        col_store(ts->ot + e, col_zero());
    ts->mrun = col_set1(K_NINF);
    ts->lrun = col_zero();
    tile_begin_modifiers(ts, job);
}

/* The ALiBi term of the tile's rows against the key tile at j0, for the QK kernels to add
   (NULL when they add none: no ALiBi, or softcap, whose pass adds it after tanh). */
static const qk_alibi *tile_alibi(const tile_state *ts, const spattn_head_job *job, size_t j0,
                                  qk_alibi *al)
{
    if (!ts->alibi || scores_pass(job))
        return NULL;
    al->nslope = ts->nslope;
    al->pos = col_add(col_set1((float)(ts->pos - (ptrdiff_t)j0)), ts->row_pos);
    return al;
}

/* The keys some row of a PARTIAL tile allows, as bits. */
static uint64_t tile_used_keys(const spattn_mask *m, const spattn_ktile *tile)
{
    const uint64_t *bits = &m->bits[(size_t)tile->part * SPATTN_TQ];
    const size_t n = spattn__kt_cols(m, tile->kt);
    uint64_t used = 0;
    for (size_t r = 0; r < SPATTN_TQ; r++)
        used |= bits[r];
    return n < 64 ? used & (((uint64_t)1 << n) - 1) : used;
}

/* The keys of a stored tile to visit: all of a FULL tile; of a PARTIAL one those some row
   allows (keys no row allows are never loaded), with their column masks. Returns their
   count; *keys gets them as bits. *masked is 1 when some of the query tile's `rows` rows
   exclude some visited key: a PARTIAL tile whose visited keys every row allows (summary
   columns, sinks, global tokens, blocks narrower than a tile) runs unmasked over its keys as a
   FULL tile does, and pairs with the other query tile's tile when their keys are the same. */
static size_t tile_keys(const spattn_mask *m, const spattn_ktile *tile, size_t rows, uint32_t *idx,
                        uint32_t *cm, int *masked, uint64_t *keys)
{
    const size_t n = spattn__kt_cols(m, tile->kt);
    *masked = 0;
    if (tile->part == SPATTN_FULL) {
        for (size_t j = 0; j < n; j++)
            idx[j] = (uint32_t)j;
        *keys = n < 64 ? ((uint64_t)1 << n) - 1 : ~(uint64_t)0;
        return n;
    }
    const uint64_t *bits = &m->bits[(size_t)tile->part * SPATTN_TQ];
    /* The used columns' bits, visited one by one: a tile of a few columns (the summary
       columns of a fixed pattern) costs a few steps, not a test of every column whose outcome
       the branch predictor cannot know. */
    uint64_t used = tile_used_keys(m, tile);
    *keys = used;
    const uint32_t all = ((uint32_t)1 << rows) - 1;
    size_t same = 0;
    while (same < rows && bits[same] == used)
        same++;
    size_t nk = 0;
    if (same == rows) { /* every row allows every used key: no column masks to transpose */
        for (; used != 0; used &= used - 1) {
            idx[nk] = (uint32_t)__builtin_ctzll(used);
            cm[nk++] = all;
        }
        return nk;
    }
    uint32_t cm_all[SPATTN_TK];
    col_masks_from_rows(bits, cm_all);
    uint32_t some = all;
    for (; used != 0; used &= used - 1) {
        const unsigned j = (unsigned)__builtin_ctzll(used);
        idx[nk] = j;
        cm[nk++] = cm_all[j];
        some &= cm_all[j];
    }
    *masked = some != all;
    return nk;
}

/* exp2 of the tile's compact scores (w lanes per key, tile_state) less each row's shift, in
   place; returns each row's sum in its lane (< w). The last vector's lanes past the tile's
   keys are stale scratch, kept out of the sum (their P is never read). A row's sum gathers its
   keys by key mod 16 / w, then those parts: a fixed order for the tile's keys. w is 4 or 8 at
   every call, a constant there. */
SPATTN_ALWAYS_INLINE col_t compact_exp(float *st, size_t nk, col_t shift, const int w)
{
    const size_t per = (size_t)(16 / w);
    const col_t sh = w == 4 ? col_spread_q4(shift) : col_spread_h8(shift);
    col_t psum = col_zero();
    for (size_t jj = 0; jj < nk; jj += per) {
        col_t x = col_sub(col_load(st + jj * (size_t)w), sh);
        if (nk - jj < per)
            x = col_select(cmask_bits((1u << ((size_t)w * (nk - jj))) - 1u), x, col_set1(K_NINF));
        const col_t p = col_exp2(x);
        col_store(st + jj * (size_t)w, p);
        psum = col_add(psum, p);
    }
    return w == 4 ? col_sum_q4(psum) : col_sum_h8(psum);
}

/* 1 where a masked FMA costs more than a plain one (AVX2: an AND or a blend more): a
   PARTIAL tile's P V then runs unmasked when the V rows it reads are all finite
   (kv_rows_finite). An excluded pair's p is exactly 0 and 0 * a finite V adds a zero, so O
   is the masked P V's but for the sign of a zero sum. */
#ifndef PV_UNMASK_FINITE
#define PV_UNMASK_FINITE 0
#endif

static int kv_rows_finite(int kvt_rt, const char *const *vp, size_t n, size_t dim)
{
    int r;
    KV_DISPATCH(kvt_rt, r = kv_rows_finite_t(KVT, vp, n, dim));
    return r;
}

/* The V rows of the tile's keys j0 + idx[jj], as byte pointers. */
static void tile_v_rows(const spattn_head_job *job, size_t j0, const uint32_t *idx, size_t nk,
                        const char **vp)
{
    const ptrdiff_t v_row = job->v_ts * (ptrdiff_t)spattn__dtype_size(job->kv_dtype);
    for (size_t jj = 0; jj < nk; jj++)
        vp[jj] = (const char *)job->v + (ptrdiff_t)(j0 + idx[jj]) * v_row;
}

/* With the tile's scores in ts->st (mt their lane max): softcap (with ALiBi and the mask
   after it), online softmax, O += P V. vw: NULL, or the tile's V rows already widened to
   float32 (tpl_tiles2, for both tiles of a pair), which the P V then reads instead of V. */
static void tile_fold(tile_state *ts, const spattn_head_job *job, size_t j0, const uint32_t *idx,
                      const uint32_t *cm, size_t nk, int partial, col_t mt, const char *const *vw)
{
    const col_t ninf = col_set1(K_NINF);
    float *st = ts->st;
    if (scores_pass(job)) {
        /* tanh and the ALiBi term come before the mask and the max, so with softcap the QK
           kernels leave both to this pass. */
        const col_t post = col_set1(job->softcap * K_LOG2E);
        qk_alibi al = {ts->nslope, col_zero()};
        if (ts->alibi)
            al.pos = col_add(col_set1((float)(ts->pos - (ptrdiff_t)j0)), ts->row_pos);
        mt = ninf;
        for (size_t jj = 0; jj < nk; jj++) {
            col_t s = col_mul(col_tanh(col_load(st + jj * 16)), post);
            if (ts->alibi)
                s = qk_alibi_add(&al, idx[jj], s);
            if (partial)
                s = col_select(cmask_bits(cm[jj]), s, ninf);
            col_store(st + jj * 16, s);
            mt = col_max(mt, s);
        }
    }
    /* While a row has seen only -inf its shift is 0, so exp2(-inf - 0) = 0, not NaN; its
       alpha is 0 (nothing to rescale; exp2 of old - new could overflow). */
    col_t mnew = col_max(ts->mrun, mt);
    col_t shift = col_select(col_is_neginf(mnew), col_zero(), mnew);
    col_t alpha =
        col_select(col_is_neginf(ts->mrun), col_zero(), col_exp2(col_sub(ts->mrun, shift)));
    col_t psum = col_zero();
    if (ts->compact == 4) {
        psum = compact_exp(st, nk, shift, 4);
    } else if (ts->compact == 8) {
        psum = compact_exp(st, nk, shift, 8);
    } else if (ts->low_half) {
        for (size_t jj = 0; jj < nk; jj++) {
            col_t p = col_exp2_lo(col_sub(col_load(st + jj * 16), shift));
            col_store(st + jj * 16, p);
            psum = col_add(psum, p);
        }
    } else {
        for (size_t jj = 0; jj < nk; jj++) {
            col_t p = col_exp2(col_sub(col_load(st + jj * 16), shift));
            col_store(st + jj * 16, p);
            psum = col_add(psum, p);
        }
    }
    ts->lrun = col_add(col_mul(ts->lrun, alpha), psum);
    ts->mrun = mnew;

    const char *vr[SPATTN_TK];
    const int vt = vw != NULL ? KV_F32 : (int)job->kv_dtype;
    if (vw == NULL)
        tile_v_rows(job, j0, idx, nk, vr);
    const char *const *vp = vw != NULL ? vw : vr;
    const int masked = partial && !(PV_UNMASK_FINITE && kv_rows_finite(vt, vp, nk, job->dim_v));
    if (ts->o == O_ROWS) {
        col_store(ts->ml + 32, alpha);
        pv_rows_tile(vt, ts->ot, job->dim_v, ts->rows, vp, cm, nk, st,
                     ts->compact ? (size_t)ts->compact : 16, ts->ml + 32, masked, ts->pv_fresh,
                     ts->pv_pf, job->v16_stage);
        ts->pv_fresh = 0;
        return;
    }
#if !PV_ROWS
    pv_cols_tile(vt, ts->ot, job->dim_v, vp, cm, nk, st, alpha, masked);
    ts->pv_fresh = 0;
#endif
}

static void tile_end(tile_state *ts, const spattn_head_job *job)
{
    col_store(ts->ml, ts->mrun);
    col_store(ts->ml + 16, ts->lrun);
    if (ts->o == O_ROWS) {
        finish_rows(job, ts->i0, ts->rows, ts->ot, ts->ml, ts->ml + 16);
        return;
    }
#if !PV_ROWS
    finish_cols(job, ts->i0, ts->rows, ts->ot, ts->ml, ts->ml + 16);
#endif
}

#endif

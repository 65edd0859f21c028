/*
 * The tile path's entry points: the walk over a query tile's stored key tiles (attn_tiles),
 * and over two query tiles' key tiles at once (attn_tiles2).
 */
#ifndef SPATTN_KERNELS_TILE_WALK_H
#define SPATTN_KERNELS_TILE_WALK_H

#include "kernels/softmax_online.h"

/* Query tiles 2k and 2k+1 walk their key tiles forwards for even k and backwards for odd k: a
   plan runs consecutive query tiles of a head on one thread, so each call starts on the K/V
   tiles the previous one touched last, still in L2 (K+V of a long head exceed it, and a
   forward-only walk would evict each tile just before it is needed again); the two tiles of
   a pair share a direction so that tpl_tiles2 can walk them together. The order depends only
   on qt. */
static int walk_backward(size_t qt)
{
    return ((qt >> 1) & 1) != 0;
}

/* Asks for `rows` rows of `bytes` bytes, `stride` bytes apart, into L2. The empty volatile asm
   is a side effect: without one gcc classes a function of loads and prefetches as const and
   drops its calls. */
static void prefetch_rows_l2(const char *p, ptrdiff_t stride, size_t rows, size_t bytes)
{
    __asm__ volatile("");
    for (size_t r = 0; r < rows; r++)
        for (size_t b = 0; b < bytes; b += 64)
            vec_prefetch_l2(p + (ptrdiff_t)r * stride + b);
}

/* The K and V rows of keys j0 .. j0 + n as a request list for the QK (and P V) kernels, which
   ask for them a few keys at a time as they compute. `rowdot`: the tile that asks runs
   qk_rowdot and pv_rows_tile: QK asks for the K rows, P V for the V rows. */
static void tile_prefetch_set(tile_prefetch *pf, const spattn_head_job *job, size_t j0, size_t n,
                              int rowdot)
{
    const size_t es = spattn__dtype_size(job->kv_dtype);
    pf->k_ts = job->k_ts * (ptrdiff_t)es;
    pf->v_ts = job->v_ts * (ptrdiff_t)es;
    pf->k = (const char *)job->k + (ptrdiff_t)j0 * pf->k_ts;
    pf->v = (const char *)job->v + (ptrdiff_t)j0 * pf->v_ts;
    pf->n = n;
    pf->k_bytes = job->dim_qk * es;
    pf->v_bytes = job->dim_v * es;
    /* P V asks for the V rows where it is pv_rows_tile's. */
    pf->v_in_pv = rowdot;
}

/* What the head's next query tile from qt on with a stored tile (within 16 tiles) reads first:
   its Q rows, asked for here, and the K and V rows of the first key tile it walks, whose index
   it returns for the kernels of this call's last key tile to ask for while they compute
   (NO_TILE when there is none). `pair`: the caller is tpl_tiles2, and so is the next call
   from an even q, whose Q rows it asks for both tiles' rows. A sparse block mask gives a query tile
   one or a few key tiles, so without this each call starts by waiting for its Q, K and V from L3.
   Asking for all of a tile's K and V lines at once, here, filled the queue of misses and stalled
   the call for them; spread over the QK blocks they overlap the FMAs. None are asked for when that
   key tile is one this call walks too (query tiles cur .. qt - 1): it is in L2 then. */
#define NO_TILE SIZE_MAX
static size_t prefetch_next_qt(const spattn_head_job *job, const spattn_mask *m, size_t cur,
                               size_t qt, int pair)
{
    size_t q = qt;
    while (q < m->nqt && q < qt + 16 && spattn__qt_empty(m, q))
        q++;
    if (q >= m->nqt || q == qt + 16)
        return NO_TILE;
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    const size_t t0 = m->qt_ptr[q], t1 = m->qt_ptr[q + 1];
    const size_t kt = m->tiles[walk_backward(q) ? t1 - 1 : t0].kt;
    const size_t nq = pair && q % 2 == 0 && q + 1 < m->nqt ? 2 : 1;
    for (size_t x = q; x < q + nq; x++)
        prefetch_rows_l2((const char *)job->q + (ptrdiff_t)(x * SPATTN_TQ) * job->q_ts * qs,
                         job->q_ts * qs, spattn__qt_rows(m, x), job->dim_qk * (size_t)qs);
    for (size_t t = m->qt_ptr[cur]; t < m->qt_ptr[qt]; t++)
        if (m->tiles[t].kt == kt)
            return NO_TILE;
    return kt;
}

/* One step of a walk: a stored key tile, or a run of PARTIAL ones (in walk order) whose
   visited keys fit one tile's columns together and then fold as one: one online softmax step,
   one rescale of O and one P V call for all of them. Alone, each such tile pays those for a few
   keys: the summary columns of a fixed pattern, a streaming mask's sinks, the two ends of a
   narrow window. */
typedef struct walk_unit {
    size_t kt;     /* the first tile's (walk order), which tpl_tiles2 orders its walks by */
    size_t j0, nk; /* keys j0 + idx[0..nk), idx[] in walk order */
    size_t tiles;  /* stored tiles taken */
    int partial;   /* masked (tile_keys) */
    uint64_t keys; /* a single tile's visited keys as bits (tile_keys); 0 for a run */
} walk_unit;

/* The i-th stored tile from the start of the rest lo .. hi of a walk. */
static const spattn_ktile *walk_tile(const spattn_mask *m, size_t lo, size_t hi, int backward,
                                     size_t i)
{
    return &m->tiles[backward ? hi - 1 - i : lo + i];
}

/* The run of PARTIAL tiles that starts the rest lo .. hi of a query tile's stored tiles (at
   least the first), its keys into idx and cm. */
static void walk_unit_run(const spattn_mask *m, size_t rows, size_t lo, size_t hi, int backward,
                          uint32_t *idx, uint32_t *cm, walk_unit *u)
{
    const spattn_ktile *first = walk_tile(m, lo, hi, backward, 0);
    size_t n = 1, keys = (size_t)spattn__popcount64(tile_used_keys(m, first));
    for (; n < hi - lo; n++) {
        const spattn_ktile *x = walk_tile(m, lo, hi, backward, n);
        if (x->part == SPATTN_FULL)
            break;
        const size_t c = (size_t)spattn__popcount64(tile_used_keys(m, x));
        if (keys + c > SPATTN_TK)
            break;
        keys += c;
    }
    /* Keys relative to the run's lowest tile, as a single tile's are to its own. */
    const size_t kt0 = backward ? walk_tile(m, lo, hi, backward, n - 1)->kt : first->kt;
    u->kt = first->kt;
    u->j0 = kt0 * SPATTN_TK;
    u->tiles = n;
    u->nk = 0;
    u->partial = 0;
    for (size_t i = 0; i < n; i++) {
        const spattn_ktile *x = walk_tile(m, lo, hi, backward, i);
        int partial;
        const size_t c = tile_keys(m, x, rows, idx + u->nk, cm + u->nk, &partial, &u->keys);
        const uint32_t off = (uint32_t)((x->kt - kt0) * SPATTN_TK);
        for (size_t j = 0; j < c && off != 0; j++)
            idx[u->nk + j] += off;
        u->nk += c;
        u->partial |= partial;
    }
    if (n > 1)
        u->keys = 0;
}

/* The unit that starts the rest lo .. hi of a query tile's stored tiles, its keys into idx
   and cm. `group`: runs of PARTIAL tiles may form one (column QK; not decode's row-dot tiles,
   which ask for the next key tile's rows a tile ahead). What a unit holds depends only on the
   mask, qt and `group`, so tpl_tiles and tpl_tiles2 fold a row's keys in the same steps. A
   FULL tile (every step of a dense walk) is taken without the run's bookkeeping. */
SPATTN_ALWAYS_INLINE void walk_unit_next(const spattn_mask *m, size_t rows, int group, size_t lo,
                                         size_t hi, int backward, uint32_t *idx, uint32_t *cm,
                                         walk_unit *u)
{
    const spattn_ktile *first = walk_tile(m, lo, hi, backward, 0);
    if (group && first->part != SPATTN_FULL && hi - lo > 1) {
        walk_unit_run(m, rows, lo, hi, backward, idx, cm, u);
        return;
    }
    u->kt = first->kt;
    u->j0 = (size_t)first->kt * SPATTN_TK;
    u->tiles = 1;
    u->nk = tile_keys(m, first, rows, idx, cm, &u->partial, &u->keys);
}

/* Whether two query tiles' units are the same keys, both unmasked: one QK for both. */
static int walk_units_same(const walk_unit *a, const uint32_t *ia, const walk_unit *b,
                           const uint32_t *ib)
{
    if (a->partial || b->partial || a->j0 != b->j0 || a->nk != b->nk || a->tiles != b->tiles)
        return 0;
    return a->tiles == 1 ? a->keys == b->keys : memcmp(ia, ib, a->nk * sizeof *ia) == 0;
}

/* Whether `group` holds for the walks of ts: column QK over a whole walk's tiles. */
static int walk_groups(const spattn_head_job *job, const tile_state *ts)
{
    return ts->qk == QK_COLUMNS && !job->stream_kv;
}

static void tpl_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    tile_state ts;
    tile_begin(&ts, job, m, qt, scratch);
    const size_t next_kt = job->stream_kv ? NO_TILE : prefetch_next_qt(job, m, qt, qt + 1, 0);
    uint32_t idx[SPATTN_TK], cm[SPATTN_TK];
    const int backward = walk_backward(qt), group = walk_groups(job, &ts);
    size_t lo = m->qt_ptr[qt], hi = m->qt_ptr[qt + 1];
    while (lo < hi) {
        walk_unit u;
        walk_unit_next(m, ts.rows, group, lo, hi, backward, idx, cm, &u);
        if (backward)
            hi -= u.tiles;
        else
            lo += u.tiles;
        const int rowdot = ts.qk == QK_ROW_DOTS && ts.o == O_ROWS;
        tile_prefetch pf, *pfp = NULL;
        if (job->stream_kv && lo < hi) {
            const spattn_ktile *nx = walk_tile(m, lo, hi, backward, 0);
            tile_prefetch_set(&pf, job, (size_t)nx->kt * SPATTN_TK, spattn__kt_cols(m, nx->kt),
                              rowdot);
            pfp = &pf;
        } else if (next_kt != NO_TILE && lo == hi) {
            tile_prefetch_set(&pf, job, next_kt * SPATTN_TK, spattn__kt_cols(m, next_kt), rowdot);
            pfp = &pf;
        }
        ts.pv_pf = pfp != NULL && pf.v_in_pv ? pfp : NULL;
        const uint32_t *cmq = u.partial && !scores_pass(job) ? cm : NULL;
        qk_alibi al;
        const qk_alibi *alp = tile_alibi(&ts, job, u.j0, &al);
        col_t mt =
            ts.qk == QK_ROW_DOTS
                ? qk_rowdot(job->kv_dtype, ts.rows, ts.compact, ts.qtp, q_factor(job), job->dim_qk,
                            job->k, job->k_ts, u.j0, idx, u.nk, cmq, ts.st, pfp, alp)
                : qk_cols(job->kv_dtype, ts.qtp, job->dim_qk, job->k, job->k_ts, u.j0, idx, u.nk,
                          cmq, ts.st, pfp, ts.low_half, alp);
        tile_fold(&ts, job, u.j0, idx, cm, u.nk, u.partial, mt, NULL);
    }
    tile_end(&ts, job);
}

#ifdef QK_NB2
#if PV_PAIR_STAGE
/* Whether tpl_tiles2 widens a FULL V tile once for tile ts and its pair (pv_rows_stages). */
static int pv_pair_stages(const spattn_head_job *job, const tile_state *ts)
{
    return ts->o == O_ROWS && job->dim_v <= PV_NV * VL &&
           pv_rows_stages(job->kv_dtype, job->dim_v, ts->rows, job->v16_stage);
}

/* A FULL key tile that both tiles of a pair take, whose 16-bit V each would widen for itself
   (pv_pair_stages), widened once and folded into both. Out of line, so that the walk's frame
   does not carry the stage. */
static __attribute__((noinline)) void tile_fold_pair_staged(tile_state *ts,
                                                            const spattn_head_job *job, size_t j0,
                                                            const uint32_t *idx, size_t nk,
                                                            const col_t *mt)
{
    float sv[PV_PAIR_STAGE_FLOATS] __attribute__((aligned(64)));
    const char *vp[SPATTN_TK], *vw[SPATTN_TK];
    tile_v_rows(job, j0, idx, nk, vp);
    KV_DISPATCH(job->kv_dtype,
                kv_widen_rows(KVT, sv, round16(job->dim_v), vp, 0, nk, job->dim_v, vw));
    for (int x = 0; x < 2; x++)
        tile_fold(&ts[x], job, j0, idx, NULL, nk, 0, mt[x], vw);
}
#endif

/* Query tiles qt (even) and qt + 1 in one walk over the union of their key tiles: a key tile
   both have is loaded from L2 once for both, and where both run it unmasked over the same keys
   (FULL, or tile_keys' unmasked PARTIAL) their scores come from qk_cols_pair, which loads each
   K element once for the two. Every row's result is bitwise what
   tpl_tiles gives it (same key order, same arithmetic per lane). */
static void tpl_tiles2(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    tile_state ts[2];
    tile_begin(&ts[0], job, m, qt, scratch);
    tile_begin(&ts[1], job, m, qt + 1, scratch + tile_state_floats(job->dim_qk, job->dim_v));
    const size_t next_kt = prefetch_next_qt(job, m, qt, qt + 2, 1);
#if PV_PAIR_STAGE
    const int pair_stage = pv_pair_stages(job, &ts[0]) && pv_pair_stages(job, &ts[1]);
#endif
    uint32_t idx[2][SPATTN_TK], cm[2][SPATTN_TK];
    const int backward = walk_backward(qt);
    size_t lo[2], hi[2];
    walk_unit u[2];
    int have[2] = {0, 0}, group[2];
    for (int x = 0; x < 2; x++) {
        lo[x] = m->qt_ptr[qt + (size_t)x];
        hi[x] = m->qt_ptr[qt + (size_t)x + 1];
        group[x] = walk_groups(job, &ts[x]);
    }
    while (lo[0] < hi[0] || lo[1] < hi[1] || have[0] || have[1]) {
        /* The next unit in walk order of each list, and which lists take theirs now: both when
           they start on the same key tile. */
        for (int x = 0; x < 2; x++)
            if (!have[x] && lo[x] < hi[x]) {
                walk_unit_next(m, ts[x].rows, group[x], lo[x], hi[x], backward, idx[x], cm[x],
                               &u[x]);
                have[x] = 1;
                if (backward)
                    hi[x] -= u[x].tiles;
                else
                    lo[x] += u[x].tiles;
            }
        int take[2] = {have[0], have[1]};
        if (take[0] && take[1] && u[0].kt != u[1].kt) {
            const int first = (u[0].kt < u[1].kt) != backward ? 0 : 1;
            take[1 - first] = 0;
        }
        for (int x = 0; x < 2; x++)
            have[x] &= !take[x];
        /* The last unit asks for the next query tile's first key tile (through the first
           list that takes it, x = ask). */
        const int ask =
            lo[0] >= hi[0] && lo[1] >= hi[1] && !have[0] && !have[1] && next_kt != NO_TILE
                ? !take[0]
                : -1;
        tile_prefetch pf;
        if (ask >= 0)
            tile_prefetch_set(&pf, job, next_kt * SPATTN_TK, spattn__kt_cols(m, next_kt),
                              ts[ask].qk == QK_ROW_DOTS && ts[ask].o == O_ROWS);
        col_t mt[2];
        qk_alibi al[2];
        const qk_alibi *alp[2] = {NULL, NULL};
        for (int x = 0; x < 2; x++)
            if (take[x])
                alp[x] = tile_alibi(&ts[x], job, u[x].j0, &al[x]);
        /* Both unmasked over the same keys: FULL, or PARTIAL with every row allowing them. */
        const int same = take[0] && take[1] && walk_units_same(&u[0], idx[0], &u[1], idx[1]);
        if (same && ts[0].qk == QK_COLUMNS && ts[1].qk == QK_COLUMNS) {
            const float *qts[2] = {ts[0].qtp, ts[1].qtp};
            float *sts[2] = {ts[0].st, ts[1].st};
            qk_cols_pair(job->kv_dtype, qts, job->dim_qk, job->k, job->k_ts, u[0].j0, idx[0],
                         u[0].nk, sts, ask >= 0 ? &pf : NULL, alp[0] != NULL ? al : NULL, mt);
        } else {
            for (int x = 0; x < 2; x++) {
                if (!take[x])
                    continue;
                const uint32_t *cmq = u[x].partial && !scores_pass(job) ? cm[x] : NULL;
                const tile_prefetch *pfx = ask == x ? &pf : NULL;
                mt[x] = ts[x].qk == QK_ROW_DOTS
                            ? qk_rowdot(job->kv_dtype, ts[x].rows, ts[x].compact, ts[x].qtp,
                                        q_factor(job), job->dim_qk, job->k, job->k_ts, u[x].j0,
                                        idx[x], u[x].nk, cmq, ts[x].st, pfx, alp[x])
                            : qk_cols(job->kv_dtype, ts[x].qtp, job->dim_qk, job->k, job->k_ts,
                                      u[x].j0, idx[x], u[x].nk, cmq, ts[x].st, pfx, 0, alp[x]);
            }
        }
        for (int x = 0; x < 2; x++)
            ts[x].pv_pf = take[x] && ask == x && pf.v_in_pv ? &pf : NULL;
#if PV_PAIR_STAGE
        if (pair_stage && same) {
            tile_fold_pair_staged(ts, job, u[0].j0, idx[0], u[0].nk, mt);
            continue;
        }
#endif
        for (int x = 0; x < 2; x++)
            if (take[x])
                tile_fold(&ts[x], job, u[x].j0, idx[x], cm[x], u[x].nk, u[x].partial, mt[x], NULL);
    }
    tile_end(&ts[0], job);
    tile_end(&ts[1], job);
}
#endif

#endif

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
   qk_rowdot and pv_rows_tile, which split the keys between them. */
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
    /* P V asks for the second half where it is pv_rows_tile's. */
    pf->split = rowdot ? n / 2 : n;
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

static void tpl_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    tile_state ts;
    tile_begin(&ts, job, m, qt, scratch);
    const size_t next_kt = job->stream_kv ? NO_TILE : prefetch_next_qt(job, m, qt, qt + 1, 0);
    uint32_t idx[SPATTN_TK], cm[SPATTN_TK];
    const size_t t_first = m->qt_ptr[qt], nt = m->qt_ptr[qt + 1] - t_first;
    const int backward = walk_backward(qt);
    for (size_t ti = 0; ti < nt; ti++) {
        const spattn_ktile *tile = &m->tiles[t_first + (backward ? nt - 1 - ti : ti)];
        const size_t j0 = (size_t)tile->kt * SPATTN_TK;
        const int partial = tile->part != SPATTN_FULL;
        const size_t nk = tile_keys(m, tile, idx, cm);
        const int rowdot = ts.qk == QK_ROW_DOTS && ts.o == O_ROWS;
        tile_prefetch pf, *pfp = NULL;
        if (job->stream_kv && ti + 1 < nt) {
            const spattn_ktile *nx = &m->tiles[t_first + (backward ? nt - 2 - ti : ti + 1)];
            tile_prefetch_set(&pf, job, (size_t)nx->kt * SPATTN_TK, spattn__kt_cols(m, nx->kt),
                              rowdot);
            pfp = &pf;
        } else if (next_kt != NO_TILE && ti + 1 == nt) {
            tile_prefetch_set(&pf, job, next_kt * SPATTN_TK, spattn__kt_cols(m, next_kt), rowdot);
            pfp = &pf;
        }
        ts.pv_pf = pfp != NULL && pf.split < pf.n ? pfp : NULL;
        const uint32_t *cmq = partial && !scores_pass(job) ? cm : NULL;
        qk_alibi al;
        const qk_alibi *alp = tile_alibi(&ts, job, j0, &al);
        col_t mt =
            ts.qk == QK_ROW_DOTS
                ? qk_rowdot(job->kv_dtype, ts.rows, ts.compact, ts.qtp, q_factor(job), job->dim_qk,
                            job->k, job->k_ts, j0, idx, nk, cmq, ts.st, pfp, alp)
                : qk_cols(job->kv_dtype, ts.qtp, job->dim_qk, job->k, job->k_ts, j0, idx, nk, cmq,
                          ts.st, pfp, ts.low_half, alp);
        tile_fold(&ts, job, j0, idx, cm, nk, partial, mt, NULL);
    }
    tile_end(&ts, job);
}

#ifdef QK_NB2
#if PV_PAIR_STAGE
/* Whether tpl_tiles2 widens a FULL V tile once for tile ts and its pair (pv_rows_stages). */
static int pv_pair_stages(const spattn_head_job *job, const tile_state *ts)
{
    return ts->o == O_ROWS && job->dim_v <= PV_NV * VL &&
           pv_rows_stages(job->kv_dtype, job->dim_v, ts->rows);
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
   both have is loaded from L2 once for both, and where both are FULL their scores come from
   qk_cols_pair, which loads each K element once for the two. Every row's result is bitwise what
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
    for (int x = 0; x < 2; x++) {
        lo[x] = m->qt_ptr[qt + (size_t)x];
        hi[x] = m->qt_ptr[qt + (size_t)x + 1];
    }
    while (lo[0] < hi[0] || lo[1] < hi[1]) {
        /* The next key tile in walk order of each list, and which lists have it. */
        const spattn_ktile *tile[2] = {NULL, NULL};
        for (int x = 0; x < 2; x++)
            if (lo[x] < hi[x])
                tile[x] = &m->tiles[backward ? hi[x] - 1 : lo[x]];
        int take[2] = {tile[0] != NULL, tile[1] != NULL};
        if (take[0] && take[1] && tile[0]->kt != tile[1]->kt) {
            const int first = (tile[0]->kt < tile[1]->kt) != backward ? 0 : 1;
            take[1 - first] = 0;
        }
        for (int x = 0; x < 2; x++)
            if (take[x]) {
                if (backward)
                    hi[x]--;
                else
                    lo[x]++;
            }
        const size_t kt = take[0] ? tile[0]->kt : tile[1]->kt, j0 = kt * SPATTN_TK;
        /* The last key tile asks for the next query tile's first (through the first tile
           that takes it, x = ask). */
        const int ask = lo[0] >= hi[0] && lo[1] >= hi[1] && next_kt != NO_TILE ? !take[0] : -1;
        tile_prefetch pf;
        if (ask >= 0)
            tile_prefetch_set(&pf, job, next_kt * SPATTN_TK, spattn__kt_cols(m, next_kt),
                              ts[ask].qk == QK_ROW_DOTS && ts[ask].o == O_ROWS);
        size_t nk[2] = {0, 0};
        int partial[2] = {0, 0};
        col_t mt[2];
        qk_alibi al[2];
        const qk_alibi *alp[2] = {NULL, NULL};
        for (int x = 0; x < 2; x++)
            if (take[x]) {
                alp[x] = tile_alibi(&ts[x], job, j0, &al[x]);
                partial[x] = tile[x]->part != SPATTN_FULL;
                nk[x] = tile_keys(m, tile[x], idx[x], cm[x]);
            }
        if (take[0] && take[1] && !partial[0] && !partial[1] && ts[0].qk == QK_COLUMNS &&
            ts[1].qk == QK_COLUMNS) {
            const float *qts[2] = {ts[0].qtp, ts[1].qtp};
            float *sts[2] = {ts[0].st, ts[1].st};
            qk_cols_pair(job->kv_dtype, qts, job->dim_qk, job->k, job->k_ts, j0, idx[0], nk[0], sts,
                         ask >= 0 ? &pf : NULL, alp[0] != NULL ? al : NULL, mt);
        } else {
            for (int x = 0; x < 2; x++) {
                if (!take[x])
                    continue;
                const uint32_t *cmq = partial[x] && !scores_pass(job) ? cm[x] : NULL;
                const tile_prefetch *pfx = ask == x ? &pf : NULL;
                mt[x] = ts[x].qk == QK_ROW_DOTS
                            ? qk_rowdot(job->kv_dtype, ts[x].rows, ts[x].compact, ts[x].qtp,
                                        q_factor(job), job->dim_qk, job->k, job->k_ts, j0, idx[x],
                                        nk[x], cmq, ts[x].st, pfx, alp[x])
                            : qk_cols(job->kv_dtype, ts[x].qtp, job->dim_qk, job->k, job->k_ts, j0,
                                      idx[x], nk[x], cmq, ts[x].st, pfx, 0, alp[x]);
            }
        }
        for (int x = 0; x < 2; x++)
            ts[x].pv_pf = take[x] && ask == x && pf.split < pf.n ? &pf : NULL;
#if PV_PAIR_STAGE
        if (pair_stage && take[0] && take[1] && !partial[0] && !partial[1]) {
            tile_fold_pair_staged(ts, job, j0, idx[0], nk[0], mt);
            continue;
        }
#endif
        for (int x = 0; x < 2; x++)
            if (take[x])
                tile_fold(&ts[x], job, j0, idx[x], cm[x], nk[x], partial[x], mt[x], NULL);
    }
    tile_end(&ts[0], job);
    tile_end(&ts[1], job);
}
#endif

#endif

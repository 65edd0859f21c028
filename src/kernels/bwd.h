/*
 * The backward kernels of the table (kernel.h: bwd_scratch_floats, bwd_kv, bwd_q) over the
 * vector vocabulary: each stored tile of a query tile / key tile pair goes down the column
 * path (bwd_cols.h), or pair by pair when its keys are seen by few rows (bwd_pairs.h).
 */
#ifndef SPATTN_KERNELS_BWD_H
#define SPATTN_KERNELS_BWD_H

#include "kernels/bwd_cols.h"
#include "kernels/bwd_pairs.h"

/* scratch: P and dS columns of BWD_GROUP key tiles, then dQ^T of one query tile and its
   rows' pair-path part, row-major, and 256 floats for turning dQ^T into rows (bwd_kv's solo
   query tiles use the parts after the columns; bwd_q starts its own at the columns). */
static size_t tpl_bwd_scratch_floats(size_t dim_qk, size_t dim_v)
{
    (void)dim_v;
    return 2 * BWD_GROUP * SPATTN_TK * 16 + 16 * dim_qk + 16 * spattn__bwd_round16(dim_qk) + 256;
}

/* How many entries ahead bwd_kv asks for the pack rows of a pair tile's pairs (a few each),
   and how many tiles ahead bwd_q asks for their K rows: far enough that the scattered rows
   arrive before their FMAs. */
#ifndef BWD_PF_ENTRIES
#define BWD_PF_ENTRIES 4
#endif
#ifndef BWD_PF_TILES
#define BWD_PF_TILES 4
#endif

static void tpl_bwd_cols_of_rows(const float *rows, size_t ld, size_t n_rows, size_t dim,
                                 float *cols)
{
    const col_t one = col_set1(1.0f);
    for (size_t d0 = 0; d0 < dim; d0 += 16)
        col_transpose_rows(rows + d0, (ptrdiff_t)ld, n_rows, dim - d0 < 16 ? dim - d0 : 16, one,
                           cols + 16 * d0);
}

/* The waiting FULL tiles' terms into dK and dV; into fresh accumulators (*fresh) they are
   stored, not added (every row a later term can reach is a key of those tiles). */
static void bwd_kv_flush_full(size_t nk, size_t ng, const float *const *gp, const float *const *gds,
                              const float *const *gq, const float *const *gdo, size_t ldq,
                              size_t ldv, float *dk, float *dv, int *fresh)
{
    bwd_acc_full(nk, ng, gds, gq, ldq, dk, *fresh);
    bwd_acc_full(nk, ng, gp, gdo, ldv, dv, *fresh);
    *fresh = 0;
}

/* Fresh accumulators zeroed before terms that do not cover every row are added. */
static void bwd_kv_settle(int *fresh, size_t ldq, size_t ldv, float *dk, float *dv)
{
    if (!*fresh)
        return;
    memset(dk, 0, SPATTN_TK * ldq * sizeof(float));
    memset(dv, 0, SPATTN_TK * ldv * sizeof(float));
    *fresh = 0;
}

/* dQ rows = (dQ^T transposed back + the pair path's rows) scale: 16 dims at a time through
   the vocabulary's transpose into tmp (256 floats, aligned), so that a query tile with one
   stored key tile does not pay a scalar gather per element. */
static void bwd_dq_rows(const float *dqt, const float *dqr, size_t ldq, size_t dqk, size_t rows,
                        float scale, float *dq, ptrdiff_t dq_ts, float *tmp)
{
    const col_t one = col_set1(1.0f);
    const vec_t sc = vec_set1(scale);
    for (size_t d0 = 0; d0 < dqk; d0 += 16) {
        const size_t w = dqk - d0 < 16 ? dqk - d0 : 16;
        col_transpose_rows(dqt + d0 * 16, 16, w, 16, one, tmp);
        for (size_t r = 0; r < rows; r++) {
            float *out = dq + (ptrdiff_t)r * dq_ts + (ptrdiff_t)d0;
            for (size_t v = 0; v < w; v += VL) {
                const vec_t x = vec_mul(
                    vec_add(vec_loadu(tmp + 16 * r + v), vec_loadu(dqr + r * ldq + d0 + v)), sc);
                if (w - v >= VL)
                    vec_storeu(out + v, x);
                else
                    vec_storeu_m(out + v, vmask_first(w - v), x);
            }
        }
    }
}

/* dQ of query tile qt from one tile's dS columns: dQ^T over the keys in the same blocks and
   order as bwd_q, then its rows (bwd_q's finish, pair-path part zero). dqt: 16 dim_qk floats,
   then 16 round16(dim_qk) and 256, aligned. */
static void bwd_dq_of_tile(const spattn_head_job *job, size_t kt, const uint32_t *idx, size_t nk,
                           const uint32_t *cm, int full, const float *dsc, size_t rows, float *dq,
                           ptrdiff_t dq_ts, float *dqt)
{
    const size_t dqk = job->dim_qk, ldq = spattn__bwd_round16(dqk);
    float *dqr = dqt + 16 * dqk;
    memset(dqt, 0, 16 * (dqk + ldq) * sizeof(float));
    const float *kb = (const float *)job->k + (ptrdiff_t)kt * SPATTN_TK * job->k_ts;
    bwd_dq_dims(idx, nk, cm, full, dsc, kb, job->k_ts, dqk, dqt);
    bwd_dq_rows(dqt, dqr, ldq, dqk, rows, job->scale, dq, dq_ts, dqr + 16 * ldq);
}

static void tpl_bwd_kv(const spattn_head_job *job, const spattn_mask *m, const float *packs,
                       const spattn_bwd_entries *en, size_t n, size_t kt, float *dk, float *dv,
                       int fresh, float *ds, size_t ds0, float *dq, ptrdiff_t dq_ts, float *scratch)
{
    const size_t pf = spattn__bwd_pack_floats(job->dim_qk, job->dim_v);
    const size_t ldq = spattn__bwd_round16(job->dim_qk), ldv = spattn__bwd_round16(job->dim_v);
    uint32_t cm[SPATTN_TK], idx[SPATTN_TK];
    /* FULL tiles waiting for bwd_acc_full: P and dS columns, pack rows of Q and dO */
    const float *gp[BWD_GROUP], *gds[BWD_GROUP], *gq[BWD_GROUP], *gdo[BWD_GROUP];
    size_t ng = 0, nkg = 0;
    bwd_batch batch;
    batch.n = 0;
    /* Terms are added in the entries' order whatever the path: pairs wait in the batch only
       while no other tile's terms come between. */
    for (size_t e = 0; e < n; e++) {
        const size_t qt = en->qt[e];
        const int pairs = en->pair_off[e + 1] != en->pair_off[e];
        /* A key tile's entries are far apart in the mask and the packs: on sparse masks the
           walk would wait on each one's bits and row constants in turn. */
        if (e + 2 < n && en->pair_off[e + 3] == en->pair_off[e + 2])
            vec_prefetch_l1(&m->tiles[en->tile[e + 2]]);
        if (e + BWD_PF_ENTRIES < n) {
            const size_t f = e + BWD_PF_ENTRIES;
            if (en->pair_off[f + 1] != en->pair_off[f])
                bwd_pairs_prefetch_rows(job, en->pair_rc + en->pair_off[f],
                                        en->pair_off[f + 1] - en->pair_off[f],
                                        packs + en->qt[f] * pf);
        }
        if (e + 1 < n && en->pair_off[e + 2] == en->pair_off[e + 1]) {
            const spattn_ktile *t1 = &m->tiles[en->tile[e + 1]];
            if (t1->part != SPATTN_FULL) {
                vec_prefetch_l1(m->bits + (size_t)t1->part * SPATTN_TQ);
                vec_prefetch_l1(m->bits + (size_t)t1->part * SPATTN_TQ + 8);
            }
            vec_prefetch_l1(packs + en->qt[e + 1] * pf +
                            spattn__bwd_pack_d(job->dim_qk, job->dim_v));
        }
        /* dS goes where bwd_q will read it back. */
        float *dsk = ds != NULL ? ds + (en->ds_off[e] - ds0) : NULL;
        if (pairs) {
            if (ng > 0) { /* the waiting tiles' rows come first */
                bwd_kv_flush_full(nkg, ng, gp, gds, gq, gdo, ldq, ldv, dk, dv, &fresh);
                ng = 0;
            }
            bwd_kv_settle(&fresh, ldq, ldv, dk, dv);
            const float *pack = packs + qt * pf;
            for (size_t x = en->pair_off[e]; x < en->pair_off[e + 1]; x++) {
                const size_t rc = en->pair_rc[x], c = rc % SPATTN_TK;
                if (batch.n == 16)
                    bwd_batch_kv(job, &batch, dk, dv);
                bwd_batch_add(job, pack, qt * SPATTN_TQ, rc / SPATTN_TK, kt * SPATTN_TK + c,
                              (uint32_t)c, dsk != NULL ? dsk++ : NULL, &batch);
            }
            continue;
        }
        const spattn_ktile *tile = &m->tiles[en->tile[e]];
        bwd_batch_kv(job, &batch, dk, dv);
        bwd_rows br;
        bwd_rows_init(job, m, qt, packs + qt * pf, &br);
        int full = 0;
        const size_t nk = bwd_keys(m, tile, qt, cm, idx, &full);
        if (ng > 0 && !full) { /* the waiting tiles' rows come first */
            bwd_kv_flush_full(nkg, ng, gp, gds, gq, gdo, ldq, ldv, dk, dv, &fresh);
            ng = 0;
        }
        /* A query tile with this tile alone gets its dQ now, from dS still in L1, and
           nothing kept for bwd_q. */
        const int solo = dq != NULL && m->qt_ptr[qt + 1] - m->qt_ptr[qt] == 1;
        float *pc = scratch + ng * SPATTN_TK * 16;
        float *dsc = dsk != NULL && !solo ? dsk : scratch + (BWD_GROUP + ng) * SPATTN_TK * 16;
        bwd_cols(job, &br, kt, idx, nk, cm, full, pc, dsc);
        if (solo)
            bwd_dq_of_tile(job, kt, idx, nk, cm, full, dsc, br.rows,
                           dq + (ptrdiff_t)(qt * SPATTN_TQ) * dq_ts, dq_ts,
                           scratch + 2 * BWD_GROUP * SPATTN_TK * 16);
        if (!full) {
            bwd_kv_settle(&fresh, ldq, ldv, dk, dv);
            bwd_acc_keys(idx, nk, cm, dsc, br.qr, ldq, dk);
            bwd_acc_keys(idx, nk, cm, pc, br.dor, ldv, dv);
            continue;
        }
        /* Every FULL tile of a key tile has the same keys. */
        gp[ng] = pc;
        gds[ng] = dsc;
        gq[ng] = br.qr;
        gdo[ng] = br.dor;
        nkg = nk;
        if (++ng == BWD_GROUP || e + 1 == n) {
            bwd_kv_flush_full(nkg, ng, gp, gds, gq, gdo, ldq, ldv, dk, dv, &fresh);
            ng = 0;
        }
    }
    bwd_batch_kv(job, &batch, dk, dv);
}

static void tpl_bwd_q(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                      const float *pack, float *dq, ptrdiff_t dq_ts, const float *ds,
                      const spattn_bwd_slots *sl, size_t tile0, float *scratch)
{
    const size_t dqk = job->dim_qk, ldq = spattn__bwd_round16(dqk);
    float *pc = scratch, *dss = scratch + SPATTN_TK * 16, *dqt = scratch + 2 * SPATTN_TK * 16;
    float *dqr = dqt + 16 * dqk;
    memset(dqt, 0, 16 * (dqk + ldq) * sizeof(float));
    bwd_rows br;
    int have_rows = 0;
    bwd_batch batch;
    batch.n = 0;
    uint32_t cm[SPATTN_TK], idx[SPATTN_TK];
    const size_t t1 = m->qt_ptr[qt + 1];
    for (size_t t = m->qt_ptr[qt]; t < t1; t++) {
        const spattn_ktile *tile = &m->tiles[t];
        const float *dsk = ds != NULL ? ds + (sl->ds_off[t] - sl->ds_off[tile0]) : NULL;
        if (spattn__bwd_is_pairs(sl, t)) {
            /* dQ rows are sums over the pair tiles in order, apart from the column tiles' */
            if (t + BWD_PF_TILES < t1 && spattn__bwd_is_pairs(sl, t + BWD_PF_TILES))
                bwd_pairs_prefetch_k(job, sl->pair_rc + sl->pair_off[t + BWD_PF_TILES],
                                     sl->pair_off[t + BWD_PF_TILES + 1] -
                                         sl->pair_off[t + BWD_PF_TILES],
                                     m->tiles[t + BWD_PF_TILES].kt);
            for (size_t x = sl->pair_off[t]; x < sl->pair_off[t + 1]; x++) {
                const size_t rc = sl->pair_rc[x], r = rc / SPATTN_TK;
                const size_t j = tile->kt * SPATTN_TK + rc % SPATTN_TK;
                if (dsk != NULL) {
                    bwd_vaxpy(*dsk++, (const float *)job->k + (ptrdiff_t)j * job->k_ts, dqk,
                              dqr + r * ldq);
                    continue;
                }
                if (batch.n == 16)
                    bwd_batch_q(job, &batch, dqr);
                bwd_batch_add(job, pack, qt * SPATTN_TQ, r, j, (uint32_t)r, NULL, &batch);
            }
            continue;
        }
        if (!have_rows) {
            bwd_rows_init(job, m, qt, pack, &br);
            have_rows = 1;
        }
        int full;
        const size_t nk = bwd_keys(m, tile, qt, cm, idx, &full);
        const float *dsc = dsk;
        if (dsc == NULL) {
            bwd_cols(job, &br, tile->kt, idx, nk, cm, full, pc, dss);
            dsc = dss;
        } else if (t + 1 < t1) {
            /* The kept dS was written a band's work ago: fetch the next tile's while this
               one's FMAs run, rather than wait for it column by column. */
            const size_t nf = sl->ds_off[t + 2] - sl->ds_off[t + 1];
            for (size_t f = 0; f < nf; f += 16)
                vec_prefetch_l1(dsk + (sl->ds_off[t + 1] - sl->ds_off[t]) + f);
        }
        const float *kb = (const float *)job->k + (ptrdiff_t)tile->kt * SPATTN_TK * job->k_ts;
        bwd_dq_dims(idx, nk, cm, full, dsc, kb, job->k_ts, dqk, dqt);
    }
    bwd_batch_q(job, &batch, dqr);
    bwd_dq_rows(dqt, dqr, ldq, dqk, spattn__qt_rows(m, qt), job->scale,
                dq + (ptrdiff_t)(qt * SPATTN_TQ) * dq_ts, dq_ts, pc);
}

#endif

/*
 * Query tiles on both paths (attn_mixed): the stored key tiles the plan flagged as sparse
 * (kr->tile_gather; typically the diagonals of a strided pattern, one allowed key per row) are
 * computed pair by pair as "row columns" (mixed_cols), the others through the tile kernel,
 * all into one tile_state, so one online softmax covers both. The flagged tiles come first,
 * then the tile path's walk, each in walk order: the order depends only on the mask and qt,
 * so results stay bitwise the same for any thread count.
 */
#ifndef SPATTN_KERNELS_MIXED_H
#define SPATTN_KERNELS_MIXED_H

#include "kernels/gather.h"
#include "kernels/tile_walk.h"

/* A PARTIAL tile goes down the gather path inside a mixed query tile when its allowed pairs
   are fewer than this many per key some row allows (the tile path computes all 16 rows of such
   a key). Measured per ISA (docs/kernels.md); 0 (NEON, not measured) keeps the mixed path off. */
#if VL == 16
#define MIXED_PAIRS_PER_COL 6.0
#elif VL == 8
#define MIXED_PAIRS_PER_COL 6.0
#else
#define MIXED_PAIRS_PER_COL 0.0
#endif

/* Tile states at the start of attn_mixed's scratch: two where the ISA pairs tiles. */
#ifdef QK_NB2
#define MIXED_STATES 2
#else
#define MIXED_STATES 1
#endif

/* Scratch attn_mixed takes beside its tile states: the 16 rows' Q row-major (pre-scaled), and
   one O row for the transposed O. */
static size_t mixed_floats(size_t dq, size_t dv)
{
    return 16 * dq + round16(dv);
}

/* Q of the tile's rows row-major, times q_factor, rows past `rows` zero. */
static void mixed_pack_q(const spattn_head_job *job, size_t i0, size_t rows, float *qr)
{
    const float c = q_factor(job);
    const size_t dq = job->dim_qk;
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    memset(qr, 0, 16 * dq * sizeof(float));
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

/* The "row columns" of a query tile's flagged tiles: column c holds, for each row r, one
   allowed key key[c][r] when bit r of valid[c] is set (each row's allowed keys of a tile go
   to consecutive columns, in increasing order), so a strided tile (one key per row, the same
   offset) is one column whose 16 keys are 16 consecutive K rows. A lane without a key holds a
   key of the same tile that some row allows (its dot product is computed and replaced by
   -inf: nothing of it reaches the row). */
typedef struct mixed_cols {
    uint32_t key[SPATTN_TK][16];
    uint32_t valid[SPATTN_TK];
    size_t n;
} mixed_cols;

/* Appends the row columns of tile (of query tile qt, `rows` rows) to mc; returns 0, leaving mc
   as it was, when they do not fit. */
static int mixed_add_tile(mixed_cols *mc, const spattn_mask *m, const spattn_ktile *tile, size_t qt,
                          size_t rows)
{
    uint64_t bits[16];
    size_t ncol = 0, any = 0;
    for (size_t r = 0; r < 16; r++) {
        bits[r] = r < rows ? spattn__tile_row_bits(m, tile, qt, r) : 0;
        const size_t n = (size_t)spattn__popcount64(bits[r]);
        ncol = n > ncol ? n : ncol;
        if (bits[r] != 0)
            any = (size_t)__builtin_ctzll(bits[r]);
    }
    if (mc->n + ncol > SPATTN_TK)
        return 0;
    const uint32_t j0 = tile->kt * (uint32_t)SPATTN_TK;
    for (size_t c = mc->n; c < mc->n + ncol; c++) {
        uint32_t valid = 0;
        for (size_t r = 0; r < 16; r++) {
            size_t b = any;
            if (bits[r] != 0) {
                b = (size_t)__builtin_ctzll(bits[r]);
                bits[r] &= bits[r] - 1;
                valid |= 1u << r;
            }
            mc->key[c][r] = j0 + (uint32_t)b;
        }
        mc->valid[c] = valid;
    }
    mc->n += ncol;
    return 1;
}

/* The columns of mc into the query tile's state, as one tile: scores (16 row dot products
   along dim per column, reduced together; lane r is row r's, the lanes the tile path's
   columns have), the tile path's online softmax step, then P V row by row, each row's keys
   accumulated in registers and its O row rescaled once. qr: the rows' Q row-major,
   pre-scaled; ob: one O row (transposed O only). Empties mc. */
SPATTN_ALWAYS_INLINE void mixed_flush_d(const int kvt, tile_state *ts, const spattn_head_job *job,
                                        const size_t dq, const size_t dv, mixed_cols *mc,
                                        const float *qr, float *ob)
{
    const size_t ncol = mc->n;
    const col_t ninf = col_set1(K_NINF);
    col_t mt = ninf;
    float *st = ts->st;
    for (size_t c = 0; c < ncol; c++) {
        vec_t part[16 / VL];
        for (size_t g = 0; g < 16 / VL; g++) {
            vec_t a[VL];
            for (size_t x = 0; x < VL; x++) {
                const size_t r = g * VL + x;
                a[x] = qk_dot_vec(kvt, qr + r * dq, dq,
                                  kv_row(kvt, job->k, (ptrdiff_t)mc->key[c][r], job->k_ts));
            }
            part[g] = vec_hsums(a);
        }
        col_t s = col_from_vecs(part);
        if (job->softcap != 0.0f)
            s = col_mul(col_tanh(s), col_set1(job->softcap * K_LOG2E));
        if (ts->alibi) {
            float kf[16] __attribute__((aligned(64)));
            for (size_t r = 0; r < 16; r++)
                kf[r] = (float)mc->key[c][r];
            const col_t pos = col_add(col_set1((float)ts->pos), ts->row_pos);
            s = col_fma(ts->nslope, col_abs(col_sub(pos, col_load(kf))), s);
        }
        s = col_select(cmask_bits(mc->valid[c]), s, ninf);
        col_store(st + c * 16, s);
        mt = col_max(mt, s);
    }
    /* The online softmax step of tile_fold. */
    col_t mnew = col_max(ts->mrun, mt);
    col_t shift = col_select(col_is_neginf(mnew), col_zero(), mnew);
    col_t alpha =
        col_select(col_is_neginf(ts->mrun), col_zero(), col_exp2(col_sub(ts->mrun, shift)));
    col_t psum = col_zero();
    for (size_t c = 0; c < ncol; c++) {
        col_t p = col_exp2(col_sub(col_load(st + c * 16), shift));
        col_store(st + c * 16, p);
        psum = col_add(psum, p);
    }
    ts->lrun = col_add(col_mul(ts->lrun, alpha), psum);
    ts->mrun = mnew;

    float al[16] __attribute__((aligned(64)));
    col_store(al, alpha);
    const size_t w = round16(dv);
    if (ts->o != O_ROWS)
        for (size_t e = 0; e < dv; e++)
            col_store(ts->ot + e * 16, col_mul(col_load(ts->ot + e * 16), alpha));
    uint32_t keys[SPATTN_TK];
    float p[SPATTN_TK];
    for (size_t r = 0; r < ts->rows; r++) {
        size_t n = 0;
        for (size_t c = 0; c < ncol; c++) {
            keys[n] = mc->key[c][r];
            p[n] = st[c * 16 + r];
            n += mc->valid[c] >> r & 1;
        }
        const int rows_o = ts->o == O_ROWS;
        if (n == 0 && (!rows_o || al[r] == 1.0f))
            continue;
        /* O rows: the row itself, times alpha (its padding lanes stay 0); transposed O: the
           keys' sum in ob, added into lane r. */
        float *orow = rows_o ? ts->ot + r * w : ob;
        const vec_t va = vec_set1(rows_o ? al[r] : 0.0f);
        size_t e = 0;
        for (; e + 4 * VL <= dv; e += 4 * VL) {
            vec_t acc[4];
            for (int x = 0; x < 4; x++)
                acc[x] = rows_o ? vec_mul(vec_loadu(orow + e + (size_t)x * VL), va) : vec_zero();
            pv_keys_4v(kvt, 0, acc, job->v, job->v_ts, keys, p, n, e);
            for (int x = 0; x < 4; x++)
                vec_storeu(orow + e + (size_t)x * VL, acc[x]);
        }
        for (; e < dv; e += VL) {
            const vec_t a0 = rows_o ? vec_mul(vec_loadu(orow + e), va) : vec_zero();
            vec_storeu(orow + e, pv_keys_1v(kvt, a0, job->v, job->v_ts, keys, p, n, e,
                                            dv - e < VL ? dv - e : VL));
        }
        if (!rows_o)
            for (e = 0; e < dv; e++)
                ts->ot[e * 16 + r] += ob[e];
    }
    mc->n = 0;
    ts->pv_fresh = 0;
}

SPATTN_ALWAYS_INLINE void mixed_flush_t(const int kvt, tile_state *ts, const spattn_head_job *job,
                                        mixed_cols *mc, const float *qr, float *ob)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    if (dq == 64 && dv == 64)
        mixed_flush_d(kvt, ts, job, 64, 64, mc, qr, ob);
    else if (dq == 128 && dv == 128)
        mixed_flush_d(kvt, ts, job, 128, 128, mc, qr, ob);
    else
        mixed_flush_d(kvt, ts, job, dq, dv, mc, qr, ob);
}

/* The flagged tiles of query tile qt, in walk order, into ts (qr, ob: mixed_floats). */
static void mixed_listed(tile_state *ts, const spattn_head_job *job, const spattn_mask *m,
                         const spattn_keyrows *kr, size_t qt, float *qr, float *ob)
{
    mixed_pack_q(job, ts->i0, ts->rows, qr);
    const size_t t_first = m->qt_ptr[qt], nt = m->qt_ptr[qt + 1] - t_first;
    const int backward = walk_backward(qt);
    mixed_cols mc;
    mc.n = 0;
    for (size_t ti = 0; ti < nt; ti++) {
        const size_t t = t_first + (backward ? nt - 1 - ti : ti);
        if (!kr->tile_gather[t])
            continue;
        if (!mixed_add_tile(&mc, m, &m->tiles[t], qt, ts->rows)) {
            KV_DISPATCH(job->kv_dtype, mixed_flush_t(KVT, ts, job, &mc, qr, ob));
            mixed_add_tile(&mc, m, &m->tiles[t], qt, ts->rows);
        }
    }
    if (mc.n > 0)
        KV_DISPATCH(job->kv_dtype, mixed_flush_t(KVT, ts, job, &mc, qr, ob));
}

/* One key tile of the tile path into ts, as tpl_tiles folds it. */
static void mixed_walk_tile(tile_state *ts, const spattn_head_job *job, const spattn_mask *m,
                            const spattn_ktile *tile)
{
    uint32_t idx[SPATTN_TK], cm[SPATTN_TK];
    const size_t j0 = (size_t)tile->kt * SPATTN_TK;
    int partial;
    uint64_t keys;
    const size_t nk = tile_keys(m, tile, ts->rows, idx, cm, &partial, &keys);
    const uint32_t *cmq = partial && !scores_pass(job) ? cm : NULL;
    qk_alibi al;
    const qk_alibi *alp = tile_alibi(ts, job, j0, &al);
    col_t mt = ts->qk == QK_ROW_DOTS
                   ? qk_rowdot(job->kv_dtype, ts->rows, ts->compact, ts->qtp, q_factor(job),
                               job->dim_qk, job->k, job->k_ts, j0, idx, nk, cmq, ts->st, NULL, alp)
                   : qk_cols(job->kv_dtype, ts->qtp, job->dim_qk, job->k, job->k_ts, j0, idx, nk,
                             cmq, ts->st, NULL, ts->low_half, alp);
    tile_fold(ts, job, j0, idx, cm, nk, partial, mt, NULL);
}

/* One mixed query tile: first its flagged tiles in the tile path's walk order, as row
   columns in groups of at most 64, then its other tiles through the tile kernel in that
   order. Scratch: a tile state (two with QK_NB2), then mixed_floats. */
static void mixed_tile(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                       size_t qt, float *scratch)
{
    tile_state ts;
    tile_begin(&ts, job, m, qt, scratch);
    float *qr = scratch + MIXED_STATES * tile_state_floats(job->dim_qk, job->dim_v);
    mixed_listed(&ts, job, m, kr, qt, qr, qr + 16 * job->dim_qk);
    const size_t t_first = m->qt_ptr[qt], nt = m->qt_ptr[qt + 1] - t_first;
    const int backward = walk_backward(qt);
    for (size_t ti = 0; ti < nt; ti++) {
        const size_t t = t_first + (backward ? nt - 1 - ti : ti);
        if (!kr->tile_gather[t])
            mixed_walk_tile(&ts, job, m, &m->tiles[t]);
    }
    tile_end(&ts, job);
}

#ifdef QK_NB2
/* Mixed query tiles qt (even) and qt + 1 together: each one's flagged tiles as in mixed_tile,
   then one walk over the union of their other tiles as tpl_tiles2 walks it, so that a key tile
   both have is read from L2 once and still in L1 for the second. (qk_cols_pair here too made
   gcc stop inlining it into tpl_tiles2: dense got 4-6 % slower.) Every row gets the bits
   mixed_tile gives it. */
static void mixed_pair(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                       size_t qt, float *scratch)
{
    tile_state ts[2];
    const size_t tsf = tile_state_floats(job->dim_qk, job->dim_v);
    float *qr = scratch + 2 * tsf;
    size_t lo[2], hi[2];
    for (int x = 0; x < 2; x++) {
        tile_begin(&ts[x], job, m, qt + (size_t)x, scratch + (size_t)x * tsf);
        mixed_listed(&ts[x], job, m, kr, qt + (size_t)x, qr, qr + 16 * job->dim_qk);
        lo[x] = m->qt_ptr[qt + (size_t)x];
        hi[x] = m->qt_ptr[qt + (size_t)x + 1];
    }
    const int backward = walk_backward(qt);
    for (;;) {
        /* Flagged tiles at either end of the walk are done already. */
        for (int x = 0; x < 2; x++)
            while (lo[x] < hi[x] && kr->tile_gather[backward ? hi[x] - 1 : lo[x]]) {
                if (backward)
                    hi[x]--;
                else
                    lo[x]++;
            }
        if (lo[0] >= hi[0] && lo[1] >= hi[1])
            break;
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
        for (int x = 0; x < 2; x++)
            if (take[x])
                mixed_walk_tile(&ts[x], job, m, tile[x]);
    }
    tile_end(&ts[0], job);
    tile_end(&ts[1], job);
}
#endif

/* Query tiles qt .. qt + nqt - 1 (all mixed), two at a time where the ISA pairs tiles. */
static void tpl_mixed(const spattn_head_job *job, const spattn_mask *m, const spattn_keyrows *kr,
                      size_t qt, size_t nqt, float *scratch)
{
    for (size_t q = qt; q < qt + nqt; q++) {
#ifdef QK_NB2
        if (q % 2 == 0 && q + 1 < qt + nqt) {
            mixed_pair(job, m, kr, q, scratch);
            q++;
            continue;
        }
#endif
        mixed_tile(job, m, kr, q, scratch);
    }
}

#endif

/*
 * The backward's column path (entry points in bwd.h), FlashAttention-2 style: per stored (query
 * tile, key tile) pair, the scores are recomputed as columns (lane r = row r of the query tile, as
 * in qk_cols.h) from the pack's Q^T, and P = exp2(s log2(e) - lse log2(e)) comes from the forward's
 * lse; then dP = dO V^T,  dS = P (dP - D) [(1 - tanh^2) with softcap] and either the key tile's dV
 * += P^T dO, dK += dS^T Q (bwd_kv: keys as rows, rows of the pack's Q and dO broadcast-multiplied
 * in), or the query tile's dQ^T += dS K (bwd_q: columns, one K element broadcast per FMA). Only
 * allowed pairs contribute, and never through a multiply by zero: P and dS are selected to 0
 * outside the mask, the dK/dV sums run over each key's allowed rows only, and dQ's FMAs are masked,
 * so NaN in a K or V row (or a Q row) that no allowed pair touches reaches no gradient. FULL tiles
 * of 16 rows skip all masking.
 */
#ifndef SPATTN_KERNELS_BWD_COLS_H
#define SPATTN_KERNELS_BWD_COLS_H

#include "kernels/bwd_pack.h"
#include "kernels/common.h"

/* A query tile's pack and the per-row constants of its columns. */
typedef struct bwd_rows {
    const float *qt, *dot, *qr, *dor;
    col_t d, l2;           /* D and lse log2(e) of the rows */
    col_t slope;           /* -slope log2(e) per row (ALiBi), else 0 */
    col_t cs;              /* scale log2(e), or scale / softcap with softcap */
    col_t ccap;            /* softcap log2(e) */
    ptrdiff_t pos[16];     /* query positions i' of the rows (ALiBi) */
    float sl[16];          /* the slope lanes, for the pair path (bwd_pairs.h) */
    const float *ds, *l2s; /* the pack's D and lse log2(e), likewise */
    size_t i0, rows;
} bwd_rows;

static void bwd_rows_init(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                          const float *pack, bwd_rows *br)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    br->qt = pack;
    br->dot = pack + 16 * dq;
    br->qr = pack + spattn__bwd_pack_qr(dq, dv);
    br->dor = pack + spattn__bwd_pack_dor(dq, dv);
    br->ds = pack + spattn__bwd_pack_d(dq, dv);
    br->l2s = pack + spattn__bwd_pack_l2(dq, dv);
    br->d = col_load(br->ds);
    br->l2 = col_load(br->l2s);
    br->i0 = qt * SPATTN_TQ;
    br->rows = spattn__qt_rows(m, qt);
    br->cs = col_set1(q_factor(job));
    br->ccap = col_set1(job->softcap * K_LOG2E);
    float sl[16] __attribute__((aligned(64)));
    for (size_t r = 0; r < 16; r++) {
        const int live = job->slopes != NULL && r < br->rows;
        sl[r] = live ? alibi_factor(job, br->i0 + r) : 0.0f;
        br->pos[r] = live ? job->pos0 + (ptrdiff_t)(br->i0 + r) * job->pos_step : 0;
    }
    br->slope = col_load(sl);
    memcpy(br->sl, sl, sizeof sl);
}

/* The keys of stored tile t that some row of query tile qt may see, into idx (increasing),
   with each key's row bits in cm; *full when the tile is FULL over 16 rows (no masking). */
static size_t bwd_keys(const spattn_mask *m, const spattn_ktile *t, size_t qt, uint32_t *cm,
                       uint32_t *idx, int *full)
{
    const size_t n = spattn__kt_cols(m, t->kt);
    *full = t->part == SPATTN_FULL && spattn__qt_rows(m, qt) == SPATTN_TQ;
    if (*full) {
        for (size_t c = 0; c < n; c++) {
            idx[c] = (uint32_t)c;
            cm[c] = 0xffffu;
        }
        return n;
    }
    uint64_t rb[16];
    for (size_t r = 0; r < 16; r++)
        rb[r] = spattn__tile_row_bits(m, t, qt, r);
    col_masks_from_rows(rb, cm);
    size_t k = 0;
    for (size_t c = 0; c < n; c++)
        if (cm[c] != 0)
            idx[k++] = (uint32_t)c;
    return k;
}

/* acc[b] = the columns' dot products with row p[b] (moved past the row): xt holds dim
   columns of 16 lanes. QK_DU dims per step with each row pointer advanced once per step and
   hidden from the optimiser (OPAQUE_PTR, as in qk_cols.h), so that every broadcast FMA
   addresses [p + imm] rather than base + index, which splits it in two at issue. */
SPATTN_ALWAYS_INLINE void bwd_dots(const int nb, const float *xt, size_t dim, const float **p,
                                   col_t *acc)
{
    size_t d = 0;
    for (; d + QK_DU <= dim; d += QK_DU) {
#pragma GCC unroll 16
        for (int u = 0; u < QK_DU; u++) {
            const col_t x = col_load(xt + (d + (size_t)u) * 16);
            for (int b = 0; b < nb; b++)
                acc[b] = col_fma_bc(x, p[b] + u, acc[b]);
        }
        for (int b = 0; b < nb; b++) {
            p[b] += QK_DU;
            OPAQUE_PTR(p[b]);
        }
    }
    for (; d < dim; d++) {
        const col_t x = col_load(xt + d * 16);
        for (int b = 0; b < nb; b++)
            acc[b] = col_fma_bc(x, p[b]++, acc[b]);
    }
}

/* P and dS columns of keys idx[jj .. jj + nb) (a short last block repeats its last key, in
   bounds, and stores only the real ones) into pc / dsc at 16 floats per key. */
SPATTN_ALWAYS_INLINE void bwd_cols_nb(const int nb, const spattn_head_job *job, const bwd_rows *br,
                                      size_t j0, const uint32_t *idx, size_t nk, size_t jj,
                                      const uint32_t *cm, int full, col_t rel, float *pc,
                                      float *dsc)
{
    const float *kp[QK_NB], *vp[QK_NB];
    col_t s[QK_NB], dp[QK_NB];
    for (int b = 0; b < nb; b++) {
        const size_t c = idx[jj + (size_t)b < nk ? jj + (size_t)b : nk - 1];
        kp[b] = (const float *)job->k + (ptrdiff_t)(j0 + c) * job->k_ts;
        vp[b] = (const float *)job->v + (ptrdiff_t)(j0 + c) * job->v_ts;
        s[b] = col_zero();
        dp[b] = col_zero();
    }
    /* P first, stored, then dP: the two sets of accumulators are never live together (on
       AVX2 they would not fit the registers beside the column and the broadcast). With
       softcap, tanh's value waits in dsc until dS is made there. */
    bwd_dots(nb, br->qt, job->dim_qk, kp, s);
    for (int b = 0; b < nb && jj + (size_t)b < nk; b++) {
        const size_t c = idx[jj + (size_t)b];
        col_t z;
        if (job->softcap != 0.0f) {
            const col_t t = col_tanh(col_mul(s[b], br->cs));
            col_store(dsc + c * 16, t);
            z = col_mul(t, br->ccap);
        } else {
            z = col_mul(s[b], br->cs);
        }
        if (job->slopes != NULL)
            z = col_fma(col_abs(col_sub(rel, col_set1((float)c))), br->slope, z);
        col_store(pc + c * 16, col_exp2(col_sub(z, br->l2)));
    }
    bwd_dots(nb, br->dot, job->dim_v, vp, dp);
    const col_t zero = col_zero(), one = col_set1(1.0f);
    for (int b = 0; b < nb && jj + (size_t)b < nk; b++) {
        const size_t c = idx[jj + (size_t)b];
        col_t p = col_load(pc + c * 16);
        col_t ds = col_mul(p, col_sub(dp[b], br->d));
        if (job->softcap != 0.0f) {
            const col_t t = col_load(dsc + c * 16);
            ds = col_mul(ds, col_sub(one, col_mul(t, t)));
        }
        if (!full) {
            const cmask_t mk = cmask_bits(cm[c]);
            col_store(pc + c * 16, col_select(mk, p, zero));
            ds = col_select(mk, ds, zero);
        }
        col_store(dsc + c * 16, ds);
    }
}

static void bwd_cols(const spattn_head_job *job, const bwd_rows *br, size_t kt, const uint32_t *idx,
                     size_t nk, const uint32_t *cm, int full, float *pc, float *dsc)
{
    const size_t j0 = kt * SPATTN_TK;
    /* i' - j0 per row, exact (validation keeps every |i' - j| within 2^24). */
    float rl[16] __attribute__((aligned(64)));
    for (size_t r = 0; r < 16; r++)
        rl[r] = (float)(br->pos[r] - (ptrdiff_t)j0);
    const col_t rel = col_load(rl);
    size_t jj = 0;
    for (; jj + QK_NB <= nk; jj += QK_NB)
        bwd_cols_nb(QK_NB, job, br, j0, idx, nk, jj, cm, full, rel, pc, dsc);
    if (jj < nk)
        bwd_cols_nb(QK_NB, job, br, j0, idx, nk, jj, cm, full, rel, pc, dsc);
}

/* out += sum over the rows r of bits of w[r] * src row r, nv vectors along dim. */
SPATTN_ALWAYS_INLINE void bwd_acc_block(const int nv, uint32_t bits, const float *w,
                                        const float *src, size_t ld, float *out)
{
    vec_t acc[4];
    for (int v = 0; v < nv; v++)
        acc[v] = vec_loadu(out + v * VL);
    for (; bits != 0; bits &= bits - 1) {
        const size_t r = (size_t)__builtin_ctz(bits);
        const vec_t x = vec_set1(w[r]);
        for (int v = 0; v < nv; v++)
            acc[v] = vec_fma(x, vec_loadu(src + r * ld + (size_t)v * VL), acc[v]);
    }
    for (int v = 0; v < nv; v++)
        vec_storeu(out + v * VL, acc[v]);
}

/* Key c of the tile (rows of dst, ld floats each) += its column of w times the pack rows. */
static void bwd_acc_keys(const uint32_t *idx, size_t nk, const uint32_t *cm, const float *w,
                         const float *src, size_t ld, float *dst)
{
    for (size_t x = 0; x < nk; x++) {
        const size_t c = idx[x];
        size_t d0 = 0;
        for (; d0 + 4 * VL <= ld; d0 += 4 * VL)
            bwd_acc_block(4, cm[c], w + c * 16, src + d0, ld, dst + c * ld + d0);
        for (; d0 < ld; d0 += VL)
            bwd_acc_block(1, cm[c], w + c * 16, src + d0, ld, dst + c * ld + d0);
    }
}

/* Keys per register block of a FULL tile's dK/dV (x 4 vectors along dim): as many
   accumulators as the register file holds beside the four row vectors. */
#if VL == 8
#define BWD_KB 2
#else
#define BWD_KB 4
#endif

/* FULL tiles of 16 rows handled together by bwd_acc_full: the accumulators of a key tile's
   dK and dV do not stay in L1 beside the tile's K and V, so each pass over them serves
   several query tiles (rows in the tiles' order, so each sum keeps the order one tile at a
   time gives it). */
#define BWD_GROUP 4

/* FULL tiles t < nt of 16 rows: keys c0 .. c0 + kb (w[t] and dst at key c0), nv vectors of
   dims from src[t] and dst: each row's vectors are loaded once for kb keys. */
SPATTN_ALWAYS_INLINE void bwd_acc_full_block(const int kb, const int nv, size_t nt,
                                             const float *const *w, const float *const *src,
                                             size_t ld, float *dst, int first)
{
    vec_t acc[BWD_KB][4];
    for (int k = 0; k < kb; k++)
        for (int v = 0; v < nv; v++)
            acc[k][v] = first ? vec_zero() : vec_loadu(dst + (size_t)k * ld + (size_t)v * VL);
    for (size_t t = 0; t < nt; t++)
        for (size_t r = 0; r < 16; r++) {
            vec_t x[4];
            for (int v = 0; v < nv; v++) {
                x[v] = vec_loadu(src[t] + r * ld + (size_t)v * VL);
#if VL == 8
                /* AVX2: gcc folded each row load into the FMAs of both keys, 8 loads for 8
                   FMAs instead of 4 (docs/backward.md) */
                OPAQUE_VEC(x[v]);
#endif
            }
            for (int k = 0; k < kb; k++) {
                const vec_t wv = vec_set1(w[t][(size_t)k * 16 + r]);
                for (int v = 0; v < nv; v++)
                    acc[k][v] = vec_fma(wv, x[v], acc[k][v]);
            }
        }
    for (int k = 0; k < kb; k++)
        for (int v = 0; v < nv; v++)
            vec_storeu(dst + (size_t)k * ld + (size_t)v * VL, acc[k][v]);
}

SPATTN_ALWAYS_INLINE void bwd_acc_full_keys(const int kb, size_t c, size_t nt,
                                            const float *const *w, const float *const *src,
                                            size_t ld, float *dst, int first)
{
    const float *wc[BWD_GROUP], *sd[BWD_GROUP];
    for (size_t t = 0; t < nt; t++)
        wc[t] = w[t] + c * 16;
    size_t d0 = 0;
    for (; d0 + 4 * VL <= ld; d0 += 4 * VL) {
        for (size_t t = 0; t < nt; t++)
            sd[t] = src[t] + d0;
        bwd_acc_full_block(kb, 4, nt, wc, sd, ld, dst + c * ld + d0, first);
    }
    for (; d0 < ld; d0 += VL) {
        for (size_t t = 0; t < nt; t++)
            sd[t] = src[t] + d0;
        bwd_acc_full_block(kb, 1, nt, wc, sd, ld, dst + c * ld + d0, first);
    }
}

/* bwd_acc_keys for nt <= BWD_GROUP FULL tiles of 16 rows: keys 0 .. nk, every row of each,
   weights w[t] and rows src[t]. */
static void bwd_acc_full(size_t nk, size_t nt, const float *const *w, const float *const *src,
                         size_t ld, float *dst, int first)
{
    size_t c = 0;
    for (; c + BWD_KB <= nk; c += BWD_KB)
        bwd_acc_full_keys(BWD_KB, c, nt, w, src, ld, dst, first);
    for (; c < nk; c++)
        bwd_acc_full_keys(1, c, nt, w, src, ld, dst, first);
}

/* dQ^T[d0 .. d0 + nd) += dS K over the keys idx[0 .. nk). */
SPATTN_ALWAYS_INLINE void bwd_dq_block(const int nd, const uint32_t *idx, size_t nk,
                                       const uint32_t *cm, int full, const float *dsc,
                                       const float *kb, ptrdiff_t k_ts, size_t d0, float *dqt)
{
    col_t acc[QK_NB];
    for (int x = 0; x < nd; x++)
        acc[x] = col_load(dqt + (d0 + (size_t)x) * 16);
    for (size_t y = 0; y < nk; y++) {
        const size_t c = idx[y];
        const col_t ds = col_load(dsc + c * 16);
        const float *kp = kb + (ptrdiff_t)c * k_ts + (ptrdiff_t)d0;
        if (full) {
            for (int x = 0; x < nd; x++)
                acc[x] = col_fma_bc(ds, kp + x, acc[x]);
        } else {
            const cmask_t mk = cmask_bits(cm[c]);
            for (int x = 0; x < nd; x++)
                acc[x] = col_fma_bc_m(ds, kp + x, acc[x], mk);
        }
    }
    for (int x = 0; x < nd; x++)
        col_store(dqt + (d0 + (size_t)x) * 16, acc[x]);
}

SPATTN_ALWAYS_INLINE void bwd_dq_dims_t(const int full, const uint32_t *idx, size_t nk,
                                        const uint32_t *cm, const float *dsc, const float *kb,
                                        ptrdiff_t k_ts, size_t dqk, float *dqt)
{
    size_t d0 = 0;
    for (; d0 + QK_NB <= dqk; d0 += QK_NB)
        bwd_dq_block(QK_NB, idx, nk, cm, full, dsc, kb, k_ts, d0, dqt);
    for (; d0 + 4 <= dqk; d0 += 4)
        bwd_dq_block(4, idx, nk, cm, full, dsc, kb, k_ts, d0, dqt);
    for (; d0 + 2 <= dqk; d0 += 2)
        bwd_dq_block(2, idx, nk, cm, full, dsc, kb, k_ts, d0, dqt);
    if (d0 < dqk)
        bwd_dq_block(1, idx, nk, cm, full, dsc, kb, k_ts, d0, dqt);
}

/* dQ^T += dS K over the keys idx[0 .. nk) for every dim: blocks of QK_NB dims, the rest in
   blocks of 4, 2 and 1 (each dim's sum runs over the keys in order whatever its block, so
   the blocks change no bit). FULL or not is decided once per call: with both forms in one
   loop, AVX2's accumulators did not fit the registers. */
static void bwd_dq_dims(const uint32_t *idx, size_t nk, const uint32_t *cm, int full,
                        const float *dsc, const float *kb, ptrdiff_t k_ts, size_t dqk, float *dqt)
{
    if (full)
        bwd_dq_dims_t(1, idx, nk, cm, dsc, kb, k_ts, dqk, dqt);
    else
        bwd_dq_dims_t(0, idx, nk, cm, dsc, kb, k_ts, dqk, dqt);
}

#endif

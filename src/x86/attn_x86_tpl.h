/*
 * The x86 attention and softmax kernels, written once over the vector layer of vec_avx2.h or
 * vec_avx512.h (included first by attn_avx2.c / attn_avx512.c). Everything here is static: each
 * ISA file gets its own copy compiled with its own flags and exports only its table.
 *
 * Tile path, transposed: a query tile's 16 rows are the 16 lanes of a col_t. Q is packed
 * transposed once per query tile (Qt[d] = the 16 rows' d-th element, pre-scaled), so
 *   S^T[j] = sum_d Qt[d] * K[j][d]      (K read in place, one broadcast per FMA)
 *   O^T[e] += P^T[j] * V[j][e]          (V read in place, one broadcast per FMA)
 * and the online softmax is vertical: the running max, sum and rescale of the 16 rows are
 * lane-wise ops, with no horizontal reductions and no transposition of K or V.
 *
 * Scores are kept in log2 units (Q pre-scaled by scale*log2(e)) so that P = exp2(S - m).
 */
#ifndef SPATTN_ATTN_X86_TPL_H
#define SPATTN_ATTN_X86_TPL_H

#include <math.h>
#include <string.h>

#include "kernel.h"

#define X86_LOG2E 1.4426950408889634f
#define X86_LN2 0.6931471805599453
#define X86_NINF (-__builtin_inff())

#if SPATTN_TQ != 16
#error "the x86 tile path maps the 16 rows of a query tile onto the 16 lanes of a col_t"
#endif

static size_t x86_round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Tile path: Qt (16*dim_qk) | Ot (16*dim_v) | St (16 per key, 64 + QK_NB keys) | m, l.
   Gather path: 16 q rows | 16 o rows (each rounded up to 16 floats, 64 bytes) | 16 scores. */
static size_t x86_scratch(size_t dim_qk, size_t dim_v)
{
    size_t tile = 16 * (dim_qk + dim_v + SPATTN_TK + QK_NB + 2);
    size_t gather = 16 * (x86_round16(dim_qk) + x86_round16(dim_v) + 1);
    return tile > gather ? tile : gather;
}

/* What multiplies Q before the products, and what multiplies tanh after (softcap only). */
static float x86_q_factor(const spattn_head_job *job)
{
    return job->softcap != 0.0f ? job->scale / job->softcap : job->scale * X86_LOG2E;
}

/* ---- tile path -------------------------------------------------------------------------- */

static void pack_qt(const spattn_head_job *job, size_t i0, size_t rows, float *qt)
{
    const float c = x86_q_factor(job);
    /* Lanes of rows past len_q stay 0: finite scores, never written back. */
    memset(qt, 0, 16 * job->dim_qk * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *q = job->q + (ptrdiff_t)(i0 + r) * job->q_ts;
        for (size_t d = 0; d < job->dim_qk; d++)
            qt[d * 16 + r] = q[d] * c;
    }
}

/* S^T for keys j0 + idx[0..nk): QK_NB keys at a time, each split into QK_DS chains along dim
   so that enough independent FMAs are in flight. A short last block repeats its last key
   (in bounds, result unused) instead of needing a second code path. */
static void qk_tile(const float *qt, size_t dq, const float *kb, ptrdiff_t k_ts, size_t j0,
                    const uint32_t *idx, size_t nk, float *st)
{
    for (size_t jj = 0; jj < nk; jj += QK_NB) {
        const float *kp[QK_NB];
        for (int b = 0; b < QK_NB; b++) {
            size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = kb + (ptrdiff_t)(j0 + idx[jb]) * k_ts;
        }
        col_t acc[QK_DS][QK_NB];
        for (int s = 0; s < QK_DS; s++)
            for (int b = 0; b < QK_NB; b++)
                acc[s][b] = col_zero();
        size_t d = 0;
        for (; d + QK_DS <= dq; d += QK_DS) {
            for (int s = 0; s < QK_DS; s++) {
                col_t q = col_load(qt + (d + (size_t)s) * 16);
                for (int b = 0; b < QK_NB; b++)
                    acc[s][b] = col_fma_bc(q, kp[b] + d + s, acc[s][b]);
            }
        }
        for (; d < dq; d++) {
            col_t q = col_load(qt + d * 16);
            for (int b = 0; b < QK_NB; b++)
                acc[0][b] = col_fma_bc(q, kp[b] + d, acc[0][b]);
        }
        for (int b = 0; b < QK_NB; b++) {
            col_t a = acc[0][b];
            for (int s = 1; s < QK_DS; s++)
                a = col_add(a, acc[s][b]);
            col_store(st + (jj + (size_t)b) * 16, a);
        }
    }
}

/* O^T[e0 .. e0+eb) = alpha * O^T + sum over keys of P^T[j] * V[j][e], the eb output columns
   held in registers across all keys of the tile. `masked` (PARTIAL tiles) keeps each key out
   of the rows its column mask excludes, so a NaN in that key's V row cannot reach them. */
static inline __attribute__((always_inline)) void pv_block(float *ot, size_t e0, const int eb,
                                                           const int masked, const float *const *vp,
                                                           const uint32_t *cm, size_t nk,
                                                           const float *st, col_t alpha)
{
    col_t acc[PV_EB > PV_EBM ? PV_EB : PV_EBM];
    for (int x = 0; x < eb; x++)
        acc[x] = col_mul(col_load(ot + (e0 + (size_t)x) * 16), alpha);
    for (size_t jj = 0; jj < nk; jj++) {
        col_t p = col_load(st + jj * 16);
        const float *v = vp[jj] + e0;
        /* Opaque to the optimiser: otherwise it keeps e0 + x for every x in its own register
           (running out of them) instead of using v + x as an immediate offset. */
        __asm__("" : "+r"(v));
        if (masked) {
            cmask_t mk = cmask_bits(cm[jj]);
            for (int x = 0; x < eb; x++)
                acc[x] = col_fma_bc_m(p, v + x, acc[x], mk);
        } else {
            for (int x = 0; x < eb; x++)
                acc[x] = col_fma_bc(p, v + x, acc[x]);
        }
    }
    for (int x = 0; x < eb; x++)
        col_store(ot + (e0 + (size_t)x) * 16, acc[x]);
}

static void pv_tile(float *ot, size_t dv, const float *const *vp, const uint32_t *cm, size_t nk,
                    const float *st, col_t alpha, int masked)
{
    size_t e = 0;
    if (masked) {
        for (; e + PV_EBM <= dv; e += PV_EBM)
            pv_block(ot, e, PV_EBM, 1, vp, cm, nk, st, alpha);
        for (; e + 2 <= dv; e += 2)
            pv_block(ot, e, 2, 1, vp, cm, nk, st, alpha);
        for (; e < dv; e++)
            pv_block(ot, e, 1, 1, vp, cm, nk, st, alpha);
    } else {
        for (; e + PV_EB <= dv; e += PV_EB)
            pv_block(ot, e, PV_EB, 0, vp, cm, nk, st, alpha);
        for (; e + 4 <= dv; e += 4)
            pv_block(ot, e, 4, 0, vp, cm, nk, st, alpha);
        for (; e < dv; e++)
            pv_block(ot, e, 1, 0, vp, cm, nk, st, alpha);
    }
}

/* Writes rows i0 .. i0+rows from O^T, m and l (lane r = row r). */
static void finish_rows(const spattn_head_job *job, size_t i0, size_t rows, const float *ot,
                        const float *mrow, const float *lrow)
{
    for (size_t r = 0; r < rows; r++) {
        float *o = job->o + (ptrdiff_t)(i0 + r) * job->o_ts;
        float l = lrow[r];
        float inv = l != 0.0f ? 1.0f / l : 0.0f;
        for (size_t e = 0; e < job->dim_v; e++)
            o[e] = l != 0.0f ? ot[e * 16 + r] * inv : 0.0f;
        if (job->lse)
            job->lse[i0 + r] =
                l != 0.0f ? (float)((double)mrow[r] * X86_LN2 + log((double)l)) : X86_NINF;
    }
}

static void x86_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    const size_t dq = job->dim_qk, dv = job->dim_v;
    float *qtp = scratch, *ot = qtp + 16 * dq, *st = ot + 16 * dv;
    float *ml = st + 16 * (SPATTN_TK + QK_NB);
    const int softcap = job->softcap != 0.0f;
    const col_t post = col_set1(job->softcap * X86_LOG2E), ninf = col_set1(X86_NINF);

    pack_qt(job, i0, rows, qtp);
    memset(ot, 0, 16 * dv * sizeof(float));
    col_t mrun = ninf, lrun = col_zero();
    uint32_t idx[SPATTN_TK], cm[SPATTN_TK], cm_all[SPATTN_TK];
    const float *vp[SPATTN_TK];

    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const spattn_ktile *tile = &m->tiles[t];
        const size_t j0 = (size_t)tile->kt * SPATTN_TK, n = spattn__kt_cols(m, tile->kt);
        const int partial = tile->part != SPATTN_FULL;
        size_t nk = 0;
        if (!partial) {
            for (size_t j = 0; j < n; j++)
                idx[j] = (uint32_t)j;
            nk = n;
        } else {
            /* Keys no row of the tile allows are dropped here: never loaded at all. */
            col_masks_from_rows(&m->bits[(size_t)tile->part * SPATTN_TQ], cm_all);
            for (size_t j = 0; j < n; j++) {
                if (cm_all[j] != 0) {
                    idx[nk] = (uint32_t)j;
                    cm[nk++] = cm_all[j];
                }
            }
        }
        qk_tile(qtp, dq, job->k, job->k_ts, j0, idx, nk, st);

        col_t mt = ninf;
        for (size_t jj = 0; jj < nk; jj++) {
            col_t s = col_load(st + jj * 16);
            if (softcap)
                s = col_mul(col_tanh(s), post);
            if (partial)
                s = col_select(cmask_bits(cm[jj]), s, ninf);
            if (softcap || partial)
                col_store(st + jj * 16, s);
            mt = col_max(mt, s);
        }
        /* While a row has seen only -inf its shift is 0, so exp2(-inf - 0) = 0, not NaN;
           its alpha is 0 (nothing to rescale; exp2 of old - new could overflow). */
        col_t mnew = col_max(mrun, mt);
        col_t shift = col_select(col_is_neginf(mnew), col_zero(), mnew);
        col_t alpha = col_select(col_is_neginf(mrun), col_zero(), col_exp2(col_sub(mrun, shift)));
        col_t psum = col_zero();
        for (size_t jj = 0; jj < nk; jj++) {
            col_t p = col_exp2(col_sub(col_load(st + jj * 16), shift));
            col_store(st + jj * 16, p);
            psum = col_add(psum, p);
        }
        lrun = col_add(col_mul(lrun, alpha), psum);
        mrun = mnew;

        for (size_t jj = 0; jj < nk; jj++)
            vp[jj] = job->v + (ptrdiff_t)(j0 + idx[jj]) * job->v_ts;
        pv_tile(ot, dv, vp, cm, nk, st, alpha, partial);
    }
    col_store(ml, mrun);
    col_store(ml + 16, lrun);
    finish_rows(job, i0, rows, ot, ml, ml + 16);
}

/* ---- gather path ------------------------------------------------------------------------ */

/* Four dot products of a (zero-padded) scaled q row with key rows; the key tail is a masked
   load, so nothing past dim is read. */
static inline __attribute__((always_inline)) __m128 dot4(const float *qrow, size_t dq,
                                                         const float *k0, const float *k1,
                                                         const float *k2, const float *k3)
{
    vec_t a0 = vec_zero(), a1 = vec_zero(), a2 = vec_zero(), a3 = vec_zero();
    size_t d = 0;
    for (; d + VL <= dq; d += VL) {
        vec_t q = vec_loadu(qrow + d);
        a0 = vec_fma(q, vec_loadu(k0 + d), a0);
        a1 = vec_fma(q, vec_loadu(k1 + d), a1);
        a2 = vec_fma(q, vec_loadu(k2 + d), a2);
        a3 = vec_fma(q, vec_loadu(k3 + d), a3);
    }
    if (d < dq) {
        vmask_t mk = vmask_first(dq - d);
        vec_t q = vec_loadu(qrow + d);
        a0 = vec_fma(q, vec_loadu_m(k0 + d, mk), a0);
        a1 = vec_fma(q, vec_loadu_m(k1 + d, mk), a1);
        a2 = vec_fma(q, vec_loadu_m(k2 + d, mk), a2);
        a3 = vec_fma(q, vec_loadu_m(k3 + d, mk), a3);
    }
    return vec_hsum4(a0, a1, a2, a3);
}

/* The state of the gather path for one query tile: per row, its scaled q, its unnormalised
   O, running max and sum, and up to 16 pending keys. */
typedef struct gather_tile {
    const spattn_head_job *job;
    float *qrows, *orows, *sbuf; /* 16 rows of dqp / dvp floats; 16 probabilities */
    size_t dqp, dvp;
    int softcap;
    float post;
    float m[SPATTN_TQ], l[SPATTN_TQ];
    uint32_t n[SPATTN_TQ];
    uint32_t keys[SPATTN_TQ][16];
} gather_tile;

/* Row r's pending keys: scores, online softmax, O += P V. */
static void gather_chunk(gather_tile *g, size_t r)
{
    const spattn_head_job *job = g->job;
    const size_t n = g->n[r], dq = job->dim_qk, dv = job->dim_v;
    const float *kp[16], *vp[16];
    for (size_t c = 0; c < n; c++) {
        kp[c] = job->k + (ptrdiff_t)g->keys[r][c] * job->k_ts;
        vp[c] = job->v + (ptrdiff_t)g->keys[r][c] * job->v_ts;
    }
    g->n[r] = 0;
    const float *qrow = g->qrows + r * g->dqp;
    __m128 quarter[4];
    for (size_t c = 0; c < 16; c += 4) {
        if (c >= n) {
            quarter[c / 4] = _mm_setzero_ps();
            continue;
        }
        const float *k1 = kp[c + 1 < n ? c + 1 : n - 1], *k2 = kp[c + 2 < n ? c + 2 : n - 1];
        const float *k3 = kp[c + 3 < n ? c + 3 : n - 1];
        quarter[c / 4] = dot4(qrow, dq, kp[c], k1, k2, k3);
    }
    col_t s = col_from4(quarter[0], quarter[1], quarter[2], quarter[3]);
    if (g->softcap)
        s = col_mul(col_tanh(s), col_set1(g->post));
    s = col_select(cmask_bits((uint32_t)((1u << n) - 1u)), s, col_set1(X86_NINF));
    const float mold = g->m[r], mt = col_hmax(s);
    const float mnew = mt > mold ? mt : mold;
    const float shift = mnew == X86_NINF ? 0.0f : mnew;
    const float alpha = mold == X86_NINF ? 0.0f : vec_lane0(vec_exp2(vec_set1(mold - shift)));
    col_t p = col_exp2(col_sub(s, col_set1(shift)));
    g->l[r] = g->l[r] * alpha + col_hsum(p);
    g->m[r] = mnew;
    col_store(g->sbuf, p);

    const float *pb = g->sbuf;
    const vec_t va = vec_set1(alpha);
    float *o = g->orows + r * g->dvp;
    size_t e = 0;
    for (; e + 4 * VL <= dv; e += 4 * VL) {
        vec_t a0 = vec_mul(vec_loadu(o + e), va), a1 = vec_mul(vec_loadu(o + e + VL), va);
        vec_t a2 = vec_mul(vec_loadu(o + e + 2 * VL), va);
        vec_t a3 = vec_mul(vec_loadu(o + e + 3 * VL), va);
        for (size_t j = 0; j < n; j++) {
            vec_t pj = vec_set1(pb[j]);
            const float *v = vp[j] + e;
            a0 = vec_fma(pj, vec_loadu(v), a0);
            a1 = vec_fma(pj, vec_loadu(v + VL), a1);
            a2 = vec_fma(pj, vec_loadu(v + 2 * VL), a2);
            a3 = vec_fma(pj, vec_loadu(v + 3 * VL), a3);
        }
        vec_storeu(o + e, a0);
        vec_storeu(o + e + VL, a1);
        vec_storeu(o + e + 2 * VL, a2);
        vec_storeu(o + e + 3 * VL, a3);
    }
    for (; e < dv; e += VL) {
        /* O rows are padded to a multiple of 16 floats; V rows are not. */
        vmask_t mk = vmask_first(dv - e < VL ? dv - e : VL);
        vec_t a0 = vec_mul(vec_loadu(o + e), va);
        for (size_t j = 0; j < n; j++)
            a0 = vec_fma(vec_set1(pb[j]), vec_loadu_m(vp[j] + e, mk), a0);
        vec_storeu(o + e, a0);
    }
}

static inline void gather_add(gather_tile *g, size_t r, size_t j0, uint64_t bits)
{
    for (; bits != 0; bits &= bits - 1) {
        g->keys[r][g->n[r]++] = (uint32_t)(j0 + (size_t)__builtin_ctzll(bits));
        if (g->n[r] == 16)
            gather_chunk(g, r);
    }
}

/* One walk over the query tile's stored key tiles hands each row its allowed keys in chunks
   of 16; rows never rescan the tiles. */
static void x86_gather(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    const size_t dq = job->dim_qk, dv = job->dim_v;
    gather_tile g;
    g.job = job;
    g.dqp = x86_round16(dq);
    g.dvp = x86_round16(dv);
    g.qrows = scratch;
    g.orows = scratch + SPATTN_TQ * g.dqp;
    g.sbuf = g.orows + SPATTN_TQ * g.dvp;
    g.softcap = job->softcap != 0.0f;
    g.post = job->softcap * X86_LOG2E;
    const vec_t c = vec_set1(x86_q_factor(job));
    for (size_t r = 0; r < rows; r++) {
        const float *q = job->q + (ptrdiff_t)(i0 + r) * job->q_ts;
        for (size_t d = 0; d < g.dqp; d += VL) {
            vec_t x = vec_zero(); /* the padding past dim is 0 */
            if (d < dq)
                x = vec_mul(vec_loadu_m(q + d, vmask_first(dq - d < VL ? dq - d : VL)), c);
            vec_storeu(g.qrows + r * g.dqp + d, x);
        }
        memset(g.orows + r * g.dvp, 0, g.dvp * sizeof(float));
        g.m[r] = X86_NINF;
        g.l[r] = 0.0f;
        g.n[r] = 0;
    }
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const spattn_ktile *tile = &m->tiles[t];
        const size_t j0 = (size_t)tile->kt * SPATTN_TK;
        if (tile->part == SPATTN_FULL) {
            for (size_t r = 0; r < rows; r++)
                gather_add(&g, r, j0, spattn__tile_row_bits(m, tile, qt, r));
            continue;
        }
        /* Branch only on the rows that have keys here (few, in the sparse tiles gather gets). */
        const uint64_t *b = &m->bits[(size_t)tile->part * SPATTN_TQ];
        for (uint32_t nz = rows_nonzero16(b); nz != 0; nz &= nz - 1) {
            size_t r = (size_t)__builtin_ctz(nz);
            gather_add(&g, r, j0, b[r]);
        }
    }
    for (size_t r = 0; r < rows; r++) {
        if (g.n[r] != 0)
            gather_chunk(&g, r);
        float *o = job->o + (ptrdiff_t)(i0 + r) * job->o_ts;
        const float l = g.l[r];
        const vec_t inv = vec_set1(l != 0.0f ? 1.0f / l : 0.0f);
        for (size_t e = 0; e < dv; e += VL) {
            vmask_t mk = vmask_first(dv - e < VL ? dv - e : VL);
            /* l == 0 (no key, or only -inf scores) gives exact zeros, not 0 * acc: an allowed
               key with score -inf still added 0 * V, which is NaN where V is infinite. */
            vec_t x = l != 0.0f ? vec_mul(vec_loadu(g.orows + r * g.dvp + e), inv) : vec_zero();
            vec_storeu_m(o + e, mk, x);
        }
        if (job->lse)
            job->lse[i0 + r] =
                l != 0.0f ? (float)((double)g.m[r] * X86_LN2 + log((double)l)) : X86_NINF;
    }
}

/* ---- masked softmax --------------------------------------------------------------------- */

static void x86_softmax(const float *x, float *y, size_t ld, const spattn_mask *m, size_t qt,
                        float scale)
{
    const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    const size_t t0 = m->qt_ptr[qt], t1 = m->qt_ptr[qt + 1];
    const uint64_t lane_bits = VL == 64 ? ~(uint64_t)0 : (((uint64_t)1 << VL) - 1);
    const vec_t vscale = vec_set1(scale), ninf = vec_set1(X86_NINF);
    for (size_t r = 0; r < rows; r++) {
        const float *xi = x + (i0 + r) * ld;
        float *yi = y + (i0 + r) * ld;
        vec_t vm = ninf;
        for (size_t t = t0; t < t1; t++) {
            const float *xt = xi + (size_t)m->tiles[t].kt * SPATTN_TK;
            uint64_t bits = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            for (size_t c = 0; bits != 0; c += VL, bits >>= VL) {
                uint64_t b = bits & lane_bits;
                if (b == 0)
                    continue;
                vmask_t mk = vmask_bits(b);
                vm = vec_max(vm, vec_select(mk, vec_mul(vec_loadu_m(xt + c, mk), vscale), ninf));
            }
        }
        float mx = vec_hmax(vm);
        const vec_t vshift = vec_set1(mx == X86_NINF ? 0.0f : -mx), vl2e = vec_set1(X86_LOG2E);
        /* Exponentials written over every in-range key of each stored tile (0 where not
           allowed), each after its x was read, so y may equal x. */
        vec_t sum = vec_zero();
        for (size_t t = t0; t < t1; t++) {
            const size_t j0 = (size_t)m->tiles[t].kt * SPATTN_TK,
                         n = spattn__kt_cols(m, m->tiles[t].kt);
            uint64_t bits = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            for (size_t c = 0; c < n; c += VL) {
                uint64_t b = (bits >> c) & lane_bits;
                vmask_t in = vmask_first(n - c < VL ? n - c : VL);
                vec_t e = vec_zero();
                if (b != 0) {
                    vmask_t mk = vmask_bits(b);
                    vec_t s = vec_fma(vscale, vec_loadu_m(xi + j0 + c, mk), vshift);
                    e = vec_select(mk, vec_exp2(vec_mul(s, vl2e)), vec_zero());
                    sum = vec_add(sum, e);
                }
                vec_storeu_m(yi + j0 + c, in, e);
            }
        }
        float l = vec_hsum(sum);
        const vec_t vinv = vec_set1(l != 0.0f ? 1.0f / l : 0.0f);
        size_t j = 0;
        for (size_t t = t0; t <= t1; t++) {
            const size_t j0 = t < t1 ? (size_t)m->tiles[t].kt * SPATTN_TK : m->len_k;
            for (; j < j0; j++)
                yi[j] = 0.0f;
            if (t == t1)
                break;
            const size_t n = spattn__kt_cols(m, m->tiles[t].kt);
            for (size_t c = 0; c < n; c += VL) {
                vmask_t in = vmask_first(n - c < VL ? n - c : VL);
                vec_storeu_m(yi + j0 + c, in, vec_mul(vec_loadu_m(yi + j0 + c, in), vinv));
            }
            j = j0 + n;
        }
    }
}

static float x86_fma_probe(size_t iters, double *flops) { return vec_fma_probe(iters, flops); }

#endif

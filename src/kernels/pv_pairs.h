/*
 * P V from bf16 pairs of keys, for tiers that define VEC_BF16_PV (AVX512-BF16). Where V
 * is bf16 and dim_v a multiple of 32, a FULL key tile's probabilities are rounded to bf16 and
 * paired by key, (P[r][j], P[r][j+1]), and V rows j and j+1 zipped into pairs along dim, so
 *   O[r][e] += P[r][j] V[j][e] + P[r][j+1] V[j+1][e]      (one dot instruction per 2 FMAs)
 * The row sums stay those of the float probabilities. PARTIAL tiles keep float products with
 * per-row masks (a pair would let a NaN of an excluded key reach the row through 0 * NaN),
 * on V widened in the zipped order, so that O keeps one layout for the whole query tile:
 * zipped within each 32 dims, put back in order by finish_rows.
 */
#ifndef SPATTN_KERNELS_PV_PAIRS_H
#define SPATTN_KERNELS_PV_PAIRS_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"
#include "kernels/o_store.h"

#if VL != 16
#error "pv_pairs.h zips 32 bf16 values of V, two vec_t of pairs"
#endif

/* Whether a job of these types takes P V in pairs (and O in zipped order). */
static inline int pv_pairs(int kvt, size_t dv)
{
    return kvt == KV_BF16 && dv % 32 == 0;
}

/* nr rows x nb blocks of 32 dims (2 vec_t each) of O, as pv_rows_rxv. Unmasked: key pairs
   from pp (pair jp of row r at pp[jp*ps + r]), an odd last key as float; masked: every key as
   float, merged per row. P[r][j] is st[j*ps + r]: ps 16 (columns), or 4 or 8 (compact scores,
   tile_compact). */
SPATTN_ALWAYS_INLINE void pv_pairs_rxv(float *orow, size_t dvp, size_t r0, const int nr,
                                       const int nb, const int masked, const char *const *vp,
                                       const vmask_t *km, size_t nk, const float *st,
                                       const size_t ps, const float *pp, const float *al,
                                       pf_pace *pc)
{
    vec_t acc[PV_RB][4], w[4];
    for (int r = 0; r < nr; r++) {
        const vec_t a = vec_set1(al[r0 + (size_t)r]);
        for (int x = 0; x < 2 * nb; x++)
            acc[r][x] = vec_mul(vec_loadu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL), a);
    }
    size_t j0 = 0;
    if (!masked) {
        for (; j0 + 2 <= nk; j0 += 2) {
            if (pc != NULL)
                pf_pace_step(pc, 2);
            const uint16_t *a = (const uint16_t *)(const void *)vp[j0];
            const uint16_t *b = (const uint16_t *)(const void *)vp[j0 + 1];
            for (int x = 0; x < nb; x++)
                vec_zip_bf16(a + 32 * x, b + 32 * x, &w[2 * x], &w[2 * x + 1]);
            const float *pr = pp + j0 / 2 * ps + r0;
            for (int r = 0; r < nr; r++) {
                const col_t p = col_bcast(pr + r);
                for (int x = 0; x < 2 * nb; x++)
                    acc[r][x] = col_dot_pair(p, w[x], acc[r][x]);
            }
        }
    }
    for (size_t jj = j0; jj < nk; jj++) {
        if (pc != NULL)
            pf_pace_step(pc, 1);
        const uint16_t *a = (const uint16_t *)(const void *)vp[jj];
        for (int x = 0; x < nb; x++)
            vec_zip_widen_bf16(a + 32 * x, &w[2 * x], &w[2 * x + 1]);
        const float *sp = st + jj * ps + r0;
        for (int r = 0; r < nr; r++) {
            const vec_t p = vec_set1(sp[r]);
            if (masked) {
                const vmask_t mk = vmask_load(km + jj * 16 + r0 + (size_t)r);
                for (int x = 0; x < 2 * nb; x++)
                    acc[r][x] = vec_fma_m(p, w[x], acc[r][x], mk);
            } else {
                for (int x = 0; x < 2 * nb; x++)
                    acc[r][x] = vec_fma(p, w[x], acc[r][x]);
            }
        }
    }
    for (int r = 0; r < nr; r++)
        for (int x = 0; x < 2 * nb; x++)
            vec_storeu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL, acc[r][x]);
}

SPATTN_ALWAYS_INLINE void pv_pairs_block(float *oe, size_t dvp, size_t r0, const int nr, int nb,
                                         int masked, const char *const *vq, const uint32_t *cm,
                                         const vmask_t *km, size_t nk, const float *st, size_t ps,
                                         const float *pp, const float *al, pf_pace *pc)
{
    if (masked) {
        /* Every key alone, so a block takes only its rows' keys (block_keys). */
        size_t lo;
        const size_t hi = block_keys(cm, nk, r0, nr, &lo);
        if (nb == 2)
            pv_pairs_rxv(oe, dvp, r0, nr, 2, 1, vq + lo, km + lo * 16, hi - lo, st + lo * ps, ps,
                         pp, al, pc);
        else
            pv_pairs_rxv(oe, dvp, r0, nr, 1, 1, vq + lo, km + lo * 16, hi - lo, st + lo * ps, ps,
                         pp, al, pc);
    } else {
        if (nb == 2)
            pv_pairs_rxv(oe, dvp, r0, nr, 2, 0, vq, km, nk, st, ps, pp, al, pc);
        else
            pv_pairs_rxv(oe, dvp, r0, nr, 1, 0, vq, km, nk, st, ps, pp, al, pc);
    }
}

/* pv_rows_tile for pv_pairs jobs: the same passes of 64 dims and row blocks, and the same
   requests for the next tile's V rows (pf may be NULL), spread over the first row block of
   each pass. */
static void pv_pairs_tile(float *orow, size_t dv, size_t rows, const char *const *vp,
                          const uint32_t *cm, size_t nk, const float *st, size_t ps,
                          const float *al, int masked, const tile_prefetch *pf)
{
    const size_t dvp = round16(dv);
    pf_pace pace, *pc = NULL;
    if (pf != NULL) {
        pf_pace_begin(&pace, pf, PF_V, nk * ((dv + 63) / 64));
        pc = &pace;
    }
    const char *vpe[SPATTN_TK];
    vmask_t km[SPATTN_TK * 16];
    float pp[SPATTN_TK / 2 * 16] __attribute__((aligned(64)));
    if (masked) {
        for (size_t jj = 0; jj < nk; jj++)
            vmask_expand16(km + jj * 16, cm[jj]);
    } else if (ps == 16) {
        for (size_t jj = 0; jj + 2 <= nk; jj += 2)
            col_store(pp + jj / 2 * 16,
                      col_pairs_bf16(col_load(st + jj * 16), col_load(st + (jj + 1) * 16)));
    } else {
        /* 32 / ps keys per two vectors (their lanes past nk are stale: pairs never read) */
        for (size_t jj = 0; jj + 2 <= nk; jj += 32 / ps)
            col_store(
                pp + jj / 2 * ps,
                ps == 4
                    ? col_pairs_bf16_compact(col_load(st + jj * 4), col_load(st + jj * 4 + 16), 4)
                    : col_pairs_bf16_compact(col_load(st + jj * 8), col_load(st + jj * 8 + 16), 8));
    }
    for (size_t e = 0; e < dv; e += 64) {
        const int nb = dv - e >= 64 ? 2 : 1;
        const char *const *vq = vp;
        if (e != 0) {
            for (size_t jj = 0; jj < nk; jj++)
                vpe[jj] = vp[jj] + (ptrdiff_t)e * 2;
            vq = vpe;
        }
        float *oe = orow + e;
        const size_t sb = 16 % PV_RB;
        for (size_t r0 = 0; r0 < rows;) {
            const size_t rl = rows - r0;
            const int nr =
                16 - r0 < PV_RB || (sb != 0 && (rl <= sb || (rl > PV_RB && rl <= 2 * sb))) ? (int)sb
                                                                                           : PV_RB;
            pf_pace *const pb = r0 == 0 ? pc : NULL;
            if (nr == PV_RB)
                pv_pairs_block(oe, dvp, r0, PV_RB, nb, masked, vq, cm, km, nk, st, ps, pp, al, pb);
            else
                pv_pairs_block(oe, dvp, r0, 16 % PV_RB, nb, masked, vq, cm, km, nk, st, ps, pp, al,
                               pb);
            r0 += (size_t)nr;
        }
    }
    if (pc != NULL)
        pf_pace_end(pc);
}

/* finish_rows for pv_pairs jobs: each 32 dims of a row put back in order as they are stored. */
static void finish_rows_pairs(const spattn_head_job *job, size_t i0, size_t rows, const float *orow,
                              const float *mrow, const float *lrow)
{
    const size_t dv = job->dim_v, dvp = round16(dv);
    for (size_t r = 0; r < rows; r++) {
        void *o = o_row(job, i0 + r);
        const float l = lrow[r];
        const vec_t inv =
            vec_set1(row_scale(job, i0 + r, mrow[r], l, job->lse ? job->lse + i0 + r : NULL));
        for (size_t e = 0; e < dv; e += 32) {
            vec_t d0 = vec_zero(), d1 = vec_zero();
            if (l != 0.0f) {
                vec_unzip(vec_loadu(orow + r * dvp + e), vec_loadu(orow + r * dvp + e + 16), &d0,
                          &d1);
                d0 = vec_mul(d0, inv);
                d1 = vec_mul(d1, inv);
            }
            o_store(job, o, e, VL, d0);
            o_store(job, o, e + 16, VL, d1);
        }
    }
}

#endif

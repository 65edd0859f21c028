/*
 * P V into row-major O (rows x dim_v, rows round16(dim_v) floats apart):
 *   O[r][e..] += P^T[j][r] * V[j][e..]   (V rows as vectors, P broadcast)
 * and the row finish from that layout.
 */
#ifndef SPATTN_KERNELS_PV_ROWS_H
#define SPATTN_KERNELS_PV_ROWS_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"
#include "kernels/o_store.h"
#ifdef VEC_BF16_PV
#include "kernels/pv_pairs.h"
#endif
#ifdef VEC_AMX
#include "x86/amx_pv.h"
#endif

/* Row-major O (AVX-512; AVX2 for tiles of at most PV_ROWS_BELOW rows): O[r][e] += P[r][j] * V[j][e]
   with V rows loaded as vectors in place and P[r][j] = st[j*16 + r] broadcast, PV_RB rows x nv
   vectors of O in registers: per key nv + PV_RB loads feed PV_RB * nv FMAs (the transposed form
   needs one load per FMA). P[r][j] is st[j*ps + r]: ps 16 (columns), or 4 or 8 (compact
   scores of tiles of at most 8 rows, tile_compact). `masked` (PARTIAL tiles) merges each row's FMAs
   only where its row allows the key (a NaN in a V row must not reach rows that exclude it). O rows
   are dvp = round16(dv) floats apart. V rows vp[] are byte pointers to elements of type kvt. */
SPATTN_ALWAYS_INLINE void pv_rows_rxv(const int kvt, float *orow, size_t dvp, size_t r0,
                                      const int nr, const int nv, vmask_t last, const int tailm,
                                      const int masked, const char *const *vp, const vmask_t *km,
                                      size_t nk, const float *st, const size_t ps, const float *al,
                                      pf_pace *pp)
{
    /* bf16 V as even and odd elements (KV_EO): vectors x, x + 1 of a pass hold the even and
       odd elements of its 2 VL, in O's accumulators too, which go back in order when stored.
       Each O element takes the same FMAs in the same order either way. */
#ifdef VEC_BF16_EO
    const int eo = KV_EO(kvt) && !tailm && nv % 2 == 0;
#endif
    vec_t acc[PV_RB < 4 ? 4 : PV_RB][4];
    for (int r = 0; r < nr; r++) {
        const vec_t a = vec_set1(al[r0 + (size_t)r]);
        for (int x = 0; x < nv; x++)
            acc[r][x] = vec_loadu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL);
#ifdef VEC_BF16_EO
        if (eo)
            vecs_eo(acc[r], nv, 1);
#endif
        for (int x = 0; x < nv; x++)
            acc[r][x] = vec_mul(acc[r][x], a);
    }
    const float *sp = st + r0;
    for (size_t jj = 0; jj < nk; jj++, sp += ps) {
        if (pp != NULL)
            pf_pace_step(pp, 1);
        const char *v = vp[jj];
        vec_t vv[4];
#ifdef VEC_BF16_EO
        if (eo) {
            for (int x = 0; x < nv; x += 2)
                vec_loadu_bf16_eo((const uint16_t *)(const void *)v + x * VL, &vv[x], &vv[x + 1]);
        } else
#endif
            for (int x = 0; x < nv; x++)
                vv[x] = tailm && x == nv - 1 ? kv_loadu_m(kvt, v, (size_t)x * VL, last)
                                             : kv_loadu(kvt, v, (size_t)x * VL);
        if (masked) {
            for (int r = 0; r < nr; r++) {
                const vec_t pr = vec_set1(sp[r]);
                const vmask_t mk = vmask_load(km + jj * 16 + r0 + (size_t)r);
                for (int x = 0; x < nv; x++)
                    acc[r][x] = vec_fma_m(pr, vv[x], acc[r][x], mk);
            }
        } else {
            for (int r = 0; r < nr; r++) {
                const vec_t pr = vec_set1(sp[r]);
                for (int x = 0; x < nv; x++)
                    acc[r][x] = vec_fma(pr, vv[x], acc[r][x]);
            }
        }
    }
    for (int r = 0; r < nr; r++) {
#ifdef VEC_BF16_EO
        if (eo)
            vecs_eo(acc[r], nv, 0);
#endif
        for (int x = 0; x < nv; x++)
            vec_storeu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL, acc[r][x]);
    }
}

/* Constant row and vector counts for each call of the block, so its accumulators stay in
   registers; and for float32 V the tail mask only where the pass ends inside a vector
   (tailm): a masked load of every pass's last vector (vmaskmovps on AVX2) showed in decode
   profiles as the load its FMAs waited on. 16-bit V keeps it: without it, AVX2 decode
   measured slightly slower (docs/kernels.md). */
SPATTN_ALWAYS_INLINE void pv_rows_nv(const int kvt, float *oe, size_t dvp, size_t r0, const int nr,
                                     int nv, vmask_t last, const int tailm, const int masked,
                                     const char *const *vpe, const vmask_t *cm, size_t nk,
                                     const float *st, size_t ps, const float *al, pf_pace *pp)
{
    switch (nv) {
    case 4:
        pv_rows_rxv(kvt, oe, dvp, r0, nr, 4, last, tailm, masked, vpe, cm, nk, st, ps, al, pp);
        break;
    case 3:
        pv_rows_rxv(kvt, oe, dvp, r0, nr, 3, last, tailm, masked, vpe, cm, nk, st, ps, al, pp);
        break;
    case 2:
        pv_rows_rxv(kvt, oe, dvp, r0, nr, 2, last, tailm, masked, vpe, cm, nk, st, ps, al, pp);
        break;
    default:
        pv_rows_rxv(kvt, oe, dvp, r0, nr, 1, last, tailm, masked, vpe, cm, nk, st, ps, al, pp);
        break;
    }
}

SPATTN_ALWAYS_INLINE void pv_rows_block(const int kvt, float *oe, size_t dvp, size_t r0,
                                        const int nr, int nv, vmask_t last, int tailm, int masked,
                                        const char *const *vpe, const vmask_t *cm, size_t nk,
                                        const float *st, size_t ps, const float *al, pf_pace *pp)
{
    if (masked) {
        if (tailm)
            pv_rows_nv(kvt, oe, dvp, r0, nr, nv, last, 1, 1, vpe, cm, nk, st, ps, al, pp);
        else
            pv_rows_nv(kvt, oe, dvp, r0, nr, nv, last, 0, 1, vpe, cm, nk, st, ps, al, pp);
    } else {
        if (tailm)
            pv_rows_nv(kvt, oe, dvp, r0, nr, nv, last, 1, 0, vpe, cm, nk, st, ps, al, pp);
        else
            pv_rows_nv(kvt, oe, dvp, r0, nr, nv, last, 0, 0, vpe, cm, nk, st, ps, al, pp);
    }
}

/* One row block; a masked one over the keys of its rows only (block_keys). The unmasked
   blocks (FULL tiles) keep their call as it was: with the offsets on their path too, dense
   was slower (docs/kernels.md). */
SPATTN_ALWAYS_INLINE void pv_rows_block_trim(const int kvt, float *oe, size_t dvp, size_t r0,
                                             const int nr, int nv, vmask_t last, int tailm,
                                             int masked, const char *const *vq, const uint32_t *cm,
                                             const vmask_t *km, size_t nk, const float *st,
                                             size_t ps, const float *al, pf_pace *pp)
{
    if (!masked) {
        pv_rows_block(kvt, oe, dvp, r0, nr, nv, last, tailm, 0, vq, km, nk, st, ps, al, pp);
        return;
    }
    size_t lo;
    const size_t hi = block_keys(cm, nk, r0, nr, &lo);
    pv_rows_block(kvt, oe, dvp, r0, nr, nv, last, tailm, 1, vq + lo, km + lo * 16, hi - lo,
                  st + lo * ps, ps, al, pp);
}

/* sv: NULL, or room for SPATTN_TK rows of bnv * VL floats, into which each pass widens its
   elements of the tile's 16-bit V rows first, so that its row blocks read them as float32
   (pv_rows_tile_staged). */
SPATTN_ALWAYS_INLINE void pv_rows_tile_t(const int kvt, const int quad, float *orow, size_t dv,
                                         size_t rows, const char *const *vp, const uint32_t *cm,
                                         size_t nk, const float *st, size_t ps, const float *al,
                                         int masked, const tile_prefetch *pf, float *sv)
{
    const size_t dvp = round16(dv);
    const size_t bnv = quad ? PV_NV / 2 : PV_NV;
    /* The next tile's V rows, spread over the first row block of each pass. */
    pf_pace pace, *pp = NULL;
    if (pf != NULL) {
        pf_pace_begin(&pace, pf, PF_V, nk * ((dv + bnv * VL - 1) / (bnv * VL)));
        pp = &pace;
    }
    const char *vpe[SPATTN_TK];
    /* PARTIAL tiles: km[j*16 + r] is all lanes when row r allows key j, else none, built once
       per tile so that the FMAs take their masks from memory (a mask made from the bits in
       a general register costs a port-5 move per row and key, a port the FMAs need). */
    vmask_t km[SPATTN_TK * 16];
    if (masked)
        for (size_t jj = 0; jj < nk; jj++)
            vmask_expand16(km + jj * 16, cm[jj]);
    for (size_t e = 0; e < dv; e += bnv * VL) {
        const size_t left = dv - e;
        const int nv = left >= bnv * VL ? (int)bnv : (int)((left + VL - 1) / VL);
        const size_t tail = left - (size_t)(nv - 1) * VL;
        const vmask_t last = vmask_first(tail < VL ? tail : VL);
        /* The type the row blocks read: the stage's float32 where there is one. */
        const int bt = sv != NULL ? KV_F32 : kvt;
        const int tailm = tail < VL || (bt != KV_F32 && !KV_EO(bt));
        /* The first (for dim_v <= 64 the only) pass uses vp itself. */
        const char *const *vq = vp;
        if (sv != NULL) {
            const size_t w = (size_t)nv * VL;
            kv_widen_rows(kvt, sv, w, vp, e, nk, left < w ? left : w, vpe);
            vq = vpe;
        } else if (e != 0) {
            for (size_t jj = 0; jj < nk; jj++)
                vpe[jj] = vp[jj] + (ptrdiff_t)e * kv_size(kvt);
            vq = vpe;
        }
        float *oe = orow + e;
        if (quad) {
            for (size_t r0 = 0; r0 < rows; r0 += 4)
                pv_rows_block_trim(bt, oe, dvp, r0, 4, nv, last, tailm, masked, vq, cm, km, nk, st,
                                   ps, al, r0 == 0 ? pp : NULL);
            continue;
        }
        /* Rows past the tile's last row are skipped a block at a time. Where PV_RB does not
           divide 16 (AVX-512's 6), the short block of 16 % PV_RB rows (4) is taken where it
           computes fewer rows: for the last 4 or fewer, and twice for the last 7 or 8 (decode
           tiles of 4 and 8 rows compute 4 and 8, not 6 and 10). A row's FMAs are the same in
           any block. */
        const size_t sb = 16 % PV_RB;
        for (size_t r0 = 0; r0 < rows;) {
            const size_t rl = rows - r0;
            const int nr =
                16 - r0 < PV_RB || (sb != 0 && (rl <= sb || (rl > PV_RB && rl <= 2 * sb))) ? (int)sb
                                                                                           : PV_RB;
            pf_pace *const pb = r0 == 0 ? pp : NULL;
            if (nr == PV_RB)
                pv_rows_block_trim(bt, oe, dvp, r0, PV_RB, nv, last, tailm, masked, vq, cm, km, nk,
                                   st, ps, al, pb);
            else
                pv_rows_block_trim(bt, oe, dvp, r0, 16 % PV_RB, nv, last, tailm, masked, vq, cm, km,
                                   nk, st, ps, al, pb);
            r0 += (size_t)nr;
        }
    }
    if (pp != NULL)
        pf_pace_end(pp);
}

#if PV_RB == 2
/* pv_rows_tile_t in blocks of 4 rows, out of line: inlined beside the blocks of 2, it cost
   their key loop its registers (spilled loop bounds and masks). */
static __attribute__((noinline)) void pv_rows_tile_quad(int kvt, float *orow, size_t dv,
                                                        size_t rows, const char *const *vp,
                                                        const uint32_t *cm, size_t nk,
                                                        const float *st, size_t ps, const float *al,
                                                        int masked, const tile_prefetch *pf)
{
    KV_DISPATCH(kvt,
                pv_rows_tile_t(KVT, 1, orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf, NULL));
}
#endif

#ifdef PV_ROWS_STAGE_ABOVE
/* 16-bit V for tiles of more than PV_ROWS_STAGE_ABOVE rows: each row block loads every V
   element of its pass, so a tile of 16 rows in blocks of 6, 6 and 4 widened each element
   three times, on the ports its FMAs use (vcvtph2ps is a port-0 and a port-5 uop on Intel);
   widened once into the stage, the blocks load float32 from L1. Out of line, so that the
   other paths' frames do not carry the stage; the FMAs and their order are those of the
   unstaged path (the widening is exact), so the results are bitwise the same. */
static __attribute__((noinline)) void
pv_rows_tile_staged(int kvt, float *orow, size_t dv, size_t rows, const char *const *vp,
                    const uint32_t *cm, size_t nk, const float *st, size_t ps, const float *al,
                    int masked, const tile_prefetch *pf)
{
    float sv[SPATTN_TK * PV_NV * VL] __attribute__((aligned(64)));
    KV_DISPATCH(kvt, pv_rows_tile_t(KVT, 0, orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf,
                                    KVT == KV_F32 ? NULL : sv));
}
#endif

#ifdef PV_ROWS_STAGE_ABOVE
/* Whether pv_rows_tile, where AMX tiles do not take the P V, widens a tile of `rows` rows of
   16-bit V per pass into a stage (and so whether tpl_tiles2 may widen a tile of at most one
   pass once for both tiles of a pair): not where pair dot products take it, nor where the
   job says the CPU widens beside its FMAs (stage: spattn_head_job.v16_stage). */
static int pv_rows_stages(int kvt, size_t dv, size_t rows, int stage)
{
#ifdef VEC_BF16_PV
    if (pv_pairs(kvt, dv))
        return 0;
#endif
    (void)dv;
    return stage && kvt != KV_F32 && !KV_EO(kvt) && rows > PV_ROWS_STAGE_ABOVE;
}
#endif

/* Whether tpl_tiles2 may widen a pair's V tile once (tile_fold_pair_staged), and the floats
   of its stage. Not in the bf16 tiers (BF16_BASE_TABLE), whose loops are compiled for their 16-bit
   types only: the widened tile is read as float32. */
#if defined(PV_ROWS_STAGE_ABOVE) && !defined(BF16_BASE_TABLE)
#define PV_PAIR_STAGE 1
#define PV_PAIR_STAGE_FLOATS (SPATTN_TK * PV_NV * VL)

#else
#define PV_PAIR_STAGE 0
#endif

/* V of type kvt (the job's kv_dtype), vp[] pointers to the tile's V rows; cm: a PARTIAL
   tile's column masks, which the masked FMAs use and by which each masked row block skips the
   keys none of its rows allows; ps: P's stride
   (pv_rows_rxv, pv_pairs_rxv); fresh: O is still all zeros
   (nothing added to it yet; a hint, which only the AMX P V takes); pf: the next tile's keys
   whose V rows to ask for, or NULL; stage: the job's v16_stage (pv_rows_stages). */
static void pv_rows_tile(int kvt, float *orow, size_t dv, size_t rows, const char *const *vp,
                         const uint32_t *cm, size_t nk, const float *st, size_t ps, const float *al,
                         int masked, int fresh, const tile_prefetch *pf, int stage)
{
    (void)stage;
    (void)fresh;
#ifdef VEC_BF16_PV
    if (pv_pairs(kvt, dv)) {
        pv_pairs_tile(orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf);
        return;
    }
#endif
#ifdef VEC_AMX
    if (pv_amx_takes(kvt, dv, ps) &&
        pv_amx_tile(kvt, orow, dv, rows, vp, nk, st, al, masked, fresh, pf))
        return;
#endif
#if PV_RB == 2
    /* Blocks of 2 rows (AVX2) load each V element once per 2 rows, and widen a 16-bit one as
       often: tiles of 3 or 4 rows (decode with GQA groups of 4), and 16-bit V tiles of more
       than 2, take blocks of 4 rows x PV_NV / 2 vectors instead, in passes half as wide.
       Float32 tiles of 5 to 8 rows measured faster in blocks of 2 (docs/kernels.md). */
    if (rows > 2 && (rows <= 4 || kvt != KV_F32)) {
        pv_rows_tile_quad(kvt, orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf);
        return;
    }
#endif
#ifdef PV_ROWS_STAGE_ABOVE
    if (pv_rows_stages(kvt, dv, rows, stage)) {
        pv_rows_tile_staged(kvt, orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf);
        return;
    }
#endif
    KV_DISPATCH(kvt,
                pv_rows_tile_t(KVT, 0, orow, dv, rows, vp, cm, nk, st, ps, al, masked, pf, NULL));
}

/* Writes rows i0 .. i0+rows from row-major O, m and l (lane r = row r). */
static void finish_rows(const spattn_head_job *job, size_t i0, size_t rows, const float *orow,
                        const float *mrow, const float *lrow)
{
#ifdef VEC_BF16_PV
    if (pv_pairs(job->kv_dtype, job->dim_v)) {
        finish_rows_pairs(job, i0, rows, orow, mrow, lrow);
        return;
    }
#endif
    const size_t dv = job->dim_v, dvp = round16(dv);
    for (size_t r = 0; r < rows; r++) {
        void *o = o_row(job, i0 + r);
        const float l = lrow[r];
        const vec_t inv =
            vec_set1(row_scale(job, i0 + r, mrow[r], l, job->lse ? job->lse + i0 + r : NULL));
        for (size_t e = 0; e < dv; e += VL) {
            vec_t x = l != 0.0f ? vec_mul(vec_loadu(orow + r * dvp + e), inv) : vec_zero();
            o_store(job, o, e, dv - e < VL ? dv - e : VL, x);
        }
    }
}

#endif

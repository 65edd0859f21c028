/*
 * P V into a transposed O^T (16 rows as the lanes of a col_t), for ISAs with PV_ROWS 0:
 *   O^T[e] += P^T[j] * V[j][e]   (V read in place, one broadcast per FMA)
 * and the row finish from that layout.
 */
#ifndef SPATTN_KERNELS_PV_COLS_H
#define SPATTN_KERNELS_PV_COLS_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/o_store.h"

#if !PV_ROWS
/* O^T[e0 .. e0+eb) = alpha * O^T + sum over keys of P^T[j] * V[j][e], the eb output columns
   held in registers across all keys of the tile. `masked` (PARTIAL tiles) keeps each key out
   of the rows its column mask excludes, so a NaN in that key's V row cannot reach them. V of
   type kvt (kv_load.h). */
SPATTN_ALWAYS_INLINE void pv_cols_block(const int kvt, float *ot, size_t e0, const int eb,
                                        const int masked, const char *const *vp, const uint32_t *cm,
                                        size_t nk, const float *st, col_t alpha)
{
    col_t acc[PV_EB > PV_EBM ? PV_EB : PV_EBM];
    for (int x = 0; x < eb; x++)
        acc[x] = col_mul(col_load(ot + (e0 + (size_t)x) * 16), alpha);
    for (size_t jj = 0; jj < nk; jj++) {
        col_t p = col_load(st + jj * 16);
        const char *v = vp[jj] + (ptrdiff_t)e0 * kv_size(kvt);
        OPAQUE_PTR(v); /* v + x as an immediate offset, not e0 + x in a register per x */
        if (masked) {
            cmask_t mk = cmask_bits(cm[jj]);
            for (int x = 0; x < eb; x++)
                acc[x] = kv_fma_bc_m(kvt, p, v, (size_t)x, acc[x], mk);
        } else {
            for (int x = 0; x < eb; x++)
                acc[x] = kv_fma_bc(kvt, p, v, (size_t)x, acc[x]);
        }
    }
    for (int x = 0; x < eb; x++)
        col_store(ot + (e0 + (size_t)x) * 16, acc[x]);
}

SPATTN_ALWAYS_INLINE void pv_cols_tile_t(const int kvt, float *ot, size_t dv, const char *const *vp,
                                         const uint32_t *cm, size_t nk, const float *st,
                                         col_t alpha, int masked)
{
    size_t e = 0;
    if (masked) {
        for (; e + PV_EBM <= dv; e += PV_EBM)
            pv_cols_block(kvt, ot, e, PV_EBM, 1, vp, cm, nk, st, alpha);
        for (; e + 2 <= dv; e += 2)
            pv_cols_block(kvt, ot, e, 2, 1, vp, cm, nk, st, alpha);
        for (; e < dv; e++)
            pv_cols_block(kvt, ot, e, 1, 1, vp, cm, nk, st, alpha);
    } else {
        for (; e + PV_EB <= dv; e += PV_EB)
            pv_cols_block(kvt, ot, e, PV_EB, 0, vp, cm, nk, st, alpha);
        for (; e + 4 <= dv; e += 4)
            pv_cols_block(kvt, ot, e, 4, 0, vp, cm, nk, st, alpha);
        for (; e < dv; e++)
            pv_cols_block(kvt, ot, e, 1, 0, vp, cm, nk, st, alpha);
    }
}

#ifndef PV_STAGE_FLOATS
#define PV_STAGE_FLOATS 0
#endif

/* 16-bit V of type kvt widened into float rows on the stack, then P V as for float32 V: each
   element is widened once instead of at each of its broadcasts (a 16-bit broadcast and a
   conversion, where float32 takes one broadcast load). Out of line, so that the float32
   path's frame does not carry the stage. */
#if PV_STAGE_FLOATS
static __attribute__((noinline)) void pv_cols_staged(int kvt, float *ot, size_t dv,
                                                     const char *const *vp, const uint32_t *cm,
                                                     size_t nk, const float *st, col_t alpha,
                                                     int masked)
{
    float sv[PV_STAGE_FLOATS] __attribute__((aligned(64)));
    const char *sp[SPATTN_TK];
    KV_DISPATCH(kvt, kv_widen_rows(KVT, sv, round16(dv), vp, 0, nk, dv, sp));
    pv_cols_tile_t(KV_F32, ot, dv, sp, cm, nk, st, alpha, masked);
}
#endif

/* V of type kvt (the job's kv_dtype), vp[] pointers to the tile's V rows. Where the ISA
   offers a stage (PV_STAGE_FLOATS) and the tile fits it, 16-bit V is widened first. */
static void pv_cols_tile(int kvt, float *ot, size_t dv, const char *const *vp, const uint32_t *cm,
                         size_t nk, const float *st, col_t alpha, int masked)
{
#if PV_STAGE_FLOATS
    if (kvt != KV_F32 && nk * round16(dv) <= PV_STAGE_FLOATS) {
        pv_cols_staged(kvt, ot, dv, vp, cm, nk, st, alpha, masked);
        return;
    }
#endif
    KV_DISPATCH(kvt, pv_cols_tile_t(KVT, ot, dv, vp, cm, nk, st, alpha, masked));
}

/* Writes rows i0 .. i0+rows from O^T, m and l (lane r = row r); 16-bit O rows are gathered
   64 elements at a time and narrowed in vectors as they are stored. */
static void finish_cols(const spattn_head_job *job, size_t i0, size_t rows, const float *ot,
                        const float *mrow, const float *lrow)
{
    for (size_t r = 0; r < rows; r++) {
        void *ov = o_row(job, i0 + r);
        float l = lrow[r];
        float inv = row_scale(job, i0 + r, mrow[r], l, job->lse ? job->lse + i0 + r : NULL);
        if (job->o_dtype == SPATTN_DTYPE_F32) {
            float *o = ov;
            for (size_t e = 0; e < job->dim_v; e++)
                o[e] = l != 0.0f ? ot[e * 16 + r] * inv : 0.0f;
            continue;
        }
        float part[64];
        for (size_t e0 = 0; e0 < job->dim_v; e0 += 64) {
            const size_t n = job->dim_v - e0 < 64 ? job->dim_v - e0 : 64;
            for (size_t e = 0; e < n; e++)
                part[e] = l != 0.0f ? ot[(e0 + e) * 16 + r] * inv : 0.0f;
            for (size_t e = 0; e < n; e += VL) {
                const size_t w = n - e < VL ? n - e : VL;
                o_store(job, ov, e0 + e, w, vec_loadu_m(part + e, vmask_first(w)));
            }
        }
    }
}

#endif

#endif

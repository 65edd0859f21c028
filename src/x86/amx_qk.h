/*
 * QK in column form through AMX tiles, for the AMX tier (VEC_AMX: x86/vec_avx512amx.h): the
 * pair layout of kernels/qk_pairs.h is the B operand of tdpbf16ps as it stands, K rows are its
 * A operand in place, and C is S^T of 16 keys, one key per 64-byte row as the walk stores
 * scores. Only the tile products differ from qk_pairs_nq; the score factor, ALiBi term,
 * masks and running max are applied to the stored scores after, the same per lane.
 */
#ifndef SPATTN_X86_AMX_QK_H
#define SPATTN_X86_AMX_QK_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"

/* Whether the 16 keys from position g of idx are 16 consecutive rows (then A loads them in
   place; otherwise they are copied to a staging block first). */
static inline int amx_run_of_16(const uint32_t *idx, size_t g, size_t nk)
{
    if (nk - g < 16)
        return 0;
    for (size_t r = 1; r < 16; r++)
        if (idx[g + r] != idx[g] + (uint32_t)r)
            return 0;
    return 1;
}

/* The A operand for dims d .. d + 32 of keys idx[g .. g + 16): where they are 16 consecutive
   rows, their address and row stride; otherwise they are copied into `stage` (rows of keys past
   nk zero), whose address and stride it returns. */
SPATTN_ALWAYS_INLINE const void *amx_k_rows(const void *kb, ptrdiff_t k_ts, size_t j0,
                                            const uint32_t *idx, size_t g, size_t nk, int run,
                                            size_t d, uint16_t *stage, long *stride)
{
    if (run) {
        *stride = (long)(k_ts * 2);
        return kv_row(KV_BF16, kb, (ptrdiff_t)(j0 + idx[g]), k_ts) + 2 * d;
    }
    const size_t m = nk - g < 16 ? nk - g : 16;
    for (size_t r = 0; r < 16; r++) {
        if (r < m)
            memcpy(stage + 32 * r, kv_row(KV_BF16, kb, (ptrdiff_t)(j0 + idx[g + r]), k_ts) + 2 * d,
                   64);
        else
            memset(stage + 32 * r, 0, 64);
    }
    *stride = 64;
    return stage;
}

/* S^T of keys idx[g .. g + 16) for nq query tiles (C tiles 0 and 1, A tile 2, B tiles 3 and 4,
   B reloaded per 32 dims), stored to st[t] + 16 g: 16 rows of 16 floats, keys past nk from
   zero rows (finite, never read). dq a multiple of 32. */
SPATTN_ALWAYS_INLINE void amx_group(const int nq, const float *const *qt, size_t dq, const void *kb,
                                    ptrdiff_t k_ts, size_t j0, const uint32_t *idx, size_t g,
                                    size_t nk, float *const *st)
{
    uint16_t stage[16 * 32] __attribute__((aligned(64)));
    const int run = amx_run_of_16(idx, g, nk);
    long ka;
    _tile_zero(0);
    if (nq == 2)
        _tile_zero(1);
    for (size_t d = 0; d < dq; d += 32) {
        AMX_LOADD(2, amx_k_rows(kb, k_ts, j0, idx, g, nk, run, d, stage, &ka), ka);
        /* B: pairs d / 2 .. d / 2 + 16 of the packed Q, 16 floats (16 rows' pairs) each */
        AMX_LOADD(3, qt[0] + (d / 2) * 16, 64);
        _tile_dpbf16ps(0, 2, 3);
        if (nq == 2) {
            AMX_LOADD(4, qt[1] + (d / 2) * 16, 64);
            _tile_dpbf16ps(1, 2, 4);
        }
    }
    _tile_stored(0, st[0] + 16 * g, 64);
    if (nq == 2)
        _tile_stored(1, st[1] + 16 * g, 64);
}

/* The same for dq 64 with the query tiles' B operands already in tiles 3, 4 (tile 0's two
   halves of dim) and 5, 6 (tile 1's): per group only K is loaded (A tiles 2 and 7). */
SPATTN_ALWAYS_INLINE void amx_group64(const int nq, const void *kb, ptrdiff_t k_ts, size_t j0,
                                      const uint32_t *idx, size_t g, size_t nk, float *const *st)
{
    uint16_t stage[2][16 * 32] __attribute__((aligned(64)));
    const int run = amx_run_of_16(idx, g, nk);
    long ka;
    AMX_LOADD(2, amx_k_rows(kb, k_ts, j0, idx, g, nk, run, 0, stage[0], &ka), ka);
    AMX_LOADD(7, amx_k_rows(kb, k_ts, j0, idx, g, nk, run, 32, stage[1], &ka), ka);
    _tile_zero(0);
    _tile_dpbf16ps(0, 2, 3);
    if (nq == 2) {
        _tile_zero(1);
        _tile_dpbf16ps(1, 2, 5);
    }
    _tile_dpbf16ps(0, 7, 4);
    if (nq == 2)
        _tile_dpbf16ps(1, 7, 6);
    _tile_stored(0, st[0] + 16 * g, 64);
    if (nq == 2)
        _tile_stored(1, st[1] + 16 * g, 64);
}

/* After the products: scores times c, the ALiBi term, masks, and each tile's max (mt[t]). */
SPATTN_ALWAYS_INLINE void amx_scores_finish(const int nq, col_t c, const uint32_t *idx, size_t nk,
                                            const uint32_t *cm, float *const *st,
                                            const qk_alibi *al, col_t *mt)
{
    const col_t ninf = col_set1(K_NINF);
    for (int t = 0; t < nq; t++) {
        col_t mx = ninf;
        for (size_t j = 0; j < nk; j++) {
            col_t a = col_mul(col_load(st[t] + 16 * j), c);
            if (al != NULL)
                a = qk_alibi_add(&al[t], idx[j], a);
            if (cm != NULL)
                a = col_select(cmask_bits(cm[j]), a, ninf);
            col_store(st[t] + 16 * j, a);
            mx = col_max(mx, a);
        }
        mt[t] = mx;
    }
}

/* qk_pairs_nq through tiles (same arguments and results up to the sums' order): dq a
   multiple of 32. */
SPATTN_ALWAYS_INLINE void qk_amx_nq(const int nq, const float *const *qt, size_t dq, const void *kb,
                                    ptrdiff_t k_ts, size_t j0, const uint32_t *idx, size_t nk,
                                    const uint32_t *cm, float *const *st, const tile_prefetch *pf,
                                    const qk_alibi *al, col_t *mt)
{
    if (dq == 64) {
        AMX_LOADD(3, qt[0], 64);
        AMX_LOADD(4, qt[0] + 256, 64);
        if (nq == 2) {
            AMX_LOADD(5, qt[1], 64);
            AMX_LOADD(6, qt[1] + 256, 64);
        }
    }
    for (size_t g = 0; g < nk; g += 16) {
        if (pf != NULL)
            prefetch_keys(pf, g, 16);
        if (dq == 64)
            amx_group64(nq, kb, k_ts, j0, idx, g, nk, st);
        else
            amx_group(nq, qt, dq, kb, k_ts, j0, idx, g, nk, st);
    }
    amx_scores_finish(nq, col_load(qt[0] + (dq / 2) * 16), idx, nk, cm, st, al, mt);
}

#endif

/*
 * P V into row-major O through AMX tiles, for the AMX tier (VEC_AMX): O (16 rows by 16 dims,
 * in place in the tile state) += P (16 rows by 32 keys) V (32 keys by 16 dims) is one
 * tdpbf16ps, with P rounded to bf16 (nearest even) as the avx512bf16 tier's pairs round it.
 * Its operands are built per tile: A from the scores' columns (each pair of keys' columns
 * rounded and paired, then the 16 x 16 pairs transposed, bits unchanged), B from V rows j,
 * j + 1 interleaved along dim. A PARTIAL tile's rows must not take the products of keys they
 * exclude where such a V row holds a NaN or Inf (0 * Inf is NaN): such tiles go to the float
 * kernel's masked FMAs.
 */
#ifndef SPATTN_X86_AMX_PV_H
#define SPATTN_X86_AMX_PV_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"
#include "x86/amx_f16.h"

/* Widest dim_v the tile kernel stages on the stack (2 * dim_v / 16 blocks of 1 KiB); dim_v a
   multiple of 64: four C tiles of 16 dims at a time. */
#define PV_AMX_MAX_DV 128

static inline int pv_amx_takes(int kvt, size_t dv, size_t ps)
{
    return (kvt == KV_BF16 || kvt == KV_F16) && ps == 16 && dv % 64 == 0 && dv <= PV_AMX_MAX_DV;
}

/* A for keys 32 kc .. 32 kc + 32: row r = P[r][k] as bf16, k in order, keys past nk zero. */
SPATTN_ALWAYS_INLINE void pv_amx_a(const float *st, size_t nk, size_t kc, float *a)
{
    col_t w[16], t[16];
    for (size_t i = 0; i < 16; i++) {
        const size_t j = 32 * kc + 2 * i;
        const col_t x = j < nk ? col_load(st + 16 * j) : col_zero();
        const col_t y = j + 1 < nk ? col_load(st + 16 * (j + 1)) : col_zero();
        w[i] = col_pairs_bf16(x, y);
    }
    col_transpose16(w, t);
    for (size_t r = 0; r < 16; r++)
        col_store(a + 16 * r, t[r]);
}

/* B for keys 32 kc .. 32 kc + 32 and dims 32 h .. 32 h + 32: b0 (dims 32 h + d, d < 16) and
   b1 (the next 16), row p = (V[2 p][dim], V[2 p + 1][dim]) over the 16 dims; rows of keys past
   nk zero. With `check`, returns nonzero when an element read is Inf or NaN (exponent all
   ones); else 0. */
SPATTN_ALWAYS_INLINE int pv_amx_b(const int check, const char *const *vp, size_t nk, size_t kc,
                                  size_t h, uint16_t *b0, uint16_t *b1)
{
    const __m512i lo = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40,
                                        8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i hi = _mm512_add_epi16(lo, _mm512_set1_epi16(16));
    const __m512i ex = _mm512_set1_epi16(0x7f80);
    __mmask32 bad = 0;
    for (size_t p = 0; p < 16; p++) {
        const size_t j = 32 * kc + 2 * p;
        const __m512i x = j < nk ? _mm512_loadu_si512(vp[j] + 64 * h) : _mm512_setzero_si512();
        const __m512i y =
            j + 1 < nk ? _mm512_loadu_si512(vp[j + 1] + 64 * h) : _mm512_setzero_si512();
        if (check)
            bad |= _mm512_cmpeq_epi16_mask(_mm512_and_si512(x, ex), ex) |
                   _mm512_cmpeq_epi16_mask(_mm512_and_si512(y, ex), ex);
        _mm512_store_si512(b0 + 32 * p, _mm512_permutex2var_epi16(x, lo, y));
        _mm512_store_si512(b1 + 32 * p, _mm512_permutex2var_epi16(x, hi, y));
    }
    return bad != 0;
}

/* The B operands of the last unmasked tile of consecutive keys a thread staged (a FULL tile,
   or an unmasked PARTIAL one whose keys are a run), named by its first V row, its keys and
   dim_v: two query tiles walked together (tpl_tiles2) take the same key tile one after the
   other, and the second reuses them. Forgotten whenever a job enters the walk
   (pv_amx_forget), so that rows of another job's V are never taken for this one's. */
static _Thread_local struct {
    const char *v0;
    ptrdiff_t step;
    size_t nk, dv;
    uint16_t b[2][PV_AMX_MAX_DV / 16][16 * 32] __attribute__((aligned(64)));
    uint16_t bl[2][PV_AMX_MAX_DV / 16][16 * 32] __attribute__((aligned(64))); /* f16 V's lo */
} pv_amx_staged;

static inline void pv_amx_forget(void)
{
    pv_amx_staged.v0 = NULL;
}

/* The spacing of the V rows vp[0..nk) when it is one (a FULL tile's rows, or an unmasked
   PARTIAL tile's run of keys), else 0: only such rows are named by the first, their count and
   that spacing. */
static ptrdiff_t pv_amx_step(const char *const *vp, size_t nk)
{
    const ptrdiff_t step = nk > 1 ? vp[1] - vp[0] : 1;
    for (size_t j = 2; j < nk; j++)
        if (vp[j] - vp[j - 1] != step)
            return 0;
    return step;
}

/* The B operands of a tile: rebuilt unless the staged ones are this tile's. A masked tile, or
   one whose keys are not consecutive rows, is never taken from or kept for reuse. Returns 0
   when an element read is not finite where that matters (a PARTIAL tile's, or any of f16 V,
   whose lo part cannot hold it), else 1. */
static int pv_amx_stage_b(int kvt, const char *const *vp, size_t nk, size_t dv, int masked)
{
    uint16_t(*b)[PV_AMX_MAX_DV / 16][16 * 32] = pv_amx_staged.b;
    uint16_t(*bl)[PV_AMX_MAX_DV / 16][16 * 32] = pv_amx_staged.bl;
    const size_t nkc = (nk + 31) / 32;
    const ptrdiff_t step = masked ? 0 : pv_amx_step(vp, nk);
    if (step != 0 && pv_amx_staged.v0 == vp[0] && pv_amx_staged.nk == nk &&
        pv_amx_staged.step == step && pv_amx_staged.dv == dv)
        return 1;
    pv_amx_staged.v0 = NULL;
    int bad = 0;
    for (size_t kc = 0; kc < nkc; kc++)
        for (size_t h = 0; h < dv / 32; h++) {
            if (kvt == KV_F16)
                bad |= pv_amx_b_f16(vp, nk, kc, h, b[kc][2 * h], b[kc][2 * h + 1], bl[kc][2 * h],
                                    bl[kc][2 * h + 1]);
            else if (masked)
                bad |= pv_amx_b(1, vp, nk, kc, h, b[kc][2 * h], b[kc][2 * h + 1]);
            else
                pv_amx_b(0, vp, nk, kc, h, b[kc][2 * h], b[kc][2 * h + 1]);
        }
    if (bad)
        return 0;
    if (step != 0) {
        pv_amx_staged.v0 = vp[0];
        pv_amx_staged.step = step;
        pv_amx_staged.nk = nk;
        pv_amx_staged.dv = dv;
    }
    return 1;
}

/* pv_rows_tile for tiles of bf16 or f16 V (pv_amx_takes): O[r] = O[r] * al[r] + P[r] V over
   the tile's nk <= 64 keys, vp[] their V rows; O rows dv floats apart. pf: the next tile's
   V rows, asked for at the start, or NULL. `masked` (a PARTIAL tile): a row's P
   is exactly 0 for the keys it excludes, so the products are the masked ones when every V
   element read is finite; returns 0, having written nothing, when one is not (the caller
   then runs the masked float kernel; for f16 V, on any tile), else 1. `fresh`: O is all
   zeros, so the C tiles start at zero, neither rescaled nor loaded (a tile load waits for the
   vector stores before it, and a query tile of a sparse mask often has one key tile). */
static int pv_amx_tile(int kvt, float *orow, size_t dv, size_t rows, const char *const *vp,
                       size_t nk, const float *st, const float *al, int masked, int fresh,
                       const tile_prefetch *pf)
{
    float a[2][256] __attribute__((aligned(64))), alo[2][256] __attribute__((aligned(64)));
    uint16_t(*b)[PV_AMX_MAX_DV / 16][16 * 32] = pv_amx_staged.b;
    uint16_t(*bl)[PV_AMX_MAX_DV / 16][16 * 32] = pv_amx_staged.bl;
    const size_t nkc = (nk + 31) / 32;
    const int f16 = kvt == KV_F16;
    if (!pv_amx_stage_b(kvt, vp, nk, dv, masked))
        return 0;
    if (pf != NULL)
        prefetch_rows(pf, 0, pf->n, PF_V);
    for (size_t kc = 0; kc < nkc; kc++) {
        if (f16)
            pv_amx_a_split(st, nk, kc, a[kc], alo[kc]);
        else
            pv_amx_a(st, nk, kc, a[kc]);
    }
    for (size_t r = 0; r < rows && !fresh; r++) {
        if (al[r] == 1.0f)
            continue;
        const vec_t f = vec_set1(al[r]);
        for (size_t e = 0; e < dv; e += VL)
            vec_storeu(orow + r * dv + e, vec_mul(vec_loadu(orow + r * dv + e), f));
    }
    /* Four C tiles (16 dims each) in flight, so that the products of one do not wait for
       the other's: tiles 0-3 C, 4-5 B (alternating), 6-7 A (bf16: key chunks 0 and 1; f16:
       a chunk's hi and lo P). */
    if (!f16) {
        AMX_LOADD(6, a[0], 64);
        if (nkc > 1)
            AMX_LOADD(7, a[1], 64);
    }
    const long ob = (long)(dv * sizeof(float));
    for (size_t c = 0; c < dv / 16; c += 4) {
        float *o = orow + 16 * c;
        if (fresh) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
        } else {
            AMX_LOADD(0, o, ob);
            AMX_LOADD(1, o + 16, ob);
            AMX_LOADD(2, o + 32, ob);
            AMX_LOADD(3, o + 48, ob);
        }
        /* the four C tiles += A tile `at` times the B blocks of key chunk kc (tile numbers are
           immediates, so one expansion per A tile) */
#define PV_AMX_CHUNK(at, kc)                                                                       \
    do {                                                                                           \
        AMX_LOADD(4, b[kc][c], 64);                                                                \
        _tile_dpbf16ps(0, at, 4);                                                                  \
        AMX_LOADD(5, b[kc][c + 1], 64);                                                            \
        _tile_dpbf16ps(1, at, 5);                                                                  \
        AMX_LOADD(4, b[kc][c + 2], 64);                                                            \
        _tile_dpbf16ps(2, at, 4);                                                                  \
        AMX_LOADD(5, b[kc][c + 3], 64);                                                            \
        _tile_dpbf16ps(3, at, 5);                                                                  \
    } while (0)
        /* f16: C tile ct += ph vh + pl vh + ph vl for dims block c + ct of key chunk kc */
#define PV_AMX_SPLIT(ct, kc)                                                                       \
    do {                                                                                           \
        AMX_LOADD(4, b[kc][c + ct], 64);                                                           \
        _tile_dpbf16ps(ct, 6, 4);                                                                  \
        _tile_dpbf16ps(ct, 7, 4);                                                                  \
        AMX_LOADD(5, bl[kc][c + ct], 64);                                                          \
        _tile_dpbf16ps(ct, 6, 5);                                                                  \
    } while (0)
        if (f16) {
            for (size_t kc = 0; kc < nkc; kc++) {
                AMX_LOADD(6, a[kc], 64);
                AMX_LOADD(7, alo[kc], 64);
                PV_AMX_SPLIT(0, kc);
                PV_AMX_SPLIT(1, kc);
                PV_AMX_SPLIT(2, kc);
                PV_AMX_SPLIT(3, kc);
            }
        } else {
            PV_AMX_CHUNK(6, 0);
            if (nkc > 1)
                PV_AMX_CHUNK(7, 1);
        }
#undef PV_AMX_CHUNK
#undef PV_AMX_SPLIT
        _tile_stored(0, o, ob);
        _tile_stored(1, o + 16, ob);
        _tile_stored(2, o + 32, ob);
        _tile_stored(3, o + 48, ob);
    }
    return 1;
}

#endif

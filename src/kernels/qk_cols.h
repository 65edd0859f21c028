/*
 * QK in column form, S^T[key][row]: a query tile's 16 rows are the 16 lanes of a col_t. Q is
 * packed transposed once per query tile (Qt[d] = the 16 rows' d-th element, pre-scaled), so
 *   S^T[j] = sum_d Qt[d] * K[j][d]      (K read in place, one broadcast per FMA)
 * and the online softmax that follows is lane-wise, with no transposition of K.
 */
#ifndef SPATTN_KERNELS_QK_COLS_H
#define SPATTN_KERNELS_QK_COLS_H

#include "convert.h"
#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"

#ifdef VEC_BF16_DOT
#include "kernels/qk_pairs.h"
#endif

/* Qt of rows i0 .. i0 + rows (lanes from `rows` on hold 0): 16 dims at a time, the rows
   loaded as vectors and transposed in registers (col_transpose_rows), for any row stride.
   16-bit Q is first widened with vector loads into a row-major block in tmp (16 * SPATTN_TK
   floats: the tile's score space, which the walk overwrites later), up to 64 dims at a time.
   Every element is q * c as a scalar loop would give it; one gather per dim cost about
   twice as much per query tile, which tiles with one or two key tiles notice. */
static void pack_q_cols(const spattn_head_job *job, size_t i0, size_t rows, float *qt, float *tmp)
{
#ifdef VEC_BF16_DOT
    if (job->kv_dtype == SPATTN_DTYPE_BF16) {
        pack_q_pairs(job, i0, rows, qt);
        return;
    }
#endif
#ifdef VEC_AMX
    if (job->kv_dtype == SPATTN_DTYPE_F16) { /* with f16 or float32 Q (bf16_tier.h) */
        pack_q_f16_split(job, i0, rows, qt, tmp);
        return;
    }
#endif
    const col_t vc = col_set1(q_factor(job));
    const size_t dq = job->dim_qk;
    if (job->q_dtype == SPATTN_DTYPE_F32) {
        const float *q = (const float *)job->q + (ptrdiff_t)i0 * job->q_ts;
        for (size_t d0 = 0; d0 < dq; d0 += 16)
            col_transpose_rows(q + d0, job->q_ts, rows, dq - d0 < 16 ? dq - d0 : 16, vc,
                               qt + 16 * d0);
        return;
    }
    const int bf16 = job->q_dtype == SPATTN_DTYPE_BF16;
    for (size_t d0 = 0; d0 < dq; d0 += SPATTN_TK) {
        const size_t w = dq - d0 < SPATTN_TK ? dq - d0 : SPATTN_TK;
        for (size_t r = 0; r < rows; r++) {
            const uint16_t *src = (const uint16_t *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts + d0;
            for (size_t e = 0; e < w; e += VL) {
                vec_t x;
                if (w - e >= VL)
                    x = bf16 ? vec_loadu_bf16(src + e) : vec_loadu_f16(src + e);
                else
                    x = bf16 ? vec_loadu_bf16_m(src + e, vmask_first(w - e))
                             : vec_loadu_f16_m(src + e, vmask_first(w - e));
                vec_storeu(tmp + r * SPATTN_TK + e, x);
            }
        }
        for (size_t e = 0; e < w; e += 16)
            col_transpose_rows(tmp + e, SPATTN_TK, rows, w - e < 16 ? w - e : 16, vc,
                               qt + 16 * (d0 + e));
    }
}

/* The next key block's rows, widened into the stage a few VL-wide chunks at a time from
   inside the current block's FMA steps: as one loop between blocks, its loads and stores
   stalled the FMAs (measured in docs/dtypes.md). */
typedef struct kv_stage {
    const char *row[QK_NB];
    float *dst;
    size_t ld, dim, rows;
} kv_stage;

/* Chunk c (VL elements) of the stage: row c / cr, elements from (c mod cr) * VL, cr chunks a
   row. Stateless, so that each FMA step widens its own chunks: a cursor carried across the
   steps made the compiler split the step loop into versions and lost most of the gain. The
   division is by a constant where qk_cols_nq fixes dim_qk (64, 128); a division instruction
   per chunk showed in profiles. */
SPATTN_ALWAYS_INLINE void kv_stage_chunk(const int kvt, const kv_stage *s, size_t cr, size_t c)
{
    const size_t b = c / cr;
    if (b < s->rows)
        kv_widen_chunk(kvt, s->dst + b * s->ld, s->row[b], (c - b * cr) * VL, s->dim);
}

/* S^T for keys j0 + idx[0..nk) of nq query tiles at once (Qt qt[t], scores to st[t]): NB
   keys at a time, each split into QK_DS chains along dim so that enough independent FMAs
   are in flight. With two query tiles each K element is broadcast once into a register for
   both (one load per two FMAs instead of one per FMA); a lane's arithmetic is the same for
   any nq and NB, so pairing query tiles never changes a bit of the result. A short last
   block repeats its last key (in bounds; stored past nk, and its duplicate does not change
   the max) instead of needing a second code path. Lanes outside cm[] (if given) become
   -inf, after the ALiBi term al[t] (if al is given) is added; mt[t] gets the lane-wise max
   of tile t's scores, taken as they leave the registers. K is of type kvt (kv_load.h), kb a
   byte pointer. `staged` (16-bit K): each block's K rows are widened into float rows of sk
   (two halves of nb rows, ld floats apart) during the block before's FMA steps (kv_stage),
   and the FMAs take their broadcasts from there as with float32: one conversion per element
   and visit instead of a 16-bit broadcast and a conversion per FMA. The products
   and their order are the same, so the scores are bitwise those of widening per broadcast. */
SPATTN_ALWAYS_INLINE void qk_cols_keys(const int kvt, const int nq, const int nb, const int lo,
                                       const int staged, const float *const *qt, size_t dq,
                                       const char *kb, ptrdiff_t k_ts, size_t j0,
                                       const uint32_t *idx, size_t nk, float *sk, size_t ld,
                                       const uint32_t *cm, float *const *st,
                                       const tile_prefetch *pf, const qk_alibi *al, col_t *mt)
{
    const int ct = staged ? KV_F32 : kvt; /* the type the FMAs read */
    const col_t ninf = col_set1(K_NINF);
    /* The running max in registers: score stores through float pointers may alias mt[], so
       updating mt[] itself cost a load and a store per key. */
    col_t mx[2] = {ninf, ninf};
    /* A short block's missing rows are staged as copies of its last key, so that staged row b
       is always ld * b floats from row 0 (the broadcasts' single pointer below). */
    if (staged)
        for (size_t b = 0; b < (size_t)nb; b++)
            kv_widen_row(kvt, sk + b * ld,
                         kv_row(kvt, kb, (ptrdiff_t)(j0 + idx[b < nk ? b : nk - 1]), k_ts), dq);
    for (size_t jj = 0; jj < nk; jj += (size_t)nb) {
        if (pf != NULL)
            prefetch_keys(pf, jj, (size_t)nb);
        const char *kp[QK_NB];
        float *cur = NULL;
        kv_stage stg = {.rows = 0};
        /* cr chunks a row, cw a step: nb rows of dq / VL chunks over dq / QK_DU steps is nb / 2
           a step where QK_DU = VL / 2 (AVX-512); whatever the steps leave is widened after. */
        const size_t cr = (dq + VL - 1) / VL, cw = (size_t)(nb + 1) / 2;
        if (staged) {
            cur = sk + ((jj / (size_t)nb) & 1) * (size_t)nb * ld;
            stg.dst = sk + (((jj / (size_t)nb) & 1) ^ 1) * (size_t)nb * ld;
            stg.ld = ld;
            stg.dim = dq;
            for (size_t b = 0; b < (size_t)nb && jj + (size_t)nb < nk; b++) {
                const size_t j = jj + (size_t)nb + b < nk ? jj + (size_t)nb + b : nk - 1;
                stg.row[stg.rows++] = kv_row(kvt, kb, (ptrdiff_t)(j0 + idx[j]), k_ts);
            }
        }
        for (int b = 0; b < nb; b++) {
            size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = staged ? (const char *)(cur + (size_t)b * ld)
                           : kv_row(kvt, kb, (ptrdiff_t)(j0 + idx[jb]), k_ts);
        }
        col_t acc[2][QK_DS][QK_NB];
        for (int t = 0; t < nq; t++)
            for (int s = 0; s < QK_DS; s++)
                for (int b = 0; b < nb; b++)
                    acc[t][s][b] = col_zero();
        /* QK_DU dims per step with the key pointers advanced once per step, each hidden from
           the optimiser: otherwise it rewrites kp[b] + d as base + index addressing, which
           splits every broadcast FMA into two uops at issue. Here each is [kp + imm]. */
        size_t d = 0, qo = 0;
        for (; d + QK_DU <= dq; d += QK_DU, qo += QK_DU * 16) {
            if (staged)
                for (size_t w = 0; w < cw; w++)
                    kv_stage_chunk(kvt, &stg, cr, d / QK_DU * cw + w);
#pragma GCC unroll 16
            for (int u = 0; u < QK_DU; u += QK_DS) {
                for (int s = 0; s < QK_DS; s++) {
                    if (nq == 1) {
                        col_t q = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++)
                            acc[0][s][b] =
                                lo ? kv_fma_bc_lo(ct, q, kp[b], (size_t)(u + s), acc[0][s][b])
                                   : kv_fma_bc(ct, q, kp[b], (size_t)(u + s), acc[0][s][b]);
                    } else {
                        col_t q0 = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        col_t q1 = col_load(qt[1] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++) {
                            col_t kv = kv_bcast(ct, kp[b], (size_t)(u + s));
                            acc[0][s][b] = col_fma(q0, kv, acc[0][s][b]);
                            acc[1][s][b] = col_fma(q1, kv, acc[1][s][b]);
                        }
                    }
                }
            }
            if (staged) {
                /* Staged rows are ld floats apart: one pointer, the others at fixed offsets
                   from it ([p + imm] for every broadcast, and three registers free). */
                kp[0] += QK_DU * sizeof(float);
                OPAQUE_PTR(kp[0]);
                for (int b = 1; b < nb; b++)
                    kp[b] = kp[0] + (size_t)b * ld * sizeof(float);
            } else
                for (int b = 0; b < nb; b++) {
                    kp[b] += QK_DU * kv_size(ct);
                    OPAQUE_PTR(kp[b]);
                }
        }
        for (; d < dq; d++, qo += 16) {
            for (int t = 0; t < nq; t++) {
                col_t q = col_load(qt[t] + qo);
                for (int b = 0; b < nb; b++)
                    acc[t][0][b] = kv_fma_bc(ct, q, kp[b], 0, acc[t][0][b]);
            }
            for (int b = 0; b < nb; b++)
                kp[b] += kv_size(ct);
        }
        if (staged)
            for (size_t c = dq / QK_DU * cw; c < stg.rows * cr; c++)
                kv_stage_chunk(kvt, &stg, cr, c);
        for (int t = 0; t < nq; t++)
            for (int b = 0; b < nb; b++) {
                const size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
                col_t a = acc[t][0][b];
                for (int s = 1; s < QK_DS; s++)
                    a = col_add(a, acc[t][s][b]);
                if (al != NULL)
                    a = qk_alibi_add(&al[t], idx[jb], a);
                if (cm != NULL)
                    a = col_select(cmask_bits(cm[jb]), a, ninf);
                col_store(st[t] + (jj + (size_t)b) * 16, a);
                mx[t] = col_max(mx[t], a);
            }
    }
    for (int t = 0; t < nq; t++)
        mt[t] = mx[t];
}

/* 1 where float32 K's column QK is compiled for dim_qk 64 and 128 as constants too, as the
   16-bit stage always is: on AVX2, with dq a variable, gcc kept S's accumulators in memory as
   well and stored every one on each step (docs/kernels.md). */
#ifndef QK_F32_FIXED_DIMS
#define QK_F32_FIXED_DIMS 0
#endif

/* qk_cols_keys with the common head sizes as constants: the loops over dim unroll, and a
   stage's row and chunk arithmetic becomes shifts, its rows' fixed offsets immediates. sk:
   the stage (staged only), rows round16(dq) floats apart. */
SPATTN_ALWAYS_INLINE void qk_cols_dims(const int kvt, const int nq, const int nb, const int lo,
                                       const int staged, const float *const *qt, size_t dq,
                                       const char *kb, ptrdiff_t k_ts, size_t j0,
                                       const uint32_t *idx, size_t nk, float *sk,
                                       const uint32_t *cm, float *const *st,
                                       const tile_prefetch *pf, const qk_alibi *al, col_t *mt)
{
    if (dq == 64)
        qk_cols_keys(kvt, nq, nb, lo, staged, qt, 64, kb, k_ts, j0, idx, nk, sk, staged ? 64 : 0,
                     cm, st, pf, al, mt);
    else if (dq == 128)
        qk_cols_keys(kvt, nq, nb, lo, staged, qt, 128, kb, k_ts, j0, idx, nk, sk, staged ? 128 : 0,
                     cm, st, pf, al, mt);
    else
        qk_cols_keys(kvt, nq, nb, lo, staged, qt, dq, kb, k_ts, j0, idx, nk, sk,
                     staged ? round16(dq) : 0, cm, st, pf, al, mt);
}

/* qk_cols_keys, staged where the ISA offers a stage (KV_STAGE_FLOATS) and K is 16-bit. */
SPATTN_ALWAYS_INLINE void qk_cols_nq(const int kvt, const int nq, const int nb, const int lo,
                                     const float *const *qt, size_t dq, const char *kb,
                                     ptrdiff_t k_ts, size_t j0, const uint32_t *idx, size_t nk,
                                     const uint32_t *cm, float *const *st, const tile_prefetch *pf,
                                     const qk_alibi *al, col_t *mt)
{
#if KV_STAGE_FLOATS
    if (kvt != KV_F32 && 2 * (size_t)nb * round16(dq) <= KV_STAGE_FLOATS) {
        float sk[KV_STAGE_FLOATS] __attribute__((aligned(64)));
        qk_cols_dims(kvt, nq, nb, lo, 1, qt, dq, kb, k_ts, j0, idx, nk, sk, cm, st, pf, al, mt);
        return;
    }
#endif
    if (QK_F32_FIXED_DIMS && kvt == KV_F32)
        qk_cols_dims(kvt, nq, nb, lo, 0, qt, dq, kb, k_ts, j0, idx, nk, NULL, cm, st, pf, al, mt);
    else
        qk_cols_keys(kvt, nq, nb, lo, 0, qt, dq, kb, k_ts, j0, idx, nk, NULL, 0, cm, st, pf, al,
                     mt);
}

/* One query tile. `lo` (AVX2, tiles of at most 8 rows): the high half of each column is
   padding (Qt there is 0), so its FMAs are skipped and its scores stay 0 (finite; never
   written back). K of type kvt (the job's kv_dtype); al: the ALiBi term, or NULL. */
static col_t qk_cols(int kvt, const float *qt, size_t dq, const void *kb, ptrdiff_t k_ts, size_t j0,
                     const uint32_t *idx, size_t nk, const uint32_t *cm, float *st,
                     const tile_prefetch *pf, int lo, const qk_alibi *al)
{
    col_t mt;
#ifdef VEC_BF16_DOT
    if (kvt == KV_BF16) {
        qk_pairs_nq(1, QK_NB, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf, al, &mt);
        return mt;
    }
#endif
#ifdef VEC_AMX
    if (kvt == KV_F16) {
        qk_amx_f16_nq(1, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf, al, &mt);
        return mt;
    }
#endif
    if (COL_HALVES && lo)
        KV_DISPATCH(kvt, qk_cols_nq(KVT, 1, QK_NB, 1, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf,
                                    al, &mt));
    else
        KV_DISPATCH(kvt, qk_cols_nq(KVT, 1, QK_NB, 0, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf,
                                    al, &mt));
    return mt;
}

#ifdef QK_NB2
/* Two query tiles against the same keys j0 + idx[0..nk), unmasked; al: their ALiBi
   terms, or NULL; pf: keys to ask for as they compute, or NULL. */
static void qk_cols_pair(int kvt, const float *const *qt, size_t dq, const void *kb, ptrdiff_t k_ts,
                         size_t j0, const uint32_t *idx, size_t nk, float *const *st,
                         const tile_prefetch *pf, const qk_alibi *al, col_t *mt)
{
#ifdef VEC_BF16_DOT
    if (kvt == KV_BF16) {
        qk_pairs_nq(2, QK_NB2, qt, dq, kb, k_ts, j0, idx, nk, NULL, st, pf, al, mt);
        return;
    }
#endif
#ifdef VEC_AMX
    if (kvt == KV_F16) {
        qk_amx_f16_nq(2, qt, dq, kb, k_ts, j0, idx, nk, NULL, st, pf, al, mt);
        return;
    }
#endif
    KV_DISPATCH(kvt,
                qk_cols_nq(KVT, 2, QK_NB2, 0, qt, dq, kb, k_ts, j0, idx, nk, NULL, st, pf, al, mt));
}
#endif

#endif

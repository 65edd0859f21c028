/*
 * QK in column form from bf16 dim pairs, for tiers with a bf16 pair dot product
 * (VEC_BF16_DOT: vdpbf16ps). Such a tier sends a job down its template only when Q and K are
 * both bf16 and dim_qk is even (the others go to the tier it extends), so here a bf16 K means
 * a bf16 Q. Qt then holds, for dim pair p, the 16 rows' (Q[r][2p], Q[r][2p+1]) as bf16 pairs:
 *   S^T[j] = c * sum_p Qt[p] . K[j][2p..2p+1]      (one pair broadcast per dot instruction)
 * with Q unscaled, since Q * c is not exact in bf16, and c applied once per score instead.
 * Each dot instruction does the work of two FMAs of the float kernel.
 */
#ifndef SPATTN_KERNELS_QK_PAIRS_H
#define SPATTN_KERNELS_QK_PAIRS_H

#include "kernels/common.h"
#include "kernels/kv_load.h"
#include "kernels/kv_prefetch.h"
#ifdef VEC_AMX
#include "x86/amx_f16.h"
#include "x86/amx_qk.h"
#endif

/* Pairs of a query tile: dim_qk / 2 columns of pairs, then one column of the score factor c
   (16 * (dim_qk / 2 + 1) floats, within the 16 * dim_qk of the float layout). Rows past len_q
   are zero pairs: finite scores, never written back. */
static void pack_q_pairs(const spattn_head_job *job, size_t i0, size_t rows, float *qt)
{
    const size_t np = job->dim_qk / 2;
    col_transpose_pairs((const uint16_t *)job->q + (ptrdiff_t)i0 * job->q_ts, job->q_ts, rows, np,
                        qt);
    col_store(qt + np * 16, col_set1(q_factor(job)));
}

/* qk_cols_nq for pairs (nq query tiles, nb keys per block): the same blocks, masks, ALiBi
   term and max, with pair p in chain p % QK_DS of its step whatever nq is, so that pairing
   query tiles changes no bit. */
SPATTN_ALWAYS_INLINE void qk_pairs_nq(const int nq, const int nb, const float *const *qt, size_t dq,
                                      const void *kb, ptrdiff_t k_ts, size_t j0,
                                      const uint32_t *idx, size_t nk, const uint32_t *cm,
                                      float *const *st, const tile_prefetch *pf, const qk_alibi *al,
                                      col_t *mt)
{
#ifdef VEC_AMX
    if (dq % 32 == 0) {
        qk_amx_nq(nq, qt, dq, kb, k_ts, j0, idx, nk, cm, st, pf, al, mt);
        return;
    }
#endif
    const size_t np = dq / 2;
    const col_t ninf = col_set1(K_NINF), c = col_load(qt[0] + np * 16);
    col_t mx[2] = {ninf, ninf}; /* in registers, as in qk_cols_keys */
    for (size_t jj = 0; jj < nk; jj += (size_t)nb) {
        if (pf != NULL)
            prefetch_keys(pf, jj, (size_t)nb);
        const char *kp[QK_NB];
        for (int b = 0; b < nb; b++) {
            size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = kv_row(KV_BF16, kb, (ptrdiff_t)(j0 + idx[jb]), k_ts);
        }
        col_t acc[2][QK_DS][QK_NB];
        for (int t = 0; t < nq; t++)
            for (int s = 0; s < QK_DS; s++)
                for (int b = 0; b < nb; b++)
                    acc[t][s][b] = col_zero();
        /* QK_DU pairs per step, key pointers advanced once per step and hidden from the
           optimiser (see qk_cols_nq): every dot takes its pair as [kp + imm]. */
        size_t p = 0, qo = 0;
        for (; p + QK_DU <= np; p += QK_DU, qo += QK_DU * 16) {
#pragma GCC unroll 16
            for (int u = 0; u < QK_DU; u += QK_DS) {
                for (int s = 0; s < QK_DS; s++) {
                    const size_t e = 2 * (size_t)(u + s);
                    if (nq == 1) {
                        col_t q = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++)
                            acc[0][s][b] = col_dot_pair_bc(
                                q, (const uint16_t *)(const void *)kp[b] + e, acc[0][s][b]);
                    } else {
                        col_t q0 = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        col_t q1 = col_load(qt[1] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++) {
                            col_t kv = col_bcast_pair((const uint16_t *)(const void *)kp[b] + e);
                            acc[0][s][b] = col_dot_pair(q0, kv, acc[0][s][b]);
                            acc[1][s][b] = col_dot_pair(q1, kv, acc[1][s][b]);
                        }
                    }
                }
            }
            for (int b = 0; b < nb; b++) {
                kp[b] += QK_DU * 4;
                OPAQUE_PTR(kp[b]);
            }
        }
        for (; p < np; p++, qo += 16) {
            for (int t = 0; t < nq; t++) {
                col_t q = col_load(qt[t] + qo);
                for (int b = 0; b < nb; b++)
                    acc[t][0][b] =
                        col_dot_pair_bc(q, (const uint16_t *)(const void *)kp[b], acc[t][0][b]);
            }
            for (int b = 0; b < nb; b++)
                kp[b] += 4;
        }
        for (int t = 0; t < nq; t++)
            for (int b = 0; b < nb; b++) {
                const size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
                col_t a = acc[t][0][b];
                for (int s = 1; s < QK_DS; s++)
                    a = col_add(a, acc[t][s][b]);
                a = col_mul(a, c);
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

#endif

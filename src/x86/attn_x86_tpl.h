/*
 * The x86 attention and softmax kernels, written once over the vector layer of vec_avx2.h or
 * vec_avx512.h (included first by attn_avx2.c / attn_avx512.c). Everything here is static: each
 * ISA file gets its own copy compiled with its own flags and exports only its table.
 *
 * Tile path, transposed: a query tile's 16 rows are the 16 lanes of a col_t. Q is packed
 * transposed once per query tile (Qt[d] = the 16 rows' d-th element, pre-scaled), so
 *   S^T[j] = sum_d Qt[d] * K[j][d]      (K read in place, one broadcast per FMA)
 * and the online softmax is vertical: the running max, sum and rescale of the 16 rows are
 * lane-wise ops, with no horizontal reductions and no transposition of K or V. Then
 *   PV_ROWS (AVX-512): O[r][e..] += P^T[j][r] * V[j][e..]   (V rows as vectors, P broadcast)
 *   otherwise (AVX2):  O^T[e]   += P^T[j] * V[j][e]         (V read in place, one broadcast
 *                                                           per FMA)
 *
 * Scores are kept in log2 units (Q pre-scaled by scale*log2(e)) so that P = exp2(S - m).
 */
#ifndef SPATTN_ATTN_X86_TPL_H
#define SPATTN_ATTN_X86_TPL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernel.h"

#define X86_LOG2E 1.4426950408889634f
#define X86_LN2 0.6931471805599453
#define X86_NINF (-__builtin_inff())

#if SPATTN_TQ != 16
#error "the x86 tile path maps the 16 rows of a query tile onto the 16 lanes of a col_t"
#endif

static size_t x86_round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Floats of scratch one tile_state takes (a multiple of 16: each part stays 64-byte
   aligned). */
static size_t tile_state_floats(size_t dq, size_t dv)
{
    return 16 * (dq + x86_round16(dv) + SPATTN_TK + QK_NB + 3);
}

/* Query tiles of at most QR_MAX rows take their QK along dim (qk_rows, see there), in groups
   of 4 rows, QR_KEYS keys at a time for one group and half as many for two, so that the
   accumulators and Q vectors stay in registers. AVX2 only up to 4 rows: its half columns
   serve 8 rows with as many ymm FMAs as two groups of 4 would take. */
#define QR_KEYS (VL == 16 ? 4 : 2)
#define QR_MAX (VL == 16 ? 8 : 4)

/* The gather path's passes (see there) take at most GATHER_BATCH rows at a time: their
   scores (16 floats per started 16 keys) and sums stay in scratch between passes. */
#define GATHER_BATCH 8192

/* Sums and scores one gather call over `rows` rows holds: enough for the call's rows (or a
   batch) of 16 keys each, and always for its longest row (`keys`), so that every batch takes
   at least one row. */
static size_t gather_sums(size_t rows)
{
    return rows < GATHER_BATCH ? x86_round16(rows) : GATHER_BATCH;
}
static size_t gather_scores(size_t rows, size_t keys)
{
    const size_t per_row = 16 * gather_sums(rows);
    return per_row > x86_round16(keys) ? per_row : x86_round16(keys);
}

/* Tile path, per query tile (two for x86_tiles2): Qt (16*dim_qk) | O (16 * dim_v rounded up
   to 16) | St (16 per key, 64 + QK_NB keys) | m, l, alpha.
   Gather path: see x86_gather. */
static size_t x86_scratch(size_t dim_qk, size_t dim_v, size_t gather_rows, size_t gather_keys)
{
#ifdef QK_NB2
    size_t tile = 2 * tile_state_floats(dim_qk, dim_v); /* x86_tiles2 runs two */
#else
    size_t tile = tile_state_floats(dim_qk, dim_v);
#endif
    size_t gather = gather_scores(gather_rows, gather_keys) + gather_sums(gather_rows);
    return tile > gather ? tile : gather;
}

/* A row's lse from its max (log2 units) and sum; -inf when nothing was summed. */
static float x86_lse(float m, float l)
{
    return l != 0.0f ? (float)((double)m * X86_LN2 + log((double)l)) : X86_NINF;
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
#if COL_GATHER
    /* One gather per dim collects the 16 rows' element (a scalar transposition costs a load,
       multiply and store per element, which tiny query tiles with one or two key tiles
       notice). The lane offsets are 32-bit, so huge row strides take the scalar loop. */
    if (job->q_ts >= 0 && job->q_ts <= INT32_MAX / 16) {
        const float *q = job->q + (ptrdiff_t)i0 * job->q_ts;
        const col_t vc = col_set1(c);
        const col_idx_t ix = col_row_offsets((int32_t)job->q_ts);
        for (size_t d = 0; d < job->dim_qk; d++)
            col_store(qt + d * 16, col_mul(col_gather_rows(q + d, ix, rows), vc));
        return;
    }
#endif
    /* Lanes of rows past len_q stay 0: finite scores, never written back. */
    memset(qt, 0, 16 * job->dim_qk * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *q = job->q + (ptrdiff_t)(i0 + r) * job->q_ts;
        for (size_t d = 0; d < job->dim_qk; d++)
            qt[d * 16 + r] = q[d] * c;
    }
}

/* The same rows row-major for qk_rows: 4 or 8 rows of dim_qk (within Qt's 16 * dim_qk), the
   rows past `rows` zero. */
static void pack_qr(const spattn_head_job *job, size_t i0, size_t rows, float *qr)
{
    const float c = x86_q_factor(job);
    const size_t dq = job->dim_qk;
    memset(qr, 0, (rows <= 4 ? 4 : 8) * dq * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *q = job->q + (ptrdiff_t)(i0 + r) * job->q_ts;
        for (size_t d = 0; d < dq; d++)
            qr[r * dq + d] = q[d] * c;
    }
}

/* The K and V rows of the next key tile the walk visits, asked for a few keys at a time
   while this tile computes, when the call streams K and V (job->stream_kv): the hardware
   prefetchers follow the stream, but software requests one tile ahead keep more lines in
   flight (decode: 31.3 -> 27.2 ns per pair). With several query tiles per head the tiles are
   in L2 and the requests only compete with the broadcasts for load slots (causal 4096: 10 %
   slower), so they are off there. */
typedef struct tile_prefetch {
    const char *k, *v;     /* first key of the next tile */
    size_t n;              /* its keys */
    ptrdiff_t k_ts, v_ts;  /* bytes */
    size_t k_bytes, v_bytes;
} tile_prefetch;

static inline __attribute__((always_inline)) void prefetch_keys(const tile_prefetch *pf,
                                                                size_t j, size_t count)
{
    for (size_t c = j; c < j + count && c < pf->n; c++) {
        const char *k = pf->k + (ptrdiff_t)c * pf->k_ts, *v = pf->v + (ptrdiff_t)c * pf->v_ts;
        for (size_t b = 0; b < pf->k_bytes; b += 64)
            vec_prefetch_l1(k + b);
        for (size_t b = 0; b < pf->v_bytes; b += 64)
            vec_prefetch_l1(v + b);
    }
}

/* S^T for keys j0 + idx[0..nk) of nq query tiles at once (Qt qt[t], scores to st[t]): NB
   keys at a time, each split into QK_DS chains along dim so that enough independent FMAs
   are in flight. With two query tiles each K element is broadcast once into a register for
   both (one load per two FMAs instead of one per FMA); a lane's arithmetic is the same for
   any nq and NB, so pairing query tiles never changes a bit of the result. A short last
   block repeats its last key (in bounds; stored past nk, and its duplicate does not change
   the max) instead of needing a second code path. Lanes outside cm[] (if given) become
   -inf; mt[t] gets the lane-wise max of tile t's scores, taken as they leave the
   registers. */
static inline __attribute__((always_inline)) void qk_tiles(
    const int nq, const int nb, const int lo, const float *const *qt, size_t dq, const float *kb,
    ptrdiff_t k_ts, size_t j0, const uint32_t *idx, size_t nk, const uint32_t *cm,
    float *const *st, const tile_prefetch *pf, col_t *mt)
{
    const col_t ninf = col_set1(X86_NINF);
    for (int t = 0; t < nq; t++)
        mt[t] = ninf;
    for (size_t jj = 0; jj < nk; jj += (size_t)nb) {
        if (pf != NULL)
            prefetch_keys(pf, jj, (size_t)nb);
        const float *kp[QK_NB];
        for (int b = 0; b < nb; b++) {
            size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = kb + (ptrdiff_t)(j0 + idx[jb]) * k_ts;
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
#pragma GCC unroll 16
            for (int u = 0; u < QK_DU; u += QK_DS) {
                for (int s = 0; s < QK_DS; s++) {
                    if (nq == 1) {
                        col_t q = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++)
                            acc[0][s][b] = lo ? col_fma_bc_lo(q, kp[b] + u + s, acc[0][s][b])
                                              : col_fma_bc(q, kp[b] + u + s, acc[0][s][b]);
                    } else {
                        col_t q0 = col_load(qt[0] + qo + (size_t)(u + s) * 16);
                        col_t q1 = col_load(qt[1] + qo + (size_t)(u + s) * 16);
                        for (int b = 0; b < nb; b++) {
                            col_t kv = col_bcast(kp[b] + u + s);
                            acc[0][s][b] = col_fma(q0, kv, acc[0][s][b]);
                            acc[1][s][b] = col_fma(q1, kv, acc[1][s][b]);
                        }
                    }
                }
            }
            for (int b = 0; b < nb; b++) {
                kp[b] += QK_DU;
                __asm__("" : "+r"(kp[b]));
            }
        }
        for (; d < dq; d++, qo += 16) {
            for (int t = 0; t < nq; t++) {
                col_t q = col_load(qt[t] + qo);
                for (int b = 0; b < nb; b++)
                    acc[t][0][b] = col_fma_bc(q, kp[b], acc[t][0][b]);
            }
            for (int b = 0; b < nb; b++)
                kp[b]++;
        }
        for (int t = 0; t < nq; t++)
            for (int b = 0; b < nb; b++) {
                col_t a = acc[t][0][b];
                for (int s = 1; s < QK_DS; s++)
                    a = col_add(a, acc[t][s][b]);
                if (cm != NULL)
                    a = col_select(cmask_bits(cm[jj + (size_t)b < nk ? jj + (size_t)b : nk - 1]),
                                   a, ninf);
                col_store(st[t] + (jj + (size_t)b) * 16, a);
                mt[t] = col_max(mt[t], a);
            }
    }
}

/* One query tile. `lo` (AVX2, tiles of at most 8 rows): the high half of each column is
   padding (Qt there is 0), so its FMAs are skipped and its scores stay 0 (finite; never
   written back). */
static col_t qk_tile(const float *qt, size_t dq, const float *kb, ptrdiff_t k_ts, size_t j0,
                     const uint32_t *idx, size_t nk, const uint32_t *cm, float *st,
                     const tile_prefetch *pf, int lo)
{
    col_t mt;
    if (COL_HALVES && lo)
        qk_tiles(1, QK_NB, 1, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf, &mt);
    else
        qk_tiles(1, QK_NB, 0, &qt, dq, kb, k_ts, j0, idx, nk, cm, &st, pf, &mt);
    return mt;
}

#ifdef QK_NB2
/* Two query tiles against the same FULL key tile (keys j0 .. j0 + nk). */
static void qk_tile2(const float *const *qt, size_t dq, const float *kb, ptrdiff_t k_ts,
                     size_t j0, const uint32_t *idx, size_t nk, float *const *st, col_t *mt)
{
    qk_tiles(2, QK_NB2, 0, qt, dq, kb, k_ts, j0, idx, nk, NULL, st, NULL, mt);
}
#endif

/* Tiles of at most QR_MAX rows (decode with GQA groups of up to 8, a head's last rows): the
   column form spends a 16-lane FMA per key and dim on them with half the lanes or fewer of
   use, so here each row's dot product runs along dim instead (dim / VL FMAs per row and key,
   several keys at a time for independent chains) and vec_hsums4 turns each group of four
   rows' partial sums of a key into 4 lanes of its column, lanes past the rows zero (as the
   zero Q of padding rows gives them in the column form), masked and stored as qk_tiles stores
   it. Decode (dim 128): QK 128 FMAs per key -> 32 plus one hsums4 for 4 rows, 64 plus two
   for 8. qr: the rows' pre-scaled Q, row-major dq apart, rows past the tile's zero; ng
   groups of 4 rows, nkeys keys per step. */
static inline __attribute__((always_inline)) col_t qk_rows_g(
    const int ng, const int nkeys, const float *qr, size_t dq, const float *kb, ptrdiff_t k_ts,
    size_t j0, const uint32_t *idx, size_t nk, const uint32_t *cm, float *st,
    const tile_prefetch *pf)
{
    const col_t ninf = col_set1(X86_NINF);
    col_t mt = ninf;
    for (size_t jj = 0; jj < nk; jj += (size_t)nkeys) {
        if (pf != NULL)
            prefetch_keys(pf, jj, (size_t)nkeys);
        const float *kp[QR_KEYS];
        for (int b = 0; b < nkeys; b++) {
            const size_t jb = jj + (size_t)b < nk ? jj + (size_t)b : nk - 1;
            kp[b] = kb + (ptrdiff_t)(j0 + idx[jb]) * k_ts;
        }
        vec_t acc[QR_KEYS][8];
        for (int b = 0; b < nkeys; b++)
            for (int r = 0; r < 4 * ng; r++)
                acc[b][r] = vec_zero();
        size_t d = 0;
        for (; d + VL <= dq; d += VL) {
            vec_t q[8];
            for (int r = 0; r < 4 * ng; r++)
                q[r] = vec_loadu(qr + (size_t)r * dq + d);
            for (int b = 0; b < nkeys; b++) {
                const vec_t k = vec_loadu(kp[b] + d);
                for (int r = 0; r < 4 * ng; r++)
                    acc[b][r] = vec_fma(q[r], k, acc[b][r]);
            }
        }
        if (d < dq) {
            const vmask_t mk = vmask_first(dq - d);
            vec_t q[8];
            for (int r = 0; r < 4 * ng; r++)
                q[r] = vec_loadu_m(qr + (size_t)r * dq + d, mk);
            for (int b = 0; b < nkeys; b++) {
                const vec_t k = vec_loadu_m(kp[b] + d, mk);
                for (int r = 0; r < 4 * ng; r++)
                    acc[b][r] = vec_fma(q[r], k, acc[b][r]);
            }
        }
        for (int b = 0; b < nkeys && jj + (size_t)b < nk; b++) {
            const col_t a4 = col_from_quarters(
                vec_hsums4(acc[b]), ng == 1 ? q4_zero() : vec_hsums4(acc[b] + 4));
            const col_t a = cm != NULL ? col_select(cmask_bits(cm[jj + (size_t)b]), a4, ninf) : a4;
            col_store(st + (jj + (size_t)b) * 16, a);
            mt = col_max(mt, a);
        }
    }
    return mt;
}

static col_t qk_rows(size_t rows, const float *qr, size_t dq, const float *kb, ptrdiff_t k_ts,
                     size_t j0, const uint32_t *idx, size_t nk, const uint32_t *cm, float *st,
                     const tile_prefetch *pf)
{
    if (QR_MAX > 4 && rows > 4)
        return qk_rows_g(2, QR_KEYS / 2, qr, dq, kb, k_ts, j0, idx, nk, cm, st, pf);
    return qk_rows_g(1, QR_KEYS, qr, dq, kb, k_ts, j0, idx, nk, cm, st, pf);
}

#if !PV_ROWS
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
            job->lse[i0 + r] = x86_lse(mrow[r], l);
    }
}

#endif

/* Row-major O (AVX-512; AVX2 for tiles of at most PV_ROWS_BELOW rows): O[r][e] += P[r][j] * V[j][e] with V rows loaded as vectors in place
   and P[r][j] = st[j*16 + r] broadcast, PV_RB rows x nv vectors of O in registers: per key
   nv + PV_RB loads feed PV_RB * nv FMAs (the transposed form needs one load per FMA). `masked`
   (PARTIAL tiles) merges each row's FMAs only where its row allows the key (a NaN in a V row
   must not reach rows that exclude it). O rows are dvp = round16(dv) floats apart. */
static inline __attribute__((always_inline)) void pv_rows_block(float *orow, size_t dvp,
                                                                size_t r0, const int nr,
                                                                const int nv,
                                                                vmask_t last, const int masked,
                                                                const float *const *vp,
                                                                const vmask_t *km, size_t nk,
                                                                const float *st, const float *al)
{
    vec_t acc[PV_RB][4];
    for (int r = 0; r < nr; r++) {
        const vec_t a = vec_set1(al[r0 + (size_t)r]);
        for (int x = 0; x < nv; x++)
            acc[r][x] = vec_mul(vec_loadu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL), a);
    }
    const float *sp = st + r0;
    for (size_t jj = 0; jj < nk; jj++, sp += 16) {
        const float *v = vp[jj];
        vec_t vv[4];
        for (int x = 0; x < nv; x++)
            vv[x] = x == nv - 1 ? vec_loadu_m(v + x * VL, last) : vec_loadu(v + x * VL);
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
    for (int r = 0; r < nr; r++)
        for (int x = 0; x < nv; x++)
            vec_storeu(orow + (r0 + (size_t)r) * dvp + (size_t)x * VL, acc[r][x]);
}

/* Constant row and vector counts for each call of the block, so its accumulators stay in
   registers. */
static inline __attribute__((always_inline)) void pv_rows_nv(float *oe, size_t dvp, size_t r0,
                                                             const int nr, int nv, vmask_t last,
                                                             int masked, const float *const *vpe,
                                                             const vmask_t *cm, size_t nk,
                                                             const float *st, const float *al)
{
    if (masked) {
        switch (nv) {
        case 4: pv_rows_block(oe, dvp, r0, nr, 4, last, 1, vpe, cm, nk, st, al); break;
        case 3: pv_rows_block(oe, dvp, r0, nr, 3, last, 1, vpe, cm, nk, st, al); break;
        case 2: pv_rows_block(oe, dvp, r0, nr, 2, last, 1, vpe, cm, nk, st, al); break;
        default: pv_rows_block(oe, dvp, r0, nr, 1, last, 1, vpe, cm, nk, st, al); break;
        }
    } else {
        switch (nv) {
        case 4: pv_rows_block(oe, dvp, r0, nr, 4, last, 0, vpe, cm, nk, st, al); break;
        case 3: pv_rows_block(oe, dvp, r0, nr, 3, last, 0, vpe, cm, nk, st, al); break;
        case 2: pv_rows_block(oe, dvp, r0, nr, 2, last, 0, vpe, cm, nk, st, al); break;
        default: pv_rows_block(oe, dvp, r0, nr, 1, last, 0, vpe, cm, nk, st, al); break;
        }
    }
}

static void pv_rows(float *orow, size_t dv, size_t rows, const float *const *vp,
                    const uint32_t *cm, size_t nk, const float *st, const float *al, int masked)
{
    const size_t dvp = x86_round16(dv);
    const float *vpe[SPATTN_TK];
    /* PARTIAL tiles: km[j*16 + r] is all lanes when row r allows key j, else none, built once
       per tile so that the FMAs take their masks from memory (a mask made from the bits in
       a general register costs a port-5 move per row and key, a port the FMAs need). */
    vmask_t km[SPATTN_TK * 16];
    if (masked)
        for (size_t jj = 0; jj < nk; jj++)
            vmask_expand16(km + jj * 16, cm[jj]);
    for (size_t e = 0; e < dv; e += 4 * VL) {
        const size_t left = dv - e;
        const int nv = left >= 4 * VL ? 4 : (int)((left + VL - 1) / VL);
        const size_t tail = left - (size_t)(nv - 1) * VL;
        const vmask_t last = vmask_first(tail < VL ? tail : VL);
        /* The first (for dim_v <= 64 the only) pass uses vp itself. */
        const float *const *vq = vp;
        if (e != 0) {
            for (size_t jj = 0; jj < nk; jj++)
                vpe[jj] = vp[jj] + e;
            vq = vpe;
        }
        float *oe = orow + e;
        /* Rows past the tile's last row are skipped a block at a time, and the short block
           (16 % PV_RB rows) is taken where it computes fewer rows: for the last 4 or fewer,
           and twice for the last 7 or 8 (decode tiles of 4 and 8 rows compute 4 and 8, not
           6 and 10). A row's FMAs are the same in either block. */
        const size_t sb = 16 % PV_RB;
        for (size_t r0 = 0; r0 < rows;) {
            const size_t rl = rows - r0;
            const int nr =
                16 - r0 < PV_RB || (sb != 0 && (rl <= sb || (rl > PV_RB && rl <= 2 * sb)))
                    ? (int)sb
                    : PV_RB;
            if (nr == PV_RB)
                pv_rows_nv(oe, dvp, r0, PV_RB, nv, last, masked, vq, km, nk, st, al);
            else
                pv_rows_nv(oe, dvp, r0, 16 % PV_RB, nv, last, masked, vq, km, nk, st, al);
            r0 += (size_t)nr;
        }
    }
}

/* Writes rows i0 .. i0+rows from row-major O, m and l (lane r = row r). */
static void finish_rows_rm(const spattn_head_job *job, size_t i0, size_t rows, const float *orow,
                           const float *mrow, const float *lrow)
{
    const size_t dv = job->dim_v, dvp = x86_round16(dv);
    for (size_t r = 0; r < rows; r++) {
        float *o = job->o + (ptrdiff_t)(i0 + r) * job->o_ts;
        const float l = lrow[r];
        const vec_t inv = vec_set1(l != 0.0f ? 1.0f / l : 0.0f);
        for (size_t e = 0; e < dv; e += VL) {
            vmask_t mk = vmask_first(dv - e < VL ? dv - e : VL);
            vec_t x = l != 0.0f ? vec_mul(vec_loadu(orow + r * dvp + e), inv) : vec_zero();
            vec_storeu_m(o + e, mk, x);
        }
        if (job->lse)
            job->lse[i0 + r] = x86_lse(mrow[r], l);
    }
}

/* One query tile's state on the tile path: Qt, unnormalised O, scores of the current key
   tile, and the running max and sum. */
typedef struct tile_state {
    float *qtp, *ot, *st, *ml;
    size_t i0, rows;
    int row_major; /* O row-major (pv_rows), else transposed (pv_tile, AVX2) */
    int half;      /* AVX2: rows fit the low half of a column; the high half is skipped */
    int rowdot;    /* at most QR_MAX rows: QK by qk_rows, qtp holds Q row-major */
    col_t mrun, lrun;
} tile_state;

static void tile_begin(tile_state *ts, const spattn_head_job *job, const spattn_mask *m,
                       size_t qt, float *scratch)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    ts->rows = spattn__qt_rows(m, qt);
    ts->i0 = qt * SPATTN_TQ;
    ts->row_major = PV_ROWS || ts->rows <= PV_ROWS_BELOW;
    ts->half = COL_HALVES && ts->rows <= SPATTN_TQ / 2;
    ts->qtp = scratch;
    ts->ot = ts->qtp + 16 * dq;
    ts->st = ts->ot + 16 * x86_round16(dv);
    ts->ml = ts->st + 16 * (SPATTN_TK + QK_NB);
    ts->rowdot = ts->rows <= QR_MAX;
    if (ts->rowdot)
        pack_qr(job, ts->i0, ts->rows, ts->qtp);
    else
        pack_qt(job, ts->i0, ts->rows, ts->qtp);
    memset(ts->ot, 0, 16 * x86_round16(dv) * sizeof(float));
    ts->mrun = col_set1(X86_NINF);
    ts->lrun = col_zero();
}

/* The keys of a stored tile to visit: all of a FULL tile; of a PARTIAL one those some row
   allows (keys no row allows are never loaded), with their column masks. Returns their
   count. */
static size_t tile_keys(const spattn_mask *m, const spattn_ktile *tile, uint32_t *idx,
                        uint32_t *cm)
{
    const size_t n = spattn__kt_cols(m, tile->kt);
    if (tile->part == SPATTN_FULL) {
        for (size_t j = 0; j < n; j++)
            idx[j] = (uint32_t)j;
        return n;
    }
    uint32_t cm_all[SPATTN_TK];
    col_masks_from_rows(&m->bits[(size_t)tile->part * SPATTN_TQ], cm_all);
    size_t nk = 0;
    for (size_t j = 0; j < n; j++) {
        if (cm_all[j] != 0) {
            idx[nk] = (uint32_t)j;
            cm[nk++] = cm_all[j];
        }
    }
    return nk;
}

/* With the tile's scores in ts->st (mt their lane max): softcap, online softmax, O += P V. */
static void tile_fold(tile_state *ts, const spattn_head_job *job, size_t j0,
                      const uint32_t *idx, const uint32_t *cm, size_t nk, int partial, col_t mt)
{
    const col_t ninf = col_set1(X86_NINF);
    float *st = ts->st;
    if (job->softcap != 0.0f) {
        /* tanh comes before the mask and the max; it is a call, so not in qk_tiles. */
        const col_t post = col_set1(job->softcap * X86_LOG2E);
        mt = ninf;
        for (size_t jj = 0; jj < nk; jj++) {
            col_t s = col_mul(col_tanh(col_load(st + jj * 16)), post);
            if (partial)
                s = col_select(cmask_bits(cm[jj]), s, ninf);
            col_store(st + jj * 16, s);
            mt = col_max(mt, s);
        }
    }
    /* While a row has seen only -inf its shift is 0, so exp2(-inf - 0) = 0, not NaN; its
       alpha is 0 (nothing to rescale; exp2 of old - new could overflow). */
    col_t mnew = col_max(ts->mrun, mt);
    col_t shift = col_select(col_is_neginf(mnew), col_zero(), mnew);
    col_t alpha =
        col_select(col_is_neginf(ts->mrun), col_zero(), col_exp2(col_sub(ts->mrun, shift)));
    col_t psum = col_zero();
    if (ts->half) {
        for (size_t jj = 0; jj < nk; jj++) {
            col_t p = col_exp2_lo(col_sub(col_load(st + jj * 16), shift));
            col_store(st + jj * 16, p);
            psum = col_add(psum, p);
        }
    } else {
        for (size_t jj = 0; jj < nk; jj++) {
            col_t p = col_exp2(col_sub(col_load(st + jj * 16), shift));
            col_store(st + jj * 16, p);
            psum = col_add(psum, p);
        }
    }
    ts->lrun = col_add(col_mul(ts->lrun, alpha), psum);
    ts->mrun = mnew;

    const float *vp[SPATTN_TK];
    for (size_t jj = 0; jj < nk; jj++)
        vp[jj] = job->v + (ptrdiff_t)(j0 + idx[jj]) * job->v_ts;
    if (ts->row_major) {
        col_store(ts->ml + 32, alpha);
        pv_rows(ts->ot, job->dim_v, ts->rows, vp, cm, nk, st, ts->ml + 32, partial);
        return;
    }
#if !PV_ROWS
    pv_tile(ts->ot, job->dim_v, vp, cm, nk, st, alpha, partial);
#endif
}

static void tile_end(tile_state *ts, const spattn_head_job *job)
{
    col_store(ts->ml, ts->mrun);
    col_store(ts->ml + 16, ts->lrun);
    if (ts->row_major) {
        finish_rows_rm(job, ts->i0, ts->rows, ts->ot, ts->ml, ts->ml + 16);
        return;
    }
#if !PV_ROWS
    finish_rows(job, ts->i0, ts->rows, ts->ot, ts->ml, ts->ml + 16);
#endif
}

/* Query tiles 2k and 2k+1 walk their key tiles forwards for even k and backwards for odd k: a
   plan runs consecutive query tiles of a head on one thread, so each call starts on the K/V
   tiles the previous one touched last, still in L2 (K+V of a long head exceed it, and a
   forward-only walk would evict each tile just before it is needed again); the two tiles of
   a pair share a direction so that x86_tiles2 can walk them together. The order depends only
   on qt. */
static int walk_backward(size_t qt)
{
    return ((qt >> 1) & 1) != 0;
}

static void x86_tiles(const spattn_head_job *job, const spattn_mask *m, size_t qt, float *scratch)
{
    tile_state ts;
    tile_begin(&ts, job, m, qt, scratch);
    uint32_t idx[SPATTN_TK], cm[SPATTN_TK];
    const size_t t_first = m->qt_ptr[qt], nt = m->qt_ptr[qt + 1] - t_first;
    const int backward = walk_backward(qt);
    for (size_t ti = 0; ti < nt; ti++) {
        const spattn_ktile *tile = &m->tiles[t_first + (backward ? nt - 1 - ti : ti)];
        const size_t j0 = (size_t)tile->kt * SPATTN_TK;
        const int partial = tile->part != SPATTN_FULL;
        const size_t nk = tile_keys(m, tile, idx, cm);
        tile_prefetch pf, *pfp = NULL;
        if (job->stream_kv && ti + 1 < nt) {
            const spattn_ktile *next = &m->tiles[t_first + (backward ? nt - 2 - ti : ti + 1)];
            const size_t nj0 = (size_t)next->kt * SPATTN_TK;
            pf.k = (const char *)(job->k + (ptrdiff_t)nj0 * job->k_ts);
            pf.v = (const char *)(job->v + (ptrdiff_t)nj0 * job->v_ts);
            pf.n = spattn__kt_cols(m, next->kt);
            pf.k_ts = job->k_ts * (ptrdiff_t)sizeof(float);
            pf.v_ts = job->v_ts * (ptrdiff_t)sizeof(float);
            pf.k_bytes = job->dim_qk * sizeof(float);
            pf.v_bytes = job->dim_v * sizeof(float);
            pfp = &pf;
        }
        const uint32_t *cmq = partial && job->softcap == 0.0f ? cm : NULL;
        col_t mt = ts.rowdot ? qk_rows(ts.rows, ts.qtp, job->dim_qk, job->k, job->k_ts, j0, idx,
                                       nk, cmq, ts.st, pfp)
                             : qk_tile(ts.qtp, job->dim_qk, job->k, job->k_ts, j0, idx, nk, cmq,
                                       ts.st, pfp, ts.half);
        tile_fold(&ts, job, j0, idx, cm, nk, partial, mt);
    }
    tile_end(&ts, job);
}

#ifdef QK_NB2
/* Query tiles qt (even) and qt + 1 in one walk over the union of their key tiles: a key tile
   both have is loaded from L2 once for both, and where both are FULL their scores come from
   qk_tile2, which loads each K element once for the two. Every row's result is bitwise what
   x86_tiles gives it (same key order, same arithmetic per lane). */
static void x86_tiles2(const spattn_head_job *job, const spattn_mask *m, size_t qt,
                       float *scratch)
{
    tile_state ts[2];
    tile_begin(&ts[0], job, m, qt, scratch);
    tile_begin(&ts[1], job, m, qt + 1, scratch + tile_state_floats(job->dim_qk, job->dim_v));
    uint32_t idx[2][SPATTN_TK], cm[2][SPATTN_TK];
    const int backward = walk_backward(qt);
    size_t lo[2], hi[2];
    for (int x = 0; x < 2; x++) {
        lo[x] = m->qt_ptr[qt + (size_t)x];
        hi[x] = m->qt_ptr[qt + (size_t)x + 1];
    }
    while (lo[0] < hi[0] || lo[1] < hi[1]) {
        /* The next key tile in walk order of each list, and which lists have it. */
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
        const size_t kt = take[0] ? tile[0]->kt : tile[1]->kt, j0 = kt * SPATTN_TK;
        size_t nk[2] = {0, 0};
        int partial[2] = {0, 0};
        col_t mt[2];
        for (int x = 0; x < 2; x++)
            if (take[x]) {
                partial[x] = tile[x]->part != SPATTN_FULL;
                nk[x] = tile_keys(m, tile[x], idx[x], cm[x]);
            }
        if (take[0] && take[1] && !partial[0] && !partial[1] && !ts[0].rowdot &&
            !ts[1].rowdot) {
            const float *qts[2] = {ts[0].qtp, ts[1].qtp};
            float *sts[2] = {ts[0].st, ts[1].st};
            qk_tile2(qts, job->dim_qk, job->k, job->k_ts, j0, idx[0], nk[0], sts, mt);
        } else {
            for (int x = 0; x < 2; x++) {
                if (!take[x])
                    continue;
                const uint32_t *cmq = partial[x] && job->softcap == 0.0f ? cm[x] : NULL;
                mt[x] = ts[x].rowdot ? qk_rows(ts[x].rows, ts[x].qtp, job->dim_qk, job->k,
                                               job->k_ts, j0, idx[x], nk[x], cmq, ts[x].st, NULL)
                                     : qk_tile(ts[x].qtp, job->dim_qk, job->k, job->k_ts, j0,
                                               idx[x], nk[x], cmq, ts[x].st, NULL, 0);
            }
        }
        for (int x = 0; x < 2; x++)
            if (take[x])
                tile_fold(&ts[x], job, j0, idx[x], cm[x], nk[x], partial[x], mt[x]);
    }
    tile_end(&ts[0], job);
    tile_end(&ts[1], job);
}
#endif

/* ---- gather path ------------------------------------------------------------------------ */

/* The gather path's passes. A call takes a run of a head's query tiles, and its rows go
   through three passes over the whole run (every row's scores, then their probabilities, then
   every row's P V), not row by row: with 16 random keys per row,
   each key serves ~16 rows spread over the head, so it is a pass over many rows that finds K
   (then V) still in L2 from an earlier row, and one row's chain (dots, max, exp, sum,
   products) has the rows beside it to overlap with. */

/* q . K_row, as a vector of partial sums; q may be the caller's row: the dim tail is a masked
   load. */
static inline __attribute__((always_inline)) vec_t dot_vec(const float *q, size_t dq,
                                                           const float *kp)
{
    vec_t acc = vec_zero();
    size_t d = 0;
    for (; d + VL <= dq; d += VL)
        acc = vec_fma(vec_loadu(q + d), vec_loadu(kp + d), acc);
    if (d < dq) {
        const vmask_t mk = vmask_first(dq - d);
        acc = vec_fma(vec_loadu_m(q + d, mk), vec_loadu_m(kp + d, mk), acc);
    }
    return acc;
}

/* q . K[keys[c]] in lane c for c < 16 (raw, unscaled), for 1 <= n <= 16 keys. Lanes past n
   hold a repeat of key n - 1 or 0 (the caller masks them): repeats keep the loop free of
   tests on n, except that rows of at most 4 keys, and half vectors of repeats, are skipped
   (rows of a handful of keys would otherwise pay for 16). */
static inline __attribute__((always_inline)) col_t dots16(const float *q, size_t dq,
                                                          const float *k, ptrdiff_t k_ts,
                                                          const uint32_t *keys, size_t n)
{
    if (n <= 4) {
        vec_t a[4];
        for (size_t c = 0; c < 4; c++)
            a[c] = dot_vec(q, dq, k + (ptrdiff_t)keys[c < n ? c : n - 1] * k_ts);
        return col_from_quarters(vec_hsums4(a), q4_zero());
    }
    vec_t part[16 / VL];
    for (size_t g = 0; g < 16 / VL; g++) {
        vec_t a[VL];
        const size_t c0 = g * VL;
        if (c0 >= n) {
            part[g] = vec_zero();
            continue;
        }
        for (size_t c = 0; c < VL / 2; c++)
            a[c] = dot_vec(q, dq, k + (ptrdiff_t)keys[c0 + c < n ? c0 + c : n - 1] * k_ts);
        if (n - c0 > VL / 2)
            for (size_t c = VL / 2; c < VL; c++)
                a[c] = dot_vec(q, dq, k + (ptrdiff_t)keys[c0 + c < n ? c0 + c : n - 1] * k_ts);
        else
            for (size_t c = VL / 2; c < VL; c++)
                a[c] = vec_zero();
        part[g] = vec_hsums(a);
    }
    return col_from_vecs(part);
}

/* Scores (log2 units, softcap applied) of row q against keys[0 .. n), 1 <= n <= 16; -inf in
   the lanes past n. */
static inline __attribute__((always_inline)) col_t row_scores(const spattn_head_job *job,
                                                              const float *q, size_t dq,
                                                              const uint32_t *keys, size_t n)
{
    col_t s = col_mul(dots16(q, dq, job->k, job->k_ts, keys, n), col_set1(x86_q_factor(job)));
    if (job->softcap != 0.0f)
        s = col_mul(col_tanh(s), col_set1(job->softcap * X86_LOG2E));
    return col_select(cmask_bits((uint32_t)((1u << n) - 1u)), s, col_set1(X86_NINF));
}

/* acc[x] += sum over c < n of p[c] * V[keys[c]][e + x VL ..], x < 4; odd keys go to a second
   set of accumulators (two chains of n/2 FMAs, not one of n), added in at the end. */
static inline __attribute__((always_inline)) void pv_keys4(vec_t *acc, const float *v,
                                                           ptrdiff_t v_ts, const uint32_t *keys,
                                                           const float *p, size_t n, size_t e)
{
    vec_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    vec_t b0 = vec_zero(), b1 = vec_zero(), b2 = vec_zero(), b3 = vec_zero();
    size_t j = 0;
    for (; j + 2 <= n; j += 2) {
        const vec_t pj = vec_set1(p[j]), pk = vec_set1(p[j + 1]);
        const float *x = v + (ptrdiff_t)keys[j] * v_ts + e;
        const float *y = v + (ptrdiff_t)keys[j + 1] * v_ts + e;
        a0 = vec_fma(pj, vec_loadu(x), a0);
        a1 = vec_fma(pj, vec_loadu(x + VL), a1);
        a2 = vec_fma(pj, vec_loadu(x + 2 * VL), a2);
        a3 = vec_fma(pj, vec_loadu(x + 3 * VL), a3);
        b0 = vec_fma(pk, vec_loadu(y), b0);
        b1 = vec_fma(pk, vec_loadu(y + VL), b1);
        b2 = vec_fma(pk, vec_loadu(y + 2 * VL), b2);
        b3 = vec_fma(pk, vec_loadu(y + 3 * VL), b3);
    }
    if (j < n) {
        const vec_t pj = vec_set1(p[j]);
        const float *x = v + (ptrdiff_t)keys[j] * v_ts + e;
        a0 = vec_fma(pj, vec_loadu(x), a0);
        a1 = vec_fma(pj, vec_loadu(x + VL), a1);
        a2 = vec_fma(pj, vec_loadu(x + 2 * VL), a2);
        a3 = vec_fma(pj, vec_loadu(x + 3 * VL), a3);
    }
    acc[0] = vec_add(a0, b0);
    acc[1] = vec_add(a1, b1);
    acc[2] = vec_add(a2, b2);
    acc[3] = vec_add(a3, b3);
}

/* The same for one vector, the last of the row (masked: V rows are not padded). */
static inline __attribute__((always_inline)) vec_t pv_keys1(vec_t a0, const float *v,
                                                            ptrdiff_t v_ts, const uint32_t *keys,
                                                            const float *p, size_t n, size_t e,
                                                            vmask_t mk)
{
    for (size_t j = 0; j < n; j++)
        a0 = vec_fma(vec_set1(p[j]), vec_loadu_m(v + (ptrdiff_t)keys[j] * v_ts + e, mk), a0);
    return a0;
}

/* O = sum over c < n of p[c] V[keys[c]] / l, written to o; exact zeros when l == 0 (no finite
   score: 0 * an infinite V would be NaN). p unnormalised and O scaled once at the end keep
   the sum and its reciprocal off the chain the products wait on. */
static inline __attribute__((always_inline)) void pv_row(const spattn_head_job *job,
                                                         const size_t dv, const uint32_t *keys,
                                                         size_t n, const float *p, float l,
                                                         float *o)
{
    if (l == 0.0f) {
        for (size_t e = 0; e < dv; e += VL)
            vec_storeu_m(o + e, vmask_first(dv - e < VL ? dv - e : VL), vec_zero());
        return;
    }
    const vec_t inv = vec_set1(1.0f / l);
    size_t e = 0;
    for (; e + 4 * VL <= dv; e += 4 * VL) {
        vec_t acc[4] = {vec_zero(), vec_zero(), vec_zero(), vec_zero()};
        pv_keys4(acc, job->v, job->v_ts, keys, p, n, e);
        for (int x = 0; x < 4; x++)
            vec_storeu(o + e + (size_t)x * VL, vec_mul(acc[x], inv));
    }
    for (; e < dv; e += VL) {
        const vmask_t mk = vmask_first(dv - e < VL ? dv - e : VL);
        vec_storeu_m(o + e, mk,
                     vec_mul(pv_keys1(vec_zero(), job->v, job->v_ts, keys, p, n, e, mk), inv));
    }
}

/* Rows i0 .. i0 + rows of kr: scores into sb (row after row, n rounded up to 16 floats
   each), turned into probabilities with their sums in lb, then P V. q is read in place and
   the scale applied to the scores. A row with no key gets l = 0, so zeros and lse -inf. */
static inline __attribute__((always_inline)) void gather_rows_d(
    const spattn_head_job *job, const size_t dq, const size_t dv, const spattn_keyrows *kr,
    size_t i0, size_t rows, float *sb, float *lb)
{
    size_t n;
    float *s = sb;
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *keys = spattn__keyrows_row(kr, i0 + r, &n);
        if (n == 0)
            continue;
        const float *q = job->q + (ptrdiff_t)(i0 + r) * job->q_ts;
        if (n <= 16) {
            col_store(s, row_scores(job, q, dq, keys, n));
            s += 16;
            continue;
        }
        for (size_t c = 0; c < n; c += 16, s += 16)
            col_store(s, row_scores(job, q, dq, keys + c, n - c < 16 ? n - c : 16));
    }
    s = sb;
    for (size_t r = 0; r < rows; r++) {
        spattn__keyrows_row(kr, i0 + r, &n);
        if (n == 0) {
            lb[r] = 0.0f;
            if (job->lse)
                job->lse[i0 + r] = X86_NINF;
            continue;
        }
        const size_t w = x86_round16(n);
        col_t mx = col_load(s);
        for (size_t c = 16; c < w; c += 16)
            mx = col_max(mx, col_load(s + c));
        const float mt = col_hmax(mx), shift = mt == X86_NINF ? 0.0f : mt;
        col_t sum;
        if (w == 16) { /* one block, the common case: mx is its scores (a loop here cost 10 %) */
            sum = col_exp2(col_sub(mx, col_set1(shift)));
            col_store(s, sum);
        } else {
            sum = col_zero();
            for (size_t c = 0; c < w; c += 16) {
                const col_t p = col_exp2(col_sub(col_load(s + c), col_set1(shift)));
                col_store(s + c, p);
                sum = col_add(sum, p);
            }
        }
        const float l = col_hsum(sum);
        lb[r] = l;
        if (job->lse)
            job->lse[i0 + r] = x86_lse(mt, l);
        s += w;
    }
    s = sb;
    for (size_t r = 0; r < rows; r++) {
        const uint32_t *keys = spattn__keyrows_row(kr, i0 + r, &n);
        pv_row(job, dv, keys, n, s, lb[r], job->o + (ptrdiff_t)(i0 + r) * job->o_ts);
        s += x86_round16(n);
    }
}

/* Common head dims as constants, so the dot and P V loops unroll completely. */
static void gather_rows(const spattn_head_job *job, const spattn_keyrows *kr, size_t i0,
                        size_t rows, float *sb, float *lb)
{
    const size_t dq = job->dim_qk, dv = job->dim_v;
    if (dq == 64 && dv == 64)
        gather_rows_d(job, 64, 64, kr, i0, rows, sb, lb);
    else if (dq == 128 && dv == 128)
        gather_rows_d(job, 128, 128, kr, i0, rows, sb, lb);
    else
        gather_rows_d(job, dq, dv, kr, i0, rows, sb, lb);
}

/* Query tiles qt .. qt + nqt - 1 through the keys the plan listed for their rows, in batches
   of rows whose scores fit the scratch: gather_scores floats of scores, then gather_sums
   sums, sized by the call's rows and longest row (the plan's scratch is for its longest
   call). (Software prefetch of the next rows' K and V measured slower: the passes already
   keep enough loads in flight.) */
static void x86_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt,
                       size_t nqt, float *scratch)
{
    size_t i0;
    const size_t i1 = spattn__keyrows_span(kr, qt, nqt, &i0);
    const size_t max_rows = gather_sums(i1 - i0);
    const size_t max_scores = gather_scores(i1 - i0, kr->longest);
    float *sb = scratch, *lb = sb + max_scores;
    for (size_t b = i0, e; b < i1; b = e) {
        size_t used = 0, n;
        for (e = b; e < i1 && e - b < max_rows; e++) {
            spattn__keyrows_row(kr, e, &n);
            if (e > b && used + x86_round16(n) > max_scores)
                break;
            used += x86_round16(n);
        }
        gather_rows(job, kr, b, e - b, sb, lb);
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

/* PROBE_CHAINS independent FMA chains in vec_t registers (the array is fully unrolled, so it
   lives in registers: the loop is FMAs and a counter, nothing else). */
static float x86_fma_probe(size_t iters, double *flops)
{
    vec_t a[PROBE_CHAINS];
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        a[c] = vec_set1(1.0f + 0.01f * (float)c);
    const vec_t x = vec_set1(0.999999f), y = vec_set1(1e-7f);
    for (size_t it = 0; it < iters; it++) {
#pragma GCC unroll 32
        for (int c = 0; c < PROBE_CHAINS; c++)
            a[c] = vec_fma(a[c], x, y);
    }
    vec_t s = vec_zero();
#pragma GCC unroll 32
    for (int c = 0; c < PROBE_CHAINS; c++)
        s = vec_add(s, a[c]);
    *flops = 2.0 * VL * PROBE_CHAINS * (double)iters;
    return vec_hsum(s);
}

#endif

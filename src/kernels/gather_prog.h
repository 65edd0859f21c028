/*
 * Residue blocks of the gather path (keyrows.h, prog_stride): rows that start with a
 * progression of keys c, c + stride, ... take those keys from a copy of residue c's K and V
 * rows, and the rows of one residue are scored and summed together, residue by residue
 * (docs/kernels.md, "Residue blocks").
 */
#ifndef SPATTN_KERNELS_GATHER_PROG_H
#define SPATTN_KERNELS_GATHER_PROG_H

#include <string.h>

#include "convert.h"
#include "kernels/common.h"
#include "kernels/kv_load.h"

/* A gather call's residue blocks (keyrows.h, prog_stride), copied when a row first needs
   them. Residue c's K block, transposed in chunks of 16 keys so that a chunk of scores is one
   vector per dim and a chunk is contiguous: at kt + c * dim_qk * ldt (ldt, the longest
   progression rounded up to 16), chunk x, dim d, lane l at 16 x dim_qk + 16 d + l holds dim d
   of the residue's key 16 x + l. Its V block as rows: v + c * prog_len * ldv, key b in row b.
   kn[c], vn[c]: keys of residue c copied so far. stage: 16 rows of round16(dim_qk) floats, for
   K rows on their way into a block and a group's widened Q rows; tt: 256 floats, a transposed
   16 x 16 tile, after SPATTN_PROG_TT_PAD zeros (prog_kt_block reads a little before it). Per
   batch: stash, the P V sums of each row's progression (row r of the batch at r * ldv);
   off[r], the offset of row r's scores in the batch's score rows; the rows of residue c with
   a progression are list[start[c] .. start[c + 1]), in row order. */
typedef struct gather_prog {
    float *kt, *v, *stage, *tt, *stash;
    uint32_t *kn, *vn, *off, *list, *start;
    size_t ldt, ldv;
} gather_prog;

/* Keys at the start of row i's list that are its progression (0: none, or no blocks). */
static inline size_t prog_keys(const spattn_keyrows *kr, size_t i)
{
    return kr->prog != NULL ? kr->prog[i] : 0;
}

/* Residue c's V block, holding at least its first a keys. */
SPATTN_ALWAYS_INLINE const float *prog_block(const int kvt, const spattn_keyrows *kr,
                                             const void *src, ptrdiff_t ts, float *blocks,
                                             uint32_t *have, size_t c, size_t a, size_t ld,
                                             size_t dim)
{
    float *b = blocks + c * kr->prog_len * ld;
    for (size_t j = have[c]; j < a; j++)
        kv_widen_row(kvt, b + j * ld, kv_row(kvt, src, (ptrdiff_t)(c + j * kr->prog_stride), ts),
                     dim);
    if (a > have[c])
        have[c] = (uint32_t)a;
    return b;
}

/* Residue c's transposed K block, holding at least its first a keys and zeros from there to
   the next multiple of 16 (the score kernel reads whole chunks of 16 keys). Keys are widened
   into gp->stage, up to 16 at a time (those of one chunk of columns), and transposed through
   gp->tt. */
SPATTN_ALWAYS_INLINE const float *prog_kt_block(const int kvt, const spattn_head_job *job,
                                                const spattn_keyrows *kr, gather_prog *gp, size_t c,
                                                size_t a, size_t dq)
{
    float *b = gp->kt + c * dq * gp->ldt;
    const size_t lds = round16(dq);
    for (size_t h = gp->kn[c]; h < a;) {
        const size_t j0 = h / 16 * 16, h2 = a < j0 + 16 ? a : j0 + 16;
        for (size_t j = 0; j < h2 - h; j++)
            kv_widen_row(kvt, gp->stage + j * lds,
                         kv_row(kvt, job->k, (ptrdiff_t)(c + (h + j) * kr->prog_stride), job->k_ts),
                         dq);
        /* Lanes past h2 - h come out 0: the chunk's columns past a. The chunk's first
           s = h - j0 lanes hold keys copied before and are kept, by a blend of the vector that
           holds lane s (its other new lanes read up to 15 floats before tt's row, from the row
           before or the zeros before tt, and are not taken): no masked store, which AVX2 cores
           run far slower than a load, a blend and a store. */
        const size_t s = h - j0;
        for (size_t d0 = 0; d0 < dq; d0 += 16) {
            const size_t w = dq - d0 < 16 ? dq - d0 : 16;
            col_transpose_rows(gp->stage + d0, (ptrdiff_t)lds, h2 - h, w, col_set1(1.0f), gp->tt);
            for (size_t d = 0; d < w; d++) {
                float *row = b + j0 * dq + (d0 + d) * 16;
                const float *src = gp->tt + 16 * d;
                for (size_t x = 0; x < 16; x += VL) {
                    if (x + VL <= s)
                        continue;
                    const vec_t nw = vec_loadu(src + x - s);
                    vec_storeu(row + x,
                               x >= s ? nw
                                      : vec_select(vmask_first(s - x), vec_loadu(row + x), nw));
                }
            }
        }
        h = h2;
    }
    if (a > gp->kn[c])
        gp->kn[c] = (uint32_t)a;
    return b;
}

/* Asks for keys have .. a of residue c of src (K or V, rows ts elements apart, of dim
   elements of type kvt) into L2, for the copy of the next residue's block. */
SPATTN_ALWAYS_INLINE void prog_prefetch(const int kvt, const spattn_keyrows *kr, const void *src,
                                        ptrdiff_t ts, size_t c, size_t have, size_t a, size_t dim)
{
    const size_t bytes = dim * kv_size(kvt);
    for (size_t j = have; j < a; j++) {
        const char *row = kv_row(kvt, src, (ptrdiff_t)(c + j * kr->prog_stride), ts);
        for (size_t x = 0; x < bytes; x += 64)
            vec_prefetch_l2(row + x);
        vec_prefetch_l2(row + bytes - 1);
    }
}

/* Longest progression among the batch's rows of residue c. */
static inline size_t prog_most(const spattn_keyrows *kr, size_t i0, const gather_prog *gp, size_t c)
{
    size_t most = 0;
    for (size_t u = gp->start[c]; u < gp->start[c + 1]; u++) {
        const size_t a = kr->prog[i0 + gp->list[u]];
        most = a > most ? a : most;
    }
    return most;
}

/* Rows i0 .. i0 + rows with a progression, by residue, into gp->list and gp->start. */
static void prog_list_rows(const spattn_keyrows *kr, size_t i0, size_t rows, gather_prog *gp)
{
    const size_t st = kr->prog_stride;
    uint32_t *start = gp->start;
    size_t n;
    memset(start, 0, (st + 1) * sizeof *start);
    for (size_t r = 0; r < rows; r++)
        if (kr->prog[i0 + r] != 0)
            start[spattn__keyrows_row(kr, i0 + r, &n)[0] + 1]++;
    for (size_t c = 0; c < st; c++)
        start[c + 1] += start[c];
    for (size_t r = 0; r < rows; r++)
        if (kr->prog[i0 + r] != 0)
            gp->list[start[spattn__keyrows_row(kr, i0 + r, &n)[0]]++] = (uint32_t)r;
    for (size_t c = st; c > 0; c--) /* each start[c] is now the end of residue c's rows */
        start[c] = start[c - 1];
    start[0] = 0;
}

/* The progression kernels take PROG_GROUP rows of one residue at a time, which share each
   load from its block. Every lane of an accumulator belongs to one row and sums its terms in
   a fixed order (dims in order for a score, keys in order for P V), so a row's result does not
   depend on which rows share its group, batch or thread. The score kernel steps over chunks
   of 16 keys: where a col_t is one register, eight rows and two chunks a step (sixteen chains
   for two FMA pipes, each K vector taken by eight FMAs); where it is several, four rows and
   one chunk. At most the 16 rows of gp->stage, which holds their widened Q. */
#define PROG_GROUP (COL_HALVES ? 4 : 8)
/* Rows per step of the P V kernel: its 4 x rows accumulators must fit the register file. */
#define PROG_PV (VL == 8 ? 2 : 4)

/* Stores row g's scores of the chunk at key c0 of its progression (a keys): scaled,
   softcapped, -inf past a; nothing when the row ends before c0. */
SPATTN_ALWAYS_INLINE void prog_store_chunk(const spattn_head_job *job, col_t acc, size_t a,
                                           float *s, size_t c0)
{
    if (c0 >= a)
        return;
    col_t sc = col_mul(acc, col_set1(q_factor(job)));
    if (job->softcap != 0.0f)
        sc = col_mul(col_tanh(sc), col_set1(job->softcap * K_LOG2E));
    const size_t m = a - c0;
    col_store(s + c0,
              col_select(cmask_bits(m >= 16 ? 0xffffu : (1u << m) - 1u), sc, col_set1(K_NINF)));
}

/* Scores of the 16-key chunk at x0 of the progressions of rows q[0 .. PROG_GROUP) (floats;
   rows past nr repeat row 0 and are not stored), a[g] keys each, against the transposed block
   kt, into s[g] + x0, summed along dim in order. Named accumulators, not an array, so that
   they stay in registers through the loop; a4 .. a7 only where PROG_GROUP is 8 (the compiler
   drops them elsewhere). */
SPATTN_ALWAYS_INLINE void prog_chunks1(const spattn_head_job *job, size_t dq, const float *kt,
                                       const float *const *q, const size_t *a, float *const *s,
                                       size_t nr, size_t x0)
{
    const int eight = PROG_GROUP == 8;
    col_t a0 = col_zero(), a1 = col_zero(), a2 = col_zero(), a3 = col_zero();
    col_t a4 = col_zero(), a5 = col_zero(), a6 = col_zero(), a7 = col_zero();
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    const float *q4 = eight ? q[4] : q0, *q5 = eight ? q[5] : q0, *q6 = eight ? q[6] : q0,
                *q7 = eight ? q[7] : q0;
    for (size_t d = 0; d < dq; d++) {
        const col_t k = col_load(kt + x0 * dq + d * 16);
        a0 = col_fma_bc(k, q0 + d, a0);
        a1 = col_fma_bc(k, q1 + d, a1);
        a2 = col_fma_bc(k, q2 + d, a2);
        a3 = col_fma_bc(k, q3 + d, a3);
        if (eight) {
            a4 = col_fma_bc(k, q4 + d, a4);
            a5 = col_fma_bc(k, q5 + d, a5);
            a6 = col_fma_bc(k, q6 + d, a6);
            a7 = col_fma_bc(k, q7 + d, a7);
        }
    }
    const col_t acc[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (size_t g = 0; g < nr; g++)
        prog_store_chunk(job, acc[g], a[g], s[g], x0);
}

/* The same for 8 rows and the chunks at x0 and x0 + 16 (PROG_GROUP 8). */
SPATTN_ALWAYS_INLINE void prog_chunks2_8(const spattn_head_job *job, size_t dq, const float *kt,
                                         const float *const *q, const size_t *a, float *const *s,
                                         size_t nr, size_t x0)
{
    col_t a0 = col_zero(), a1 = col_zero(), a2 = col_zero(), a3 = col_zero();
    col_t a4 = col_zero(), a5 = col_zero(), a6 = col_zero(), a7 = col_zero();
    col_t b0 = col_zero(), b1 = col_zero(), b2 = col_zero(), b3 = col_zero();
    col_t b4 = col_zero(), b5 = col_zero(), b6 = col_zero(), b7 = col_zero();
    const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
    const float *q4 = q[4], *q5 = q[5], *q6 = q[6], *q7 = q[7];
    for (size_t d = 0; d < dq; d++) {
        const col_t k = col_load(kt + x0 * dq + d * 16), l = col_load(kt + (x0 + 16) * dq + d * 16);
        a0 = col_fma_bc(k, q0 + d, a0);
        b0 = col_fma_bc(l, q0 + d, b0);
        a1 = col_fma_bc(k, q1 + d, a1);
        b1 = col_fma_bc(l, q1 + d, b1);
        a2 = col_fma_bc(k, q2 + d, a2);
        b2 = col_fma_bc(l, q2 + d, b2);
        a3 = col_fma_bc(k, q3 + d, a3);
        b3 = col_fma_bc(l, q3 + d, b3);
        a4 = col_fma_bc(k, q4 + d, a4);
        b4 = col_fma_bc(l, q4 + d, b4);
        a5 = col_fma_bc(k, q5 + d, a5);
        b5 = col_fma_bc(l, q5 + d, b5);
        a6 = col_fma_bc(k, q6 + d, a6);
        b6 = col_fma_bc(l, q6 + d, b6);
        a7 = col_fma_bc(k, q7 + d, a7);
        b7 = col_fma_bc(l, q7 + d, b7);
    }
    const col_t acc[16] = {a0, b0, a1, b1, a2, b2, a3, b3, a4, b4, a5, b5, a6, b6, a7, b7};
    for (size_t g = 0; g < nr; g++) {
        prog_store_chunk(job, acc[2 * g], a[g], s[g], x0);
        prog_store_chunk(job, acc[2 * g + 1], a[g], s[g], x0 + 16);
    }
}

/* Out of line: inlined into the passes, the accumulators went to the stack. */
static __attribute__((noinline)) void prog_score_group(const spattn_head_job *job, size_t dq,
                                                       const float *kt, const float *const *q,
                                                       const size_t *a, float *const *s, size_t nr,
                                                       size_t most)
{
    size_t x0 = 0;
    if (PROG_GROUP == 8)
        for (; x0 + 16 < most; x0 += 32)
            prog_chunks2_8(job, dq, kt, q, a, s, nr, x0);
    for (; x0 < most; x0 += 16)
        prog_chunks1(job, dq, kt, q, a, s, nr, x0);
}

/* The progressions' scores of the batch's rows (gp->list), residue by residue: every row of a
   residue reads its K block, so it is copied once (the batch's part of it at once, its rows
   asked for while the residue before computes) and read from L1 by the rows of a group. */
SPATTN_ALWAYS_INLINE void prog_scores(const int kvt, const spattn_head_job *job, size_t dq,
                                      const spattn_keyrows *kr, size_t i0, float *sb,
                                      gather_prog *gp)
{
    const ptrdiff_t qs = (ptrdiff_t)spattn__dtype_size(job->q_dtype);
    const size_t st = kr->prog_stride;
    for (size_t c = 0; c < st; c++) {
        if (gp->start[c] == gp->start[c + 1])
            continue;
        const float *kt = prog_kt_block(kvt, job, kr, gp, c, prog_most(kr, i0, gp, c), dq);
        if (c + 1 < st)
            prog_prefetch(kvt, kr, job->k, job->k_ts, c + 1, gp->kn[c + 1],
                          prog_most(kr, i0, gp, c + 1), dq);
        for (size_t u = gp->start[c]; u < gp->start[c + 1]; u += PROG_GROUP) {
            const size_t nr = gp->start[c + 1] - u < PROG_GROUP ? gp->start[c + 1] - u : PROG_GROUP;
            const float *q[PROG_GROUP] = {NULL}; /* all set below; gcc cannot tell */
            float *s[PROG_GROUP];
            size_t a[PROG_GROUP], most = 0; /* most: here, not from a[] in the kernel, whose
                                                vector load of a[] would wait on these stores */
            for (size_t g = 0; g < PROG_GROUP; g++) {
                const size_t r = gp->list[u + (g < nr ? g : 0)];
                a[g] = kr->prog[i0 + r];
                most = a[g] > most ? a[g] : most;
                s[g] = sb + gp->off[r];
                const void *qv = (const char *)job->q + (ptrdiff_t)(i0 + r) * job->q_ts * qs;
                if (g >= nr) {
                    q[g] = q[0];
                } else if (job->q_dtype != SPATTN_DTYPE_F32) {
                    float *w = gp->stage + g * round16(dq);
                    row_widen((int)job->q_dtype, w, qv, dq);
                    q[g] = w;
                } else {
                    q[g] = qv;
                }
            }
            prog_score_group(job, dq, kt, q, a, s, nr, most);
        }
    }
}

/* out[g] = sum over j < a[g] of p[g][j] V_j for rows g < nr (V_j: row j of the block vb, ld
   floats apart; rows past nr repeat row 0 and are not stored). */
static __attribute__((noinline)) void prog_pv_group(size_t dv, const float *vb, size_t ld,
                                                    const float *const *p, const size_t *a,
                                                    float *const *out, size_t nr)
{
    size_t fewest = a[0];
    for (size_t g = 1; g < nr; g++)
        fewest = a[g] < fewest ? a[g] : fewest;
    size_t e = 0;
    for (; e + 4 * VL <= dv; e += 4 * VL) {
        vec_t acc[PROG_PV][4];
        for (size_t g = 0; g < PROG_PV; g++)
            for (int x = 0; x < 4; x++)
                acc[g][x] = vec_zero();
        for (size_t j = 0; j < fewest; j++) {
            const float *vj = vb + j * ld + e;
            const vec_t v0 = vec_loadu(vj), v1 = vec_loadu(vj + VL), v2 = vec_loadu(vj + 2 * VL),
                        v3 = vec_loadu(vj + 3 * VL);
            for (size_t g = 0; g < PROG_PV; g++) {
                const vec_t pj = vec_set1(p[g][j]);
                acc[g][0] = vec_fma(pj, v0, acc[g][0]);
                acc[g][1] = vec_fma(pj, v1, acc[g][1]);
                acc[g][2] = vec_fma(pj, v2, acc[g][2]);
                acc[g][3] = vec_fma(pj, v3, acc[g][3]);
            }
        }
        /* stored, then each row's keys past the fewest added to its stored sums (the same
           chain: a stored float is the register's value) */
        for (size_t g = 0; g < PROG_PV; g++)
            if (g < nr)
                for (int x = 0; x < 4; x++)
                    vec_storeu(out[g] + e + (size_t)x * VL, acc[g][x]);
        for (size_t g = 0; g < nr; g++) {
            if (a[g] == fewest)
                continue;
            float *o = out[g] + e;
            vec_t c0 = vec_loadu(o), c1 = vec_loadu(o + VL), c2 = vec_loadu(o + 2 * VL),
                  c3 = vec_loadu(o + 3 * VL);
            for (size_t j = fewest; j < a[g]; j++) {
                const float *vj = vb + j * ld + e;
                const vec_t pj = vec_set1(p[g][j]);
                c0 = vec_fma(pj, vec_loadu(vj), c0);
                c1 = vec_fma(pj, vec_loadu(vj + VL), c1);
                c2 = vec_fma(pj, vec_loadu(vj + 2 * VL), c2);
                c3 = vec_fma(pj, vec_loadu(vj + 3 * VL), c3);
            }
            vec_storeu(o, c0);
            vec_storeu(o + VL, c1);
            vec_storeu(o + 2 * VL, c2);
            vec_storeu(o + 3 * VL, c3);
        }
    }
    /* the last 4 or fewer vectors: masked only for the row's tail (see pv_keys_1v) */
    for (; e < dv; e += VL) {
        const size_t w = dv - e < VL ? dv - e : VL;
        const vmask_t mk = vmask_first(w);
        for (size_t g = 0; g < nr; g++) {
            vec_t acc = vec_zero();
            if (w == VL) {
                for (size_t j = 0; j < a[g]; j++)
                    acc = vec_fma(vec_set1(p[g][j]), vec_loadu(vb + j * ld + e), acc);
                vec_storeu(out[g] + e, acc);
            } else {
                for (size_t j = 0; j < a[g]; j++)
                    acc = vec_fma(vec_set1(p[g][j]), vec_loadu_m(vb + j * ld + e, mk), acc);
                vec_storeu_m(out[g] + e, mk, acc);
            }
        }
    }
}

/* The progressions' P V of the batch's rows, residue by residue, into gp->stash (rows with
   factor lb[r] 0 get zeros from pv_gather_row and are left out). */
SPATTN_ALWAYS_INLINE void prog_pv(const int kvt, const spattn_head_job *job, size_t dv,
                                  const spattn_keyrows *kr, size_t i0, const float *sb,
                                  const float *lb, gather_prog *gp)
{
    const size_t st = kr->prog_stride;
    for (size_t c = 0; c < st; c++) {
        size_t u = gp->start[c];
        const size_t end = gp->start[c + 1];
        if (u == end)
            continue;
        const float *vb = prog_block(kvt, kr, job->v, job->v_ts, gp->v, gp->vn, c,
                                     prog_most(kr, i0, gp, c), gp->ldv, dv);
        if (c + 1 < st)
            prog_prefetch(kvt, kr, job->v, job->v_ts, c + 1, gp->vn[c + 1],
                          prog_most(kr, i0, gp, c + 1), dv);
        while (u < end) {
            const float *p[PROG_PV];
            float *out[PROG_PV];
            size_t a[PROG_PV], nr = 0;
            for (; u < end && nr < PROG_PV; u++) {
                const size_t r = gp->list[u];
                if (lb[r] == 0.0f)
                    continue;
                a[nr] = kr->prog[i0 + r];
                p[nr] = sb + gp->off[r];
                out[nr] = gp->stash + r * gp->ldv;
                nr++;
            }
            if (nr == 0)
                break;
            for (size_t g = nr; g < PROG_PV; g++) {
                a[g] = a[0];
                p[g] = p[0];
                out[g] = out[0];
            }
            prog_pv_group(dv, vb, gp->ldv, p, a, out, nr);
        }
    }
}

#endif

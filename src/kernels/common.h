/*
 * What every part of the kernel template shares: units, the row's lse, and the factor Q is
 * scaled by. Scores are kept in log2 units (Q pre-scaled by scale * log2(e)) so that
 * P = exp2(S - m) costs no multiply per score.
 */
#ifndef SPATTN_KERNELS_COMMON_H
#define SPATTN_KERNELS_COMMON_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernel.h"
#include "kernels/vec.h"

#define K_LOG2E 1.4426950408889634f
#define K_LN2 0.6931471805599453
#define K_NINF (-__builtin_inff())

#if SPATTN_TQ != 16
#error "the tile path maps the 16 rows of a query tile onto the 16 lanes of a col_t"
#endif

static size_t round16(size_t n)
{
    return (n + 15) & ~(size_t)15;
}

/* The keys [*lo, return) of a PARTIAL tile from the first to the last that one of rows
   r0 .. r0 + nr - 1 allows (cm[jj]: bit r for row r). The others' masked FMAs leave those rows
   as they are, so a row block of a band (a window, a causal diagonal) skips them with the same
   bits. */
static inline size_t block_keys(const uint32_t *cm, size_t nk, size_t r0, int nr, size_t *lo)
{
    const uint32_t b = (((uint32_t)1 << nr) - 1) << r0;
    size_t a = 0, z = nk;
    while (a < z && (cm[a] & b) == 0)
        a++;
    while (z > a && (cm[z - 1] & b) == 0)
        z--;
    *lo = a;
    return z;
}

/* A row's lse from its max (log2 units) and sum. */
static float row_lse(float m, float l)
{
    return spattn__row_lse((double)m * K_LN2, (double)l);
}

/* What multiplies Q before the products, and what multiplies tanh after (softcap only). */
static float q_factor(const spattn_head_job *job)
{
    return job->softcap != 0.0f ? job->scale / job->softcap : job->scale * K_LOG2E;
}

/* Whether scores get a pass after QK (softcap: tanh is a call, kept out of the QK registers),
   which then also applies ALiBi and the mask. Without softcap both happen in the QK kernels'
   store. */
static int scores_pass(const spattn_head_job *job)
{
    return job->softcap != 0.0f;
}

/* The ALiBi term of one query tile against one key tile, added as scores leave the QK
   registers: s += nslope * |pos - j| per lane, with pos the lane's query position minus the
   key tile's first key and j the key's index in the tile. The distance is exact: positions
   are integers below 2^24. */
typedef struct qk_alibi {
    col_t nslope, pos;
} qk_alibi;

static inline col_t qk_alibi_add(const qk_alibi *al, uint32_t j, col_t s)
{
    return col_fma(al->nslope, col_abs(col_sub(al->pos, col_set1((float)j))), s);
}

/* Row i's value of a per-row modifier of the job (its slope or its sink). */
static float mod_row(const spattn_head_job *job, const float *v, size_t i)
{
    return v[(ptrdiff_t)i * job->mod_step];
}

/* Row i's ALiBi slope as the factor of |i' - j| in log2 units, kept finite: a finite slope
   beyond 2.4e38 would otherwise become an infinite factor, and inf * 0 at distance 0 NaN. */
static float alibi_factor(const spattn_head_job *job, size_t i)
{
    const float f = -mod_row(job, job->slopes, i) * K_LOG2E;
    return f < -FLT_MAX ? -FLT_MAX : f > FLT_MAX ? FLT_MAX : f;
}

/* Row i's lse, and the factor its unnormalised O is multiplied by, from its max m (log2
   units) and its sum l of exp2(s - m) over its keys. A sink joins here, once per row, as the
   contract's one more logit: in units of 2^m it adds e = 2^(sink log2(e) - m) to the sum, so
   O = O_keys / (l + e) and lse = m ln 2 + log(l + e), one exp2 per row (in double, where
   sink log2(e) cannot overflow). A sink so far above the keys that e is infinite gives O = 0
   and lse = sink + log1p(l 2^(m - sink log2(e))); a row with no key gets exactly lse = sink.
   The factor is 0 when l is 0; such a row's O is written as zeros. The lse goes to *lse
   unless lse is NULL (without a sink it then costs no log). NaN in m or l stays NaN. */
/* A row's factor for O without a sink: 1 / l, 0 for a row with no allowed key (l == 0). */
static inline float row_inv(float l)
{
    return l != 0.0f ? 1.0f / l : 0.0f;
}

static float row_scale(const spattn_head_job *job, size_t i, float m, float l, float *lse)
{
    const float sink = job->sinks != NULL ? mod_row(job, job->sinks, i) : K_NINF;
    if (sink == K_NINF) {
        if (lse != NULL)
            *lse = row_lse(m, l);
        return row_inv(l);
    }
    if (l == 0.0f) {
        if (lse != NULL)
            *lse = sink;
        return 0.0f;
    }
    const double s2 = (double)sink * 1.4426950408889634, e = exp2(s2 - (double)m);
    const double sum = (double)l + e;
    if (lse != NULL)
        *lse = isinf(sum) ? (float)((double)sink + log1p((double)l * exp2((double)m - s2)))
                          : (float)((double)m * K_LN2 + log(sum));
    return (float)(1.0 / sum);
}

/* Hides a pointer's value from the optimiser at this point: otherwise it rewrites p + k for
   several constant k as one base plus an index register each (running out of registers, or
   splitting each load-FMA into two uops at issue), where [p + imm] is what we want. */
#define OPAQUE_PTR(p) __asm__("" : "+r"(p))

/* The same for a vector: once loaded it is in a register, which the optimiser then keeps
   instead of folding the load into each instruction that reads it (one load per use). */
#if defined(__x86_64__) || defined(__i386__)
#define OPAQUE_VEC(v) __asm__("" : "+v"(v))
#elif defined(__aarch64__)
#define OPAQUE_VEC(v) __asm__("" : "+w"(v))
#else
#define OPAQUE_VEC(v) ((void)0)
#endif

#endif

/*
 * Tile path: one query tile against each of its stored key tiles, flash-attention style.
 *
 * The 16 rows are processed in register blocks of 4. For one block and one key tile:
 *  1. scores: 4 rows x 4 keys per step, dot products accumulated along the dim and reduced
 *     so that each result vector holds one key for the 4 rows (rows in lanes);
 *  2. softcap, then (PARTIAL only) -inf where a row's bit is clear;
 *  3. online softmax as plain lane-wise vector ops: running max, rescale, exp, sum;
 *  4. O += P V with the block's O held in registers, one lane-indexed FMA per row and V vector.
 * FULL tiles run steps 2 and 4 with no per-key tests. Keys that no row of the block allows are
 * never loaded; keys some rows allow enter only those rows (masked to -inf in step 2 and
 * skipped per row in step 4, so a NaN in such a K or V row cannot reach the other rows).
 */
#include "arm/neon_kernels.h"

#include "arm/neon_math.h"

typedef struct tiles_ctx {
    const spattn_head_job *job;
    const spattn_mask *mask;
    size_t qt, nrows, dfull, dtail;
    spattn_neon_scratch s;
    int softcap;
    float32x4_t cap, inv_cap;
} tiles_ctx;

#define ROWS4(X) X(0) X(1) X(2) X(3)

/* Scores of 4 rows (q, stride dq4, zero-padded) against 4 keys: out[4*j + r] = q_r . k_j. */
SPATTN_NEON_INLINE void dots_4x4(const float *q, size_t dq4, const float *const k[4],
                                 size_t dfull, size_t dtail, float *out)
{
#define ACC(r) float32x4_t a##r##0 = vdupq_n_f32(0.0f), a##r##1 = a##r##0, a##r##2 = a##r##0, \
                           a##r##3 = a##r##0;
    ROWS4(ACC)
#undef ACC
#define FMA_ROW(r)                                   \
    {                                                \
        float32x4_t qv = vld1q_f32(q + r * dq4 + d); \
        a##r##0 = vfmaq_f32(a##r##0, qv, k0);        \
        a##r##1 = vfmaq_f32(a##r##1, qv, k1);        \
        a##r##2 = vfmaq_f32(a##r##2, qv, k2);        \
        a##r##3 = vfmaq_f32(a##r##3, qv, k3);        \
    }
    size_t d = 0;
    for (; d < dfull; d += 4) {
        float32x4_t k0 = vld1q_f32(k[0] + d), k1 = vld1q_f32(k[1] + d);
        float32x4_t k2 = vld1q_f32(k[2] + d), k3 = vld1q_f32(k[3] + d);
        ROWS4(FMA_ROW)
    }
    if (dtail) {
        /* Q is zero past dim_qk; K is read only up to it. */
        float32x4_t k0 = spattn_neon_load_n(k[0] + d, dtail);
        float32x4_t k1 = spattn_neon_load_n(k[1] + d, dtail);
        float32x4_t k2 = spattn_neon_load_n(k[2] + d, dtail);
        float32x4_t k3 = spattn_neon_load_n(k[3] + d, dtail);
        ROWS4(FMA_ROW)
    }
#undef FMA_ROW
    vst1q_f32(out + 0, spattn_neon_hsum4(a00, a10, a20, a30));
    vst1q_f32(out + 4, spattn_neon_hsum4(a01, a11, a21, a31));
    vst1q_f32(out + 8, spattn_neon_hsum4(a02, a12, a22, a32));
    vst1q_f32(out + 12, spattn_neon_hsum4(a03, a13, a23, a33));
}

/* Lane-indexed FMAs of one key (probabilities pj, V vectors v0..v3) into row r's accumulators. */
#define PV16_ROW(r)                                 \
    o##r##0 = vfmaq_laneq_f32(o##r##0, v0, pj, r); \
    o##r##1 = vfmaq_laneq_f32(o##r##1, v1, pj, r); \
    o##r##2 = vfmaq_laneq_f32(o##r##2, v2, pj, r); \
    o##r##3 = vfmaq_laneq_f32(o##r##3, v3, pj, r);
#define PV4_ROW(r) o##r = vfmaq_laneq_f32(o##r, v0, pj, r);

/* O[rows][d0, d0+16) = alpha * O + sum over keys of P V. nib == NULL: every key < ncols for
   every row (FULL tile). Else nib[j] says which rows take key j; `care` has the bits of the
   rows that exist, so a key every existing row takes runs without per-row tests. */
SPATTN_NEON_INLINE void pv16(float *o, size_t dv4, size_t d0, float32x4_t alpha,
                             const float *p, const float *v, ptrdiff_t v_ts, size_t ncols,
                             const uint8_t *nib, unsigned care)
{
#define LOAD_ROW(r)                                                        \
    float32x4_t o##r##0 = vmulq_laneq_f32(vld1q_f32(o + r * dv4 + d0), alpha, r);      \
    float32x4_t o##r##1 = vmulq_laneq_f32(vld1q_f32(o + r * dv4 + d0 + 4), alpha, r);  \
    float32x4_t o##r##2 = vmulq_laneq_f32(vld1q_f32(o + r * dv4 + d0 + 8), alpha, r);  \
    float32x4_t o##r##3 = vmulq_laneq_f32(vld1q_f32(o + r * dv4 + d0 + 12), alpha, r);
    ROWS4(LOAD_ROW)
#undef LOAD_ROW
    for (size_t j = 0; j < ncols; j++) {
        unsigned n = 15;
        if (nib) {
            n = nib[j];
            if (n == 0)
                continue;
        }
        const float *vp = v + (ptrdiff_t)j * v_ts + d0;
        float32x4_t pj = vld1q_f32(p + 4 * j);
        float32x4_t v0 = vld1q_f32(vp), v1 = vld1q_f32(vp + 4);
        float32x4_t v2 = vld1q_f32(vp + 8), v3 = vld1q_f32(vp + 12);
        if (((n | ~care) & 15) == 15) {
            ROWS4(PV16_ROW)
        } else {
            if (n & 1) {
                PV16_ROW(0)
            }
            if (n & 2) {
                PV16_ROW(1)
            }
            if (n & 4) {
                PV16_ROW(2)
            }
            if (n & 8) {
                PV16_ROW(3)
            }
        }
    }
#define STORE_ROW(r)                               \
    vst1q_f32(o + r * dv4 + d0, o##r##0);          \
    vst1q_f32(o + r * dv4 + d0 + 4, o##r##1);      \
    vst1q_f32(o + r * dv4 + d0 + 8, o##r##2);      \
    vst1q_f32(o + r * dv4 + d0 + 12, o##r##3);
    ROWS4(STORE_ROW)
#undef STORE_ROW
}

/* The same for one vector of dims [d0, d0 + w), w <= 4 (the dims left over after pv16). */
SPATTN_NEON_INLINE void pv4(float *o, size_t dv4, size_t d0, size_t w, float32x4_t alpha,
                            const float *p, const float *v, ptrdiff_t v_ts, size_t ncols,
                            const uint8_t *nib, unsigned care)
{
#define LOAD_ROW(r) float32x4_t o##r = vmulq_laneq_f32(vld1q_f32(o + r * dv4 + d0), alpha, r);
    ROWS4(LOAD_ROW)
#undef LOAD_ROW
    for (size_t j = 0; j < ncols; j++) {
        unsigned n = 15;
        if (nib) {
            n = nib[j];
            if (n == 0)
                continue;
        }
        float32x4_t pj = vld1q_f32(p + 4 * j);
        float32x4_t v0 = spattn_neon_load_n(v + (ptrdiff_t)j * v_ts + d0, w);
        if (((n | ~care) & 15) == 15) {
            ROWS4(PV4_ROW)
        } else {
            if (n & 1) {
                PV4_ROW(0)
            }
            if (n & 2) {
                PV4_ROW(1)
            }
            if (n & 4) {
                PV4_ROW(2)
            }
            if (n & 8) {
                PV4_ROW(3)
            }
        }
    }
#define STORE_ROW(r) vst1q_f32(o + r * dv4 + d0, o##r);
    ROWS4(STORE_ROW)
#undef STORE_ROW
}

#undef PV16_ROW
#undef PV4_ROW

/* One register block (rows row0 .. row0+3 of the tile) against one stored key tile. */
static void block_tile(const tiles_ctx *c, const spattn_ktile *t, size_t row0)
{
    const spattn_head_job *job = c->job;
    const spattn_neon_scratch *s = &c->s;
    uint64_t b[SPATTN_NEON_RB];
    for (size_t r = 0; r < SPATTN_NEON_RB; r++)
        b[r] = spattn__tile_row_bits(c->mask, t, c->qt, row0 + r);
    uint64_t any = b[0] | b[1] | b[2] | b[3];
    if (any == 0)
        return;
    const int full = t->part == SPATTN_FULL;
    const size_t ncols = spattn__kt_cols(c->mask, t->kt);
    const size_t ngroups = (ncols + 3) / 4;
    const size_t key0 = (size_t)t->kt * SPATTN_TK;
    const float *kb = job->k + (ptrdiff_t)key0 * job->k_ts;
    const float *q = s->qs + row0 * s->dq4;
    float *p = s->p;

    /* 1. Scores of the key groups some row of the block takes. */
    uint32_t live = 0;
    for (size_t g = 0; g < ngroups; g++) {
        unsigned nib = (unsigned)(any >> (4 * g)) & 15;
        if (nib == 0)
            continue;
        live |= (uint32_t)1 << g;
        const float *kp[4];
        for (size_t u = 0; u < 4; u++)
            kp[u] = (nib >> u) & 1 ? kb + (ptrdiff_t)(4 * g + u) * job->k_ts : s->zero;
        dots_4x4(q, s->dq4, kp, c->dfull, c->dtail, p + 16 * g);
    }

    /* 2. Softcap and mask; the running max of the block's rows. */
    const float32x4_t ninf = spattn_neon_neg_inf();
    const uint32_t lo_init[4] = {(uint32_t)b[0], (uint32_t)b[1], (uint32_t)b[2], (uint32_t)b[3]};
    const uint32_t hi_init[4] = {(uint32_t)(b[0] >> 32), (uint32_t)(b[1] >> 32),
                                 (uint32_t)(b[2] >> 32), (uint32_t)(b[3] >> 32)};
    const uint32x4_t lo = vld1q_u32(lo_init), hi = vld1q_u32(hi_init);
    float32x4_t mx = ninf;
    for (size_t g = 0; g < ngroups; g++) {
        if (!((live >> g) & 1))
            continue;
        size_t jend = 4 * g + 4 < ncols ? 4 * g + 4 : ncols;
        for (size_t j = 4 * g; j < jend; j++) {
            float32x4_t x = vld1q_f32(p + 4 * j);
            if (c->softcap)
                x = spattn_neon_softcap(x, c->cap, c->inv_cap);
            if (!full) {
                uint32x4_t sel = vtstq_u32(j < 32 ? lo : hi, vdupq_n_u32(1u << (j & 31)));
                x = vbslq_f32(sel, x, ninf);
            }
            vst1q_f32(p + 4 * j, x);
            mx = vmaxq_f32(mx, x);
        }
    }

    /* 3. Online softmax: new max, rescale factor, probabilities and their sum. */
    float32x4_t m_old = vld1q_f32(s->m + row0);
    float32x4_t m_new = vmaxq_f32(m_old, mx);
    float32x4_t base = spattn_neon_exp_base(m_new);
    float32x4_t alpha = spattn_neon_exp(vsubq_f32(m_old, base));
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (size_t g = 0; g < ngroups; g++) {
        if (!((live >> g) & 1))
            continue;
        size_t jend = 4 * g + 4 < ncols ? 4 * g + 4 : ncols;
        for (size_t j = 4 * g; j < jend; j++) {
            float32x4_t e = spattn_neon_exp(vsubq_f32(vld1q_f32(p + 4 * j), base));
            vst1q_f32(p + 4 * j, e);
            sum = vaddq_f32(sum, e);
        }
    }
    vst1q_f32(s->m + row0, m_new);
    vst1q_f32(s->l + row0, vfmaq_f32(sum, vld1q_f32(s->l + row0), alpha));

    /* 4. O = alpha * O + P V. */
    uint8_t nibs[SPATTN_TK];
    const uint8_t *nib = NULL;
    unsigned care = 15;
    if (!full) {
        for (size_t j = 0; j < ncols; j++) {
            nibs[j] = (uint8_t)(((b[0] >> j) & 1) | ((b[1] >> j) & 1) << 1 |
                                ((b[2] >> j) & 1) << 2 | ((b[3] >> j) & 1) << 3);
        }
        nib = nibs;
        size_t exist = c->nrows - row0 < SPATTN_NEON_RB ? c->nrows - row0 : SPATTN_NEON_RB;
        care = (1u << exist) - 1;
    }
    const float *vb = job->v + (ptrdiff_t)key0 * job->v_ts;
    float *o = s->o + row0 * s->dv4;
    size_t d = 0;
    for (; d + 16 <= job->dim_v; d += 16)
        pv16(o, s->dv4, d, alpha, p, vb, job->v_ts, ncols, nib, care);
    for (; d < job->dim_v; d += 4) {
        size_t w = job->dim_v - d < 4 ? job->dim_v - d : 4;
        pv4(o, s->dv4, d, w, alpha, p, vb, job->v_ts, ncols, nib, care);
    }
}

/* O / l and lse for the rows that exist; O = 0 and lse = -inf where nothing was allowed. */
static void finish_rows(const tiles_ctx *c)
{
    const spattn_head_job *job = c->job;
    const spattn_neon_scratch *s = &c->s;
    size_t r0 = c->qt * SPATTN_TQ;
    for (size_t r = 0; r < c->nrows; r++) {
        float l = s->l[r];
        /* l == 0: nothing allowed, or every allowed score -inf; O = 0 either way. */
        const int none = l == 0.0f;
        float inv = none ? 0.0f : 1.0f / l;
        float *out = job->o + (ptrdiff_t)(r0 + r) * job->o_ts;
        const float *acc = s->o + r * s->dv4;
        for (size_t d = 0; d < job->dim_v; d += 4) {
            float32x4_t y = none ? vdupq_n_f32(0.0f) : vmulq_n_f32(vld1q_f32(acc + d), inv);
            spattn_neon_store_n(out + d, y, job->dim_v - d < 4 ? job->dim_v - d : 4);
        }
        if (job->lse)
            job->lse[r0 + r] = none ? -INFINITY : s->m[r] + logf(l);
    }
}

/* Q rows of the tile times scale, zero-padded to whole vectors and to whole register blocks. */
static void load_q(const tiles_ctx *c, size_t nrows_padded)
{
    const spattn_head_job *job = c->job;
    const spattn_neon_scratch *s = &c->s;
    float32x4_t sc = vdupq_n_f32(job->scale);
    size_t r0 = c->qt * SPATTN_TQ;
    for (size_t r = 0; r < nrows_padded; r++) {
        float *dst = s->qs + r * s->dq4;
        if (r >= c->nrows) {
            for (size_t d = 0; d < s->dq4; d += 4)
                vst1q_f32(dst + d, vdupq_n_f32(0.0f));
            continue;
        }
        const float *src = job->q + (ptrdiff_t)(r0 + r) * job->q_ts;
        size_t d = 0;
        for (; d < c->dfull; d += 4)
            vst1q_f32(dst + d, vmulq_f32(vld1q_f32(src + d), sc));
        if (c->dtail)
            vst1q_f32(dst + d, vmulq_f32(spattn_neon_load_n(src + d, c->dtail), sc));
    }
}

void spattn__neon_attn_tiles(const spattn_head_job *job, const spattn_mask *mask, size_t qt,
                             float *scratch)
{
    tiles_ctx c;
    c.job = job;
    c.mask = mask;
    c.qt = qt;
    c.nrows = spattn__qt_rows(mask, qt);
    c.dfull = job->dim_qk & ~(size_t)3;
    c.dtail = job->dim_qk & 3;
    c.s = spattn__neon_scratch_split(scratch, job->dim_qk, job->dim_v);
    c.softcap = job->softcap != 0.0f;
    c.cap = vdupq_n_f32(job->softcap);
    c.inv_cap = vdupq_n_f32(c.softcap ? 1.0f / job->softcap : 0.0f);

    size_t nblocks = (c.nrows + SPATTN_NEON_RB - 1) / SPATTN_NEON_RB;
    size_t rows_padded = nblocks * SPATTN_NEON_RB;
    for (size_t r = 0; r < rows_padded; r++) {
        c.s.m[r] = -INFINITY;
        c.s.l[r] = 0.0f;
        for (size_t d = 0; d < c.s.dv4; d += 4)
            vst1q_f32(c.s.o + r * c.s.dv4 + d, vdupq_n_f32(0.0f));
    }
    for (size_t d = 0; d < c.s.dq4; d += 4)
        vst1q_f32(c.s.zero + d, vdupq_n_f32(0.0f));
    load_q(&c, rows_padded);

    /* Key tiles outer, register blocks inner: a K/V tile is read from memory once and then
       from L1 for the other blocks. */
    for (size_t ti = mask->qt_ptr[qt]; ti < mask->qt_ptr[qt + 1]; ti++)
        for (size_t row0 = 0; row0 < c.nrows; row0 += SPATTN_NEON_RB)
            block_tile(&c, &mask->tiles[ti], row0);
    finish_rows(&c);
}

/*
 * Gather path: for rows that allow only a few scattered keys, one row at a time visits its
 * allowed keys only, as the plan listed them. Keys go in batches of up to TK, scored
 * 8 at a time, and folded into the row's running softmax one batch at a time, so exp runs on
 * whole vectors and the rescale happens once per batch, not once per key.
 *
 * Scratch (a prefix of the tile path's): qs [dq4] scale * q, o [dv4], s [TK] scores then
 * probabilities, zero [dq4].
 */
#include "arm/neon_kernels.h"

#include "arm/neon_math.h"

#define BATCH SPATTN_TK
#define GROUP 8

typedef struct row_ctx {
    const spattn_head_job *job;
    size_t dfull, dtail;
    const float *qs;
    float *o, *s;
    const float *zero;
    float m, l;
    int softcap;
    float32x4_t cap, inv_cap;
} row_ctx;

/* Scores of q against 8 keys: out[u] = q . k[u]. */
SPATTN_NEON_INLINE void dots_1x8(const float *q, const float *const k[GROUP], size_t dfull,
                                 size_t dtail, float *out)
{
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0,
                a7 = a0;
    size_t d = 0;
#define FMA8(LOAD)                                  \
    {                                               \
        float32x4_t qv = vld1q_f32(q + d);          \
        a0 = vfmaq_f32(a0, qv, LOAD(k[0] + d));     \
        a1 = vfmaq_f32(a1, qv, LOAD(k[1] + d));     \
        a2 = vfmaq_f32(a2, qv, LOAD(k[2] + d));     \
        a3 = vfmaq_f32(a3, qv, LOAD(k[3] + d));     \
        a4 = vfmaq_f32(a4, qv, LOAD(k[4] + d));     \
        a5 = vfmaq_f32(a5, qv, LOAD(k[5] + d));     \
        a6 = vfmaq_f32(a6, qv, LOAD(k[6] + d));     \
        a7 = vfmaq_f32(a7, qv, LOAD(k[7] + d));     \
    }
#define FULL_LOAD(ptr) vld1q_f32(ptr)
#define TAIL_LOAD(ptr) spattn_neon_load_n(ptr, dtail)
    for (; d < dfull; d += 4)
        FMA8(FULL_LOAD)
    if (dtail)
        FMA8(TAIL_LOAD)
#undef FULL_LOAD
#undef TAIL_LOAD
#undef FMA8
    vst1q_f32(out, spattn_neon_hsum4(a0, a1, a2, a3));
    vst1q_f32(out + 4, spattn_neon_hsum4(a4, a5, a6, a7));
}

/* o[d0, d0 + 16) = alpha * o + sum_i s[i] v[key[i]], two accumulator sets (even and odd keys)
   so that eight FMA chains are in flight. */
static void pv16(const row_ctx *c, const uint32_t *key, size_t n, size_t d0, float alpha)
{
    const float *v = c->job->v;
    ptrdiff_t v_ts = c->job->v_ts;
    float *o = c->o + d0;
    float32x4_t a0 = vmulq_n_f32(vld1q_f32(o), alpha), a1 = vmulq_n_f32(vld1q_f32(o + 4), alpha);
    float32x4_t a2 = vmulq_n_f32(vld1q_f32(o + 8), alpha);
    float32x4_t a3 = vmulq_n_f32(vld1q_f32(o + 12), alpha);
    float32x4_t b0 = vdupq_n_f32(0.0f), b1 = b0, b2 = b0, b3 = b0;
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        const float *va = v + (ptrdiff_t)key[i] * v_ts + d0;
        const float *vb = v + (ptrdiff_t)key[i + 1] * v_ts + d0;
        float pa = c->s[i], pb = c->s[i + 1];
        a0 = vfmaq_n_f32(a0, vld1q_f32(va), pa);
        a1 = vfmaq_n_f32(a1, vld1q_f32(va + 4), pa);
        a2 = vfmaq_n_f32(a2, vld1q_f32(va + 8), pa);
        a3 = vfmaq_n_f32(a3, vld1q_f32(va + 12), pa);
        b0 = vfmaq_n_f32(b0, vld1q_f32(vb), pb);
        b1 = vfmaq_n_f32(b1, vld1q_f32(vb + 4), pb);
        b2 = vfmaq_n_f32(b2, vld1q_f32(vb + 8), pb);
        b3 = vfmaq_n_f32(b3, vld1q_f32(vb + 12), pb);
    }
    if (i < n) {
        const float *va = v + (ptrdiff_t)key[i] * v_ts + d0;
        float pa = c->s[i];
        a0 = vfmaq_n_f32(a0, vld1q_f32(va), pa);
        a1 = vfmaq_n_f32(a1, vld1q_f32(va + 4), pa);
        a2 = vfmaq_n_f32(a2, vld1q_f32(va + 8), pa);
        a3 = vfmaq_n_f32(a3, vld1q_f32(va + 12), pa);
    }
    vst1q_f32(o, vaddq_f32(a0, b0));
    vst1q_f32(o + 4, vaddq_f32(a1, b1));
    vst1q_f32(o + 8, vaddq_f32(a2, b2));
    vst1q_f32(o + 12, vaddq_f32(a3, b3));
}

/* The same for the last dims [d0, d0 + w), w <= 4. */
static void pv4(const row_ctx *c, const uint32_t *key, size_t n, size_t d0, size_t w,
                float alpha)
{
    const float *v = c->job->v;
    ptrdiff_t v_ts = c->job->v_ts;
    float32x4_t a = vmulq_n_f32(vld1q_f32(c->o + d0), alpha), b = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 2 <= n; i += 2) {
        a = vfmaq_n_f32(a, spattn_neon_load_n(v + (ptrdiff_t)key[i] * v_ts + d0, w), c->s[i]);
        b = vfmaq_n_f32(b, spattn_neon_load_n(v + (ptrdiff_t)key[i + 1] * v_ts + d0, w),
                        c->s[i + 1]);
    }
    if (i < n)
        a = vfmaq_n_f32(a, spattn_neon_load_n(v + (ptrdiff_t)key[i] * v_ts + d0, w), c->s[i]);
    vst1q_f32(c->o + d0, vaddq_f32(a, b));
}

/* Folds keys key[0..n) (1 <= n <= BATCH) into the row's running softmax. */
static void fold_batch(row_ctx *c, const uint32_t *key, size_t n)
{
    const spattn_head_job *job = c->job;
    for (size_t g = 0; g < n; g += GROUP) {
        const float *kp[GROUP];
        for (size_t u = 0; u < GROUP; u++)
            kp[u] = g + u < n ? job->k + (ptrdiff_t)key[g + u] * job->k_ts : c->zero;
        dots_1x8(c->qs, kp, c->dfull, c->dtail, c->s + g);
    }

    const float32x4_t ninf = spattn_neon_neg_inf();
    size_t nvec = (n + 3) / 4;
    float32x4_t mx = ninf;
    for (size_t i = 0; i < nvec; i++) {
        float32x4_t x = vld1q_f32(c->s + 4 * i);
        if (c->softcap)
            x = spattn_neon_softcap(x, c->cap, c->inv_cap);
        if (4 * i + 4 > n) /* lanes past the batch are padding */
            x = vbslq_f32(spattn_neon_nibble_mask((1u << (n - 4 * i)) - 1), x, ninf);
        vst1q_f32(c->s + 4 * i, x);
        mx = vmaxq_f32(mx, x);
    }

    float32x4_t m_old = vdupq_n_f32(c->m);
    float32x4_t m_new = vmaxq_f32(m_old, vdupq_n_f32(vmaxvq_f32(mx)));
    float32x4_t base = spattn_neon_exp_base(m_new);
    float alpha = vgetq_lane_f32(spattn_neon_exp(vsubq_f32(m_old, base)), 0);
    float32x4_t sum = vdupq_n_f32(0.0f);
    for (size_t i = 0; i < nvec; i++) {
        float32x4_t e = spattn_neon_exp(vsubq_f32(vld1q_f32(c->s + 4 * i), base));
        vst1q_f32(c->s + 4 * i, e);
        sum = vaddq_f32(sum, e);
    }
    c->m = vgetq_lane_f32(m_new, 0);
    c->l = c->l * alpha + vaddvq_f32(sum);

    size_t d = 0;
    for (; d + 16 <= job->dim_v; d += 16)
        pv16(c, key, n, d, alpha);
    for (; d < job->dim_v; d += 4)
        pv4(c, key, n, d, job->dim_v - d < 4 ? job->dim_v - d : 4, alpha);
}

void spattn__neon_attn_gather(const spattn_head_job *job, const spattn_keyrows *kr, size_t qt,
                              size_t nqt, float *scratch)
{
    size_t dq4 = spattn__neon_pad4(job->dim_qk), dv4 = spattn__neon_pad4(job->dim_v);
    row_ctx c;
    c.job = job;
    c.dfull = job->dim_qk & ~(size_t)3;
    c.dtail = job->dim_qk & 3;
    float *qs = scratch;
    c.qs = qs;
    c.o = qs + spattn__neon_pad16(dq4);
    c.s = c.o + spattn__neon_pad16(dv4);
    float *zero = c.s + BATCH;
    c.zero = zero;
    c.softcap = job->softcap != 0.0f;
    c.cap = vdupq_n_f32(job->softcap);
    c.inv_cap = vdupq_n_f32(c.softcap ? 1.0f / job->softcap : 0.0f);
    for (size_t d = 0; d < dq4; d += 4)
        vst1q_f32(zero + d, vdupq_n_f32(0.0f));

    const float32x4_t sc = vdupq_n_f32(job->scale);
    size_t r0;
    const size_t nrows = spattn__keyrows_span(kr, qt, nqt, &r0) - r0;
    for (size_t r = 0; r < nrows; r++) {
        const float *q = job->q + (ptrdiff_t)(r0 + r) * job->q_ts;
        size_t d = 0;
        for (; d < c.dfull; d += 4)
            vst1q_f32(qs + d, vmulq_f32(vld1q_f32(q + d), sc));
        if (c.dtail)
            vst1q_f32(qs + d, vmulq_f32(spattn_neon_load_n(q + d, c.dtail), sc));
        for (d = 0; d < dv4; d += 4)
            vst1q_f32(c.o + d, vdupq_n_f32(0.0f));
        c.m = -INFINITY;
        c.l = 0.0f;

        size_t n;
        const uint32_t *key = spattn__keyrows_row(kr, r0 + r, &n);
        for (size_t b = 0; b < n; b += BATCH)
            fold_batch(&c, key + b, n - b < BATCH ? n - b : BATCH);

        float *out = job->o + (ptrdiff_t)(r0 + r) * job->o_ts;
        /* l == 0: nothing allowed, or every allowed score -inf; O = 0 either way. */
        const int none = c.l == 0.0f;
        float inv = none ? 0.0f : 1.0f / c.l;
        for (d = 0; d < job->dim_v; d += 4) {
            float32x4_t y = none ? vdupq_n_f32(0.0f) : vmulq_n_f32(vld1q_f32(c.o + d), inv);
            spattn_neon_store_n(out + d, y, job->dim_v - d < 4 ? job->dim_v - d : 4);
        }
        if (job->lse)
            job->lse[r0 + r] = c.l == 0.0f ? -INFINITY : c.m + logf(c.l);
    }
}

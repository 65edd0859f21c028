/* The units of spattn_plan_backward's passes (the split and its order: plan/backward.c): a
   query tile's pack, a key tile's dK and dV over a band, a query tile's dQ. */
#include <string.h>

#include "kernels/bwd_pack.h"
#include "plan/backward_ctx.h"

/* The job of query head h of batch b (kernel.h): the kernels read k, v, the dims, scale,
   softcap and ALiBi of it. */
static spattn_head_job bwd_job(const bwd_ctx *x, size_t b, size_t h)
{
    const spattn_args *a = x->a;
    const spattn_shape *s = &x->p->shape;
    const size_t hk = h / (s->heads_q / s->heads_kv);
    spattn_head_job job;
    memset(&job, 0, sizeof job);
    job.q = at((const float *)a->q, a->q_layout, b, h, 0);
    job.k = at((const float *)a->k, a->k_layout, b, hk, 0);
    job.v = at((const float *)a->v, a->v_layout, b, hk, 0);
    job.q_ts = a->q_layout.token;
    job.k_ts = a->k_layout.token;
    job.v_ts = a->v_layout.token;
    job.dim_qk = s->dim_qk;
    job.dim_v = s->dim_v;
    job.scale = x->scale;
    job.softcap = a->softcap;
    job.v16_stage = x->p->v16_stage;
    job.slopes = a->alibi_slopes ? a->alibi_slopes + h : NULL;
    job.mod_step = 0;
    /* Formed only with ALiBi: validation bounds pos_offset then, and only then. */
    job.pos0 = a->alibi_slopes ? (ptrdiff_t)s->len_k - (ptrdiff_t)s->len_q + a->pos_offset : 0;
    job.pos_step = 1;
    return job;
}
/* D of a row, dot(dO, O), as four double sums (element d into sum d % 4) added in a fixed
   order: one chain of dim_v dependent double adds, or sums kept in memory, would cost more
   than the rest of the pack. */
static float dot_d_o(const float *d_o, const float *o, size_t dv)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t d = 0;
    for (; d + 4 <= dv; d += 4) {
        s0 += (double)d_o[d] * (double)o[d];
        s1 += (double)d_o[d + 1] * (double)o[d + 1];
        s2 += (double)d_o[d + 2] * (double)o[d + 2];
        s3 += (double)d_o[d + 3] * (double)o[d + 3];
    }
    if (d < dv)
        s0 += (double)d_o[d] * (double)o[d];
    if (d + 1 < dv)
        s1 += (double)d_o[d + 1] * (double)o[d + 1];
    if (d + 2 < dv)
        s2 += (double)d_o[d + 2] * (double)o[d + 2];
    return (float)((s0 + s1) + (s2 + s3));
}

/* Unit u of the pack pass: query tile qt of (b, h). */
void spattn__bwd_pack_unit(const bwd_ctx *x, size_t u)
{
    const spattn_shape *s = &x->p->shape;
    const spattn_args *a = x->a;
    const size_t qt = u % x->nqt, h = u / x->nqt % s->heads_q, b = u / x->nqt / s->heads_q;
    const size_t dq = s->dim_qk, dv = s->dim_v, i0 = qt * SPATTN_TQ;
    const size_t rows = s->len_q - i0 < SPATTN_TQ ? s->len_q - i0 : SPATTN_TQ;
    size_t mi;
    /* No pass reads the pack of an empty query tile; only dL/dsinks reads its D. */
    if (a->sinks == NULL && spattn__qt_empty(mask_of(x, b, h, &mi), qt))
        return;
    float *pk = pack_of(x, b, h, qt);
    /* The rows below write every float of a whole tile with dims that are whole vectors; the
       padding of any other tile is zero. */
    if (rows < SPATTN_TQ || dq != x->ldq || dv != x->ldv)
        memset(pk, 0, x->pf * sizeof(float));
    float *qr = pk + spattn__bwd_pack_qr(dq, dv), *dor = pk + spattn__bwd_pack_dor(dq, dv);
    float *D = pk + spattn__bwd_pack_d(dq, dv), *l2 = pk + spattn__bwd_pack_l2(dq, dv);
    const float *lse = a->lse + (b * s->heads_q + h) * s->len_q + i0;
    for (size_t r = 0; r < rows; r++) {
        const float *q = at((const float *)a->q, a->q_layout, b, h, i0 + r);
        const float *o = at((const float *)a->o, a->o_layout, b, h, i0 + r);
        const float *d_o = at(x->g->d_o, x->g->d_o_layout, b, h, i0 + r);
        memcpy(qr + r * x->ldq, q, dq * sizeof(float));
        memcpy(dor + r * x->ldv, d_o, dv * sizeof(float));
        D[r] = dot_d_o(d_o, o, dv);
        l2[r] = (float)((double)lse[r] * 1.4426950408889634);
    }
    /* the transposed parts from the rows just written, in this ISA's registers */
    x->p->kt->bwd_cols_of_rows(qr, x->ldq, rows, dq, pk);
    x->p->kt->bwd_cols_of_rows(dor, x->ldv, rows, dv, pk + 16 * dq);
}

static void kv_out(const bwd_ctx *x, size_t u, int touched);

/* Whether some query head of KV head hk's group has an allowed pair in key tile kt. */
static int kt_touched(const bwd_ctx *x, size_t b, size_t hk, size_t kt)
{
    const size_t group = x->p->shape.heads_q / x->p->shape.heads_kv;
    for (size_t h = hk * group; h < (hk + 1) * group; h++) {
        size_t mi;
        (void)mask_of(x, b, h, &mi);
        const spattn_keytiles *kl = &x->ix->by_mask[mi];
        if (kl->kt_ptr == NULL || kl->kt_ptr[kt + 1] > kl->kt_ptr[kt])
            return 1;
    }
    return 0;
}

/* Ask for the K and V rows of key tile kt of KV head hk of batch b, and for pack pk if not
   NULL: on an empty-heavy mask each key tile is read for few pairs, and its rows would
   otherwise arrive on demand, one stride at a time, while the FMAs wait. */
static void prefetch_kv_rows(const bwd_ctx *x, size_t b, size_t hk, size_t kt, int with_v,
                             const float *pk)
{
    const spattn_shape *s = &x->p->shape;
    const spattn_args *a = x->a;
    const size_t j0 = kt * SPATTN_TK;
    const size_t cols = s->len_k - j0 < SPATTN_TK ? s->len_k - j0 : SPATTN_TK;
    for (size_t c = 0; c < cols; c++) {
        const char *k = (const char *)at((const float *)a->k, a->k_layout, b, hk, j0 + c);
        for (size_t o = 0; o < s->dim_qk * sizeof(float); o += 64)
            __builtin_prefetch(k + o, 0, 2);
        if (!with_v)
            continue;
        const char *v = (const char *)at((const float *)a->v, a->v_layout, b, hk, j0 + c);
        for (size_t o = 0; o < s->dim_v * sizeof(float); o += 64)
            __builtin_prefetch(v + o, 0, 2);
    }
    for (size_t o = 0; pk != NULL && o < x->pf * sizeof(float); o += 64)
        __builtin_prefetch((const char *)pk + o, 0, 2);
}

/* What the next unit with entries in the band reads first, if it is one of the next few key
   tiles of the same KV head (the units between write zeros or nothing): its K and V rows and
   its first query tile's pack. */
#define KV_PREFETCH_AHEAD 4
static void kv_prefetch_next(const bwd_ctx *x, const bwd_band *bd, size_t u)
{
    const spattn_shape *s = &x->p->shape;
    const size_t hk = u / x->nkt % s->heads_kv, b = u / x->nkt / s->heads_kv;
    const size_t group = s->heads_q / s->heads_kv;
    for (size_t kt = u % x->nkt + 1; kt < x->nkt && kt <= u % x->nkt + KV_PREFETCH_AHEAD; kt++)
        for (size_t h = hk * group; h < (hk + 1) * group; h++) {
            size_t mi;
            (void)mask_of(x, b, h, &mi);
            const spattn_keytiles *kl = &x->ix->by_mask[mi];
            if (kl->kt_ptr == NULL)
                return;
            const size_t e0 = lower_qt(kl->qt, kl->kt_ptr[kt], kl->kt_ptr[kt + 1], bd->q0);
            if (e0 < kl->kt_ptr[kt + 1] && kl->qt[e0] < bd->q1) {
                prefetch_kv_rows(x, b, hk, kt, 1, pack_of(x, b, h, kl->qt[e0]));
                return;
            }
        }
}

/* Unit u of the dK/dV pass of a band: key tile kt of KV head hk of batch b, against the band's
   query tiles, adding into the unit's accumulators (which keep it across bands): zeroed in
   the first band and written out in the last, while they are in cache. */
void spattn__bwd_kv_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch)
{
    const spattn_shape *s = &x->p->shape;
    const size_t kt = u % x->nkt, hk = u / x->nkt % s->heads_kv, b = u / x->nkt / s->heads_kv;
    const size_t group = s->heads_q / s->heads_kv;
    if (!kt_touched(x, b, hk, kt)) {
        /* No allowed pair in the column: its rows are zeros, without accumulators. */
        if (bd->q1 == x->nqt)
            kv_out(x, u, 0);
        return;
    }
    kv_prefetch_next(x, bd, u);
    float *dk = dkv_of(x, u), *dv = dk + SPATTN_TK * x->ldq;
    /* The accumulators hold nothing until the first call with entries, in this band or an
       earlier one: that call sets them (the kernels zero only where they must). */
    int fresh = 1;
    for (size_t h = hk * group; h < (hk + 1) * group && fresh; h++) {
        size_t mi;
        (void)mask_of(x, b, h, &mi);
        const spattn_keytiles *kl = &x->ix->by_mask[mi];
        if (lower_qt(kl->qt, kl->kt_ptr[kt], kl->kt_ptr[kt + 1], bd->q0) > kl->kt_ptr[kt])
            fresh = 0;
    }
    for (size_t h = hk * group; h < (hk + 1) * group; h++) {
        size_t mi;
        const spattn_mask *m = mask_of(x, b, h, &mi);
        const spattn_keytiles *kl = &x->ix->by_mask[mi];
        const size_t e0 = lower_qt(kl->qt, kl->kt_ptr[kt], kl->kt_ptr[kt + 1], bd->q0);
        const size_t e1 = lower_qt(kl->qt, e0, kl->kt_ptr[kt + 1], bd->q1);
        if (e1 == e0)
            continue;
        const spattn_head_job job = bwd_job(x, b, h);
        size_t tile0;
        float *ds = band_ds(x, bd, b, h, m, &tile0);
        const spattn_bwd_entries en = {kl->qt + e0, kl->tile + e0, kl->e_ds_off + e0,
                                       kl->e_pair_off + e0, kl->e_pair_rc};
        float *dq = NULL;
        if (x->p->kt->bwd_solo_dq)
            dq = at_w(x->g->d_q, x->g->d_q_layout, b, h, 0);
        x->p->kt->bwd_kv(&job, m, pack_of(x, b, h, 0), &en, e1 - e0, kt, dk, dv, fresh, ds,
                         kl->slots.ds_off[tile0], dq, x->g->d_q_layout.token, scratch);
        fresh = 0;
    }
    if (bd->q1 == x->nqt)
        kv_out(x, u, 1);
}

/* dK and dV rows of unit u from its accumulators once every band is done, or zeros for a
   key tile no pair touched. */
static void kv_out(const bwd_ctx *x, size_t u, int touched)
{
    const spattn_shape *s = &x->p->shape;
    const size_t kt = u % x->nkt, hk = u / x->nkt % s->heads_kv, b = u / x->nkt / s->heads_kv;
    const float *dk = dkv_of(x, u), *dv = dk + SPATTN_TK * x->ldq;
    const size_t j0 = kt * SPATTN_TK, cols = s->len_k - j0 < SPATTN_TK ? s->len_k - j0 : SPATTN_TK;
    for (size_t c = 0; c < cols; c++) {
        float *ok = at_w(x->g->d_k, x->g->d_k_layout, b, hk, j0 + c);
        float *ov = at_w(x->g->d_v, x->g->d_v_layout, b, hk, j0 + c);
        if (!touched) {
            memset(ok, 0, s->dim_qk * sizeof(float));
            memset(ov, 0, s->dim_v * sizeof(float));
            continue;
        }
        for (size_t d = 0; d < s->dim_qk; d++)
            ok[d] = dk[c * x->ldq + d] * x->scale;
        memcpy(ov, dv + c * x->ldv, s->dim_v * sizeof(float));
    }
}

/* Whether query tile qt's dQ was written by the dK/dV pass: its only stored tile is on the
   column path and the kernels compute such dQ there (kernel.h, bwd_solo_dq). */
static int solo_dq(const bwd_ctx *x, const spattn_mask *m, const spattn_bwd_slots *sl, size_t qt)
{
    return x->p->kt->bwd_solo_dq && m->qt_ptr[qt + 1] - m->qt_ptr[qt] == 1 &&
           !spattn__bwd_is_pairs(sl, m->qt_ptr[qt]);
}

/* Unit u of the dQ pass of a band: query tile q0 + u % (q1 - q0) of (b, h). */
void spattn__bwd_q_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch)
{
    const spattn_shape *s = &x->p->shape;
    const size_t nb = bd->q1 - bd->q0;
    const size_t qt = bd->q0 + u % nb, h = u / nb % s->heads_q, b = u / nb / s->heads_q;
    float *dq = at_w(x->g->d_q, x->g->d_q_layout, b, h, 0);
    const ptrdiff_t dq_ts = x->g->d_q_layout.token;
    size_t mi;
    const spattn_mask *m = mask_of(x, b, h, &mi);
    if (spattn__qt_empty(m, qt)) {
        const size_t i0 = qt * SPATTN_TQ, rows = spattn__qt_rows(m, qt);
        for (size_t r = 0; r < rows; r++)
            memset(dq + (ptrdiff_t)(i0 + r) * dq_ts, 0, s->dim_qk * sizeof(float));
        return;
    }
    const spattn_bwd_slots *sl = &x->ix->by_mask[mi].slots;
    if (solo_dq(x, m, sl, qt))
        return;
    const spattn_head_job job = bwd_job(x, b, h);
    size_t tile0;
    const float *ds = band_ds(x, bd, b, h, m, &tile0);
    /* the first K rows the next unit reads (the same reason as kv_prefetch_next) */
    if (qt + 1 < bd->q1 && !spattn__qt_empty(m, qt + 1))
        prefetch_kv_rows(x, b, h / (s->heads_q / s->heads_kv), m->tiles[m->qt_ptr[qt + 1]].kt, 0,
                         NULL);
    x->p->kt->bwd_q(&job, m, qt, pack_of(x, b, h, qt), dq, dq_ts, ds, sl, tile0, scratch);
}

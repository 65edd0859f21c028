/* spattn_plan_backward: validate, lay out every query tile's pack (kernels/bwd_pack.h), then
   go through the query tiles in bands (a cut that depends on the shape and masks only), each
   band in two passes over the plan's plain schedule and its masks' key-tile lists:
     dK, dV  one unit per (batch, KV head, key tile): the group's query heads in order, each
             through the band's query tiles that store a tile in that key column, increasing,
             into the unit's own accumulators (written out in the last band); dS of each
             tile is kept in the band's store (kernels/bwd_slots.h);
     dQ      one unit per (batch, query head, query tile of the band), over its stored key
             tiles, from the kept dS (S and dP are computed once per pair);
   and dL/dsinks last, on the calling thread. A unit is computed by one thread and writes only
   its own rows or kept dS, and what it computes never depends on which thread runs it or
   what else that thread runs: results are bitwise the same for any thread count, with no
   atomics. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "alloc.h"
#include "kernels/bwd_pack.h"
#include "plan/backward_hooks.h"
#include "plan/plan_internal.h"
#include "validate.h"
#include "validate_bwd.h"

typedef struct bwd_ctx {
    const spattn_plan *p;
    const spattn_args *a;
    const spattn_grads *g;
    const spattn_bwd_index *ix;
    float scale;
    size_t nqt, nkt, pf, ldq, ldv;
    float *packs; /* [batch][heads_q][nqt] packs of pf floats */
    float *dkv;   /* [batch][heads_kv][nkt]: dK then dV accumulators, TK rows of ldq / ldv */
    float *ds;    /* the dS kept of one band's tiles (kernels/bwd_slots.h) */
    size_t nbands;
    size_t *band_q;   /* nbands + 1: band n is query tiles [band_q[n], band_q[n + 1]) */
    size_t *band_off; /* [nbands][batch * heads_q]: where each (b, h) starts in ds */
    float *scratch;
    size_t per_thread; /* floats */
} bwd_ctx;

static const float *at(const float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}

static float *at_w(float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}

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
    job.slopes = a->alibi_slopes ? a->alibi_slopes + h : NULL;
    job.mod_step = 0;
    /* Formed only with ALiBi: validation bounds pos_offset then, and only then. */
    job.pos0 = a->alibi_slopes ? (ptrdiff_t)s->len_k - (ptrdiff_t)s->len_q + a->pos_offset : 0;
    job.pos_step = 1;
    return job;
}

static float *pack_of(const bwd_ctx *x, size_t b, size_t h, size_t qt)
{
    return x->packs + ((b * x->p->shape.heads_q + h) * x->nqt + qt) * x->pf;
}

static const spattn_mask *mask_of(const bwd_ctx *x, size_t b, size_t h, size_t *mi)
{
    const spattn_schedule *s = &x->p->plain;
    *mi = spattn__mask_index(&x->p->shape, s->n_masks_arg, b, h);
    return s->masks[*mi];
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
static void pack_unit(const bwd_ctx *x, size_t u)
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

/* Query tile band q of the bands' cut (see plan_bands). */
typedef struct bwd_band {
    size_t q0, q1;     /* query tiles [q0, q1) */
    const size_t *off; /* [batch * heads_q]: where each (b, h) starts in ds */
} bwd_band;

/* The dS kept of (b, h) in the band, and the index of its first tile in the mask. */
static float *band_ds(const bwd_ctx *x, const bwd_band *bd, size_t b, size_t h,
                      const spattn_mask *m, size_t *tile0)
{
    *tile0 = m->qt_ptr[bd->q0];
    if (x->ds == NULL)
        return NULL;
    return x->ds + bd->off[b * x->p->shape.heads_q + h];
}

static size_t lower_qt(const uint32_t *qt, size_t lo, size_t hi, size_t want)
{
    while (lo < hi) {
        const size_t mid = lo + (hi - lo) / 2;
        if (qt[mid] < want)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static float *dkv_of(const bwd_ctx *x, size_t u)
{
    return x->dkv + u * SPATTN_TK * (x->ldq + x->ldv);
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

/* What unit u + 1 reads first, if it is the next key tile of the same KV head and has entries
   in the band: its K and V rows and its first query tile's pack. */
static void kv_prefetch_next(const bwd_ctx *x, const bwd_band *bd, size_t u)
{
    const spattn_shape *s = &x->p->shape;
    const size_t kt = u % x->nkt + 1, hk = u / x->nkt % s->heads_kv, b = u / x->nkt / s->heads_kv;
    const size_t group = s->heads_q / s->heads_kv;
    for (size_t h = hk * group; h < (hk + 1) * group && kt < x->nkt; h++) {
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
static void kv_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch)
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
        x->p->kt->bwd_kv(&job, m, pack_of(x, b, h, 0), &en, e1 - e0, kt, dk, dv, fresh, ds,
                         kl->slots.ds_off[tile0], scratch);
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

/* Unit u of the dQ pass of a band: query tile q0 + u % (q1 - q0) of (b, h). */
static void q_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch)
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
    const spattn_head_job job = bwd_job(x, b, h);
    size_t tile0;
    const float *ds = band_ds(x, bd, b, h, m, &tile0);
    /* the first K rows the next unit reads (the same reason as kv_prefetch_next) */
    if (qt + 1 < bd->q1 && !spattn__qt_empty(m, qt + 1))
        prefetch_kv_rows(x, b, h / (s->heads_q / s->heads_kv), m->tiles[m->qt_ptr[qt + 1]].kt, 0,
                         NULL);
    x->p->kt->bwd_q(&job, m, qt, pack_of(x, b, h, qt), dq, dq_ts, ds, &x->ix->by_mask[mi].slots,
                    tile0, scratch);
}

/* dL/dsink_h = -sum over the head's rows of p_sink D, p_sink = exp(sink - lse), in double in
   a fixed order. */
static void sink_grads(const bwd_ctx *x)
{
    const spattn_shape *s = &x->p->shape;
    const spattn_args *a = x->a;
    for (size_t h = 0; h < s->heads_q; h++) {
        const double sink = a->sinks[h];
        double sum = 0.0;
        for (size_t b = 0; b < s->batch && sink != -INFINITY; b++)
            for (size_t i = 0; i < s->len_q; i++) {
                const float *pk = pack_of(x, b, h, i / SPATTN_TQ);
                const double D = pk[spattn__bwd_pack_d(s->dim_qk, s->dim_v) + i % SPATTN_TQ];
                const double lse = a->lse[(b * s->heads_q + h) * s->len_q + i];
                sum -= exp(sink - lse) * D;
            }
        x->g->d_sinks[h] = (float)sum;
    }
}

/* The plan's key-tile lists, built on first use (lock-free: the first to publish wins). */
static const spattn_bwd_index *bwd_index(const spattn_plan *plan)
{
    spattn_plan *mp = (spattn_plan *)plan; /* only the atomic pointer is touched */
    spattn_bwd_index *have = atomic_load(&mp->bwd);
    if (have != NULL)
        return have;
    spattn_bwd_index *mine =
        spattn__bwd_index_build((const spattn_mask *const *)plan->plain.masks, plan->plain.n_masks);
    if (mine == NULL)
        return NULL;
    if (atomic_compare_exchange_strong(&mp->bwd, &have, mine))
        return mine;
    spattn__bwd_index_free(mine);
    return have;
}

/* Kept dS per band: 16 MiB, which bounds the memory the backward takes beyond its packs and
   accumulators (docs/backward.md). */
#define BAND_FLOATS_DEFAULT ((size_t)4 << 20)
static size_t band_floats_cap = BAND_FLOATS_DEFAULT;

void spattn__bwd_set_band_floats(size_t floats)
{
    band_floats_cap = floats > 0 ? floats : BAND_FLOATS_DEFAULT;
}

/* Cut the query tiles into bands of at most band_floats_cap floats of kept dS over every
   (b, h) (at least one query tile each), with where each (b, h) starts; returns the floats of
   the largest band (0: nothing is kept), or SIZE_MAX when out of memory. */
static size_t plan_bands(bwd_ctx *x)
{
    const spattn_shape *s = &x->p->shape;
    const size_t bh = s->batch * s->heads_q;
    x->band_q = spattn__malloc((x->nqt + 1) * sizeof(size_t));
    x->band_off = spattn__malloc((x->nqt ? x->nqt : 1) * bh * sizeof(size_t));
    if (x->band_q == NULL || x->band_off == NULL)
        return SIZE_MAX;
    size_t n = 0, most = 0, q = 0;
    while (q < x->nqt) {
        size_t *off = x->band_off + n * bh, used = 0, q1 = q;
        for (; q1 < x->nqt; q1++) {
            size_t add = 0;
            for (size_t u = 0; u < bh; u++) {
                size_t mi;
                const spattn_mask *m = mask_of(x, u / s->heads_q, u % s->heads_q, &mi);
                const size_t *f = x->ix->by_mask[mi].slots.ds_off;
                add += f[m->qt_ptr[q1 + 1]] - f[m->qt_ptr[q1]];
            }
            if (q1 > q && used + add > band_floats_cap)
                break;
            used += add;
        }
        for (size_t u = 0, o = 0; u < bh; u++) {
            size_t mi;
            const spattn_mask *m = mask_of(x, u / s->heads_q, u % s->heads_q, &mi);
            const size_t *f = x->ix->by_mask[mi].slots.ds_off;
            off[u] = o;
            o += f[m->qt_ptr[q1]] - f[m->qt_ptr[q]];
        }
        x->band_q[n++] = q;
        most = used > most ? used : most;
        q = q1;
    }
    x->band_q[n] = x->nqt;
    x->nbands = n;
    if (most > 4 * band_floats_cap) {
        /* One query tile over every (b, h) alone keeps far more than a band should (long
           keys, many heads): keep nothing and let the dQ pass recompute S and dP, in one
           band; the kernels compute the same dS either way. */
        x->band_q[1] = x->nqt;
        x->nbands = 1;
        memset(x->band_off, 0, bh * sizeof(size_t));
        return 0;
    }
    return most;
}

static void run_passes(const bwd_ctx *x, int nt)
{
    const spattn_shape *s = &x->p->shape;
    const size_t bh = s->batch * s->heads_q;
    const long nq = (long)(bh * x->nqt);
    const long nkv = (long)(s->batch * s->heads_kv * x->nkt);
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        float *mine = x->scratch + (size_t)omp_get_thread_num() * x->per_thread;
#pragma omp for schedule(static)
        for (long u = 0; u < nq; u++)
            pack_unit(x, (size_t)u);
        for (size_t n = 0; n < x->nbands; n++) {
            const bwd_band bd = {x->band_q[n], x->band_q[n + 1], x->band_off + n * bh};
            const long nqb = (long)(bh * (bd.q1 - bd.q0));
#pragma omp for schedule(dynamic, 1)
            for (long u = 0; u < nkv; u++)
                kv_unit(x, &bd, (size_t)u, mine);
#pragma omp for schedule(dynamic, 1)
            for (long u = 0; u < nqb; u++)
                q_unit(x, &bd, (size_t)u, mine);
        }
    }
}

static void free_ctx(bwd_ctx *x)
{
    spattn__free(x->band_q);
    spattn__free(x->band_off);
}

spattn_status spattn_plan_backward(const spattn_plan *plan, const spattn_args *args,
                                   const spattn_grads *g)
{
    if (plan == NULL || args == NULL || g == NULL)
        return SPATTN_E_NULL;
    if (!spattn__same_shape(&plan->shape, &args->shape))
        return SPATTN_E_SHAPE;
    spattn_status st = spattn__check_backward(args, g);
    if (st != SPATTN_OK)
        return st;

    const spattn_shape *s = &plan->shape;
    bwd_ctx x;
    memset(&x, 0, sizeof x);
    x.p = plan;
    x.a = args;
    x.g = g;
    x.scale = spattn__resolve_scale(args->scale, s->dim_qk);
    x.nqt = (s->len_q + SPATTN_TQ - 1) / SPATTN_TQ;
    x.nkt = (s->len_k + SPATTN_TK - 1) / SPATTN_TK;
    x.pf = spattn__bwd_pack_floats(s->dim_qk, s->dim_v);
    x.ldq = spattn__bwd_round16(s->dim_qk);
    x.ldv = spattn__bwd_round16(s->dim_v);
    x.ix = bwd_index(plan);
    if (x.ix == NULL)
        return SPATTN_E_NOMEM;
    const int nt = plan->nthreads > 0 ? plan->nthreads : 1;
    x.per_thread = spattn__bwd_round16(plan->kt->bwd_scratch_floats(s->dim_qk, s->dim_v));
    /* Sizes: the packs are a few times the size of Q and dO, the accumulators twice K and V
       rounded to whole key tiles, which check_shape bounds; the kept dS is capped per band. */
    const size_t units = s->batch * s->heads_q * x.nqt;
    const size_t kv_floats = s->batch * s->heads_kv * x.nkt * SPATTN_TK * (x.ldq + x.ldv);
    if (units > SIZE_MAX / sizeof(float) / x.pf)
        return SPATTN_E_NOMEM;
    const size_t kept = plan_bands(&x);
    spattn_bwd_ws *ws = NULL;
    if (kept != SIZE_MAX)
        ws = spattn__bwd_ws_take((spattn_plan *)plan, units * x.pf, kv_floats, kept,
                                 (size_t)nt * x.per_thread);
    if (ws == NULL) {
        free_ctx(&x);
        return SPATTN_E_NOMEM;
    }
    x.packs = ws->packs;
    x.dkv = ws->dkv;
    x.ds = kept > 0 ? ws->ds : NULL;
    x.scratch = ws->scratch;
    run_passes(&x, nt);
    if (args->sinks != NULL && g->d_sinks != NULL)
        sink_grads(&x);
    spattn__bwd_ws_give((spattn_plan *)plan, ws);
    free_ctx(&x);
    return SPATTN_OK;
}

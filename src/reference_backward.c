/* The float64 backward: the gradients of the formula of spattn.h, pair by pair, with no
   tiling and no SIMD. It recomputes the softmax and O itself (never reading o or lse), so it
   checks the kernels' use of those too. Per row i of query head h, with p_j the probability
   of allowed key j (the sink, if any, in the normaliser), u_j = scale * dot(Q_i, K_j) and
   s_j = softcap(u_j) - slope * |i' - j|:
     D_i = dot(dO_i, O_i),  dP_j = dot(dO_i, V_j),  dS_j = p_j (dP_j - D_i) ds_j/du_j
     dQ_i = scale sum_j dS_j K_j,  dK_j += scale dS_j Q_i,  dV_j += p_j dO_i
     dsink_h -= p_sink,i D_i     (the sink is a logit with no value row)
   where ds/du = 1 - tanh^2(u / softcap) with softcap, else 1. */
#include <math.h>
#include <string.h>

#include "alloc.h"
#include "validate.h"
#include "validate_bwd.h"

typedef struct ref_bufs {
    uint8_t *allowed; /* len_q x len_k, one head's mask */
    double *s;        /* len_k: scores */
    double *t;        /* len_k: tanh(u / softcap) */
    double *o, *dq;   /* dim_v, dim_qk */
    double *dk, *dv;  /* len_k x dim: one KV head's sums */
} ref_bufs;

static void free_bufs(ref_bufs *r)
{
    spattn__free(r->allowed);
    spattn__free(r->s);
    spattn__free(r->t);
    spattn__free(r->o);
    spattn__free(r->dq);
    spattn__free(r->dk);
    spattn__free(r->dv);
}

static const float *at(const float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}

static float *at_w(float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}

static double dot(const float *x, const float *y, size_t n)
{
    double acc = 0.0;
    for (size_t d = 0; d < n; d++)
        acc += (double)x[d] * (double)y[d];
    return acc;
}

/* Row i of query head h of batch b: adds its terms to r->dk, r->dv and returns its share of
   dL/dsink (0 without a sink); writes its dQ row. */
static double ref_row(const spattn_args *a, const spattn_grads *g, ref_bufs *r, size_t b, size_t h,
                      size_t hk, size_t i, double scale)
{
    const spattn_shape *sh = &a->shape;
    const size_t lk = sh->len_k, dqk = sh->dim_qk, dv = sh->dim_v;
    const uint8_t *row = r->allowed + i * lk;
    const float *qi = at((const float *)a->q, a->q_layout, b, h, i);
    const float *doi = at(g->d_o, g->d_o_layout, b, h, i);
    const double cap = a->softcap, sink = a->sinks ? a->sinks[h] : -INFINITY;
    const ptrdiff_t ip =
        (ptrdiff_t)i + (ptrdiff_t)lk - (ptrdiff_t)sh->len_q + (a->alibi_slopes ? a->pos_offset : 0);

    double m = sink;
    for (size_t j = 0; j < lk; j++) {
        if (!row[j])
            continue;
        const double u = scale * dot(qi, at((const float *)a->k, a->k_layout, b, hk, j), dqk);
        r->t[j] = cap != 0.0 ? tanh(u / cap) : 0.0;
        r->s[j] = cap != 0.0 ? cap * r->t[j] : u;
        if (a->alibi_slopes) {
            const ptrdiff_t dist = ip - (ptrdiff_t)j;
            r->s[j] -= (double)a->alibi_slopes[h] * (double)(dist < 0 ? -dist : dist);
        }
        if (r->s[j] > m)
            m = r->s[j];
    }
    const double shift = m == -INFINITY ? 0.0 : m;
    double l = sink == -INFINITY ? 0.0 : exp(sink - shift);
    for (size_t j = 0; j < lk; j++)
        if (row[j])
            l += exp(r->s[j] - shift);
    float *dqi = at_w(g->d_q, g->d_q_layout, b, h, i);
    if (l == 0.0) { /* no allowed key and no sink: O = 0, nothing depends on this row */
        for (size_t d = 0; d < dqk; d++)
            dqi[d] = 0.0f;
        return 0.0;
    }
    const double lse = shift + log(l);

    /* O_i and D_i. */
    for (size_t d = 0; d < dv; d++)
        r->o[d] = 0.0;
    for (size_t j = 0; j < lk; j++) {
        if (!row[j])
            continue;
        const double p = exp(r->s[j] - lse);
        const float *vj = at((const float *)a->v, a->v_layout, b, hk, j);
        for (size_t d = 0; d < dv; d++)
            r->o[d] += p * (double)vj[d];
    }
    double D = 0.0;
    for (size_t d = 0; d < dv; d++)
        D += (double)doi[d] * r->o[d];

    for (size_t d = 0; d < dqk; d++)
        r->dq[d] = 0.0;
    for (size_t j = 0; j < lk; j++) {
        if (!row[j])
            continue;
        const double p = exp(r->s[j] - lse);
        const float *kj = at((const float *)a->k, a->k_layout, b, hk, j);
        const float *vj = at((const float *)a->v, a->v_layout, b, hk, j);
        double ds = p * (dot(doi, vj, dv) - D);
        if (cap != 0.0)
            ds *= 1.0 - r->t[j] * r->t[j];
        double *dkj = r->dk + j * dqk, *dvj = r->dv + j * dv;
        for (size_t d = 0; d < dqk; d++) {
            r->dq[d] += scale * ds * (double)kj[d];
            dkj[d] += scale * ds * (double)qi[d];
        }
        for (size_t d = 0; d < dv; d++)
            dvj[d] += p * (double)doi[d];
    }
    for (size_t d = 0; d < dqk; d++)
        dqi[d] = (float)r->dq[d];
    return sink == -INFINITY ? 0.0 : -exp(sink - lse) * D;
}

spattn_status spattn_reference_backward(const spattn_args *args, const spattn_mask *const *masks,
                                        size_t n_masks, const spattn_grads *g)
{
    if (args == NULL || g == NULL)
        return SPATTN_E_NULL;
    const spattn_shape *sh = &args->shape;
    spattn_status st = spattn__check_shape(sh);
    if (st == SPATTN_OK)
        st = spattn__check_masks(sh, masks, n_masks);
    if (st == SPATTN_OK)
        st = spattn__check_backward(args, g);
    if (st != SPATTN_OK)
        return st;

    const size_t lq = sh->len_q, lk = sh->len_k, dqk = sh->dim_qk, dv = sh->dim_v;
    ref_bufs r;
    r.allowed = spattn__malloc(lq * lk);
    r.s = spattn__malloc(lk * sizeof(double));
    r.t = spattn__malloc(lk * sizeof(double));
    r.o = spattn__malloc(dv * sizeof(double));
    r.dq = spattn__malloc(dqk * sizeof(double));
    r.dk = spattn__malloc(lk * dqk * sizeof(double));
    r.dv = spattn__malloc(lk * dv * sizeof(double));
    double *dsink = spattn__calloc(sh->heads_q, sizeof(double));
    if (!r.allowed || !r.s || !r.t || !r.o || !r.dq || !r.dk || !r.dv || !dsink) {
        free_bufs(&r);
        spattn__free(dsink);
        return SPATTN_E_NOMEM;
    }
    const double scale = spattn__resolve_scale(args->scale, dqk);
    const size_t group = sh->heads_q / sh->heads_kv;
    if (n_masks == 0)
        memset(r.allowed, 1, lq * lk);
    for (size_t b = 0; b < sh->batch; b++)
        for (size_t hk = 0; hk < sh->heads_kv; hk++) {
            memset(r.dk, 0, lk * dqk * sizeof(double));
            memset(r.dv, 0, lk * dv * sizeof(double));
            for (size_t h = hk * group; h < (hk + 1) * group; h++) {
                if (n_masks != 0)
                    spattn_mask_to_dense(masks[spattn__mask_index(sh, n_masks, b, h)], r.allowed,
                                         lk);
                for (size_t i = 0; i < lq; i++)
                    dsink[h] += ref_row(args, g, &r, b, h, hk, i, scale);
            }
            for (size_t j = 0; j < lk; j++) {
                float *dkj = at_w(g->d_k, g->d_k_layout, b, hk, j);
                float *dvj = at_w(g->d_v, g->d_v_layout, b, hk, j);
                for (size_t d = 0; d < dqk; d++)
                    dkj[d] = (float)r.dk[j * dqk + d];
                for (size_t d = 0; d < dv; d++)
                    dvj[d] = (float)r.dv[j * dv + d];
            }
        }
    if (args->sinks != NULL && g->d_sinks != NULL)
        for (size_t h = 0; h < sh->heads_q; h++)
            g->d_sinks[h] = (float)dsink[h];
    free_bufs(&r);
    spattn__free(dsink);
    return SPATTN_OK;
}

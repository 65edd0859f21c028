/* The state of one spattn_plan_backward call (plan/backward.c) that its passes' units
   (plan/backward_units.c) read: the plan, the arguments, the packs, accumulators and kept
   dS, and the cut into bands. */
#ifndef SPATTN_PLAN_BACKWARD_CTX_H
#define SPATTN_PLAN_BACKWARD_CTX_H

#include "plan/plan_internal.h"

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

static inline const float *at(const float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}

static inline float *at_w(float *base, spattn_layout l, size_t b, size_t h, size_t t)
{
    return base + (ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token;
}
static inline float *pack_of(const bwd_ctx *x, size_t b, size_t h, size_t qt)
{
    return x->packs + ((b * x->p->shape.heads_q + h) * x->nqt + qt) * x->pf;
}

static inline const spattn_mask *mask_of(const bwd_ctx *x, size_t b, size_t h, size_t *mi)
{
    const spattn_schedule *s = &x->p->plain;
    *mi = spattn__mask_index(&x->p->shape, s->n_masks_arg, b, h);
    return s->masks[*mi];
}
/* Query tile band q of the bands' cut (see plan_bands). */
typedef struct bwd_band {
    size_t q0, q1;     /* query tiles [q0, q1) */
    const size_t *off; /* [batch * heads_q]: where each (b, h) starts in ds */
} bwd_band;

/* The dS kept of (b, h) in the band, and the index of its first tile in the mask. */
static inline float *band_ds(const bwd_ctx *x, const bwd_band *bd, size_t b, size_t h,
                             const spattn_mask *m, size_t *tile0)
{
    *tile0 = m->qt_ptr[bd->q0];
    if (x->ds == NULL)
        return NULL;
    return x->ds + bd->off[b * x->p->shape.heads_q + h];
}

static inline size_t lower_qt(const uint32_t *qt, size_t lo, size_t hi, size_t want)
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

static inline float *dkv_of(const bwd_ctx *x, size_t u)
{
    return x->dkv + u * SPATTN_TK * (x->ldq + x->ldv);
}

/* The units of the passes (plan/backward_units.c): each writes only its own rows or kept
   dS. */
void spattn__bwd_pack_unit(const bwd_ctx *x, size_t u);
void spattn__bwd_kv_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch);
void spattn__bwd_q_unit(const bwd_ctx *x, const bwd_band *bd, size_t u, float *scratch);

#endif

/* The backward's checks. The view helpers mirror validate.c's (kept static there): a
   [batch][head][token][dim] view's span, and the ordering test that proves an output view
   maps no two elements to one address. */
#include "validate_bwd.h"

#include <stdint.h>

#include "validate.h"

typedef struct gview {
    size_t n[4];
    ptrdiff_t st[4];
} gview;

static gview make_gview(size_t b, size_t h, size_t t, size_t d, spattn_layout l)
{
    gview v = {{b, h, t, d}, {l.batch, l.head, l.token, 1}};
    return v;
}

/* Elements from the first to one past the last, or 0 when a stride is negative or the span
   (in bytes, or added to p) overflows. */
static size_t gview_span(const gview *v, const void *p)
{
    size_t span = 1;
    for (int i = 0; i < 4; i++) {
        if (v->st[i] < 0)
            return 0;
        const size_t n = v->n[i] - 1, st = (size_t)v->st[i];
        if (st != 0 && n > SIZE_MAX / st)
            return 0;
        if (span > SIZE_MAX - n * st)
            return 0;
        span += n * st;
    }
    if (span > (size_t)PTRDIFF_MAX / sizeof(float) ||
        (uintptr_t)p > UINTPTR_MAX - span * sizeof(float))
        return 0;
    return span;
}

/* Axes of size > 1 ordered by stride, each must step past all the smaller ones reach. */
static int gview_injective(const gview *v)
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; i++)
        if (v->n[i] > 1)
            idx[n++] = i;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && v->st[idx[b]] < v->st[idx[b - 1]]; b--) {
            const int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    size_t reach = 0;
    for (int a = 0; a < n; a++) {
        const size_t st = (size_t)v->st[idx[a]];
        if (st <= reach)
            return 0;
        reach += (v->n[idx[a]] - 1) * st;
    }
    return 1;
}

spattn_status spattn__check_backward(const spattn_args *a, const spattn_grads *g)
{
    spattn_status st = spattn__check_tensors(a);
    if (st != SPATTN_OK)
        return st;
    if (a->lse == NULL || g->d_o == NULL || g->d_q == NULL || g->d_k == NULL || g->d_v == NULL)
        return SPATTN_E_NULL;
    const spattn_shape *s = &a->shape;
    const gview vdo = make_gview(s->batch, s->heads_q, s->len_q, s->dim_v, g->d_o_layout);
    const gview vdq = make_gview(s->batch, s->heads_q, s->len_q, s->dim_qk, g->d_q_layout);
    const gview vdk = make_gview(s->batch, s->heads_kv, s->len_k, s->dim_qk, g->d_k_layout);
    const gview vdv = make_gview(s->batch, s->heads_kv, s->len_k, s->dim_v, g->d_v_layout);
    const size_t ndo = gview_span(&vdo, g->d_o), ndq = gview_span(&vdq, g->d_q),
                 ndk = gview_span(&vdk, g->d_k), ndv = gview_span(&vdv, g->d_v);
    if (ndo == 0 || ndq == 0 || ndk == 0 || ndv == 0)
        return SPATTN_E_SHAPE;
    if (!gview_injective(&vdq) || !gview_injective(&vdk) || !gview_injective(&vdv))
        return SPATTN_E_SHAPE;

    /* Spans of the forward tensors: check_tensors has bounded them; recomputed here the same
       way (a zero stride reaches nothing further). */
    const gview vq = make_gview(s->batch, s->heads_q, s->len_q, s->dim_qk, a->q_layout);
    const gview vk = make_gview(s->batch, s->heads_kv, s->len_k, s->dim_qk, a->k_layout);
    const gview vv = make_gview(s->batch, s->heads_kv, s->len_k, s->dim_v, a->v_layout);
    const gview vo = make_gview(s->batch, s->heads_q, s->len_q, s->dim_v, a->o_layout);
    const size_t nh = s->heads_q, nl = s->batch * s->heads_q * s->len_q;
    const spattn_range none = {0, 0};
    const spattn_range in[] = {
        spattn__range(a->q, gview_span(&vq, a->q)),
        spattn__range(a->k, gview_span(&vk, a->k)),
        spattn__range(a->v, gview_span(&vv, a->v)),
        spattn__range(a->o, gview_span(&vo, a->o)),
        spattn__range(a->lse, nl),
        spattn__range(g->d_o, ndo),
        a->alibi_slopes ? spattn__range(a->alibi_slopes, nh) : none,
        a->sinks ? spattn__range(a->sinks, nh) : none,
    };
    const int sinks_out = a->sinks != NULL && g->d_sinks != NULL;
    if (sinks_out && (uintptr_t)g->d_sinks > UINTPTR_MAX - nh * sizeof(float))
        return SPATTN_E_SHAPE;
    const spattn_range out[] = {
        spattn__range(g->d_q, ndq),
        spattn__range(g->d_k, ndk),
        spattn__range(g->d_v, ndv),
        sinks_out ? spattn__range(g->d_sinks, nh) : none,
    };
    const size_t nin = sizeof in / sizeof in[0], nout = sizeof out / sizeof out[0];
    for (size_t o = 0; o < nout; o++) {
        for (size_t i = 0; i < nin; i++)
            if (spattn__overlap(out[o], in[i]))
                return SPATTN_E_ARG;
        for (size_t p = o + 1; p < nout; p++)
            if (spattn__overlap(out[o], out[p]))
                return SPATTN_E_ARG;
    }
    return SPATTN_OK;
}

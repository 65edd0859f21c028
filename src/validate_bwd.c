/* The backward's checks, on the views of validate.h. */
#include "validate_bwd.h"

#include <stdint.h>

#include "validate.h"

/* The span in floats of a view of p, or 0 when it is bad or p plus it overflows. */
static size_t span_at(const spattn_view *v, const void *p)
{
    const size_t n = spattn__view_span(v, sizeof(float));
    return n != 0 && (uintptr_t)p <= UINTPTR_MAX - n * sizeof(float) ? n : 0;
}

spattn_status spattn__check_backward(const spattn_args *a, const spattn_grads *g)
{
    spattn_status st = spattn__check_tensors(a);
    if (st != SPATTN_OK)
        return st;
    /* check_tensors has refused values outside the enum; the backward is float32 only. */
    if (a->q_dtype != SPATTN_DTYPE_F32 || a->kv_dtype != SPATTN_DTYPE_F32 ||
        a->o_dtype != SPATTN_DTYPE_F32)
        return SPATTN_E_UNSUPPORTED;
    if (a->lse == NULL || g->d_o == NULL || g->d_q == NULL || g->d_k == NULL || g->d_v == NULL)
        return SPATTN_E_NULL;
    const spattn_shape *s = &a->shape;
    const spattn_view vdo = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_v, g->d_o_layout);
    const spattn_view vdq = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_qk, g->d_q_layout);
    const spattn_view vdk = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_qk, g->d_k_layout);
    const spattn_view vdv = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_v, g->d_v_layout);
    const size_t ndo = span_at(&vdo, g->d_o), ndq = span_at(&vdq, g->d_q),
                 ndk = span_at(&vdk, g->d_k), ndv = span_at(&vdv, g->d_v);
    if (ndo == 0 || ndq == 0 || ndk == 0 || ndv == 0)
        return SPATTN_E_SHAPE;
    if (!spattn__view_injective(&vdq) || !spattn__view_injective(&vdk) ||
        !spattn__view_injective(&vdv))
        return SPATTN_E_SHAPE;

    /* Spans of the forward tensors: check_tensors has bounded them; recomputed here the same
       way (a zero stride reaches nothing further). */
    const spattn_view vq = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_qk, a->q_layout);
    const spattn_view vk = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_qk, a->k_layout);
    const spattn_view vv = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_v, a->v_layout);
    const spattn_view vo = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_v, a->o_layout);
    const size_t nh = s->heads_q, nl = s->batch * s->heads_q * s->len_q;
    const spattn_range none = {0, 0};
    const spattn_range in[] = {
        spattn__range(a->q, span_at(&vq, a->q)),
        spattn__range(a->k, span_at(&vk, a->k)),
        spattn__range(a->v, span_at(&vv, a->v)),
        spattn__range(a->o, span_at(&vo, a->o)),
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

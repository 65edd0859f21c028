#include "validate.h"

#include <math.h>
#include <stdint.h>

#include "convert.h"
#include "mask/mask_impl.h"

static int mul_ok(size_t a, size_t b, size_t *r)
{
    if (a != 0 && b > SIZE_MAX / a)
        return 0;
    *r = a * b;
    return 1;
}

spattn_status spattn__check_shape(const spattn_shape *s)
{
    if (s == NULL)
        return SPATTN_E_NULL;
    if (s->batch == 0 || s->heads_q == 0 || s->heads_kv == 0 || s->len_q == 0 || s->len_k == 0 ||
        s->dim_qk == 0 || s->dim_v == 0)
        return SPATTN_E_SHAPE;
    if (s->len_q > SPATTN_MAX_LEN || s->len_k > SPATTN_MAX_LEN)
        return SPATTN_E_SHAPE;
    /* Every element count we may form must fit in ptrdiff_t and in bytes of size_t. */
    size_t limit = (size_t)PTRDIFF_MAX / sizeof(float);
    size_t n;
    const size_t dims[] = {s->dim_qk, s->dim_v, 1};
    for (int i = 0; i < 3; i++) {
        if (!mul_ok(s->batch, s->heads_q, &n) || !mul_ok(n, s->len_q, &n) ||
            !mul_ok(n, dims[i], &n) || n > limit)
            return SPATTN_E_SHAPE;
        if (!mul_ok(s->batch, s->heads_kv, &n) || !mul_ok(n, s->len_k, &n) ||
            !mul_ok(n, dims[i], &n) || n > limit)
            return SPATTN_E_SHAPE;
    }
    if (s->heads_q % s->heads_kv != 0)
        return SPATTN_E_ARG;
    return SPATTN_OK;
}

spattn_status spattn__check_masks(const spattn_shape *s, const spattn_mask *const *masks,
                                  size_t n_masks)
{
    if (n_masks == 0)
        return SPATTN_OK;
    if (masks == NULL)
        return SPATTN_E_NULL;
    if (n_masks != 1 && n_masks != s->heads_q && n_masks != s->batch * s->heads_q)
        return SPATTN_E_MASK;
    for (size_t i = 0; i < n_masks; i++)
        if (masks[i] == NULL)
            return SPATTN_E_NULL;
    for (size_t i = 0; i < n_masks; i++)
        if (masks[i]->len_q != s->len_q || masks[i]->len_k != s->len_k)
            return SPATTN_E_MASK;
    return SPATTN_OK;
}

size_t spattn__mask_index(const spattn_shape *s, size_t n_masks, size_t b, size_t h)
{
    if (n_masks <= 1)
        return 0;
    if (n_masks == s->heads_q)
        return h;
    return b * s->heads_q + h;
}

size_t spattn__view_span(const spattn_view *v, size_t es)
{
    size_t span = 1; /* last offset + 1 */
    for (int i = 0; i < 4; i++) {
        if (v->st[i] < 0)
            return 0;
        size_t off;
        if (!mul_ok(v->n[i] - 1, (size_t)v->st[i], &off) || span > SIZE_MAX - off)
            return 0;
        span += off;
    }
    if (span > (size_t)PTRDIFF_MAX / es)
        return 0;
    return span;
}

/* Exotic interleavings that are still injective are refused too; outputs in such layouts are
   not worth the risk of a silent race. */
int spattn__view_injective(const spattn_view *v)
{
    int idx[4], n = 0;
    for (int i = 0; i < 4; i++)
        if (v->n[i] > 1)
            idx[n++] = i;
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0 && v->st[idx[b]] < v->st[idx[b - 1]]; b--) {
            int t = idx[b];
            idx[b] = idx[b - 1];
            idx[b - 1] = t;
        }
    size_t reach = 0; /* largest offset the smaller axes reach */
    for (int a = 0; a < n; a++) {
        size_t st = (size_t)v->st[idx[a]];
        if (st <= reach)
            return 0;
        reach += (v->n[idx[a]] - 1) * st; /* no overflow: spattn__view_span passed */
    }
    return 1;
}

spattn_view spattn__view(size_t b, size_t h, size_t t, size_t d, spattn_layout l)
{
    spattn_view v = {{b, h, t, d}, {l.batch, l.head, l.token, 1}};
    return v;
}

/* ALiBi slopes finite, sinks finite or -inf, and with slopes every |i' - j| of the shape at
   most 2^24 (the kernels form distances in float, exact up to there). i' - j ranges over
   [pos0 - (len_k - 1), pos0 + len_q - 1] with pos0 = len_k - len_q + pos_offset, so the bound
   is len_q - 1 - 2^24 <= pos_offset <= 2^24 - (len_k - 1), written here without forming a sum
   that could overflow. The arrays must not overlap out0 or out1 (the call's outputs). */
static spattn_status check_modifiers(const spattn_args *a, spattn_range out0, spattn_range out1)
{
    const size_t nh = a->shape.heads_q;
    const int64_t lim = (int64_t)1 << 24;
    if (a->alibi_slopes != NULL) {
        for (size_t h = 0; h < nh; h++)
            if (!isfinite(a->alibi_slopes[h]))
                return SPATTN_E_ARG;
        const int64_t lo = (int64_t)a->shape.len_q - 1 - lim,
                      hi = lim - ((int64_t)a->shape.len_k - 1);
        if ((int64_t)a->pos_offset < lo || (int64_t)a->pos_offset > hi)
            return SPATTN_E_ARG;
        spattn_range r = spattn__range(a->alibi_slopes, nh);
        if ((uintptr_t)a->alibi_slopes > UINTPTR_MAX - nh * sizeof(float) ||
            spattn__overlap(r, out0) || spattn__overlap(r, out1))
            return SPATTN_E_ARG;
    }
    if (a->sinks != NULL) {
        for (size_t h = 0; h < nh; h++)
            if (isnan(a->sinks[h]) || a->sinks[h] == INFINITY)
                return SPATTN_E_ARG;
        spattn_range r = spattn__range(a->sinks, nh);
        if ((uintptr_t)a->sinks > UINTPTR_MAX - nh * sizeof(float) || spattn__overlap(r, out0) ||
            spattn__overlap(r, out1))
            return SPATTN_E_ARG;
    }
    return SPATTN_OK;
}

spattn_status spattn__check_tensors(const spattn_args *a)
{
    if (a->q == NULL || a->k == NULL || a->v == NULL || a->o == NULL)
        return SPATTN_E_NULL;
    /* Element sizes first: every span below is in elements of its tensor's type. */
    const size_t eq = spattn__dtype_size(a->q_dtype), ekv = spattn__dtype_size(a->kv_dtype),
                 eo = spattn__dtype_size(a->o_dtype);
    if (eq == 0 || ekv == 0 || eo == 0)
        return SPATTN_E_ARG;
    const spattn_shape *s = &a->shape;
    spattn_view vq = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_qk, a->q_layout);
    spattn_view vk = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_qk, a->k_layout);
    spattn_view vv = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_v, a->v_layout);
    spattn_view vo = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_v, a->o_layout);
    size_t nq = spattn__view_span(&vq, eq), nk = spattn__view_span(&vk, ekv),
           nv = spattn__view_span(&vv, ekv), no = spattn__view_span(&vo, eo);
    if (nq == 0 || nk == 0 || nv == 0 || no == 0)
        return SPATTN_E_SHAPE;
    /* The dim axis is contiguous, so a token stride below the row length overlaps rows. */
    if (!spattn__view_injective(&vo))
        return SPATTN_E_SHAPE;
    /* The address arithmetic of the spans must not wrap. */
    const void *ptrs[] = {a->q, a->k, a->v, a->o};
    const size_t spans[] = {nq, nk, nv, no}, sizes[] = {eq, ekv, ekv, eo};
    for (int i = 0; i < 4; i++)
        if ((uintptr_t)ptrs[i] > UINTPTR_MAX - spans[i] * sizes[i])
            return SPATTN_E_SHAPE;

    spattn_range ro = spattn__range_of(a->o, no, eo), rq = spattn__range_of(a->q, nq, eq),
                 rk = spattn__range_of(a->k, nk, ekv), rv = spattn__range_of(a->v, nv, ekv);
    if (spattn__overlap(ro, rq) || spattn__overlap(ro, rk) || spattn__overlap(ro, rv))
        return SPATTN_E_ARG;
    if (a->lse != NULL) {
        size_t nl = s->batch * s->heads_q * s->len_q; /* checked by check_shape */
        if ((uintptr_t)a->lse > UINTPTR_MAX - nl * sizeof(float))
            return SPATTN_E_SHAPE;
        spattn_range rl = spattn__range(a->lse, nl);
        if (spattn__overlap(rl, ro) || spattn__overlap(rl, rq) || spattn__overlap(rl, rk) ||
            spattn__overlap(rl, rv))
            return SPATTN_E_ARG;
    }
    if (!isfinite(a->scale) || a->scale < 0.0f)
        return SPATTN_E_ARG;
    if (!isfinite(a->softcap) || a->softcap < 0.0f)
        return SPATTN_E_ARG;
    const spattn_range none = {0, 0};
    return check_modifiers(
        a, ro, a->lse != NULL ? spattn__range(a->lse, s->batch * s->heads_q * s->len_q) : none);
}

int spattn__same_shape(const spattn_shape *a, const spattn_shape *b)
{
    return a->batch == b->batch && a->heads_q == b->heads_q && a->heads_kv == b->heads_kv &&
           a->len_q == b->len_q && a->len_k == b->len_k && a->dim_qk == b->dim_qk &&
           a->dim_v == b->dim_v;
}

spattn_status spattn__check_probs(const spattn_args *a, const float *probs, uint64_t np,
                                  const float *col_sums)
{
    if (a->q == NULL || a->k == NULL)
        return SPATTN_E_NULL;
    /* v and o are not read, so only the types of q and k matter. */
    const size_t eq = spattn__dtype_size(a->q_dtype), ek = spattn__dtype_size(a->kv_dtype);
    if (eq == 0 || ek == 0)
        return SPATTN_E_ARG;
    const spattn_shape *s = &a->shape;
    spattn_view vq = spattn__view(s->batch, s->heads_q, s->len_q, s->dim_qk, a->q_layout);
    spattn_view vk = spattn__view(s->batch, s->heads_kv, s->len_k, s->dim_qk, a->k_layout);
    size_t nq = spattn__view_span(&vq, eq), nk = spattn__view_span(&vk, ek);
    if (nq == 0 || nk == 0 || (uintptr_t)a->q > UINTPTR_MAX - nq * eq ||
        (uintptr_t)a->k > UINTPTR_MAX - nk * ek)
        return SPATTN_E_SHAPE;
    const size_t limit = (size_t)PTRDIFF_MAX / sizeof(float);
    if (probs != NULL && (np > limit || (uintptr_t)probs > UINTPTR_MAX - np * sizeof(float)))
        return SPATTN_E_SHAPE;
    size_t nc = 0;
    if (col_sums != NULL) {
        size_t nbh = s->batch * s->heads_q; /* bounded by check_shape */
        if (s->len_k > limit / nbh)
            return SPATTN_E_SHAPE;
        nc = nbh * s->len_k;
        if ((uintptr_t)col_sums > UINTPTR_MAX - nc * sizeof(float))
            return SPATTN_E_SHAPE;
    }
    spattn_range rq = spattn__range_of(a->q, nq, eq), rk = spattn__range_of(a->k, nk, ek);
    if (probs != NULL && np > 0) {
        spattn_range rp = spattn__range(probs, (size_t)np);
        if (spattn__overlap(rp, rq) || spattn__overlap(rp, rk) ||
            (col_sums != NULL && spattn__overlap(rp, spattn__range(col_sums, nc))))
            return SPATTN_E_ARG;
    }
    if (col_sums != NULL && (spattn__overlap(spattn__range(col_sums, nc), rq) ||
                             spattn__overlap(spattn__range(col_sums, nc), rk)))
        return SPATTN_E_ARG;
    if (!isfinite(a->scale) || a->scale < 0.0f || !isfinite(a->softcap) || a->softcap < 0.0f)
        return SPATTN_E_ARG;
    const spattn_range none = {0, 0};
    return check_modifiers(a, probs != NULL && np > 0 ? spattn__range(probs, (size_t)np) : none,
                           col_sums != NULL ? spattn__range(col_sums, nc) : none);
}

float spattn__resolve_scale(float scale, size_t dim_qk)
{
    return scale != 0.0f ? scale : (float)(1.0 / sqrt((double)dim_qk));
}

spattn_status spattn__check_softmax(const float *x, const float *y, size_t rows, size_t cols,
                                    size_t ld, const spattn_mask *mask, float scale)
{
    if (x == NULL || y == NULL || mask == NULL)
        return SPATTN_E_NULL;
    if (rows == 0 || cols == 0 || ld < cols)
        return SPATTN_E_SHAPE;
    size_t n;
    if (!mul_ok(rows - 1, ld, &n) || n > (size_t)PTRDIFF_MAX / sizeof(float) - cols)
        return SPATTN_E_SHAPE;
    n += cols;
    if ((uintptr_t)x > UINTPTR_MAX - n * sizeof(float) ||
        (uintptr_t)y > UINTPTR_MAX - n * sizeof(float))
        return SPATTN_E_SHAPE;
    if (mask->len_q != rows || mask->len_k != cols)
        return SPATTN_E_MASK;
    if (!isfinite(scale) || scale < 0.0f)
        return SPATTN_E_ARG;
    if (x != y && spattn__overlap(spattn__range(x, n), spattn__range(y, n)))
        return SPATTN_E_ARG;
    return SPATTN_OK;
}

/* The path tests' problems: see test_problem.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "test_problem.h"

/* Q, K, V of one batch and `heads` heads (bhtd), K and V rows of keys the mask never allows
   NaN; random scale, softcap, ALiBi and sinks. */
void tproblem_make(tproblem *p, tu_rng *r, spattn_mask *m, size_t heads, size_t dq, size_t dv)
{
    memset(p, 0, sizeof *p);
    const size_t lq = spattn_mask_len_q(m), lk = spattn_mask_len_k(m);
    spattn_shape s = {1, heads, heads, lq, lk, dq, dv};
    p->a.shape = s;
    p->q = malloc(heads * lq * dq * sizeof(float));
    p->k = malloc(heads * lk * dq * sizeof(float));
    p->v = malloc(heads * lk * dv * sizeof(float));
    p->o = malloc(heads * lq * dv * sizeof(float));
    p->lse = malloc(heads * lq * sizeof(float));
    p->slopes = malloc(heads * sizeof(float));
    p->sinks = malloc(heads * sizeof(float));
    uint8_t *dense = malloc(lq * lk), *used = calloc(lk, 1);
    ck_assert(p->q && p->k && p->v && p->o && p->lse && p->slopes && p->sinks && dense && used);
    ck_assert_int_eq(spattn_mask_to_dense(m, dense, lk), SPATTN_OK);
    for (size_t i = 0; i < lq * lk; i++)
        used[i % lk] |= dense[i];
    for (size_t i = 0; i < heads * lq * dq; i++)
        p->q[i] = tu_normal(r);
    for (size_t h = 0; h < heads; h++)
        for (size_t j = 0; j < lk; j++) {
            for (size_t d = 0; d < dq; d++)
                p->k[(h * lk + j) * dq + d] = used[j] ? tu_normal(r) : NAN;
            for (size_t d = 0; d < dv; d++)
                p->v[(h * lk + j) * dv + d] = used[j] ? tu_normal(r) : NAN;
        }
    for (size_t h = 0; h < heads; h++) {
        p->slopes[h] = (float)(0.01 * tu_uniform(r));
        p->sinks[h] = tu_uniform(r) < 0.5 ? -INFINITY : tu_normal(r);
    }
    free(dense);
    free(used);
    p->a.q = p->q;
    p->a.k = p->k;
    p->a.v = p->v;
    p->a.o = p->o;
    p->a.lse = p->lse;
    p->a.q_layout = spattn_layout_bhtd(heads, lq, dq);
    p->a.o_layout = spattn_layout_bhtd(heads, lq, dv);
    p->a.k_layout = spattn_layout_bhtd(heads, lk, dq);
    p->a.v_layout = spattn_layout_bhtd(heads, lk, dv);
    p->a.scale = tu_uniform(r) < 0.5 ? 0.0f : 0.3f;
    p->a.softcap = tu_uniform(r) < 0.25 ? 20.0f : 0.0f;
    const int mods = (int)tu_range(r, 0, 3);
    p->a.alibi_slopes = mods & 1 ? p->slopes : NULL;
    p->a.sinks = mods & 2 ? p->sinks : NULL;
    p->mask = m;
}

void tproblem_to_bf16(tproblem *p)
{
    const spattn_shape *s = &p->a.shape;
    const size_t nq = s->heads_q * s->len_q * s->dim_qk, nk = s->heads_kv * s->len_k * s->dim_qk,
                 nv = s->heads_kv * s->len_k * s->dim_v;
    p->qh = malloc(nq * sizeof *p->qh);
    p->kh = malloc(nk * sizeof *p->kh);
    p->vh = malloc(nv * sizeof *p->vh);
    ck_assert(p->qh && p->kh && p->vh);
    spattn_f32_to_bf16(p->q, p->qh, nq);
    spattn_f32_to_bf16(p->k, p->kh, nk);
    spattn_f32_to_bf16(p->v, p->vh, nv);
    p->a.q = p->qh;
    p->a.k = p->kh;
    p->a.v = p->vh;
    p->a.q_dtype = p->a.kv_dtype = SPATTN_DTYPE_BF16;
}

void tproblem_free(tproblem *p)
{
    free(p->qh);
    free(p->kh);
    free(p->vh);
    free(p->q);
    free(p->k);
    free(p->v);
    free(p->o);
    free(p->lse);
    free(p->slopes);
    free(p->sinks);
    spattn_mask_free(p->mask);
}

void tproblem_check(const tproblem *p, const char *what, double tol)
{
    const spattn_shape *s = &p->a.shape;
    const size_t no = s->heads_q * s->len_q * s->dim_v, nl = s->heads_q * s->len_q;
    float *ro = malloc(no * sizeof(float)), *rl = malloc(nl * sizeof(float));
    ck_assert(ro && rl);
    spattn_args ra = p->a;
    ra.o = ro;
    ra.lse = rl;
    const spattn_mask *ms[1] = {p->mask};
    ck_assert_int_eq(spattn_reference_forward(&ra, ms, 1), SPATTN_OK);
    for (size_t i = 0; i < no; i++)
        if (!tu_close(p->o[i], ro[i], tol))
            ck_abort_msg("%s: o[%zu] = %.9g, reference %.9g", what, i, p->o[i], ro[i]);
    for (size_t i = 0; i < nl; i++)
        if (!tu_close(p->lse[i], rl[i], tol))
            ck_abort_msg("%s: lse[%zu] = %.9g, reference %.9g", what, i, p->lse[i], rl[i]);
    free(ro);
    free(rl);
}

void tproblem_keep(const tproblem *p, tproblem_bits *b)
{
    const spattn_shape *s = &p->a.shape;
    b->no = s->heads_q * s->len_q * s->dim_v;
    b->nl = s->heads_q * s->len_q;
    b->o = malloc(b->no * sizeof(float));
    b->lse = malloc(b->nl * sizeof(float));
    ck_assert(b->o && b->lse);
    memcpy(b->o, p->o, b->no * sizeof(float));
    memcpy(b->lse, p->lse, b->nl * sizeof(float));
}

void tproblem_clear(tproblem *p)
{
    const spattn_shape *s = &p->a.shape;
    memset(p->o, 0, s->heads_q * s->len_q * s->dim_v * sizeof(float));
}

int tproblem_same(const tproblem *p, const tproblem_bits *b)
{
    return memcmp(b->o, p->o, b->no * sizeof(float)) == 0 &&
           memcmp(b->lse, p->lse, b->nl * sizeof(float)) == 0;
}

void tproblem_bits_free(tproblem_bits *b)
{
    free(b->o);
    free(b->lse);
}

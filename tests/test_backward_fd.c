/*
 * The float64 reference backward against central finite differences of the loss
 * L = sum(dO * O), O from a float64 forward written here from the formula of spattn.h (so
 * that neither side borrows from the other). Tiny problems: every mask kind (with fully
 * masked rows and keys no row sees), softcap, ALiBi, sinks (finite and -inf), GQA/MQA.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef struct fd_problem {
    spattn_shape s;
    double *q, *k, *v, *dout, sinks[8], slopes[8];
    float *fq, *fk, *fv, *fo, *flse, *fdo, *dq, *dk, *dv, dsinks[8], fsinks[8], fslopes[8];
    uint8_t *allowed[64]; /* one len_q x len_k mask per query head (batch 1) */
    spattn_mask *masks[64];
    float scale, softcap;
    int alibi, sink;
    ptrdiff_t pos_offset;
} fd_problem;

/* O of the whole problem in double (contiguous [b][h][t][d]), returning sum(dO * O). */
static double fd_loss(const fd_problem *p)
{
    const spattn_shape *s = &p->s;
    const size_t g = s->heads_q / s->heads_kv, lq = s->len_q, lk = s->len_k;
    double L = 0.0;
    for (size_t h = 0; h < s->heads_q; h++) {
        const size_t hk = h / g;
        const uint8_t *al = p->allowed[h];
        for (size_t i = 0; i < lq; i++) {
            double sc[64], m = p->sink ? p->sinks[h] : -INFINITY;
            const double ip = (double)i + (double)lk - (double)lq + (double)p->pos_offset;
            for (size_t j = 0; j < lk; j++) {
                if (!al[i * lk + j])
                    continue;
                double u = 0.0;
                for (size_t d = 0; d < s->dim_qk; d++)
                    u += p->q[(h * lq + i) * s->dim_qk + d] * p->k[(hk * lk + j) * s->dim_qk + d];
                u *= p->scale;
                if (p->softcap != 0.0f)
                    u = p->softcap * tanh(u / p->softcap);
                if (p->alibi)
                    u -= p->slopes[h] * fabs(ip - (double)j);
                sc[j] = u;
                m = u > m ? u : m;
            }
            if (m == -INFINITY)
                continue;
            double l = p->sink ? exp(p->sinks[h] - m) : 0.0;
            for (size_t j = 0; j < lk; j++)
                if (al[i * lk + j])
                    l += exp(sc[j] - m);
            for (size_t j = 0; j < lk; j++) {
                if (!al[i * lk + j])
                    continue;
                const double pr = exp(sc[j] - m) / l;
                for (size_t d = 0; d < s->dim_v; d++)
                    L += p->dout[(h * lq + i) * s->dim_v + d] * pr *
                         p->v[(hk * lk + j) * s->dim_v + d];
            }
        }
    }
    return L;
}

static double *dalloc(size_t n)
{
    double *x = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(x);
    return x;
}

static float *falloc(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(x);
    return x;
}

static void fd_make(fd_problem *p, tu_rng *r, int variant)
{
    memset(p, 0, sizeof *p);
    spattn_shape s = {
        1, 0, 0, tu_range(r, 1, 6), tu_range(r, 1, 7), tu_range(r, 1, 5), tu_range(r, 1, 5)};
    const size_t kv[] = {1, 1, 2, 2}, grp[] = {1, 2, 1, 3};
    s.heads_kv = kv[variant % 4];
    s.heads_q = s.heads_kv * grp[(variant / 4) % 4];
    p->s = s;
    const size_t nq = s.heads_q * s.len_q, nk = s.heads_kv * s.len_k;
    p->q = dalloc(nq * s.dim_qk);
    p->k = dalloc(nk * s.dim_qk);
    p->v = dalloc(nk * s.dim_v);
    p->dout = dalloc(nq * s.dim_v);
    p->fq = falloc(nq * s.dim_qk);
    p->fk = falloc(nk * s.dim_qk);
    p->fv = falloc(nk * s.dim_v);
    p->fo = falloc(nq * s.dim_v);
    p->fdo = falloc(nq * s.dim_v);
    p->flse = falloc(nq);
    p->dq = falloc(nq * s.dim_qk);
    p->dk = falloc(nk * s.dim_qk);
    p->dv = falloc(nk * s.dim_v);
#define FILL(dst, fdst, n)                                                                         \
    for (size_t x = 0; x < (n); x++)                                                               \
    (dst)[x] = (fdst)[x] = tu_normal(r)
    FILL(p->q, p->fq, nq * s.dim_qk);
    FILL(p->k, p->fk, nk * s.dim_qk);
    FILL(p->v, p->fv, nk * s.dim_v);
    FILL(p->dout, p->fdo, nq * s.dim_v);
#undef FILL
    p->scale = tu_range(r, 0, 1) ? 0.0f : (float)(0.3 + tu_uniform(r));
    p->softcap = tu_range(r, 0, 2) == 0 ? 0.0f : (float)(0.5 + 3.0 * tu_uniform(r));
    p->alibi = (int)tu_range(r, 0, 1);
    p->sink = (int)tu_range(r, 0, 1);
    p->pos_offset = p->alibi ? (ptrdiff_t)tu_range(r, 0, 4) - 2 : 0;
    for (size_t h = 0; h < s.heads_q; h++) {
        p->fslopes[h] = (float)(0.5 * tu_uniform(r));
        p->fsinks[h] = h % 3 == 2 ? -INFINITY : tu_normal(r);
        p->slopes[h] = p->fslopes[h];
        p->sinks[h] = p->fsinks[h];
    }
    for (size_t h = 0; h < s.heads_q; h++) {
        if (variant % 3 == 0 && h == 0) {
            /* Row 0 sees nothing, key len_k - 1 is seen by no row. */
            uint8_t d[64];
            for (size_t i = 0; i < s.len_q; i++)
                for (size_t j = 0; j < s.len_k; j++)
                    d[i * s.len_k + j] = i != 0 && j + 1 != s.len_k && tu_uniform(r) < 0.7;
            ck_assert_int_eq(spattn_mask_from_dense(s.len_q, s.len_k, d, s.len_k, &p->masks[h]),
                             SPATTN_OK);
        } else {
            p->masks[h] = tu_random_mask(r, s.len_q, s.len_k);
        }
        p->allowed[h] = malloc(s.len_q * s.len_k);
        ck_assert_ptr_nonnull(p->allowed[h]);
        ck_assert_int_eq(spattn_mask_to_dense(p->masks[h], p->allowed[h], s.len_k), SPATTN_OK);
    }
    if (p->scale == 0.0f)
        p->scale = (float)(1.0 / sqrt((double)s.dim_qk));
}

static void fd_free(fd_problem *p)
{
    free(p->q), free(p->k), free(p->v), free(p->dout);
    free(p->fq), free(p->fk), free(p->fv), free(p->fo), free(p->fdo), free(p->flse);
    free(p->dq), free(p->dk), free(p->dv);
    for (size_t h = 0; h < p->s.heads_q; h++) {
        spattn_mask_free(p->masks[h]);
        free(p->allowed[h]);
    }
}

/* dL/dx[i] by central differences, against the analytic value. */
static void fd_check(fd_problem *p, double *x, size_t n, const float *grad, const char *what,
                     double *worst)
{
    const double eps = 1e-5;
    for (size_t i = 0; i < n; i++) {
        const double x0 = x[i];
        x[i] = x0 + eps;
        const double lp = fd_loss(p);
        x[i] = x0 - eps;
        const double lm = fd_loss(p);
        x[i] = x0;
        const double fd = (lp - lm) / (2.0 * eps);
        const double err = fabs(fd - (double)grad[i]) / (1.0 + fabs(fd));
        if (err > *worst)
            *worst = err;
        ck_assert_msg(err <= 1e-6, "%s[%zu]: reference %.9g, finite difference %.9g", what, i,
                      (double)grad[i], fd);
    }
}

START_TEST(reference_matches_finite_differences)
{
    tu_rng r = {0xbac4a9d5ull + (uint64_t)_i};
    double worst = 0.0;
    const int n = tu_cases(48);
    for (int c = 0; c < n; c++) {
        fd_problem p;
        fd_make(&p, &r, c);
        const spattn_shape s = p.s;
        spattn_args a = {0};
        a.shape = s;
        a.q = p.fq;
        a.k = p.fk;
        a.v = p.fv;
        a.o = p.fo;
        a.lse = p.flse;
        a.q_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_qk);
        a.k_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_qk);
        a.v_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_v);
        a.o_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_v);
        a.scale = p.scale;
        a.softcap = p.softcap;
        a.alibi_slopes = p.alibi ? p.fslopes : NULL;
        a.sinks = p.sink ? p.fsinks : NULL;
        a.pos_offset = p.pos_offset;
        spattn_grads g = {0};
        g.d_o = p.fdo;
        g.d_o_layout = a.o_layout;
        g.d_q = p.dq;
        g.d_q_layout = a.q_layout;
        g.d_k = p.dk;
        g.d_k_layout = a.k_layout;
        g.d_v = p.dv;
        g.d_v_layout = a.v_layout;
        g.d_sinks = p.dsinks;
        const spattn_mask *const *ml = (const spattn_mask *const *)p.masks;
        ck_assert_int_eq(spattn_reference_forward(&a, ml, s.heads_q), SPATTN_OK);
        ck_assert_int_eq(spattn_reference_backward(&a, ml, s.heads_q, &g), SPATTN_OK);
        fd_check(&p, p.q, s.heads_q * s.len_q * s.dim_qk, p.dq, "dq", &worst);
        fd_check(&p, p.k, s.heads_kv * s.len_k * s.dim_qk, p.dk, "dk", &worst);
        fd_check(&p, p.v, s.heads_kv * s.len_k * s.dim_v, p.dv, "dv", &worst);
        if (p.sink) {
            double sk[8];
            memcpy(sk, p.sinks, sizeof sk);
            for (size_t h = 0; h < s.heads_q; h++)
                if (p.fsinks[h] == -INFINITY)
                    ck_assert(p.dsinks[h] == 0.0f);
                else
                    fd_check(&p, p.sinks + h, 1, p.dsinks + h, "dsinks", &worst);
        }
        /* Exact zeros: rows that see nothing, keys no row of their group sees. */
        const size_t g2 = s.heads_q / s.heads_kv;
        for (size_t h = 0; h < s.heads_q; h++)
            for (size_t i = 0; i < s.len_q; i++) {
                int any = 0;
                for (size_t j = 0; j < s.len_k; j++)
                    any |= p.allowed[h][i * s.len_k + j];
                for (size_t d = 0; d < s.dim_qk && !any; d++)
                    ck_assert(p.dq[(h * s.len_q + i) * s.dim_qk + d] == 0.0f);
            }
        for (size_t hk = 0; hk < s.heads_kv; hk++)
            for (size_t j = 0; j < s.len_k; j++) {
                int any = 0;
                for (size_t h = hk * g2; h < (hk + 1) * g2; h++)
                    for (size_t i = 0; i < s.len_q; i++)
                        any |= p.allowed[h][i * s.len_k + j];
                for (size_t d = 0; d < s.dim_qk && !any; d++)
                    ck_assert(p.dk[(hk * s.len_k + j) * s.dim_qk + d] == 0.0f);
                for (size_t d = 0; d < s.dim_v && !any; d++)
                    ck_assert(p.dv[(hk * s.len_k + j) * s.dim_v + d] == 0.0f);
            }
        fd_free(&p);
    }
    printf("backward reference vs finite differences: worst relative error %.3g (tolerance 1e-6)\n",
           worst);
}
END_TEST

Suite *suite_backward_fd(void);
Suite *suite_backward_fd(void)
{
    Suite *s = suite_create("backward_fd");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, reference_matches_finite_differences, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

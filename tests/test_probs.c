/* spattn_probs on every available ISA against probabilities computed here in float64, pair by
   pair from a dense copy of each mask; plus layout, thread, path and validation checks. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "plan/test_hooks.h"
#include "test_util.h"

/* ---- problems -------------------------------------------------------------------------- */

typedef struct pproblem {
    spattn_args a;
    float *q, *k;
    spattn_mask *masks[16];
    size_t n_masks;
} pproblem;

/* Q and K with every row padded (stride > dim) and the padding NaN, so reading outside the
   view shows; K rows of keys no mask allows are NaN too. */
static void problem_make(pproblem *p, tu_rng *r, size_t max_len, float amp)
{
    memset(p, 0, sizeof *p);
    spattn_shape *s = &p->a.shape;
    s->batch = tu_range(r, 1, 2);
    s->heads_kv = tu_range(r, 1, 2);
    s->heads_q = s->heads_kv * tu_range(r, 1, 2);
    s->len_q = tu_range(r, 1, max_len);
    s->len_k = tu_range(r, 1, max_len);
    s->dim_qk = tu_uniform(r) < 0.5 ? 16 * tu_range(r, 1, 3) : tu_range(r, 1, 40);
    s->dim_v = tu_range(r, 1, 8);

    size_t pad = tu_range(r, 0, 3);
    spattn_layout lq = {0, 0, (ptrdiff_t)(s->dim_qk + pad)};
    lq.head = lq.token * (ptrdiff_t)s->len_q;
    lq.batch = lq.head * (ptrdiff_t)s->heads_q;
    spattn_layout lk = {0, 0, (ptrdiff_t)(s->dim_qk + pad)};
    lk.head = lk.token * (ptrdiff_t)s->len_k;
    lk.batch = lk.head * (ptrdiff_t)s->heads_kv;
    size_t nq = (size_t)lq.batch * s->batch, nk = (size_t)lk.batch * s->batch;
    p->q = malloc(nq * sizeof(float));
    p->k = malloc(nk * sizeof(float));
    for (size_t i = 0; i < nq; i++)
        p->q[i] = (i % (size_t)lq.token) < s->dim_qk ? amp * tu_normal(r) : NAN;
    for (size_t i = 0; i < nk; i++)
        p->k[i] = (i % (size_t)lk.token) < s->dim_qk ? tu_normal(r) : NAN;

    int kind = (int)tu_range(r, 0, 3);
    p->n_masks = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? s->heads_q : s->batch * s->heads_q;
    for (size_t i = 0; i < p->n_masks; i++)
        p->masks[i] = tu_random_mask(r, s->len_q, s->len_k);
    if (p->n_masks > 0) {
        uint8_t *used = calloc(s->len_k, 1), *d = malloc(s->len_q * s->len_k);
        for (size_t m = 0; m < p->n_masks; m++) {
            ck_assert_int_eq(spattn_mask_to_dense(p->masks[m], d, s->len_k), SPATTN_OK);
            for (size_t i = 0; i < s->len_q * s->len_k; i++)
                used[i % s->len_k] |= d[i];
        }
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_kv; h++)
                for (size_t j = 0; j < s->len_k; j++)
                    if (!used[j])
                        p->k[b * (size_t)lk.batch + h * (size_t)lk.head + j * (size_t)lk.token] =
                            NAN;
        free(used);
        free(d);
    }
    p->a.q = p->q;
    p->a.k = p->k;
    p->a.q_layout = lq;
    p->a.k_layout = lk;
    p->a.scale = tu_uniform(r) < 0.5 ? 0.0f : (float)(0.05 + tu_uniform(r) * 0.5);
    p->a.softcap = tu_uniform(r) < 0.25 ? (float)(1.0 + 5.0 * tu_uniform(r)) : 0.0f;
}

static void problem_free(pproblem *p)
{
    for (size_t i = 0; i < p->n_masks; i++)
        spattn_mask_free(p->masks[i]);
    free(p->q);
    free(p->k);
}

static const spattn_mask *mask_for(const pproblem *p, size_t b, size_t h)
{
    if (p->n_masks == 0)
        return NULL;
    if (p->n_masks == 1)
        return p->masks[0];
    if (p->n_masks == p->a.shape.heads_q)
        return p->masks[h];
    return p->masks[b * p->a.shape.heads_q + h];
}

/* The truth: probabilities in float64 straight from the definition, in row-major order of the
   allowed pairs (which is the CSR order), and column sums. Returns the number of values. */
static size_t truth(const pproblem *p, double **probs_out, double **cols_out)
{
    const spattn_shape *s = &p->a.shape;
    double scale = p->a.scale != 0.0f ? (double)p->a.scale : 1.0 / sqrt((double)s->dim_qk);
    double cap = p->a.softcap;
    size_t cap_vals = s->batch * s->heads_q * s->len_q * s->len_k;
    double *pr = malloc(cap_vals * sizeof(double) + 8);
    double *cs = calloc(s->batch * s->heads_q * s->len_k, sizeof(double));
    double *sc = malloc(s->len_k * sizeof(double));
    uint8_t *d = malloc(s->len_q * s->len_k);
    size_t n = 0;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++) {
            const spattn_mask *m = mask_for(p, b, h);
            if (m)
                ck_assert_int_eq(spattn_mask_to_dense(m, d, s->len_k), SPATTN_OK);
            else
                memset(d, 1, s->len_q * s->len_k);
            size_t hk = h / (s->heads_q / s->heads_kv);
            for (size_t i = 0; i < s->len_q; i++) {
                const float *qi = p->q + b * (size_t)p->a.q_layout.batch +
                                  h * (size_t)p->a.q_layout.head + i * (size_t)p->a.q_layout.token;
                double mx = -INFINITY;
                for (size_t j = 0; j < s->len_k; j++) {
                    if (!d[i * s->len_k + j])
                        continue;
                    const float *kj = p->k + b * (size_t)p->a.k_layout.batch +
                                      hk * (size_t)p->a.k_layout.head +
                                      j * (size_t)p->a.k_layout.token;
                    double dot = 0.0;
                    for (size_t t = 0; t < s->dim_qk; t++)
                        dot += (double)qi[t] * (double)kj[t];
                    double v = scale * dot;
                    if (cap != 0.0)
                        v = cap * tanh(v / cap);
                    sc[j] = v;
                    if (v > mx)
                        mx = v;
                }
                double l = 0.0;
                for (size_t j = 0; j < s->len_k; j++)
                    if (d[i * s->len_k + j])
                        l += exp(sc[j] - mx);
                for (size_t j = 0; j < s->len_k; j++)
                    if (d[i * s->len_k + j]) {
                        double pij = exp(sc[j] - mx) / l;
                        pr[n++] = pij;
                        cs[(b * s->heads_q + h) * s->len_k + j] += pij;
                    }
            }
        }
    free(sc);
    free(d);
    *probs_out = pr;
    *cols_out = cs;
    return n;
}

static void check_against_truth(const pproblem *p, const spattn_plan *plan)
{
    const spattn_shape *s = &p->a.shape;
    double *tp, *tc;
    size_t n = truth(p, &tp, &tc);
    ck_assert_uint_eq(spattn_plan_probs_len(plan), n);
    size_t nc = s->batch * s->heads_q * s->len_k;

    tu_buf pb = tu_buf_new(n), cb = tu_buf_new(nc), cb2 = tu_buf_new(nc);
    ck_assert_int_eq(spattn_probs(plan, &p->a, pb.p, cb.p), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&pb) && tu_buf_guards_ok(&cb));
    for (size_t i = 0; i < n; i++)
        TU_CHECK_MSG(tu_close(pb.p[i], (float)tp[i], TU_TOL), "%s: probs[%zu] = %.9g, ref %.9g",
                     spattn_isa_name(spattn_plan_isa(plan)), i, (double)pb.p[i], tp[i]);
    for (size_t i = 0; i < nc; i++)
        ck_assert_msg(tu_close(cb.p[i], (float)tc[i], TU_TOL), "%s: col_sums[%zu] = %.9g, ref %.9g",
                      spattn_isa_name(spattn_plan_isa(plan)), i, (double)cb.p[i], tc[i]);

    /* Column sums alone give the same bits as with probs. */
    ck_assert_int_eq(spattn_probs(plan, &p->a, NULL, cb2.p), SPATTN_OK);
    ck_assert(memcmp(cb.p, cb2.p, nc * sizeof(float)) == 0);
    ck_assert(tu_buf_guards_ok(&cb2));

    /* Offsets and masks let a user find (b, h)'s pairs. */
    uint64_t off = 0;
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++) {
            ck_assert_uint_eq(spattn_plan_probs_offset(plan, b, h), off);
            const spattn_mask *m = spattn_plan_mask(plan, b, h);
            ck_assert_ptr_nonnull(m);
            if (mask_for(p, b, h))
                ck_assert_ptr_eq(m, mask_for(p, b, h));
            off += spattn_mask_nnz(m);
        }
    ck_assert_uint_eq(off, n);
    tu_buf_free(&pb);
    tu_buf_free(&cb);
    tu_buf_free(&cb2);
    free(tp);
    free(tc);
}

static spattn_plan *make_plan(const pproblem *p, spattn_isa isa, int threads, spattn_path path)
{
    spattn_options o = {isa, threads};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn__plan_create_path(&p->a.shape, (const spattn_mask *const *)p->masks,
                                              p->n_masks, &o, path, &plan),
                     SPATTN_OK);
    return plan;
}

/* ---- tests ----------------------------------------------------------------------------- */

START_TEST(probs_vs_float64)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {0x5eed0001u + (uint64_t)_i};
    int n = tu_cases(60);
    for (int c = 0; c < n; c++) {
        pproblem p;
        problem_make(&p, &r, c % 4 == 0 ? 150 : 40, 1.0f);
        spattn_path path = (spattn_path)(c % 3);
        spattn_plan *plan = make_plan(&p, isa, 1 + c % 2, path);
        ck_assert_int_eq(spattn_plan_isa(plan), isa);
        check_against_truth(&p, plan);
        spattn_plan_free(plan);
        problem_free(&p);
    }
}
END_TEST

/* Large scores: exp without the row max would overflow. */
START_TEST(probs_large_scores)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {0x5eed0100u + (uint64_t)_i};
    for (int c = 0; c < tu_cases(8); c++) {
        pproblem p;
        problem_make(&p, &r, 70, 12.0f);
        p.a.softcap = 0.0f;
        spattn_plan *plan = make_plan(&p, isa, 1, SPATTN_PATH_AUTO);
        check_against_truth(&p, plan);
        spattn_plan_free(plan);
        problem_free(&p);
    }
}
END_TEST

START_TEST(probs_threads_bitwise)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {0x5eed0200u + (uint64_t)_i};
    for (int c = 0; c < tu_cases(6); c++) {
        pproblem p;
        problem_make(&p, &r, 120, 1.0f);
        const spattn_shape *s = &p.a.shape;
        float *ref_p = NULL, *ref_c = NULL;
        size_t np = 0, nc = s->batch * s->heads_q * s->len_k;
        const int threads[] = {1, 2, 3, 0};
        for (int t = 0; t < 4; t++) {
            spattn_plan *plan = make_plan(&p, isa, threads[t], SPATTN_PATH_AUTO);
            np = (size_t)spattn_plan_probs_len(plan);
            float *pp = malloc(np * sizeof(float) + 4), *cc = malloc(nc * sizeof(float));
            ck_assert_int_eq(spattn_probs(plan, &p.a, pp, cc), SPATTN_OK);
            if (t == 0) {
                ref_p = pp;
                ref_c = cc;
            } else {
                ck_assert(memcmp(pp, ref_p, np * sizeof(float)) == 0);
                ck_assert(memcmp(cc, ref_c, nc * sizeof(float)) == 0);
                free(pp);
                free(cc);
            }
            spattn_plan_free(plan);
        }
        free(ref_p);
        free(ref_c);
        problem_free(&p);
    }
}
END_TEST

/* Rows sum to 1 where they have keys, and a hand-sized case with known values. */
START_TEST(probs_by_hand)
{
    /* One head, 2 queries, 3 keys, dim 1, scale 1: q = (1, 0), k = (0, 1, 2), causal with
       len_q 2 < len_k 3: row 0 sees keys 0..1, row 1 sees 0..2. */
    float q[2] = {1.0f, 0.0f}, k[3] = {0.0f, 1.0f, 2.0f};
    spattn_shape s = {1, 1, 1, 2, 3, 1, 1};
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(2, 3, &m), SPATTN_OK);
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&s, (const spattn_mask *const *)&m, 1, NULL, &plan),
                     SPATTN_OK);
    spattn_mask_free(m); /* the plan keeps it */
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = s;
    a.q = q;
    a.k = k;
    a.q_layout = spattn_layout_bhtd(1, 2, 1);
    a.k_layout = spattn_layout_bhtd(1, 3, 1);
    a.scale = 1.0f;
    ck_assert_uint_eq(spattn_plan_probs_len(plan), 5);
    float p[5], cs[3];
    ck_assert_int_eq(spattn_probs(plan, &a, p, cs), SPATTN_OK);
    double e = exp(1.0);
    double want[5] = {1 / (1 + e), e / (1 + e), 1.0 / 3, 1.0 / 3, 1.0 / 3};
    for (int i = 0; i < 5; i++)
        ck_assert(tu_close(p[i], (float)want[i], TU_TOL));
    ck_assert(tu_close(cs[0], (float)(want[0] + want[2]), TU_TOL));
    ck_assert(tu_close(cs[1], (float)(want[1] + want[3]), TU_TOL));
    ck_assert(tu_close(cs[2], (float)want[4], TU_TOL));

    int64_t rp[3];
    int32_t ci[5];
    ck_assert_int_eq(spattn_mask_to_csr(spattn_plan_mask(plan, 0, 0), rp, ci), SPATTN_OK);
    ck_assert(rp[1] == 2 && rp[2] == 5 && ci[1] == 1 && ci[4] == 2);
    spattn_plan_free(plan);
}
END_TEST

START_TEST(probs_validation)
{
    tu_rng r = {0x5eed0300u};
    pproblem p;
    problem_make(&p, &r, 30, 1.0f);
    p.a.shape.len_q = 20;
    p.a.shape.len_k = 30;
    for (size_t i = 0; i < p.n_masks; i++)
        spattn_mask_free(p.masks[i]);
    p.n_masks = 1;
    ck_assert_int_eq(spattn_mask_causal(20, 30, &p.masks[0]), SPATTN_OK);
    free(p.q);
    free(p.k);
    size_t nq = p.a.shape.batch * p.a.shape.heads_q * 20 * p.a.shape.dim_qk;
    size_t nk = p.a.shape.batch * p.a.shape.heads_kv * 30 * p.a.shape.dim_qk;
    p.q = calloc(nq, sizeof(float));
    p.k = calloc(nk, sizeof(float));
    p.a.q = p.q;
    p.a.k = p.k;
    p.a.q_layout = spattn_layout_bhtd(p.a.shape.heads_q, 20, p.a.shape.dim_qk);
    p.a.k_layout = spattn_layout_bhtd(p.a.shape.heads_kv, 30, p.a.shape.dim_qk);
    spattn_plan *plan = make_plan(&p, SPATTN_ISA_SCALAR, 2, SPATTN_PATH_AUTO);
    size_t np = (size_t)spattn_plan_probs_len(plan);
    size_t nc = p.a.shape.batch * p.a.shape.heads_q * 30;
    tu_buf pb = tu_buf_new(np), cb = tu_buf_new(nc);

#define EXPECT(call, status)                                                                       \
    do {                                                                                           \
        ck_assert_int_eq((call), (status));                                                        \
        ck_assert(tu_buf_untouched(&pb) && tu_buf_untouched(&cb));                                 \
    } while (0)

    spattn_args a = p.a;
    EXPECT(spattn_probs(NULL, &a, pb.p, cb.p), SPATTN_E_NULL);
    EXPECT(spattn_probs(plan, NULL, pb.p, cb.p), SPATTN_E_NULL);
    EXPECT(spattn_probs(plan, &a, NULL, NULL), SPATTN_E_NULL);
    a.q = NULL;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_NULL);
    a = p.a;
    a.k = NULL;
    EXPECT(spattn_probs(plan, &a, pb.p, NULL), SPATTN_E_NULL);
    a = p.a;
    a.shape.len_k = 31;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_SHAPE);
    a = p.a;
    a.k_layout.token = -1;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_SHAPE);
    a = p.a;
    a.q_layout.batch = PTRDIFF_MAX / 2;
    a.shape.batch = p.a.shape.batch; /* a huge span: refused, not wrapped */
    if (p.a.shape.batch > 1)
        EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_SHAPE);
    a = p.a;
    a.scale = -1.0f;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_ARG);
    a.scale = NAN;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_ARG);
    a = p.a;
    a.softcap = INFINITY;
    EXPECT(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_E_ARG);
    a = p.a;
    /* Outputs overlapping inputs or each other. */
    a.q = pb.p;
    EXPECT(spattn_probs(plan, &a, pb.p, NULL), SPATTN_E_ARG);
    a = p.a;
    a.k = cb.p;
    EXPECT(spattn_probs(plan, &a, NULL, cb.p), SPATTN_E_ARG);
    a = p.a;
    ck_assert_int_eq(spattn_probs(plan, &a, pb.p, pb.p + 1), SPATTN_E_ARG);
    ck_assert(tu_buf_untouched(&pb));

    /* v, o and lse play no part: NULL is fine, garbage pointers are never touched. */
    a = p.a;
    a.v = NULL;
    a.o = NULL;
    a.lse = NULL;
    ck_assert_int_eq(spattn_probs(plan, &a, pb.p, cb.p), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&pb) && tu_buf_guards_ok(&cb));

    /* Out-of-range queries of the layout helpers. */
    ck_assert_uint_eq(spattn_plan_probs_len(NULL), 0);
    ck_assert_uint_eq(spattn_plan_probs_offset(NULL, 0, 0), UINT64_MAX);
    ck_assert_uint_eq(spattn_plan_probs_offset(plan, p.a.shape.batch, 0), UINT64_MAX);
    ck_assert_uint_eq(spattn_plan_probs_offset(plan, 0, p.a.shape.heads_q), UINT64_MAX);
    ck_assert_ptr_null(spattn_plan_mask(plan, 0, p.a.shape.heads_q));
    ck_assert_ptr_null(spattn_plan_mask(NULL, 0, 0));
#undef EXPECT
    tu_buf_free(&pb);
    tu_buf_free(&cb);
    spattn_plan_free(plan);
    problem_free(&p);
}
END_TEST

/* Every allocation failing in turn: SPATTN_E_NOMEM and nothing written, then success. */
START_TEST(probs_nomem)
{
    tu_rng r = {0x5eed0400u};
    pproblem p;
    problem_make(&p, &r, 60, 1.0f);
    spattn_plan *plan = make_plan(&p, SPATTN_ISA_AUTO, 2, SPATTN_PATH_AUTO);
    size_t np = (size_t)spattn_plan_probs_len(plan);
    size_t nc = p.a.shape.batch * p.a.shape.heads_q * p.a.shape.len_k;
    tu_buf pb = tu_buf_new(np), cb = tu_buf_new(nc);
    spattn__test_fail_alloc_at(0);
    ck_assert_int_eq(spattn_probs(plan, &p.a, pb.p, cb.p), SPATTN_OK);
    long n_alloc = spattn__test_fail_alloc_at(0);
    ck_assert_int_gt(n_alloc, 0);
    tu_buf_free(&pb);
    tu_buf_free(&cb);
    for (long f = 1; f <= n_alloc; f++) {
        pb = tu_buf_new(np);
        cb = tu_buf_new(nc);
        spattn__test_fail_alloc_at(f);
        ck_assert_int_eq(spattn_probs(plan, &p.a, pb.p, cb.p), SPATTN_E_NOMEM);
        spattn__test_fail_alloc_at(0);
        ck_assert(tu_buf_untouched(&pb) && tu_buf_untouched(&cb));
        tu_buf_free(&pb);
        tu_buf_free(&cb);
    }
    spattn_plan_free(plan);
    problem_free(&p);
}
END_TEST

Suite *suite_probs(void);
Suite *suite_probs(void)
{
    Suite *s = suite_create("probs");
    int n = tu_n_isas();
    TCase *tc = tcase_create("values");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, probs_by_hand);
    tcase_add_loop_test(tc, probs_vs_float64, 0, n);
    tcase_add_loop_test(tc, probs_large_scores, 0, n);
    tcase_add_loop_test(tc, probs_threads_bitwise, 0, n);
    suite_add_tcase(s, tc);
    tc = tcase_create("api");
    tcase_add_test(tc, probs_validation);
    tcase_add_test(tc, probs_nomem);
    suite_add_tcase(s, tc);
    return s;
}

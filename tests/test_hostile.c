/*
 * Hostile input: every malformed or dangerous argument gets its documented status, writes
 * nothing (canary-filled outputs) and leaks nothing (the sanitizer job runs this under LSan);
 * numerically hostile but valid inputs agree with the float64 reference; every allocation
 * failure surfaces as SPATTN_E_NOMEM. docs/errors.md lists the same cases.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "plan/test_hooks.h"
#include "test_util.h"

#define BIG_LEN ((size_t)SPATTN_MAX_LEN + 1)
#define P62 ((size_t)1 << 62)

/* ----------------------------------------------------------------------------------------- */
/* A small valid problem whose fields each case breaks one at a time.                         */
/* ----------------------------------------------------------------------------------------- */

typedef struct fx {
    spattn_args a;
    tu_buf q, k, v, o, lse;
    float *snap[3]; /* copies of q, k, v to prove inputs stay unwritten */
    spattn_mask *causal, *wrong_q, *wrong_k;
} fx;

static void fx_init(fx *f)
{
    memset(f, 0, sizeof *f);
    spattn_shape s = {2, 4, 2, 5, 7, 8, 6};
    f->a.shape = s;
    f->q = tu_buf_new(s.batch * s.heads_q * s.len_q * s.dim_qk);
    f->k = tu_buf_new(s.batch * s.heads_kv * s.len_k * s.dim_qk);
    f->v = tu_buf_new(s.batch * s.heads_kv * s.len_k * s.dim_v);
    f->o = tu_buf_new(s.batch * s.heads_q * s.len_q * s.dim_v);
    f->lse = tu_buf_new(s.batch * s.heads_q * s.len_q);
    tu_rng r = {42};
    tu_buf *in[3] = {&f->q, &f->k, &f->v};
    for (int t = 0; t < 3; t++) {
        for (size_t i = 0; i < in[t]->n; i++)
            in[t]->p[i] = tu_normal(&r);
        f->snap[t] = malloc(in[t]->n * sizeof(float));
        memcpy(f->snap[t], in[t]->p, in[t]->n * sizeof(float));
    }
    f->a.q = f->q.p;
    f->a.k = f->k.p;
    f->a.v = f->v.p;
    f->a.o = f->o.p;
    f->a.lse = f->lse.p;
    f->a.q_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_qk);
    f->a.k_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_qk);
    f->a.v_layout = spattn_layout_bhtd(s.heads_kv, s.len_k, s.dim_v);
    f->a.o_layout = spattn_layout_bhtd(s.heads_q, s.len_q, s.dim_v);
    ck_assert_int_eq(spattn_mask_causal(s.len_q, s.len_k, &f->causal), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_causal(s.len_q + 1, s.len_k, &f->wrong_q), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_causal(s.len_q, s.len_k - 1, &f->wrong_k), SPATTN_OK);
}

static void fx_free(fx *f)
{
    tu_buf_free(&f->q);
    tu_buf_free(&f->k);
    tu_buf_free(&f->v);
    tu_buf_free(&f->o);
    tu_buf_free(&f->lse);
    for (int t = 0; t < 3; t++)
        free(f->snap[t]);
    spattn_mask_free(f->causal);
    spattn_mask_free(f->wrong_q);
    spattn_mask_free(f->wrong_k);
}

static void fx_assert_unwritten(const fx *f, const char *what)
{
    const tu_buf *in[3] = {&f->q, &f->k, &f->v};
    for (int t = 0; t < 3; t++)
        ck_assert_msg(tu_buf_guards_ok(in[t]) &&
                          memcmp(in[t]->p, f->snap[t], in[t]->n * sizeof(float)) == 0,
                      "%s: an input buffer was written", what);
    ck_assert_msg(tu_buf_untouched(&f->o), "%s: o was written", what);
    ck_assert_msg(tu_buf_untouched(&f->lse), "%s: lse was written", what);
}

/* Every entry point that takes these arguments must refuse them with `want`: forward, the
   reference, and plan_create or (for per-call arguments) plan_execute. */
static void expect_forward(fx *f, const spattn_args *a, const spattn_mask *const *masks,
                           size_t n_masks, const spattn_options *opt, spattn_status want,
                           const char *what)
{
    spattn_status st = spattn_forward(a, masks, n_masks, opt);
    ck_assert_msg(st == want, "%s: forward gave %s, expected %s", what, spattn_status_string(st),
                  spattn_status_string(want));
    fx_assert_unwritten(f, what);

    if (opt == NULL) { /* the reference takes no options */
        st = spattn_reference_forward(a, masks, n_masks);
        ck_assert_msg(st == want, "%s: reference gave %s, expected %s", what,
                      spattn_status_string(st), spattn_status_string(want));
        fx_assert_unwritten(f, what);
    }
    if (a == NULL)
        return;
    spattn_plan *plan = (spattn_plan *)&plan;
    st = spattn_plan_create(&a->shape, masks, n_masks, opt, &plan);
    if (st != SPATTN_OK) {
        ck_assert_msg(st == want, "%s: plan_create gave %s, expected %s", what,
                      spattn_status_string(st), spattn_status_string(want));
        ck_assert_msg(plan == NULL, "%s: plan_create failed without clearing *out", what);
        return;
    }
    st = spattn_plan_execute(plan, a);
    spattn_plan_free(plan);
    ck_assert_msg(st == want, "%s: plan_execute gave %s, expected %s", what,
                  spattn_status_string(st), spattn_status_string(want));
    fx_assert_unwritten(f, what);
}

/* ----------------------------------------------------------------------------------------- */
/* Forward / plan arguments                                                                   */
/* ----------------------------------------------------------------------------------------- */

START_TEST(null_pointers)
{
    fx f;
    fx_init(&f);
    const spattn_mask *m[1] = {f.causal};
    expect_forward(&f, NULL, m, 1, NULL, SPATTN_E_NULL, "args NULL");
    const char *names[] = {"q NULL", "k NULL", "v NULL", "o NULL"};
    for (int t = 0; t < 4; t++) {
        spattn_args a = f.a;
        if (t == 0)
            a.q = NULL;
        if (t == 1)
            a.k = NULL;
        if (t == 2)
            a.v = NULL;
        if (t == 3)
            a.o = NULL;
        expect_forward(&f, &a, m, 1, NULL, SPATTN_E_NULL, names[t]);
    }
    expect_forward(&f, &f.a, NULL, 1, NULL, SPATTN_E_NULL, "masks NULL with n_masks 1");
    const spattn_mask *holes[4] = {f.causal, f.causal, NULL, f.causal};
    expect_forward(&f, &f.a, holes, 4, NULL, SPATTN_E_NULL, "a NULL mask among per-head masks");

    spattn_plan *plan = (spattn_plan *)&plan;
    ck_assert_int_eq(spattn_plan_create(NULL, m, 1, NULL, &plan), SPATTN_E_NULL);
    ck_assert_ptr_null(plan);
    ck_assert_int_eq(spattn_plan_create(&f.a.shape, m, 1, NULL, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_plan_execute(NULL, &f.a), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_plan_create(&f.a.shape, m, 1, NULL, &plan), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(plan, NULL), SPATTN_E_NULL);
    spattn_plan_free(plan);
    spattn_plan_free(NULL);
    fx_assert_unwritten(&f, "plan NULLs");
    fx_free(&f);
}
END_TEST

typedef struct shape_case {
    const char *what;
    spattn_shape s;
    spattn_status want;
} shape_case;

START_TEST(bad_shapes)
{
    fx f;
    fx_init(&f);
    const size_t M = SPATTN_MAX_LEN;
    const shape_case cases[] = {
        {"batch 0", {0, 4, 2, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"heads_q 0", {2, 0, 2, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"heads_kv 0", {2, 4, 0, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"len_q 0", {2, 4, 2, 0, 7, 8, 6}, SPATTN_E_SHAPE},
        {"len_k 0", {2, 4, 2, 5, 0, 8, 6}, SPATTN_E_SHAPE},
        {"dim_qk 0", {2, 4, 2, 5, 7, 0, 6}, SPATTN_E_SHAPE},
        {"dim_v 0", {2, 4, 2, 5, 7, 8, 0}, SPATTN_E_SHAPE},
        {"heads_q % heads_kv", {2, 4, 3, 5, 7, 8, 6}, SPATTN_E_ARG},
        {"heads_kv > heads_q", {2, 2, 4, 5, 7, 8, 6}, SPATTN_E_ARG},
        {"len_q MAX_LEN + 1", {1, 1, 1, M + 1, 7, 8, 6}, SPATTN_E_SHAPE},
        {"len_k MAX_LEN + 1", {1, 1, 1, 5, M + 1, 8, 6}, SPATTN_E_SHAPE},
        {"len_q 2^31 * 2", {1, 1, 1, 2 * M + 2, 7, 8, 6}, SPATTN_E_SHAPE},
        {"len_k 2^62", {1, 1, 1, 5, P62, 8, 6}, SPATTN_E_SHAPE},
        {"len_k SIZE_MAX", {1, 1, 1, 5, SIZE_MAX, 8, 6}, SPATTN_E_SHAPE},
        {"batch 2^62", {P62, 4, 2, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"batch SIZE_MAX", {SIZE_MAX, 1, 1, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"heads 2^61", {1, P62 / 2, P62 / 2, 5, 7, 8, 6}, SPATTN_E_SHAPE},
        {"batch*heads_q 2^64", {(size_t)1 << 32, (size_t)1 << 32, 1, 1, 1, 1, 1}, SPATTN_E_SHAPE},
        {"batch*heads*len*dim 2^64", {1 << 16, 1 << 16, 1, 1 << 16, 1, 1 << 16, 1}, SPATTN_E_SHAPE},
        {"elements fit size_t but not bytes", {1, 1, 1, 1 << 30, 1, P62 >> 30, 1}, SPATTN_E_SHAPE},
        {"dim_qk 2^62", {1, 1, 1, 5, 7, P62, 6}, SPATTN_E_SHAPE},
        {"dim_v SIZE_MAX", {1, 1, 1, 5, 7, 8, SIZE_MAX}, SPATTN_E_SHAPE},
        {"kv heads*len*dim overflow", {1, 1, 1, 1, M, P62 >> 20, 1}, SPATTN_E_SHAPE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        spattn_args a = f.a;
        a.shape = cases[c].s;
        expect_forward(&f, &a, NULL, 0, NULL, cases[c].want, cases[c].what);
    }
    /* A plan executed with a shape other than its own. */
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn_plan_create(&f.a.shape, NULL, 0, NULL, &plan), SPATTN_OK);
    spattn_args a = f.a;
    a.shape.len_q = 4;
    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_E_SHAPE);
    a = f.a;
    a.shape.dim_v = 5;
    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_E_SHAPE);
    spattn_plan_free(plan);
    fx_assert_unwritten(&f, "plan shape mismatch");
    fx_free(&f);
}
END_TEST

typedef struct layout_case {
    const char *what;
    int tensor; /* 0 q, 1 k, 2 v, 3 o */
    spattn_layout l;
    spattn_status want;
} layout_case;

START_TEST(bad_strides)
{
    fx f;
    fx_init(&f);
    const ptrdiff_t PM = PTRDIFF_MAX;
    /* The fixture: batch 2, heads_q 4, heads_kv 2, len_q 5, len_k 7, dim_qk 8, dim_v 6. */
    const layout_case cases[] = {
        {"q negative token stride", 0, {160, 40, -8}, SPATTN_E_SHAPE},
        {"k negative head stride", 1, {112, -1, 8}, SPATTN_E_SHAPE},
        {"v negative batch stride", 2, {-84, 42, 6}, SPATTN_E_SHAPE},
        {"o negative token stride", 3, {120, 30, -6}, SPATTN_E_SHAPE},
        {"o PTRDIFF_MIN stride", 3, {PTRDIFF_MIN, 30, 6}, SPATTN_E_SHAPE},
        {"q token stride PTRDIFF_MAX", 0, {160, 40, PM}, SPATTN_E_SHAPE},
        {"k batch stride PTRDIFF_MAX", 1, {PM, 56, 8}, SPATTN_E_SHAPE},
        {"v head stride PTRDIFF_MAX / 2 + 1", 2, {84, PM / 2 + 1, 6}, SPATTN_E_SHAPE},
        {"o batch stride PTRDIFF_MAX - 5", 3, {PM - 5, 30, 6}, SPATTN_E_SHAPE},
        {"q span fits elements, not bytes", 0, {160, 40, PM / 16}, SPATTN_E_SHAPE},
        {"o batch stride PTRDIFF_MAX / 2", 3, {PM / 2, 30, 6}, SPATTN_E_SHAPE},
        {"o token stride < dim_v", 3, {120, 30, 5}, SPATTN_E_SHAPE},
        {"o token stride 0", 3, {120, 30, 0}, SPATTN_E_SHAPE},
        {"o head stride 0", 3, {120, 0, 6}, SPATTN_E_SHAPE},
        {"o batch stride 0", 3, {0, 30, 6}, SPATTN_E_SHAPE},
        {"o heads interleaved onto tokens", 3, {120, 6, 12}, SPATTN_E_SHAPE},
        {"o batch inside a head's span", 3, {20, 30, 6}, SPATTN_E_SHAPE},
        {"o all strides equal dim", 3, {6, 6, 6}, SPATTN_E_SHAPE},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        spattn_args a = f.a;
        spattn_layout *l[4] = {&a.q_layout, &a.k_layout, &a.v_layout, &a.o_layout};
        *l[cases[c].tensor] = cases[c].l;
        expect_forward(&f, &a, NULL, 0, NULL, cases[c].want, cases[c].what);
    }
    fx_free(&f);
}
END_TEST

START_TEST(aliasing)
{
    fx f;
    fx_init(&f);
    spattn_args a;
    const spattn_mask *m[1] = {f.causal};
    /* Outputs placed inside the input buffers: each case must be refused untouched. */
    a = f.a;
    a.o = f.q.p;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "o == q");
    a = f.a;
    a.o = f.k.p + 3;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "o overlaps k");
    a = f.a;
    a.o = f.v.p + f.v.n - 1; /* o's first element on v's last */
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "o starts on v's last element");
    a = f.a;
    a.lse = f.q.p + 7;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse overlaps q");
    a = f.a;
    a.lse = f.k.p;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse overlaps k");
    a = f.a;
    a.lse = f.v.p + 10;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse overlaps v");
    a = f.a;
    a.lse = f.o.p + f.o.n - 1;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse overlaps o's last element");
    a = f.a;
    a.lse = f.o.p;
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse == o");
    /* k == v and q == k are fine: inputs may share memory. */
    a = f.a;
    a.k = f.q.p;
    a.v = f.q.p;
    a.shape.dim_v = 8;
    a.shape.len_k = 5;
    a.k_layout = a.v_layout = spattn_layout_bhtd(2, 5, 8);
    a.o_layout = spattn_layout_bhtd(4, 5, 8);
    tu_buf o2 = tu_buf_new(2 * 4 * 5 * 8);
    a.o = o2.p;
    a.lse = NULL;
    ck_assert_int_eq(spattn_forward(&a, NULL, 0, NULL), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&o2));
    tu_buf_free(&o2);
    fx_assert_unwritten(&f, "shared inputs");
    fx_free(&f);
}
END_TEST

START_TEST(bad_scalars_and_options)
{
    fx f;
    fx_init(&f);
    const spattn_mask *m[1] = {f.causal};
    const float bad[] = {-1.0f, -1e-30f, NAN, INFINITY, -INFINITY, -FLT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char what[64];
        spattn_args a = f.a;
        a.scale = bad[i];
        snprintf(what, sizeof what, "scale %g", (double)bad[i]);
        expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
        a = f.a;
        a.softcap = bad[i];
        snprintf(what, sizeof what, "softcap %g", (double)bad[i]);
        expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
    }
    const spattn_options opts[] = {
        {(spattn_isa)77, 1},          {(spattn_isa)-3, 1},           {SPATTN_ISA_AUTO, -1},
        {SPATTN_ISA_SCALAR, INT_MIN}, {(spattn_isa)tu_isa_end(), 0},
    };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "options {%d, %d}", (int)opts[i].isa, opts[i].num_threads);
        expect_forward(&f, &f.a, m, 1, &opts[i], SPATTN_E_ARG, what);
    }
    for (int isa = SPATTN_ISA_SCALAR; isa < tu_isa_end(); isa++) {
        if (spattn_isa_available((spattn_isa)isa))
            continue;
        spattn_options o = {(spattn_isa)isa, 1};
        expect_forward(&f, &f.a, m, 1, &o, SPATTN_E_UNSUPPORTED, spattn_isa_name(o.isa));
        ck_assert_ptr_nonnull(spattn_isa_unavailable_reason(o.isa));
    }
    /* A thread count far beyond the machine is a request, not an allocation size. */
    const int many[] = {100000, INT_MAX};
    for (int i = 0; i < 2; i++) {
        spattn_options o = {SPATTN_ISA_AUTO, many[i]};
        spattn_status st = spattn_forward(&f.a, m, 1, &o);
        ck_assert_msg(st == SPATTN_OK, "num_threads %d: %s", many[i], spattn_status_string(st));
        ck_assert(tu_buf_guards_ok(&f.o) && tu_buf_guards_ok(&f.lse));
    }
    fx_free(&f);
}
END_TEST

/* spattn_probs on a plan of f's causal mask must give `want` for a and, on failure, write
   neither output. */
static void expect_probs(fx *f, const spattn_args *a, spattn_status want, const char *what)
{
    const spattn_mask *m[1] = {f->causal};
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&a->shape, m, 1, NULL, &plan), SPATTN_OK);
    tu_buf pr = tu_buf_new((size_t)spattn_plan_probs_len(plan));
    tu_buf cs = tu_buf_new(a->shape.batch * a->shape.heads_q * a->shape.len_k);
    spattn_status st = spattn_probs(plan, a, pr.p, cs.p);
    ck_assert_msg(st == want, "%s: probs gave %s, expected %s", what, spattn_status_string(st),
                  spattn_status_string(want));
    if (want != SPATTN_OK)
        ck_assert_msg(tu_buf_untouched(&pr) && tu_buf_untouched(&cs), "%s: probs written", what);
    tu_buf_free(&pr);
    tu_buf_free(&cs);
    spattn_plan_free(plan);
}

/* Score modifiers: a slope NaN or +-Inf, a sink NaN or +Inf (in any one head), ALiBi
   distances past 2^24 from pos_offset, and the arrays overlapping an output are E_ARG with
   nothing written, for forward, the reference, plan_execute and probs; a sink of -inf, any
   finite slope or sink and any pos_offset without slopes are accepted. */
START_TEST(bad_modifiers)
{
    fx f;
    fx_init(&f);
    const spattn_mask *m[1] = {f.causal};
    const size_t hq = f.a.shape.heads_q;
    float vals[4];
    char what[96];
    const float bad_slopes[] = {NAN, INFINITY, -INFINITY}, bad_sinks[] = {NAN, INFINITY};
    for (size_t h = 0; h < hq; h += hq - 1) {
        for (size_t i = 0; i < sizeof bad_slopes / sizeof bad_slopes[0]; i++) {
            spattn_args a = f.a;
            for (size_t t = 0; t < hq; t++)
                vals[t] = t == h ? bad_slopes[i] : 0.5f;
            a.alibi_slopes = vals;
            snprintf(what, sizeof what, "slope %g at head %zu", (double)bad_slopes[i], h);
            expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
            expect_probs(&f, &a, SPATTN_E_ARG, what);
        }
        for (size_t i = 0; i < sizeof bad_sinks / sizeof bad_sinks[0]; i++) {
            spattn_args a = f.a;
            for (size_t t = 0; t < hq; t++)
                vals[t] = t == h ? bad_sinks[i] : 0.5f;
            a.sinks = vals;
            snprintf(what, sizeof what, "sink %g at head %zu", (double)bad_sinks[i], h);
            expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
            expect_probs(&f, &a, SPATTN_E_ARG, what);
        }
    }
    /* With slopes, |i' - j| <= 2^24: pos_offset in [len_q - 1 - 2^24, 2^24 - (len_k - 1)]. */
    const ptrdiff_t lim = (ptrdiff_t)1 << 24, lq = (ptrdiff_t)f.a.shape.len_q;
    const ptrdiff_t lk = (ptrdiff_t)f.a.shape.len_k;
    const ptrdiff_t far[] = {lim - (lk - 1) + 1, lq - 1 - lim - 1, PTRDIFF_MAX, PTRDIFF_MIN};
    const ptrdiff_t near[] = {lim - (lk - 1), lq - 1 - lim, 0, -1000, 1000};
    for (size_t t = 0; t < hq; t++)
        vals[t] = 0.25f;
    for (size_t i = 0; i < sizeof far / sizeof far[0]; i++) {
        spattn_args a = f.a;
        a.alibi_slopes = vals;
        a.pos_offset = far[i];
        snprintf(what, sizeof what, "slopes with pos_offset %td", far[i]);
        expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
        expect_probs(&f, &a, SPATTN_E_ARG, what);
        a.alibi_slopes = NULL; /* no effect without slopes: accepted */
        ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
        ck_assert_int_eq(spattn_reference_forward(&a, m, 1), SPATTN_OK);
        expect_probs(&f, &a, SPATTN_OK, what);
        tu_buf_reset(&f.o); /* for the next case's check that nothing is written */
        tu_buf_reset(&f.lse);
    }
    for (size_t i = 0; i < sizeof near / sizeof near[0]; i++) {
        spattn_args a = f.a;
        a.alibi_slopes = vals;
        a.pos_offset = near[i];
        ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
        ck_assert_int_eq(spattn_reference_forward(&a, m, 1), SPATTN_OK);
        expect_probs(&f, &a, SPATTN_OK, "pos_offset at a bound");
    }
    tu_buf_reset(&f.o);
    tu_buf_reset(&f.lse);
    /* Finite extremes and -inf sinks are valid. */
    const float ok_slopes[4] = {FLT_MAX, -FLT_MAX, 0.0f, -0.5f};
    const float ok_sinks[4] = {-INFINITY, FLT_MAX, -FLT_MAX, 0.0f};
    spattn_args a = f.a;
    a.alibi_slopes = ok_slopes;
    a.sinks = ok_sinks;
    ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
    ck_assert_int_eq(spattn_reference_forward(&a, m, 1), SPATTN_OK);
    expect_probs(&f, &a, SPATTN_OK, "extreme finite modifiers");
    tu_buf_reset(&f.o);
    tu_buf_reset(&f.lse);
    /* The arrays inside an output (valid values there: zeros). */
    const size_t no = f.o.n;
    float *ob = calloc(no + f.lse.n, sizeof(float));
    ck_assert_ptr_nonnull(ob);
    for (int which = 0; which < 4; which++) {
        a = f.a;
        a.o = ob;
        a.lse = ob + no;
        const float *in = which % 2 ? ob + no + 1 : ob + 3; /* in lse, in o */
        if (which < 2)
            a.sinks = in;
        else
            a.alibi_slopes = in;
        snprintf(what, sizeof what, "%s overlapping %s", which < 2 ? "sinks" : "slopes",
                 which % 2 ? "lse" : "o");
        expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
        for (size_t i = 0; i < no + f.lse.n; i++)
            ck_assert_msg(ob[i] == 0.0f, "%s: output written", what);
    }
    free(ob);
    fx_free(&f);
}
END_TEST

/* Element types: a value outside spattn_dtype in any of the three fields is E_ARG with
   nothing written, for forward, the reference, plan_execute and (q and kv, which it reads)
   probs. Overlap is judged in each tensor's own element size: 16-bit o right after 16-bit q
   is fine, one element into it is not. */
START_TEST(bad_dtypes)
{
    fx f;
    fx_init(&f);
    const spattn_mask *m[1] = {f.causal};
    const int bad[] = {3, 4, -1, 255, INT_MAX, INT_MIN};
    char what[96];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        for (int field = 0; field < 3; field++) {
            spattn_args a = f.a;
            spattn_dtype *d[3] = {&a.q_dtype, &a.kv_dtype, &a.o_dtype};
            *d[field] = (spattn_dtype)bad[i];
            snprintf(what, sizeof what, "%s %d",
                     field == 0   ? "q_dtype"
                     : field == 1 ? "kv_dtype"
                                  : "o_dtype",
                     bad[i]);
            expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, what);
            if (field < 2)
                expect_probs(&f, &a, SPATTN_E_ARG, what);
        }
    /* Every valid triple is accepted (the values are f's floats read as 16-bit patterns:
       finite or not, they are valid inputs). */
    for (int t = 0; t < 27; t++) {
        spattn_args a = f.a;
        a.q_dtype = (spattn_dtype)(t / 9);
        a.kv_dtype = (spattn_dtype)(t / 3 % 3);
        a.o_dtype = (spattn_dtype)(t % 3);
        ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
    }
    tu_buf_reset(&f.o);
    tu_buf_reset(&f.lse);

    /* q and o as bf16 in one buffer: o one element before the end of q's span, then
       exactly at its end. */
    const spattn_shape *s = &f.a.shape;
    const size_t nq = s->batch * s->heads_q * s->len_q * s->dim_qk,
                 no = s->batch * s->heads_q * s->len_q * s->dim_v;
    uint16_t *buf = calloc(nq + no, sizeof(uint16_t));
    ck_assert_ptr_nonnull(buf);
    spattn_args a = f.a;
    a.q = buf;
    a.q_dtype = SPATTN_DTYPE_BF16;
    a.o_dtype = SPATTN_DTYPE_BF16;
    a.lse = NULL;
    a.o = buf + nq - 1;
    ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_E_ARG);
    ck_assert_int_eq(spattn_reference_forward(&a, m, 1), SPATTN_E_ARG);
    for (size_t i = 0; i < nq + no; i++)
        ck_assert_msg(buf[i] == 0, "overlapping bf16 o: written");
    a.o = buf + nq;
    ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
    ck_assert_int_eq(spattn_reference_forward(&a, m, 1), SPATTN_OK);
    /* lse right after a 16-bit k: no overlap in bytes, though in floats there would be. */
    uint16_t *kb = calloc(f.k.n + 2 * f.lse.n + 2, sizeof(uint16_t));
    ck_assert_ptr_nonnull(kb);
    a = f.a;
    a.k = kb;
    a.kv_dtype = SPATTN_DTYPE_F16;
    a.lse = (float *)(void *)(kb + f.k.n); /* 4-byte aligned: k.n is even */
    ck_assert_int_eq(f.k.n % 2, 0);
    ck_assert_int_eq(spattn_forward(&a, m, 1, NULL), SPATTN_OK);
    a.lse = (float *)(void *)(kb + f.k.n - 2);
    tu_buf_reset(&f.o);
    expect_forward(&f, &a, m, 1, NULL, SPATTN_E_ARG, "lse over the last f16 elements of k");
    free(kb);
    free(buf);
    fx_free(&f);
}
END_TEST

START_TEST(bad_mask_sets)
{
    fx f;
    fx_init(&f);
    const spattn_mask *per_head[8] = {f.causal, f.causal, f.causal, f.causal,
                                      f.causal, f.causal, f.causal, f.causal};
    expect_forward(&f, &f.a, per_head, 2, NULL, SPATTN_E_MASK, "2 masks for 4 heads");
    expect_forward(&f, &f.a, per_head, 3, NULL, SPATTN_E_MASK, "3 masks");
    expect_forward(&f, &f.a, per_head, 5, NULL, SPATTN_E_MASK, "5 masks");
    expect_forward(&f, &f.a, per_head, 7, NULL, SPATTN_E_MASK, "7 masks");
    /* A count far past the array: must be refused before any entry is read. */
    expect_forward(&f, &f.a, per_head, SIZE_MAX, NULL, SPATTN_E_MASK, "SIZE_MAX masks");
    expect_forward(&f, &f.a, per_head, 9, NULL, SPATTN_E_MASK, "9 masks");
    const spattn_mask *wq[1] = {f.wrong_q}, *wk[1] = {f.wrong_k};
    expect_forward(&f, &f.a, wq, 1, NULL, SPATTN_E_MASK, "mask len_q + 1");
    expect_forward(&f, &f.a, wk, 1, NULL, SPATTN_E_MASK, "mask len_k - 1");
    const spattn_mask *one_bad[8] = {f.causal, f.causal, f.causal,  f.causal,
                                     f.causal, f.causal, f.wrong_k, f.causal};
    expect_forward(&f, &f.a, one_bad, 8, NULL, SPATTN_E_MASK, "one wrong mask of 8");
    expect_forward(&f, &f.a, one_bad + 4, 4, NULL, SPATTN_E_MASK, "one wrong mask of 4");
    fx_free(&f);
}
END_TEST

/* ----------------------------------------------------------------------------------------- */
/* Mask builders                                                                              */
/* ----------------------------------------------------------------------------------------- */

static int allow_all(size_t i, size_t j, void *ctx)
{
    (void)i;
    (void)j;
    (void)ctx;
    return 1;
}

/* Builder number `which` on (lq, lk) with benign other arguments. */
static spattn_status build(int which, size_t lq, size_t lk, spattn_mask **out)
{
    static const uint8_t ones[64] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const int64_t rp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    static const int32_t col[1] = {0};
    static const size_t glob[1] = {0};
    switch (which) {
    case 0:
        return spattn_mask_causal(lq, lk, out);
    case 1:
        return spattn_mask_window(lq, lk, 1, 1, out);
    case 2:
        return spattn_mask_from_dense(lq, lk, ones, lk, out);
    case 3:
        return spattn_mask_from_csr(lq, lk, rp, col, out); /* rows must be checked
                                                               before row_ptr is read */
    case 4:
        return spattn_mask_from_blocks(lq, lk, SIZE_MAX, SIZE_MAX, ones, out);
    case 5:
        return spattn_mask_strided(lq, lk, 4, out);
    case 6:
        return spattn_mask_fixed(lq, lk, 4, 1, out);
    case 7:
        return spattn_mask_longformer(lq, lk, 1, 1, lk ? glob : NULL, lk ? 1 : 0, out);
    case 8:
        return spattn_mask_bigbird(lq, lk, 4, 1, 1, 1, 7, out);
    case 9:
        return spattn_mask_dilated(lq, lk, 2, 2, 2, out);
    default:
        return spattn_mask_from_fn(lq, lk, allow_all, NULL, out);
    }
}
#define N_BUILDERS 11

START_TEST(mask_bad_lengths)
{
    /* Lengths the builders must refuse before allocating anything sized by them. The dense
       builder is given a 64-byte array, so only the lengths reach it, never a read. */
    const size_t lens[][2] = {{0, 4},   {4, 0},   {0, 0},        {BIG_LEN, 4}, {4, BIG_LEN},
                              {P62, 1}, {1, P62}, {SIZE_MAX, 1}, {1, SIZE_MAX}};
    for (int w = 0; w < N_BUILDERS; w++) {
        for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
            size_t lq = lens[c][0], lk = lens[c][1];
            if (w == 7 && lk == 0)
                continue; /* covered with n_global 0 below */
            spattn_mask *m = (spattn_mask *)&m;
            spattn_status st = build(w, lq, lk, &m);
            ck_assert_msg(st == SPATTN_E_SHAPE && m == NULL,
                          "builder %d on %zu x %zu: %s, expected shape error", w, lq, lk,
                          spattn_status_string(st));
        }
        ck_assert_msg(build(w, 3, 4, NULL) == SPATTN_E_NULL, "builder %d with out NULL", w);
    }
    spattn_mask *m = (spattn_mask *)&m;
    ck_assert_int_eq(spattn_mask_longformer(4, 0, 1, 1, NULL, 0, &m), SPATTN_E_SHAPE);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(mask_bad_arguments)
{
    spattn_mask *m = (spattn_mask *)&m;
    uint8_t d[16] = {1};
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        m = (spattn_mask *)&m;                                                                     \
        spattn_status st_ = (call);                                                                \
        ck_assert_msg(st_ == (want) && m == NULL, "%s: %s", #call, spattn_status_string(st_));     \
    } while (0)
    EXPECT(spattn_mask_from_dense(2, 4, NULL, 4, &m), SPATTN_E_NULL);
    EXPECT(spattn_mask_from_dense(2, 4, d, 3, &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_dense(2, 4, d, 0, &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_dense(1 << 20, 1, d, SIZE_MAX / (1 << 19), &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_dense(3, 2, d, SIZE_MAX, &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_blocks(2, 4, 1, 1, NULL, &m), SPATTN_E_NULL);
    EXPECT(spattn_mask_from_blocks(2, 4, 0, 1, d, &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_blocks(2, 4, 1, 0, d, &m), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_strided(4, 4, 0, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 0, 0, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 4, 0, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 4, 5, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 3, SIZE_MAX, &m), SPATTN_E_ARG);
    const size_t g_bad[] = {1, 4}, g_huge[] = {SIZE_MAX};
    EXPECT(spattn_mask_longformer(4, 4, 1, 1, g_bad, 2, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_longformer(4, 4, 1, 1, g_huge, 1, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_longformer(4, 4, 1, 1, NULL, 2, &m), SPATTN_E_NULL);
    EXPECT(spattn_mask_bigbird(4, 4, 0, 1, 1, 1, 0, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_dilated(4, 4, 1, 1, 0, &m), SPATTN_E_ARG);
    EXPECT(spattn_mask_from_fn(4, 4, NULL, NULL, &m), SPATTN_E_NULL);

    /* and / or */
    spattn_mask *a = NULL, *b = NULL, *c = NULL;
    ck_assert_int_eq(spattn_mask_causal(4, 6, &a), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_causal(4, 7, &b), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_causal(5, 6, &c), SPATTN_OK);
    EXPECT(spattn_mask_and(a, b, &m), SPATTN_E_MASK);
    EXPECT(spattn_mask_or(a, c, &m), SPATTN_E_MASK);
    EXPECT(spattn_mask_and(NULL, a, &m), SPATTN_E_NULL);
    EXPECT(spattn_mask_or(a, NULL, &m), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_and(a, a, NULL), SPATTN_E_NULL);
#undef EXPECT

    /* to_dense / to_csr write nothing when refused. */
    uint8_t out[64];
    memset(out, 0xA5, sizeof out);
    ck_assert_int_eq(spattn_mask_to_dense(a, out, 5), SPATTN_E_SHAPE);
    ck_assert_int_eq(spattn_mask_to_dense(a, NULL, 6), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_dense(NULL, out, 6), SPATTN_E_NULL);
    for (size_t i = 0; i < sizeof out; i++)
        ck_assert_int_eq(out[i], 0xA5);
    int64_t rp[8];
    int32_t ci[32];
    ck_assert_int_eq(spattn_mask_to_csr(NULL, rp, ci), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_csr(a, NULL, ci), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_csr(a, rp, NULL), SPATTN_E_NULL);
    ck_assert_uint_eq(spattn_mask_len_q(NULL), 0);
    ck_assert_uint_eq(spattn_mask_len_k(NULL), 0);
    ck_assert_uint_eq(spattn_mask_nnz(NULL), 0);
    spattn_mask_free(NULL);
    spattn_mask_free(a);
    spattn_mask_free(b);
    spattn_mask_free(c);
}
END_TEST

typedef struct csr_case {
    const char *what;
    size_t len_q, len_k;
    int64_t rp[4];
    int32_t col[6];
} csr_case;

START_TEST(csr_malformed)
{
    /* Each col array holds exactly the entries a well-formed row_ptr could point to (6), so
       ASan catches any read a malformed row_ptr tricks the builder into. */
    const csr_case cases[] = {
        {"row_ptr[0] = 1", 2, 4, {1, 2, 3}, {0, 1, 2}},
        {"row_ptr[0] = -1", 2, 4, {-1, 1, 2}, {0, 1, 2}},
        {"row_ptr decreasing", 3, 4, {0, 3, 2, 4}, {0, 1, 2, 3}},
        {"row_ptr[1] = INT64_MIN", 2, 4, {0, INT64_MIN, 1}, {0}},
        {"row longer than len_k", 2, 3, {0, 4, 4}, {0, 1, 2, 2, 0, 0}},
        {"row_ptr end INT64_MAX", 2, 3, {0, 1, INT64_MAX}, {0, 1, 2, 0, 1, 2}},
        {"row_ptr end 2^62", 1, 3, {0, (int64_t)1 << 62}, {0, 1, 2}},
        {"columns unsorted", 2, 4, {0, 3, 4}, {0, 2, 1, 3}},
        {"duplicate column", 2, 4, {0, 2, 3}, {1, 1, 0}},
        {"duplicate in second row", 2, 4, {0, 1, 4}, {3, 0, 2, 2}},
        {"column == len_k", 2, 4, {0, 1, 2}, {0, 4}},
        {"column -1", 2, 4, {0, 1, 2}, {-1, 0}},
        {"column INT32_MIN", 1, 4, {0, 2}, {INT32_MIN, 0}},
        {"column INT32_MAX", 1, 4, {0, 1}, {INT32_MAX}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int32_t *col = malloc(6 * sizeof *col);
        memcpy(col, cases[c].col, 6 * sizeof *col);
        int64_t *rp = malloc((cases[c].len_q + 1) * sizeof *rp);
        memcpy(rp, cases[c].rp, (cases[c].len_q + 1) * sizeof *rp);
        spattn_mask *m = (spattn_mask *)&m;
        spattn_status st = spattn_mask_from_csr(cases[c].len_q, cases[c].len_k, rp, col, &m);
        ck_assert_msg(st == SPATTN_E_MASK && m == NULL, "%s: %s", cases[c].what,
                      spattn_status_string(st));
        free(col);
        free(rp);
    }
    int64_t rp1[3] = {0, 1, 1};
    spattn_mask *m = (spattn_mask *)&m;
    ck_assert_int_eq(spattn_mask_from_csr(2, 4, NULL, NULL, &m), SPATTN_E_NULL);
    ck_assert_ptr_null(m);
    ck_assert_int_eq(spattn_mask_from_csr(2, 4, rp1, NULL, &m), SPATTN_E_NULL);
    ck_assert_ptr_null(m);
}
END_TEST

/* Extreme but valid pattern parameters: the mask must be exactly the documented set. */
static uint64_t count_causal(size_t lq, size_t lk)
{
    uint64_t n = 0;
    for (size_t i = 0; i < lq; i++) {
        long long ip = (long long)i + (long long)lk - (long long)lq;
        n += ip < 0 ? 0 : (uint64_t)(ip + 1 < (long long)lk ? ip + 1 : (long long)lk);
    }
    return n;
}

static void expect_nnz(spattn_status st, spattn_mask **mp, uint64_t want, const char *what)
{
    spattn_mask *m = *mp;
    ck_assert_msg(st == SPATTN_OK, "%s: %s", what, spattn_status_string(st));
    ck_assert_msg(spattn_mask_nnz(m) == want, "%s: nnz %llu, expected %llu", what,
                  (unsigned long long)spattn_mask_nnz(m), (unsigned long long)want);
    spattn_mask_free(m);
}

START_TEST(pattern_extremes)
{
    const size_t lq = 70, lk = 133, all = 70 * 133;
    spattn_mask *m = NULL;
    expect_nnz(spattn_mask_window(lq, lk, SIZE_MAX, SIZE_MAX, &m), &m, all, "window max");
    expect_nnz(spattn_mask_window(lq, lk, SIZE_MAX, 0, &m), &m, count_causal(lq, lk),
               "window (SIZE_MAX, 0) is causal");
    expect_nnz(spattn_mask_window(lq, lk, 0, 0, &m), &m, lq, "window (0, 0) is the diagonal");
    expect_nnz(spattn_mask_strided(lq, lk, SIZE_MAX, &m), &m, count_causal(lq, lk),
               "strided SIZE_MAX is causal");
    expect_nnz(spattn_mask_fixed(lq, lk, SIZE_MAX, SIZE_MAX, &m), &m, count_causal(lq, lk),
               "fixed summary == stride is causal");
    expect_nnz(spattn_mask_dilated(lq, lk, SIZE_MAX, SIZE_MAX, SIZE_MAX, &m), &m, lq,
               "dilated SIZE_MAX is the diagonal");
    /* t * dilation wraps to 2 for t = 2 when computed carelessly. */
    expect_nnz(spattn_mask_dilated(lq, lk, 3, 3, ((size_t)1 << 63) + 1, &m), &m, lq,
               "dilated 2^63 + 1 is the diagonal");
    expect_nnz(spattn_mask_dilated(lq, lk, SIZE_MAX, 0, 1, &m), &m, count_causal(lq, lk),
               "dilated (SIZE_MAX, 0, 1) is causal");
    expect_nnz(spattn_mask_bigbird(lq, lk, SIZE_MAX, 0, 0, 0, 1, &m), &m, all, "bigbird one block");
    expect_nnz(spattn_mask_bigbird(lq, lk, 1, SIZE_MAX, 0, 0, 1, &m), &m, all,
               "bigbird window SIZE_MAX");
    expect_nnz(spattn_mask_bigbird(lq, lk, 3, 0, SIZE_MAX, 0, 1, &m), &m, all,
               "bigbird global SIZE_MAX");
    expect_nnz(spattn_mask_bigbird(lq, lk, 5, 0, 0, SIZE_MAX, 99, &m), &m, all,
               "bigbird random SIZE_MAX");
    const size_t dup[] = {3, 3, 3, 0, 0};
    /* Two global keys (0 and 3) seen by all rows, plus the rows at positions 0 and 3 (the
       bottom-right shift is lk - lq = 63, so no row stands there) and the diagonal band. */
    uint64_t want = 0;
    for (size_t i = 0; i < lq; i++)
        want += 1 + ((i + lk - lq) != 0) + ((i + lk - lq) != 3);
    expect_nnz(spattn_mask_longformer(lq, lk, 0, 0, dup, 5, &m), &m, want,
               "longformer duplicate globals");
    const uint8_t one = 1;
    expect_nnz(spattn_mask_from_blocks(lq, lk, SIZE_MAX, SIZE_MAX, &one, &m), &m, all,
               "blocks SIZE_MAX");
    expect_nnz(spattn_mask_from_blocks(lq, lk, SIZE_MAX - 1, 2 * lk, &one, &m), &m, all,
               "blocks larger than the mask");
}
END_TEST

/* Lengths near 2^31: a mask and an attention call that are cheap because only one key is
   allowed and K/V broadcast one row (token stride 0). */
START_TEST(near_int32_lengths)
{
    const size_t lk = SPATTN_MAX_LEN;
    int64_t rp[3] = {0, 1, 2};
    int32_t col[2] = {INT32_MAX - 1, 5};
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_from_csr(2, lk, rp, col, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 2);
    ck_assert_uint_eq(spattn_mask_len_k(m), lk);
    int64_t rp2[3];
    int32_t col2[2];
    ck_assert_int_eq(spattn_mask_to_csr(m, rp2, col2), SPATTN_OK);
    ck_assert(rp2[0] == 0 && rp2[1] == 1 && rp2[2] == 2);
    ck_assert(col2[0] == INT32_MAX - 1 && col2[1] == 5);

    spattn_isa isas[TU_MAX_ISAS];
    int n = tu_isas(isas);
    for (int t = 0; t < n; t++) {
        float q[2][4] = {{1, 0.5f, 0, 0}, {0, 0, -1, 2}};
        float k[4] = {0.25f, 1, 3, -0.5f};
        float v[3] = {7, -1, 0.125f};
        tu_buf o = tu_buf_new(2 * 3), lse = tu_buf_new(2);
        spattn_args a;
        memset(&a, 0, sizeof a);
        spattn_shape s = {1, 1, 1, 2, lk, 4, 3};
        a.shape = s;
        a.q = &q[0][0];
        a.q_layout = spattn_layout_bhtd(1, 2, 4);
        a.k = k;
        a.v = v;
        a.k_layout.batch = a.k_layout.head = a.k_layout.token = 0;
        a.v_layout = a.k_layout;
        a.o = o.p;
        a.o_layout = spattn_layout_bhtd(1, 2, 3);
        a.lse = lse.p;
        a.scale = 1.0f;
        spattn_options opt = {isas[t], 1};
        const spattn_mask *ms[1] = {m};
        ck_assert_int_eq(spattn_forward(&a, ms, 1, &opt), SPATTN_OK);
        for (int i = 0; i < 2; i++) {
            for (int d = 0; d < 3; d++)
                ck_assert_msg(tu_close(o.p[i * 3 + d], v[d], TU_TOL), "%s row %d: %g vs %g",
                              spattn_isa_name(isas[t]), i, (double)o.p[i * 3 + d], (double)v[d]);
            double sdot = 0;
            for (int d = 0; d < 4; d++)
                sdot += (double)q[i][d] * k[d];
            ck_assert(tu_close(lse.p[i], (float)sdot, TU_TOL));
        }
        ck_assert(tu_buf_guards_ok(&o) && tu_buf_guards_ok(&lse));
        tu_buf_free(&o);
        tu_buf_free(&lse);
    }
    spattn_mask_free(m);

    /* A one-key band far out at key 2^31 - 2. */
    ck_assert_int_eq(spattn_mask_window(16, lk, 0, 0, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 16);
    spattn_mask_free(m);
}
END_TEST

START_TEST(softmax_bad_arguments)
{
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_causal(3, 5, &m), SPATTN_OK);
    tu_buf x = tu_buf_new(3 * 6), y = tu_buf_new(3 * 6);
    for (size_t i = 0; i < x.n; i++)
        x.p[i] = (float)i;
    const spattn_options bad_opt = {SPATTN_ISA_AUTO, -2};
    struct {
        const char *what;
        const float *x;
        float *y;
        size_t rows, cols, ld;
        const spattn_mask *m;
        float scale;
        const spattn_options *opt;
        spattn_status want;
    } cases[] = {
        {"x NULL", NULL, y.p, 3, 5, 6, m, 1, NULL, SPATTN_E_NULL},
        {"y NULL", x.p, NULL, 3, 5, 6, m, 1, NULL, SPATTN_E_NULL},
        {"mask NULL", x.p, y.p, 3, 5, 6, NULL, 1, NULL, SPATTN_E_NULL},
        {"rows 0", x.p, y.p, 0, 5, 6, m, 1, NULL, SPATTN_E_SHAPE},
        {"ld < cols", x.p, y.p, 3, 5, 4, m, 1, NULL, SPATTN_E_SHAPE},
        {"rows * ld overflow", x.p, y.p, 3, 5, SIZE_MAX / 2, m, 1, NULL, SPATTN_E_SHAPE},
        {"rows != mask", x.p, y.p, 2, 5, 6, m, 1, NULL, SPATTN_E_MASK},
        {"cols != mask", x.p, y.p, 3, 4, 6, m, 1, NULL, SPATTN_E_MASK},
        {"scale NaN", x.p, y.p, 3, 5, 6, m, NAN, NULL, SPATTN_E_ARG},
        {"scale Inf", x.p, y.p, 3, 5, 6, m, INFINITY, NULL, SPATTN_E_ARG},
        {"y overlaps x, shifted", x.p, y.p, 3, 5, 6, m, 1, NULL, SPATTN_E_ARG},
        {"bad options", x.p, y.p, 3, 5, 6, m, 1, &bad_opt, SPATTN_E_ARG},
    };
    cases[10].y = x.p + 1;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        spattn_status st =
            spattn_softmax_masked(cases[c].x, cases[c].y, cases[c].rows, cases[c].cols, cases[c].ld,
                                  cases[c].m, cases[c].scale, cases[c].opt);
        ck_assert_msg(st == cases[c].want, "%s: %s", cases[c].what, spattn_status_string(st));
        ck_assert_msg(tu_buf_untouched(&y), "%s: y written", cases[c].what);
        for (size_t i = 0; i < x.n; i++)
            ck_assert_msg(x.p[i] == (float)i, "%s: x written", cases[c].what);
        if (cases[c].opt == NULL) {
            st = spattn_reference_softmax_masked(cases[c].x, cases[c].y, cases[c].rows,
                                                 cases[c].cols, cases[c].ld, cases[c].m,
                                                 cases[c].scale);
            ck_assert_msg(st == cases[c].want, "%s (reference): %s", cases[c].what,
                          spattn_status_string(st));
            ck_assert(tu_buf_untouched(&y));
        }
    }
    tu_buf_free(&x);
    tu_buf_free(&y);
    spattn_mask_free(m);
}
END_TEST

START_TEST(enum_edges)
{
    /* 7: one past the statuses; tu_isa_end(): one past the ISAs */
    const int vals[] = {-1, 7, tu_isa_end(), 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        const char *s = spattn_status_string((spattn_status)vals[i]);
        ck_assert(s != NULL && s[0] != '\0');
        if (vals[i] == 7 && tu_isa_end() > 7)
            continue; /* an ISA */
        ck_assert_str_eq(spattn_isa_name((spattn_isa)vals[i]), "unknown");
        ck_assert_int_eq(spattn_isa_available((spattn_isa)vals[i]), 0);
        ck_assert_ptr_nonnull(spattn_isa_unavailable_reason((spattn_isa)vals[i]));
    }
}
END_TEST

/* ----------------------------------------------------------------------------------------- */
/* Numerical hostility, per ISA, against the reference                                        */
/* ----------------------------------------------------------------------------------------- */

typedef struct nprob {
    size_t lq, lk, d;
    float *q, *k, *v;
    const spattn_mask *m;
    float scale, softcap;
} nprob;

/* Runs one head on `isa` down both kernel paths and compares O and lse with the reference. */
static void check_vs_reference(const nprob *p, spattn_isa isa, const char *what)
{
    spattn_args a;
    memset(&a, 0, sizeof a);
    spattn_shape s = {1, 1, 1, p->lq, p->lk, p->d, p->d};
    a.shape = s;
    a.q = p->q;
    a.k = p->k;
    a.v = p->v;
    a.q_layout = a.o_layout = spattn_layout_bhtd(1, p->lq, p->d);
    a.k_layout = a.v_layout = spattn_layout_bhtd(1, p->lk, p->d);
    a.scale = p->scale;
    a.softcap = p->softcap;
    tu_buf ro = tu_buf_new(p->lq * p->d), rl = tu_buf_new(p->lq);
    a.o = ro.p;
    a.lse = rl.p;
    const spattn_mask *ms[1] = {p->m};
    size_t nm = p->m ? 1 : 0;
    ck_assert_int_eq(spattn_reference_forward(&a, nm ? ms : NULL, nm), SPATTN_OK);
    spattn_options opt = {isa, 1};
    for (int path = SPATTN_PATH_TILES; path <= SPATTN_PATH_GATHER; path++) {
        tu_buf o = tu_buf_new(p->lq * p->d), l = tu_buf_new(p->lq);
        a.o = o.p;
        a.lse = l.p;
        spattn_plan *plan = NULL;
        ck_assert_int_eq(
            spattn__plan_create_path(&s, nm ? ms : NULL, nm, &opt, (spattn_path)path, &plan),
            SPATTN_OK);
        ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
        spattn_plan_free(plan);
        for (size_t i = 0; i < p->lq; i++) {
            for (size_t d = 0; d < p->d; d++)
                TU_CHECK_MSG(tu_close(o.p[i * p->d + d], ro.p[i * p->d + d], TU_TOL),
                             "%s on %s path %d: O[%zu,%zu] = %.9g, reference %.9g", what,
                             spattn_isa_name(isa), path, i, d, (double)o.p[i * p->d + d],
                             (double)ro.p[i * p->d + d]);
            ck_assert_msg(tu_close(l.p[i], rl.p[i], TU_TOL),
                          "%s on %s path %d: lse[%zu] = %.9g, reference %.9g", what,
                          spattn_isa_name(isa), path, i, (double)l.p[i], (double)rl.p[i]);
        }
        ck_assert(tu_buf_guards_ok(&o) && tu_buf_guards_ok(&l));
        tu_buf_free(&o);
        tu_buf_free(&l);
    }
    tu_buf_free(&ro);
    tu_buf_free(&rl);
}

static nprob nprob_new(size_t lq, size_t lk, size_t d, tu_rng *r)
{
    nprob p = {lq, lk, d, malloc(lq * d * 4), malloc(lk * d * 4), malloc(lk * d * 4), NULL, 0, 0};
    for (size_t i = 0; i < lq * d; i++)
        p.q[i] = tu_normal(r);
    for (size_t i = 0; i < lk * d; i++) {
        p.k[i] = tu_normal(r);
        p.v[i] = tu_normal(r);
    }
    return p;
}

static void nprob_free(nprob *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
}

START_TEST(huge_scores)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {7};
    /* Scores exactly +-1e4 (100 * 100, scale 1): a kernel that does not subtract the row max
       overflows, one that does not guard l == 0 underflows to 0/0. */
    nprob p = nprob_new(20, 150, 16, &r);
    p.scale = 1.0f;
    for (int variant = 0; variant < 3; variant++) {
        memset(p.q, 0, 20 * 16 * 4);
        memset(p.k, 0, 150 * 16 * 4);
        for (size_t i = 0; i < 20; i++)
            p.q[i * 16] = 100.0f;
        for (size_t j = 0; j < 150; j++)
            p.k[j * 16] = variant == 0   ? (tu_next(&r) & 1 ? 100.0f : -100.0f)
                          : variant == 1 ? 100.0f
                                         : -100.0f;
        check_vs_reference(&p, isa,
                           variant == 0   ? "scores +-1e4"
                           : variant == 1 ? "scores all 1e4"
                                          : "scores all -1e4");
        p.softcap = 30.0f;
        check_vs_reference(&p, isa, "scores +-1e4 with softcap");
        p.softcap = 0.0f;
    }
    nprob_free(&p);
}
END_TEST

START_TEST(denormals)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {8};
    nprob p = nprob_new(17, 70, 12, &r);
    for (size_t i = 0; i < 17 * 12; i++)
        p.q[i] *= 1e-39f;
    for (size_t i = 0; i < 70 * 12; i++)
        p.k[i] *= 1e-39f;
    check_vs_reference(&p, isa, "denormal q and k");
    for (size_t i = 0; i < 70 * 12; i++)
        p.v[i] = p.v[i] * 1e-39f;
    check_vs_reference(&p, isa, "denormal q, k and v");
    /* The mean of denormal V must stay near its true value, not flush to a wrong one. */
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_causal(17, 70, &m), SPATTN_OK);
    p.m = m;
    check_vs_reference(&p, isa, "denormals, causal");
    spattn_mask_free(m);
    nprob_free(&p);
}
END_TEST

START_TEST(equal_scores_and_single_key)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {9};
    nprob p = nprob_new(33, 130, 20, &r);
    for (size_t j = 1; j < 130; j++)
        memcpy(p.k + j * 20, p.k, 20 * 4);
    check_vs_reference(&p, isa, "all-equal scores");
    for (size_t i = 0; i < 130 * 20; i++)
        p.k[i] = 0.0f;
    check_vs_reference(&p, isa, "all-zero scores");

    /* One allowed key per row, scattered across tiles. */
    nprob_free(&p);
    p = nprob_new(33, 130, 20, &r);
    int64_t rp[34];
    int32_t col[33];
    for (int i = 0; i <= 33; i++)
        rp[i] = i;
    for (int i = 0; i < 33; i++)
        col[i] = (int32_t)tu_range(&r, 0, 129);
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_from_csr(33, 130, rp, col, &m), SPATTN_OK);
    p.m = m;
    check_vs_reference(&p, isa, "single allowed key");
    /* Every other key poisoned: a single key must not pick up anything else. */
    for (size_t j = 0; j < 130; j++) {
        int used = 0;
        for (int i = 0; i < 33; i++)
            used |= col[i] == (int32_t)j;
        if (!used)
            for (size_t d = 0; d < 20; d++)
                p.k[j * 20 + d] = p.v[j * 20 + d] = NAN;
    }
    check_vs_reference(&p, isa, "single allowed key, the rest NaN");
    spattn_mask_free(m);
    nprob_free(&p);
}
END_TEST

START_TEST(inf_in_allowed_positions)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {10};
    nprob p = nprob_new(9, 80, 8, &r);
    p.v[5 * 8 + 0] = INFINITY; /* column 0 of every row -> +Inf */
    p.v[6 * 8 + 1] = INFINITY; /* column 1: +Inf and -Inf -> NaN */
    p.v[70 * 8 + 1] = -INFINITY;
    check_vs_reference(&p, isa, "Inf in V");
    nprob_free(&p);

    p = nprob_new(9, 80, 8, &r);
    p.q[3 * 8 + 2] = INFINITY;   /* row 3's scores are +-Inf or NaN: the reference says which */
    p.k[40 * 8 + 5] = -INFINITY; /* key 40's scores for every row */
    /* A -Inf score on the first key visited: a running max that starts at -inf must not
       turn it into exp(-inf - -inf) = NaN. */
    p.k[0 * 8 + 3] = -INFINITY;
    check_vs_reference(&p, isa, "Inf in Q and K");
    nprob_free(&p);
}
END_TEST

START_TEST(nan_in_masked_positions)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {11};
    const size_t n = 100, d = 24;
    nprob p = nprob_new(n, n, d, &r);
    spattn_mask *m = NULL;
    /* Causal: key n-1 is seen by the last row only; the window puts a NaN key inside a
       PARTIAL tile where masked lanes are loaded but must not count. */
    ck_assert_int_eq(spattn_mask_causal(n, n, &m), SPATTN_OK);
    p.m = m;
    for (size_t t = 0; t < d; t++)
        p.k[(n - 1) * d + t] = p.v[(n - 1) * d + t] = NAN;
    check_vs_reference(&p, isa, "NaN K/V in the causal future");
    spattn_mask_free(m);

    nprob_free(&p);
    p = nprob_new(n, n, d, &r);
    ck_assert_int_eq(spattn_mask_window(n, n, 2, 0, &m), SPATTN_OK);
    p.m = m;
    for (size_t t = 0; t < d; t++) {
        p.k[40 * d + t] = NAN;
        p.v[70 * d + t] = NAN;
        p.q[10 * d + t] = NAN;
    }
    check_vs_reference(&p, isa, "NaN outside the window");
    spattn_mask_free(m);

    /* A random dense mask with NaN K and V in every row that no query of it allows. */
    nprob_free(&p);
    p = nprob_new(n, n, d, &r);
    uint8_t *dense = malloc(n * n);
    for (size_t i = 0; i < n * n; i++)
        dense[i] = (i % n) % 3 != 0 && tu_uniform(&r) < 0.3;
    ck_assert_int_eq(spattn_mask_from_dense(n, n, dense, n, &m), SPATTN_OK);
    p.m = m;
    for (size_t j = 0; j < n; j += 3)
        for (size_t t = 0; t < d; t++)
            p.k[j * d + t] = p.v[j * d + t] = NAN;
    check_vs_reference(&p, isa, "NaN in every third (masked) key");
    spattn_mask_free(m);
    free(dense);
    nprob_free(&p);
}
END_TEST

/* ----------------------------------------------------------------------------------------- */
/* Allocation failure                                                                         */
/* ----------------------------------------------------------------------------------------- */

typedef struct nomem_ctx {
    fx f;
    spattn_mask *a, *b;
    spattn_plan *plan;
} nomem_ctx;

static void refill_canary(tu_buf *b)
{
    uint32_t bits = TU_CANARY_BITS;
    for (size_t i = 0; i < b->n + 2 * b->guard; i++)
        memcpy(&b->base[i], &bits, sizeof bits);
}

static int fn_half(size_t i, size_t j, void *c)
{
    (void)c;
    return (i + j) % 2 == 0;
}

/* Operation `op`: returns its status; *made gets a mask or plan to free (NULL on failure). */
static spattn_status nomem_op(nomem_ctx *c, int op, void **made, spattn_options *opt)
{
    static uint8_t dense[70 * 200];
    static const size_t glob[] = {3, 150};
    static int64_t rp[71];
    static int32_t col[70 * 3];
    for (size_t i = 0; i < sizeof dense; i++)
        dense[i] = (uint8_t)(i % 7 == 0 || i % 11 == 0);
    for (int i = 0; i <= 70; i++)
        rp[i] = 3 * i;
    for (int i = 0; i < 70 * 3; i++)
        col[i] = (int32_t)((i % 3) * 61 + i / 3);
    spattn_mask *m = (spattn_mask *)(void *)&m; /* sentinels: a failure must clear them */
    spattn_plan *p = (spattn_plan *)(void *)&p;
    spattn_status st;
    const spattn_mask *ms[8] = {c->a, c->b, c->a, c->b, c->a, c->b, c->a, c->b};
    *made = NULL;
    switch (op) {
    case 0:
        st = spattn_mask_causal(70, 200, &m);
        break;
    case 1:
        st = spattn_mask_window(70, 200, 20, 3, &m);
        break;
    case 2:
        st = spattn_mask_from_dense(70, 200, dense, 200, &m);
        break;
    case 3:
        st = spattn_mask_from_csr(70, 200, rp, col, &m);
        break;
    case 4:
        st = spattn_mask_from_blocks(70, 200, 16, 64, dense, &m);
        break;
    case 5:
        st = spattn_mask_and(c->a, c->b, &m);
        break;
    case 6:
        st = spattn_mask_or(c->a, c->b, &m);
        break;
    case 7:
        st = spattn_mask_strided(70, 200, 9, &m);
        break;
    case 8:
        st = spattn_mask_fixed(70, 200, 16, 3, &m);
        break;
    case 9:
        st = spattn_mask_longformer(70, 200, 4, 4, glob, 2, &m);
        break;
    case 10:
        st = spattn_mask_bigbird(70, 200, 16, 1, 1, 2, 5, &m);
        break;
    case 11:
        st = spattn_mask_dilated(70, 200, 5, 5, 3, &m);
        break;
    case 12:
        st = spattn_mask_from_fn(70, 200, fn_half, NULL, &m);
        break;
    case 13: {
        spattn_shape s = {2, 4, 2, 70, 200, 8, 6};
        st = spattn_plan_create(&s, ms, 4, opt, &p);
        break;
    }
    case 14: {
        spattn_shape s = {2, 4, 2, 70, 200, 8, 6};
        st = spattn__plan_create_path(&s, ms, 8, opt, SPATTN_PATH_GATHER, &p);
        break;
    }
    case 15:
        st = spattn_forward(&c->f.a, ms, 8, opt);
        break;
    case 16:
        st = spattn_forward(&c->f.a, NULL, 0, opt);
        break;
    case 17:
        st = spattn_plan_execute(c->plan, &c->f.a);
        break;
    default: {
        static float x[70 * 200], y[70 * 200];
        st = spattn_softmax_masked(x, y, 70, 200, 200, c->a, 0.5f, opt);
        break;
    }
    }
    if (op <= 12)
        *made = m;
    else if (op <= 14)
        *made = p;
    return st;
}
#define N_NOMEM_OPS 19

static void nomem_release(int op, void *made)
{
    if (op <= 12)
        spattn_mask_free(made);
    else if (op <= 14)
        spattn_plan_free(made);
}

/* What an operation produced, as bytes to compare: a mask's dense form, a plan's output on
   the fixture, or the output buffer a forward call wrote. */
static size_t result_bytes(int op)
{
    return op <= 12 ? 70 * 200 : 2 * 4 * 70 * 6 * sizeof(float);
}

static void *result_of(nomem_ctx *c, int op, void *made)
{
    void *r = malloc(result_bytes(op));
    if (op <= 12) {
        ck_assert_int_eq(spattn_mask_to_dense(made, r, 200), SPATTN_OK);
    } else {
        if (op <= 14) {
            refill_canary(&c->f.o);
            ck_assert_int_eq(spattn_plan_execute(made, &c->f.a), SPATTN_OK);
        }
        memcpy(r, c->f.o.p, result_bytes(op));
    }
    return r;
}

START_TEST(allocation_failures)
{
    nomem_ctx c;
    memset(&c, 0, sizeof c);
    /* A bigger fixture than the validation cases: 70 x 200, so plans have several tiles. */
    spattn_shape s = {2, 4, 2, 70, 200, 8, 6};
    c.f.a.shape = s;
    c.f.q = tu_buf_new(2 * 4 * 70 * 8);
    c.f.k = tu_buf_new(2 * 2 * 200 * 8);
    c.f.v = tu_buf_new(2 * 2 * 200 * 6);
    c.f.o = tu_buf_new(2 * 4 * 70 * 6);
    c.f.lse = tu_buf_new(2 * 4 * 70);
    for (size_t i = 0; i < c.f.q.n; i++)
        c.f.q.p[i] = 0.01f * (float)(i % 13);
    for (size_t i = 0; i < c.f.k.n; i++)
        c.f.k.p[i] = 0.02f * (float)(i % 7);
    for (size_t i = 0; i < c.f.v.n; i++)
        c.f.v.p[i] = 0.03f * (float)(i % 5);
    c.f.a.q = c.f.q.p;
    c.f.a.k = c.f.k.p;
    c.f.a.v = c.f.v.p;
    c.f.a.o = c.f.o.p;
    c.f.a.lse = c.f.lse.p;
    c.f.a.q_layout = spattn_layout_bhtd(4, 70, 8);
    c.f.a.k_layout = spattn_layout_bhtd(2, 200, 8);
    c.f.a.v_layout = spattn_layout_bhtd(2, 200, 6);
    c.f.a.o_layout = spattn_layout_bhtd(4, 70, 6);
    ck_assert_int_eq(spattn_mask_window(70, 200, 30, 30, &c.a), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_strided(70, 200, 7, &c.b), SPATTN_OK);

    spattn_isa isas[TU_MAX_ISAS];
    int nisa = tu_isas(isas);
    int total_failures = 0;
    for (int ti = 0; ti < 2 * nisa; ti++) {
        spattn_options opt = {isas[ti / 2], 1 + ti % 2};
        const spattn_mask *ms[1] = {c.a};
        spattn_plan *plan = NULL;
        ck_assert_int_eq(spattn_plan_create(&s, ms, 1, &opt, &plan), SPATTN_OK);
        c.plan = plan;
        for (int op = 0; op < N_NOMEM_OPS; op++) {
            if (ti > 0 && op <= 12)
                continue; /* mask builders do not depend on options */
            void *made = NULL;
            refill_canary(&c.f.o);
            spattn__test_fail_alloc_at(0);
            ck_assert_msg(nomem_op(&c, op, &made, &opt) == SPATTN_OK, "op %d failed", op);
            long allocs = spattn__test_fail_alloc_at(0);
            void *golden = result_of(&c, op, made);
            nomem_release(op, made);
            if (op <= 14)
                ck_assert_msg(allocs > 0, "op %d made no allocation", op);
            if (op == 17)
                ck_assert_msg(allocs == 0, "plan_execute allocated %ld times", allocs);
            int nomems = 0;
            for (long n = 1; n <= allocs; n++) {
                refill_canary(&c.f.o);
                refill_canary(&c.f.lse);
                spattn__test_fail_alloc_at(n);
                made = (void *)&made;
                spattn_status st = nomem_op(&c, op, &made, &opt);
                spattn__test_fail_alloc_at(0);
                if (st == SPATTN_OK) {
                    /* A failure the library can absorb (a shrinking realloc, say) is fine
                       as long as the result is exactly what it would have been. */
                    void *r = result_of(&c, op, made);
                    ck_assert_msg(memcmp(r, golden, result_bytes(op)) == 0,
                                  "op %d: absorbed failure %ld changed the result", op, n);
                    free(r);
                    nomem_release(op, made);
                    continue;
                }
                ck_assert_msg(st == SPATTN_E_NOMEM,
                              "op %d on %s/%d threads, allocation %ld of %ld failing: %s", op,
                              spattn_isa_name(opt.isa), opt.num_threads, n, allocs,
                              spattn_status_string(st));
                ck_assert_msg(made == NULL, "op %d: *out not NULL after NOMEM", op);
                ck_assert_msg(tu_buf_untouched(&c.f.o) && tu_buf_untouched(&c.f.lse),
                              "op %d wrote outputs before failing at allocation %ld", op, n);
                nomems++;
            }
            ck_assert_msg(allocs == 0 || nomems > 0, "op %d never reported NOMEM", op);
            total_failures += nomems;
            /* The library works normally afterwards. */
            ck_assert_int_eq(nomem_op(&c, op, &made, &opt), SPATTN_OK);
            nomem_release(op, made);
            free(golden);
        }
        spattn_plan_free(plan);
    }
    ck_assert_int_gt(total_failures, 20);
    if (getenv("SPATTN_TEST_VERBOSE"))
        fprintf(stderr, "allocation failures injected: %d\n", total_failures);
    spattn_mask_free(c.a);
    spattn_mask_free(c.b);
    tu_buf_free(&c.f.q);
    tu_buf_free(&c.f.k);
    tu_buf_free(&c.f.v);
    tu_buf_free(&c.f.o);
    tu_buf_free(&c.f.lse);
}
END_TEST

/* No allocation on the hot path: an uncontended execute allocates nothing, whatever size. */
START_TEST(execute_does_not_allocate)
{
    const size_t lens[] = {16, 300};
    for (int t = 0; t < 2; t++) {
        size_t n = lens[t];
        spattn_shape s = {1, 2, 1, n, n, 16, 16};
        spattn_mask *m = NULL;
        ck_assert_int_eq(spattn_mask_causal(n, n, &m), SPATTN_OK);
        const spattn_mask *ms[1] = {m};
        spattn_plan *plan = NULL;
        spattn_options opt = {SPATTN_ISA_AUTO, 2};
        ck_assert_int_eq(spattn_plan_create(&s, ms, 1, &opt, &plan), SPATTN_OK);
        float *q = calloc(2 * n * 16, 4), *k = calloc(n * 16, 4), *v = calloc(n * 16, 4);
        float *o = calloc(2 * n * 16, 4);
        spattn_args a;
        memset(&a, 0, sizeof a);
        a.shape = s;
        a.q = q;
        a.k = k;
        a.v = v;
        a.o = o;
        a.q_layout = a.o_layout = spattn_layout_bhtd(2, n, 16);
        a.k_layout = a.v_layout = spattn_layout_bhtd(1, n, 16);
        spattn__test_fail_alloc_at(0);
        for (int rep = 0; rep < 3; rep++)
            ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
        ck_assert_int_eq(spattn__test_fail_alloc_at(0), 0);
        spattn_plan_free(plan);
        spattn_mask_free(m);
        free(q);
        free(k);
        free(v);
        free(o);
    }
}
END_TEST

Suite *suite_hostile(void);
Suite *suite_hostile(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("validation");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, null_pointers);
    tcase_add_test(tc, bad_shapes);
    tcase_add_test(tc, bad_strides);
    tcase_add_test(tc, aliasing);
    tcase_add_test(tc, bad_scalars_and_options);
    tcase_add_test(tc, bad_modifiers);
    tcase_add_test(tc, bad_dtypes);
    tcase_add_test(tc, bad_mask_sets);
    tcase_add_test(tc, softmax_bad_arguments);
    tcase_add_test(tc, enum_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("masks");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, mask_bad_lengths);
    tcase_add_test(tc, mask_bad_arguments);
    tcase_add_test(tc, csr_malformed);
    tcase_add_test(tc, pattern_extremes);
    tcase_add_test(tc, near_int32_lengths);
    suite_add_tcase(s, tc);

    int n = tu_n_isas();
    tc = tcase_create("numeric");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, huge_scores, 0, n);
    tcase_add_loop_test(tc, denormals, 0, n);
    tcase_add_loop_test(tc, equal_scores_and_single_key, 0, n);
    tcase_add_loop_test(tc, inf_in_allowed_positions, 0, n);
    tcase_add_loop_test(tc, nan_in_masked_positions, 0, n);
    suite_add_tcase(s, tc);

    tc = tcase_create("nomem");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, allocation_failures);
    tcase_add_test(tc, execute_does_not_allocate);
    suite_add_tcase(s, tc);
    return s;
}

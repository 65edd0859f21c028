/*
 * Every bad argument of spattn_plan_backward and spattn_reference_backward: the status the
 * contract gives, nothing written (the gradient buffers keep their canaries, the inputs their
 * values), and a valid call afterwards still succeeding.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "test_util.h"

typedef struct hproblem {
    spattn_shape s;
    spattn_args a;
    spattn_grads g;
    tu_buf q, k, v, o, lse, d_o, dq, dk, dv, dsinks;
    float slopes[2], sinks[2];
    spattn_mask *mask;
    spattn_plan *plan;
    float *saved; /* every input buffer, concatenated */
    size_t n_saved;
} hproblem;

static tu_buf *inputs(hproblem *p, size_t i)
{
    tu_buf *in[] = {&p->q, &p->k, &p->v, &p->o, &p->lse, &p->d_o};
    return i < sizeof in / sizeof in[0] ? in[i] : NULL;
}

static void h_make(hproblem *p)
{
    memset(p, 0, sizeof *p);
    tu_rng r = {0x4057113eull};
    const spattn_shape s = {1, 2, 1, 20, 30, 8, 6};
    p->s = s;
    p->a.shape = s;
    p->a.q_layout = spattn_layout_bhtd(2, 20, 8);
    p->a.k_layout = spattn_layout_bhtd(1, 30, 8);
    p->a.v_layout = spattn_layout_bhtd(1, 30, 6);
    p->a.o_layout = spattn_layout_bhtd(2, 20, 6);
    p->q = tu_buf_new(2 * 20 * 8);
    p->k = tu_buf_new(30 * 8);
    p->v = tu_buf_new(30 * 6);
    p->o = tu_buf_new(2 * 20 * 6);
    p->lse = tu_buf_new(2 * 20);
    p->d_o = tu_buf_new(2 * 20 * 6);
    p->dq = tu_buf_new(2 * 20 * 8);
    p->dk = tu_buf_new(30 * 8);
    p->dv = tu_buf_new(30 * 6);
    p->dsinks = tu_buf_new(2);
    tu_buf *fillme[] = {&p->q, &p->k, &p->v, &p->d_o};
    for (size_t b = 0; b < 4; b++)
        for (size_t i = 0; i < fillme[b]->n; i++)
            fillme[b]->p[i] = tu_normal(&r);
    p->slopes[0] = 0.25f;
    p->slopes[1] = 0.125f;
    p->sinks[0] = 0.5f;
    p->sinks[1] = -INFINITY;
    p->a.q = p->q.p;
    p->a.k = p->k.p;
    p->a.v = p->v.p;
    p->a.o = p->o.p;
    p->a.lse = p->lse.p;
    p->a.softcap = 5.0f;
    p->a.alibi_slopes = p->slopes;
    p->a.sinks = p->sinks;
    p->g.d_o = p->d_o.p;
    p->g.d_o_layout = p->a.o_layout;
    p->g.d_q = p->dq.p;
    p->g.d_q_layout = p->a.q_layout;
    p->g.d_k = p->dk.p;
    p->g.d_k_layout = p->a.k_layout;
    p->g.d_v = p->dv.p;
    p->g.d_v_layout = p->a.v_layout;
    p->g.d_sinks = p->dsinks.p;
    ck_assert_int_eq(spattn_mask_causal(20, 30, &p->mask), SPATTN_OK);
    ck_assert_int_eq(
        spattn_plan_create(&s, (const spattn_mask *const *)&p->mask, 1, NULL, &p->plan), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(p->plan, &p->a), SPATTN_OK);
    for (size_t i = 0; inputs(p, i); i++)
        p->n_saved += inputs(p, i)->n;
    p->saved = malloc(p->n_saved * sizeof(float));
    ck_assert_ptr_nonnull(p->saved);
    size_t at = 0;
    for (size_t i = 0; inputs(p, i); i++) {
        memcpy(p->saved + at, inputs(p, i)->p, inputs(p, i)->n * sizeof(float));
        at += inputs(p, i)->n;
    }
}

static void h_free(hproblem *p)
{
    tu_buf *all[] = {&p->q,   &p->k,  &p->v,  &p->o,  &p->lse,
                     &p->d_o, &p->dq, &p->dk, &p->dv, &p->dsinks};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tu_buf_free(all[i]);
    spattn_plan_free(p->plan);
    spattn_mask_free(p->mask);
    free(p->saved);
}

static void nothing_written(hproblem *p, const char *what)
{
    ck_assert_msg(tu_buf_untouched(&p->dq) && tu_buf_untouched(&p->dk) &&
                      tu_buf_untouched(&p->dv) && tu_buf_untouched(&p->dsinks),
                  "%s: a gradient was written", what);
    size_t at = 0;
    for (size_t i = 0; inputs(p, i); i++) {
        ck_assert_msg(memcmp(p->saved + at, inputs(p, i)->p, inputs(p, i)->n * sizeof(float)) == 0,
                      "%s: input %zu changed", what, i);
        at += inputs(p, i)->n;
    }
}

/* One bad call on both entry points (the plan's only when `plan_only`). */
static void expect(hproblem *p, const spattn_args *a, const spattn_grads *g, spattn_status want,
                   int plan_only, const char *what)
{
    ck_assert_msg(spattn_plan_backward(p->plan, a, g) == want, "plan, %s", what);
    nothing_written(p, what);
    if (!plan_only) {
        ck_assert_msg(spattn_reference_backward(a, (const spattn_mask *const *)&p->mask, 1, g) ==
                          want,
                      "reference, %s", what);
        nothing_written(p, what);
    }
}

START_TEST(bad_arguments)
{
    hproblem p;
    h_make(&p);
    spattn_args a;
    spattn_grads g;
#define RESET() (a = p.a, g = p.g)
    RESET();
    ck_assert_int_eq(spattn_plan_backward(NULL, &a, &g), SPATTN_E_NULL);
    nothing_written(&p, "NULL plan");
    expect(&p, NULL, &g, SPATTN_E_NULL, 0, "NULL args");
    expect(&p, &a, NULL, SPATTN_E_NULL, 0, "NULL grads");
    a.shape.len_q = 19;
    expect(&p, &a, &g, SPATTN_E_SHAPE, 1, "shape not the plan's");
    RESET();
    a.lse = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "lse NULL");
    RESET();
    a.q = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "q NULL");
    RESET();
    a.o = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "o NULL");
    RESET();
    g.d_o = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "d_o NULL");
    RESET();
    g.d_q = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "d_q NULL");
    RESET();
    g.d_k = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "d_k NULL");
    RESET();
    g.d_v = NULL;
    expect(&p, &a, &g, SPATTN_E_NULL, 0, "d_v NULL");
    RESET();
    g.d_q_layout.token = -8;
    expect(&p, &a, &g, SPATTN_E_SHAPE, 0, "negative d_q stride");
    RESET();
    g.d_o_layout.head = -1;
    expect(&p, &a, &g, SPATTN_E_SHAPE, 0, "negative d_o stride");
    RESET();
    g.d_k_layout.token = 7; /* rows of 8 overlap */
    expect(&p, &a, &g, SPATTN_E_SHAPE, 0, "d_k rows overlapping");
    RESET();
    g.d_q_layout.head = 0; /* both heads on one output */
    expect(&p, &a, &g, SPATTN_E_SHAPE, 0, "d_q heads aliased");
    RESET();
    g.d_v_layout.batch = PTRDIFF_MAX / 2;
    g.d_v_layout.token = PTRDIFF_MAX / 2;
    expect(&p, &a, &g, SPATTN_E_SHAPE, 0, "d_v span overflowing");
    RESET();
    g.d_q = p.q.p + 3;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_q overlapping q");
    RESET();
    g.d_k = p.k.p;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_k on k");
    RESET();
    g.d_k = p.v.p + 10;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_k overlapping v");
    RESET();
    g.d_v = p.o.p + 1;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_v overlapping o");
    RESET();
    g.d_v = p.lse.p + 30;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_v overlapping lse");
    RESET();
    g.d_q = p.d_o.p;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_q on d_o");
    RESET();
    g.d_v = p.dk.p + 200; /* the tail of d_k */
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_v overlapping d_k");
    RESET();
    g.d_sinks = p.dq.p + 5;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_sinks inside d_q");
    RESET();
    g.d_sinks = p.sinks + 1;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_sinks overlapping sinks");
    RESET();
    g.d_q = p.slopes; /* a q-shaped output over the 2 slopes */
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "d_q over the slopes");
    RESET();
    a.scale = -1.0f;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "negative scale");
    RESET();
    a.softcap = NAN;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "NaN softcap");
    RESET();
    float bad_sinks[2] = {NAN, 0.0f}, bad_slopes[2] = {INFINITY, 0.0f};
    a.sinks = bad_sinks;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "NaN sink");
    RESET();
    a.alibi_slopes = bad_slopes;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "infinite slope");
    RESET();
    a.pos_offset = (ptrdiff_t)1 << 40;
    expect(&p, &a, &g, SPATTN_E_ARG, 0, "pos_offset out of range with ALiBi");
    RESET();
    a.shape.heads_kv = 3;
    ck_assert_int_eq(spattn_reference_backward(&a, NULL, 0, &g), SPATTN_E_ARG);
    nothing_written(&p, "heads_q % heads_kv");
    RESET();
    ck_assert_int_eq(spattn_reference_backward(&a, (const spattn_mask *const *)&p.mask, 2, &g),
                     SPATTN_E_MASK);
    nothing_written(&p, "mask count");
    /* After all that, a good call works and writes every gradient. */
    RESET();
    ck_assert_int_eq(spattn_plan_backward(p.plan, &a, &g), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&p.dq) && tu_buf_guards_ok(&p.dk) && tu_buf_guards_ok(&p.dv));
    for (size_t i = 0; i < p.dq.n; i++)
        ck_assert(isfinite(p.dq.p[i]));
    ck_assert(isfinite(p.dsinks.p[0]) && p.dsinks.p[1] == 0.0f);
#undef RESET
    h_free(&p);
}
END_TEST

/* Out of memory at every allocation of a backward call: E_NOMEM and nothing written, then
   success. */
START_TEST(allocation_failures)
{
    hproblem p;
    h_make(&p);
    spattn_plan *fresh = NULL; /* its key-tile lists are built by the call under test */
    ck_assert_int_eq(spattn_plan_create(&p.s, (const spattn_mask *const *)&p.mask, 1, NULL, &fresh),
                     SPATTN_OK);
    spattn_plan *keep = p.plan;
    p.plan = fresh;
    int ok = 0;
    long n = 1;
    for (; n < 64 && !ok; n++) {
        spattn__test_fail_alloc_at(n);
        const spattn_status st = spattn_plan_backward(fresh, &p.a, &p.g);
        spattn__test_fail_alloc_at(0);
        if (st == SPATTN_OK) {
            ok = 1;
            break;
        }
        ck_assert_int_eq(st, SPATTN_E_NOMEM);
        nothing_written(&p, "allocation failure");
    }
    ck_assert(ok);
    ck_assert_msg(n > 2, "the call allocates: its first allocations must have failed");
    p.plan = keep;
    spattn_plan_free(fresh);
    h_free(&p);
}
END_TEST

Suite *suite_backward_hostile(void);
Suite *suite_backward_hostile(void)
{
    Suite *s = suite_create("backward_hostile");
    TCase *tc = tcase_create("arguments");
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, allocation_failures);
    suite_add_tcase(s, tc);
    return s;
}

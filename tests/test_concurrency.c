/*
 * Concurrency: one plan and its masks shared by many threads, each with its own inputs and
 * outputs, every result compared bitwise with the same call made single-threaded beforehand;
 * threads mixing ISAs and thread counts through options; masks freed while plans made from
 * them run elsewhere; dispatch queried from many threads at once. The sanitizer job runs this
 * suite under TSan.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

#define NTHREADS 8
#define REPS 3

static const spattn_shape g_shape = {2, 4, 2, 40, 150, 32, 24};

typedef struct io {
    float *q, *k, *v, *o, *lse;
    spattn_args a;
} io;

static void io_init(io *x, uint64_t seed)
{
    const spattn_shape *s = &g_shape;
    size_t nq = s->batch * s->heads_q * s->len_q * s->dim_qk;
    size_t nk = s->batch * s->heads_kv * s->len_k * s->dim_qk;
    size_t nv = s->batch * s->heads_kv * s->len_k * s->dim_v;
    size_t no = s->batch * s->heads_q * s->len_q * s->dim_v;
    size_t nl = s->batch * s->heads_q * s->len_q;
    tu_rng r = {seed};
    x->q = malloc(nq * sizeof(float));
    x->k = malloc(nk * sizeof(float));
    x->v = malloc(nv * sizeof(float));
    x->o = calloc(no, sizeof(float));
    x->lse = calloc(nl, sizeof(float));
    for (size_t i = 0; i < nq; i++)
        x->q[i] = tu_normal(&r);
    for (size_t i = 0; i < nk; i++)
        x->k[i] = tu_normal(&r);
    for (size_t i = 0; i < nv; i++)
        x->v[i] = tu_normal(&r);
    memset(&x->a, 0, sizeof x->a);
    x->a.shape = *s;
    x->a.q = x->q;
    x->a.k = x->k;
    x->a.v = x->v;
    x->a.o = x->o;
    x->a.lse = x->lse;
    /* Mixed layouts so threads do not all walk memory the same way. */
    x->a.q_layout = spattn_layout_bthd(s->heads_q, s->len_q, s->dim_qk);
    x->a.k_layout = spattn_layout_bhtd(s->heads_kv, s->len_k, s->dim_qk);
    x->a.v_layout = spattn_layout_bthd(s->heads_kv, s->len_k, s->dim_v);
    x->a.o_layout = spattn_layout_bhtd(s->heads_q, s->len_q, s->dim_v);
    x->a.softcap = (seed & 1) ? 20.0f : 0.0f;
}

static size_t o_bytes(void)
{
    return g_shape.batch * g_shape.heads_q * g_shape.len_q * g_shape.dim_v * sizeof(float);
}

static size_t lse_bytes(void)
{
    return g_shape.batch * g_shape.heads_q * g_shape.len_q * sizeof(float);
}

static void io_free(io *x)
{
    free(x->q);
    free(x->k);
    free(x->v);
    free(x->o);
    free(x->lse);
}

/* Per-head masks: causal, a band, a sparse random pattern (gather path) and blocks. */
static void make_masks(spattn_mask *m[4])
{
    const spattn_shape *s = &g_shape;
    ck_assert_int_eq(spattn_mask_causal(s->len_q, s->len_k, &m[0]), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_window(s->len_q, s->len_k, 30, 5, &m[1]), SPATTN_OK);
    uint8_t *d = malloc(s->len_q * s->len_k);
    tu_rng r = {99};
    for (size_t i = 0; i < s->len_q * s->len_k; i++)
        d[i] = tu_uniform(&r) < 0.03;
    ck_assert_int_eq(spattn_mask_from_dense(s->len_q, s->len_k, d, s->len_k, &m[2]), SPATTN_OK);
    free(d);
    ck_assert_int_eq(spattn_mask_bigbird(s->len_q, s->len_k, 16, 1, 1, 2, 3, &m[3]), SPATTN_OK);
}

static void free_masks(spattn_mask *m[4])
{
    for (int i = 0; i < 4; i++)
        spattn_mask_free(m[i]);
}

/* ----------------------------------------------------------------------------------------- */

typedef struct worker {
    pthread_t tid;
    pthread_barrier_t *bar;
    const spattn_plan *plan;
    spattn_options opt; /* used when plan == NULL */
    const spattn_mask *const *masks;
    size_t n_masks;
    io x;
    float *want_o, *want_lse;
    int mismatches, errors;
} worker;

static void *run_worker(void *arg)
{
    worker *w = arg;
    pthread_barrier_wait(w->bar);
    for (int rep = 0; rep < REPS; rep++) {
        memset(w->x.o, 0, o_bytes());
        memset(w->x.lse, 0, lse_bytes());
        spattn_status st = w->plan ? spattn_plan_execute(w->plan, &w->x.a)
                                   : spattn_forward(&w->x.a, w->masks, w->n_masks, &w->opt);
        if (st != SPATTN_OK)
            w->errors++;
        else if (memcmp(w->x.o, w->want_o, o_bytes()) != 0 ||
                 memcmp(w->x.lse, w->want_lse, lse_bytes()) != 0)
            w->mismatches++;
    }
    return NULL;
}

static void snapshot(worker *w)
{
    w->want_o = malloc(o_bytes());
    w->want_lse = malloc(lse_bytes());
    memcpy(w->want_o, w->x.o, o_bytes());
    memcpy(w->want_lse, w->x.lse, lse_bytes());
}

static void join_and_check(worker *w, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(pthread_join(w[i].tid, NULL), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(w[i].errors == 0, "%s: thread %d got errors", what, i);
        ck_assert_msg(w[i].mismatches == 0, "%s: thread %d differs from its single-threaded run",
                      what, i);
        io_free(&w[i].x);
        free(w[i].want_o);
        free(w[i].want_lse);
    }
}

/* The single-threaded result is itself checked against the float64 reference once, so the
   bitwise comparisons compare against something known to be right. */
static void check_against_reference(const io *x, const spattn_mask *const *masks, size_t nm)
{
    io r = *x;
    size_t no = o_bytes() / sizeof(float), nl = lse_bytes() / sizeof(float);
    r.o = malloc(o_bytes());
    r.lse = malloc(lse_bytes());
    r.a.o = r.o;
    r.a.lse = r.lse;
    ck_assert_int_eq(spattn_reference_forward(&r.a, masks, nm), SPATTN_OK);
    for (size_t i = 0; i < no; i++)
        TU_CHECK_MSG(tu_close(x->o[i], r.o[i], TU_TOL), "O[%zu] = %g, reference %g", i,
                     (double)x->o[i], (double)r.o[i]);
    for (size_t i = 0; i < nl; i++)
        ck_assert(tu_close(x->lse[i], r.lse[i], TU_TOL));
    free(r.o);
    free(r.lse);
}

/* _i: plan thread count 1 or 2 (nested: 8 callers each running a 2-thread team). */
START_TEST(shared_plan)
{
    spattn_mask *m[4];
    make_masks(m);
    const spattn_mask *ms[4] = {m[0], m[1], m[2], m[3]};
    spattn_options opt = {SPATTN_ISA_AUTO, 1 + _i};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn_plan_create(&g_shape, ms, 4, &opt, &plan), SPATTN_OK);
    /* The masks now live on inside the plan only. */
    free_masks(m);

    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].bar = &bar;
        w[i].plan = plan;
        io_init(&w[i].x, 1000 + (uint64_t)i);
        ck_assert_int_eq(spattn_plan_execute(plan, &w[i].x.a), SPATTN_OK);
        snapshot(&w[i]);
    }
    make_masks(m); /* the same sets again, for the reference */
    const spattn_mask *ms2[4] = {m[0], m[1], m[2], m[3]};
    check_against_reference(&w[0].x, ms2, 4);
    free_masks(m);
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL, run_worker, &w[i]), 0);
    join_and_check(w, NTHREADS, "shared plan");
    pthread_barrier_destroy(&bar);
    spattn_plan_free(plan);
}
END_TEST

START_TEST(mixed_isas)
{
    spattn_isa isas[TU_MAX_ISAS];
    int nisa = tu_isas(isas);
    spattn_mask *m[4];
    make_masks(m);
    const spattn_mask *ms[4] = {m[0], m[1], m[2], m[3]};
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS);
    worker w[NTHREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].bar = &bar;
        w[i].masks = ms;
        w[i].n_masks = 4;
        w[i].opt.isa = isas[i % nisa];
        w[i].opt.num_threads = 1 + (i / nisa) % 2;
        io_init(&w[i].x, 77); /* same inputs: only the ISA differs */
        /* Expected: the same ISA, one thread, nothing else running. */
        spattn_options one = {w[i].opt.isa, 1};
        ck_assert_int_eq(spattn_forward(&w[i].x.a, ms, 4, &one), SPATTN_OK);
        snapshot(&w[i]);
        if (i < nisa)
            check_against_reference(&w[i].x, ms, 4);
    }
    for (int i = 0; i < NTHREADS; i++)
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL, run_worker, &w[i]), 0);
    join_and_check(w, NTHREADS, "mixed ISAs");
    pthread_barrier_destroy(&bar);
    free_masks(m);
}
END_TEST

/* ----------------------------------------------------------------------------------------- */

typedef struct planner {
    pthread_t tid;
    pthread_barrier_t *bar;
    const spattn_mask *mask;
    io x;
    float *want_o;
    int ok;
} planner;

/* Each thread makes its own plan from one shared mask; the main thread frees the mask while
   the plans still use it; then each executes and frees its plan. */
static void *run_planner(void *arg)
{
    planner *p = arg;
    const spattn_mask *ms[1] = {p->mask};
    spattn_plan *plan = NULL;
    spattn_options opt = {SPATTN_ISA_AUTO, 1};
    pthread_barrier_wait(p->bar);
    spattn_status st = spattn_plan_create(&g_shape, ms, 1, &opt, &plan);
    pthread_barrier_wait(p->bar); /* all plans made */
    pthread_barrier_wait(p->bar); /* mask released by main */
    p->ok = st == SPATTN_OK && spattn_plan_execute(plan, &p->x.a) == SPATTN_OK &&
            memcmp(p->x.o, p->want_o, o_bytes()) == 0;
    spattn_plan_free(plan);
    return NULL;
}

START_TEST(mask_outlives_user_reference)
{
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_window(g_shape.len_q, g_shape.len_k, 50, 0, &m), SPATTN_OK);
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, NTHREADS + 1);
    planner p[NTHREADS];
    memset(p, 0, sizeof p);
    const spattn_mask *ms[1] = {m};
    spattn_options one = {SPATTN_ISA_AUTO, 1};
    for (int i = 0; i < NTHREADS; i++) {
        p[i].bar = &bar;
        p[i].mask = m;
        io_init(&p[i].x, 500 + (uint64_t)i);
        ck_assert_int_eq(spattn_forward(&p[i].x.a, ms, 1, &one), SPATTN_OK);
        p[i].want_o = malloc(o_bytes());
        memcpy(p[i].want_o, p[i].x.o, o_bytes());
        memset(p[i].x.o, 0, o_bytes());
        ck_assert_int_eq(pthread_create(&p[i].tid, NULL, run_planner, &p[i]), 0);
    }
    pthread_barrier_wait(&bar);
    pthread_barrier_wait(&bar);
    spattn_mask_free(m);
    pthread_barrier_wait(&bar);
    for (int i = 0; i < NTHREADS; i++) {
        ck_assert_int_eq(pthread_join(p[i].tid, NULL), 0);
        ck_assert_msg(p[i].ok, "thread %d: plan from a released mask misbehaved", i);
        io_free(&p[i].x);
        free(p[i].want_o);
    }
    pthread_barrier_destroy(&bar);
}
END_TEST

/* ----------------------------------------------------------------------------------------- */

typedef struct asker {
    pthread_t tid;
    pthread_barrier_t *bar;
    spattn_isa selected;
    int available[TU_MAX_ISAS];
    const char *reasons[TU_MAX_ISAS];
    uint64_t nnz;
} asker;

static void *run_asker(void *arg)
{
    asker *a = arg;
    pthread_barrier_wait(a->bar);
    a->selected = spattn_isa_selected();
    for (int i = 0; i < tu_isa_end(); i++) {
        a->available[i] = spattn_isa_available((spattn_isa)i);
        a->reasons[i] = spattn_isa_unavailable_reason((spattn_isa)i);
        (void)spattn_isa_name((spattn_isa)i);
    }
    /* Builders have no shared state either: and/or of masks made here. */
    spattn_mask *x = NULL, *y = NULL, *z = NULL;
    if (spattn_mask_strided(100, 120, 7, &x) == SPATTN_OK &&
        spattn_mask_causal(100, 120, &y) == SPATTN_OK && spattn_mask_and(x, y, &z) == SPATTN_OK)
        a->nnz = spattn_mask_nnz(z);
    spattn_mask_free(x);
    spattn_mask_free(y);
    spattn_mask_free(z);
    return NULL;
}

START_TEST(dispatch_from_many_threads)
{
    enum { N = 16 };
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, N);
    asker a[N];
    memset(a, 0, sizeof a);
    for (int i = 0; i < N; i++) {
        a[i].bar = &bar;
        ck_assert_int_eq(pthread_create(&a[i].tid, NULL, run_asker, &a[i]), 0);
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(pthread_join(a[i].tid, NULL), 0);
    pthread_barrier_destroy(&bar);
    spattn_mask *x = NULL;
    ck_assert_int_eq(spattn_mask_strided(100, 120, 7, &x), SPATTN_OK);
    uint64_t want = spattn_mask_nnz(x); /* strided is causal already: and with causal = same */
    spattn_mask_free(x);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(a[i].selected, spattn_isa_selected());
        ck_assert_uint_eq(a[i].nnz, want);
        for (int t = 0; t < tu_isa_end(); t++) {
            ck_assert_int_eq(a[i].available[t], spattn_isa_available((spattn_isa)t));
            ck_assert_int_eq(a[i].reasons[t] == NULL, a[0].reasons[t] == NULL);
        }
    }
}
END_TEST

Suite *suite_concurrency(void);
Suite *suite_concurrency(void)
{
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("threads");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, shared_plan, 0, 2);
    tcase_add_test(tc, mixed_isas);
    tcase_add_test(tc, mask_outlives_user_reference);
    tcase_add_test(tc, dispatch_from_many_threads);
    suite_add_tcase(s, tc);
    return s;
}

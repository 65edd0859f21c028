/* The API's small functions, dispatch, and every documented error status, with canary-filled
   outputs proving that a failing call writes nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

START_TEST(status_strings)
{
    for (int s = -3; s < 20; s++) {
        const char *str = spattn_status_string((spattn_status)s);
        ck_assert_ptr_nonnull(str);
        ck_assert_int_gt((int)strlen(str), 0);
    }
    ck_assert_str_ne(spattn_status_string(SPATTN_OK), spattn_status_string(SPATTN_E_ARG));
}
END_TEST

START_TEST(version_format)
{
    int a, b, c;
    char tail;
    ck_assert_int_eq(sscanf(spattn_version(), "%d.%d.%d%c", &a, &b, &c, &tail), 3);
    ck_assert_int_eq(a, SPATTN_VERSION_MAJOR);
    ck_assert_int_eq(b, SPATTN_VERSION_MINOR);
    ck_assert_int_eq(c, SPATTN_VERSION_PATCH);
}
END_TEST

START_TEST(isa_queries)
{
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_AUTO), "auto");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_SCALAR), "scalar");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_AVX2), "avx2");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_AVX512), "avx512");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_NEON), "neon");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_AVX512BF16), "avx512bf16");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_NEON_BF16), "neonbf16");
    ck_assert_str_eq(spattn_isa_name(SPATTN_ISA_AVX512AMX), "avx512amx");
    ck_assert_str_eq(spattn_isa_name((spattn_isa)42), "unknown");
    ck_assert(spattn_isa_available(SPATTN_ISA_SCALAR));
    ck_assert_ptr_null(spattn_isa_unavailable_reason(SPATTN_ISA_SCALAR));
    ck_assert(!spattn_isa_available((spattn_isa)42));
    ck_assert_ptr_nonnull(spattn_isa_unavailable_reason((spattn_isa)42));
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++) {
        int avail = spattn_isa_available((spattn_isa)i);
        /* Exactly the unavailable ones give a reason. */
        ck_assert_int_eq(avail, spattn_isa_unavailable_reason((spattn_isa)i) == NULL);
    }
#if defined(__x86_64__) || defined(__i386__)
    ck_assert(!spattn_isa_available(SPATTN_ISA_NEON));
    ck_assert(!spattn_isa_available(SPATTN_ISA_NEON_BF16));
#elif defined(__aarch64__)
    ck_assert(!spattn_isa_available(SPATTN_ISA_AVX2));
    ck_assert(!spattn_isa_available(SPATTN_ISA_AVX512));
    ck_assert(!spattn_isa_available(SPATTN_ISA_AVX512BF16));
    ck_assert(!spattn_isa_available(SPATTN_ISA_AVX512AMX));
#endif
    /* The BF16 tier extends AVX-512: it never runs where AVX-512 does not. */
    if (spattn_isa_available(SPATTN_ISA_AVX512BF16))
        ck_assert(spattn_isa_available(SPATTN_ISA_AVX512));
    if (spattn_isa_available(SPATTN_ISA_NEON_BF16))
        ck_assert(spattn_isa_available(SPATTN_ISA_NEON));
    /* The AMX tier extends AVX-512 with AVX512-BF16 underneath. */
    if (spattn_isa_available(SPATTN_ISA_AVX512AMX))
        ck_assert(spattn_isa_available(SPATTN_ISA_AVX512) &&
                  spattn_isa_available(SPATTN_ISA_AVX512BF16));
}
END_TEST

/* The ISAs compiled in: best first, scalar last, each once, every available one among them, and
   a short buffer gets only what fits. */
START_TEST(isas_compiled)
{
    spattn_isa isas[TU_MAX_ISAS];
    const size_t n = spattn_isas_compiled(NULL, 0);
    ck_assert_uint_ge(n, 1);
    ck_assert_uint_le(n, TU_MAX_ISAS);
    ck_assert_uint_eq(spattn_isas_compiled(isas, TU_MAX_ISAS), n);
    ck_assert_int_eq(isas[n - 1], SPATTN_ISA_SCALAR);
    for (size_t i = 0; i < n; i++) {
        ck_assert_str_ne(spattn_isa_name(isas[i]), "unknown");
        for (size_t j = 0; j < i; j++)
            ck_assert_int_ne(isas[i], isas[j]);
    }
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++) {
        int listed = 0;
        for (size_t j = 0; j < n; j++)
            listed |= isas[j] == (spattn_isa)i;
        if (spattn_isa_available((spattn_isa)i))
            ck_assert_msg(listed, "%s is available but not listed", spattn_isa_name((spattn_isa)i));
        if (!listed)
            ck_assert_ptr_nonnull(
                strstr(spattn_isa_unavailable_reason((spattn_isa)i), "not compiled in"));
    }
    /* AUTO passes over only ISAs this CPU runs, and only a bf16 dot-product tier (the one
       table whose speed depends on more than the features that make it run). */
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++) {
        const char *skip = spattn_isa_auto_skip_reason((spattn_isa)i);
        if (!spattn_isa_available((spattn_isa)i) || i != SPATTN_ISA_AVX512BF16)
            ck_assert_ptr_null(skip);
        else if (skip != NULL)
            ck_assert_ptr_nonnull(strstr(skip, "vdpbf16ps"));
    }
    ck_assert_ptr_null(spattn_isa_auto_skip_reason(SPATTN_ISA_AUTO));
    ck_assert_ptr_null(spattn_isa_auto_skip_reason((spattn_isa)99));
    /* AUTO without SPATTN_ISA picks the first listed ISA this CPU runs that it does not pass
       over. */
    if (getenv("SPATTN_ISA") == NULL) {
        size_t first = 0;
        while (!spattn_isa_available(isas[first]) ||
               spattn_isa_auto_skip_reason(isas[first]) != NULL)
            first++;
        ck_assert_int_eq(spattn_isa_selected(), isas[first]);
    }
    spattn_isa one[2] = {(spattn_isa)99, (spattn_isa)99};
    ck_assert_uint_eq(spattn_isas_compiled(one, 1), n);
    ck_assert_int_eq(one[0], isas[0]);
    ck_assert_int_eq(one[1], (spattn_isa)99);
}
END_TEST

/* Whether `word` is one of the space-separated words of `list`. */
static int has_word(const char *list, const char *word)
{
    const size_t n = strlen(word);
    for (const char *p = strstr(list, word); p != NULL; p = strstr(p + 1, word))
        if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return 1;
    return 0;
}

/* The feature list names what each available SIMD ISA stands on. */
START_TEST(cpu_features)
{
    const char *f = spattn_cpu_features();
    ck_assert_ptr_nonnull(f);
    ck_assert_ptr_eq(f, spattn_cpu_features());
    ck_assert(f[0] != ' ');
    ck_assert(f[0] == '\0' || f[strlen(f) - 1] != ' ');
    ck_assert_ptr_null(strstr(f, "  "));
    ck_assert(!has_word("avx512f", "avx2"));
    ck_assert(has_word("fma avx2 os-ymm", "avx2"));
    if (spattn_isa_available(SPATTN_ISA_AVX2)) {
        ck_assert_msg(has_word(f, "avx2"), "features: %s", f);
        ck_assert_msg(has_word(f, "fma"), "features: %s", f);
        ck_assert_msg(has_word(f, "os-ymm"), "features: %s", f);
    }
    if (spattn_isa_available(SPATTN_ISA_AVX512)) {
        ck_assert_msg(has_word(f, "avx512f"), "features: %s", f);
        ck_assert_msg(has_word(f, "avx512bw"), "features: %s", f);
        ck_assert_msg(has_word(f, "os-zmm"), "features: %s", f);
    }
    if (spattn_isa_available(SPATTN_ISA_AVX512BF16))
        ck_assert_msg(has_word(f, "avx512bf16"), "features: %s", f);
    if (spattn_isa_available(SPATTN_ISA_NEON_BF16))
        ck_assert_msg(has_word(f, "bf16"), "features: %s", f);
    if (spattn_isa_available(SPATTN_ISA_NEON))
        ck_assert_msg(has_word(f, "neon"), "features: %s", f);
    else
        ck_assert(!has_word(f, "neon"));
}
END_TEST

/* AUTO: without SPATTN_ISA the best available; with it, exactly the ISA it names when that is
   runnable, and nothing (UNSUPPORTED) otherwise. ctest runs this under several values. */
START_TEST(isa_env_override)
{
    const char *env = getenv("SPATTN_ISA");
    spattn_isa sel = spattn_isa_selected();
    float q[4] = {1, 2, 3, 4}, o[4];
    spattn_args a = {{1, 1, 1, 1, 1, 4, 4},
                     q,
                     spattn_layout_bhtd(1, 1, 4),
                     q,
                     spattn_layout_bhtd(1, 1, 4),
                     q,
                     spattn_layout_bhtd(1, 1, 4),
                     o,
                     spattn_layout_bhtd(1, 1, 4),
                     NULL,
                     0,
                     0,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    if (env == NULL || *env == '\0' || strcmp(env, "auto") == 0) {
        ck_assert_int_ne(sel, SPATTN_ISA_AUTO);
        spattn_isa isas[TU_MAX_ISAS];
        int n = tu_isas(isas);
        ck_assert_int_gt(n, 0);
        /* The best available: no available ISA ranks above it (scalar ranks last). */
        if (n > 1)
            ck_assert_int_ne(sel, SPATTN_ISA_SCALAR);
        ck_assert_int_eq(spattn_forward(&a, NULL, 0, NULL), SPATTN_OK);
        return;
    }
    int known = 0;
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++)
        if (strcmp(env, spattn_isa_name((spattn_isa)i)) == 0) {
            known = 1;
            if (spattn_isa_available((spattn_isa)i))
                ck_assert_int_eq(sel, i);
            else
                ck_assert_int_eq(sel, SPATTN_ISA_AUTO);
        }
    if (!known)
        ck_assert_int_eq(sel, SPATTN_ISA_AUTO);
    if (sel == SPATTN_ISA_AUTO) {
        ck_assert(!spattn_isa_available(SPATTN_ISA_AUTO));
        ck_assert_ptr_nonnull(spattn_isa_unavailable_reason(SPATTN_ISA_AUTO));
        for (size_t i = 0; i < 4; i++)
            o[i] = -7.0f;
        ck_assert_int_eq(spattn_forward(&a, NULL, 0, NULL), SPATTN_E_UNSUPPORTED);
        for (size_t i = 0; i < 4; i++)
            ck_assert(o[i] == -7.0f);
        /* An explicit ISA still works. */
        spattn_options opt = {SPATTN_ISA_SCALAR, 1};
        ck_assert_int_eq(spattn_forward(&a, NULL, 0, &opt), SPATTN_OK);
    } else {
        ck_assert_int_eq(spattn_forward(&a, NULL, 0, NULL), SPATTN_OK);
    }
}
END_TEST

START_TEST(layouts)
{
    spattn_layout l = spattn_layout_bhtd(3, 5, 7);
    ck_assert_int_eq(l.token, 7);
    ck_assert_int_eq(l.head, 35);
    ck_assert_int_eq(l.batch, 105);
    l = spattn_layout_bthd(3, 5, 7);
    ck_assert_int_eq(l.head, 7);
    ck_assert_int_eq(l.token, 21);
    ck_assert_int_eq(l.batch, 105);
}
END_TEST

/* ---- error statuses ------------------------------------------------------------------------
 */

typedef struct small {
    tu_buf q, k, v, o, lse;
    spattn_args a;
    spattn_mask *m;
} small;

enum { B = 2, HQ = 4, HKV = 2, LQ = 5, LK = 7, D = 3 };

static void small_init(small *s)
{
    s->q = tu_buf_new(B * HQ * LQ * D);
    s->k = tu_buf_new(B * HKV * LK * D);
    s->v = tu_buf_new(B * HKV * LK * D);
    s->o = tu_buf_new(B * HQ * LQ * D);
    s->lse = tu_buf_new(B * HQ * LQ);
    for (size_t i = 0; i < s->q.n; i++)
        s->q.p[i] = 0.25f;
    for (size_t i = 0; i < s->k.n; i++)
        s->k.p[i] = s->v.p[i] = 0.5f;
    spattn_args a = {{B, HQ, HKV, LQ, LK, D, D},
                     s->q.p,
                     spattn_layout_bhtd(HQ, LQ, D),
                     s->k.p,
                     spattn_layout_bhtd(HKV, LK, D),
                     s->v.p,
                     spattn_layout_bhtd(HKV, LK, D),
                     s->o.p,
                     spattn_layout_bhtd(HQ, LQ, D),
                     s->lse.p,
                     0,
                     0,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    s->a = a;
    ck_assert_int_eq(spattn_mask_causal(LQ, LK, &s->m), SPATTN_OK);
}

static void small_free(small *s)
{
    tu_buf_free(&s->q);
    tu_buf_free(&s->k);
    tu_buf_free(&s->v);
    tu_buf_free(&s->o);
    tu_buf_free(&s->lse);
    spattn_mask_free(s->m);
}

/* forward and plan_create+execute both give `want` and leave o and lse as they were. */
static void expect_status(const small *s, const spattn_args *a, const spattn_mask *const *masks,
                          size_t n_masks, const spattn_options *opt, spattn_status want,
                          const char *what)
{
    spattn_status got = spattn_forward(a, masks, n_masks, opt);
    ck_assert_msg(got == want, "%s: forward gave %d (%s), want %d", what, got,
                  spattn_status_string(got), want);
    ck_assert_msg(tu_buf_untouched(&s->o) && tu_buf_untouched(&s->lse), "%s: output written", what);
    spattn_plan *plan = (spattn_plan *)&plan; /* must be reset to NULL on failure */
    spattn_status pst = spattn_plan_create(a ? &a->shape : NULL, masks, n_masks, opt, &plan);
    if (pst == SPATTN_OK) {
        ck_assert_ptr_nonnull(plan);
        got = spattn_plan_execute(plan, a);
        spattn_plan_free(plan);
    } else {
        ck_assert_ptr_null(plan);
        got = pst;
    }
    ck_assert_msg(got == want, "%s: plan gave %d, want %d", what, got, want);
    ck_assert_msg(tu_buf_untouched(&s->o) && tu_buf_untouched(&s->lse),
                  "%s: output written by plan", what);
    /* The reference validates the same way (options aside). */
    if (want != SPATTN_E_UNSUPPORTED && !(opt && want == SPATTN_E_ARG)) {
        got = spattn_reference_forward(a, masks, n_masks);
        ck_assert_msg(got == want, "%s: reference gave %d, want %d", what, got, want);
        ck_assert(tu_buf_untouched(&s->o) && tu_buf_untouched(&s->lse));
    }
}

START_TEST(forward_errors)
{
    small s;
    small_init(&s);
    const spattn_mask *one[1] = {s.m};
    spattn_args a;

    expect_status(&s, NULL, NULL, 0, NULL, SPATTN_E_NULL, "NULL args");
#define CASE(field_edit, masks, n, opt, want)                                                      \
    do {                                                                                           \
        a = s.a;                                                                                   \
        field_edit;                                                                                \
        expect_status(&s, &a, masks, n, opt, want, #field_edit);                                   \
    } while (0)
    CASE(a.q = NULL, NULL, 0, NULL, SPATTN_E_NULL);
    CASE(a.k = NULL, NULL, 0, NULL, SPATTN_E_NULL);
    CASE(a.v = NULL, NULL, 0, NULL, SPATTN_E_NULL);
    CASE(a.o = NULL, NULL, 0, NULL, SPATTN_E_NULL);
    CASE(a.shape.batch = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.heads_q = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.heads_kv = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.len_q = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.len_k = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.dim_qk = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.dim_v = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.heads_kv = 3, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.shape.len_q = (size_t)1 << 40, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.shape.dim_qk = SIZE_MAX / 2, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.q_layout.token = -3, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.k_layout.head = PTRDIFF_MAX, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.o_layout.token = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.o_layout.token = 2, NULL, 0, NULL, SPATTN_E_SHAPE); /* rows overlap */
    CASE(a.o_layout.head = 0, NULL, 0, NULL, SPATTN_E_SHAPE);
    CASE(a.o = (float *)a.q, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.o = (float *)a.v + 1, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.lse = (float *)a.o + 3, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.lse = (float *)a.k, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.scale = NAN, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.scale = INFINITY, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.scale = -1.0f, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.softcap = NAN, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.softcap = -2.0f, NULL, 0, NULL, SPATTN_E_ARG);
    CASE(a.softcap = -INFINITY, NULL, 0, NULL, SPATTN_E_ARG);
    CASE((void)0, NULL, 1, NULL, SPATTN_E_NULL); /* n_masks without masks */
    CASE((void)0, one, 3, NULL, SPATTN_E_MASK);  /* neither 1, heads_q nor batch*heads_q */
    const spattn_mask *with_null[4] = {s.m, NULL, s.m, s.m};
    CASE((void)0, with_null, 4, NULL, SPATTN_E_NULL);
    spattn_mask *wrong;
    ck_assert_int_eq(spattn_mask_causal(LQ, LK + 1, &wrong), SPATTN_OK);
    const spattn_mask *wrong_one[1] = {wrong};
    CASE((void)0, wrong_one, 1, NULL, SPATTN_E_MASK);
    spattn_options bad_isa = {(spattn_isa)17, 1}, bad_threads = {SPATTN_ISA_SCALAR, -1};
    CASE((void)0, one, 1, &bad_isa, SPATTN_E_ARG);
    CASE((void)0, one, 1, &bad_threads, SPATTN_E_ARG);
    for (int i = SPATTN_ISA_SCALAR; i < tu_isa_end(); i++) {
        if (spattn_isa_available((spattn_isa)i))
            continue;
        spattn_options un = {(spattn_isa)i, 1};
        CASE((void)0, one, 1, &un, SPATTN_E_UNSUPPORTED);
    }
#undef CASE
    spattn_mask_free(wrong);

    /* plan_execute with another shape; plan_create with NULL out. */
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&s.a.shape, one, 1, NULL, &plan), SPATTN_OK);
    a = s.a;
    a.shape.len_q = LQ - 1;
    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_E_SHAPE);
    ck_assert_int_eq(spattn_plan_execute(NULL, &s.a), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_plan_execute(plan, NULL), SPATTN_E_NULL);
    ck_assert(tu_buf_untouched(&s.o) && tu_buf_untouched(&s.lse));
    ck_assert_int_eq(spattn_plan_execute(plan, &s.a), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&s.o) && tu_buf_guards_ok(&s.lse));
    spattn_plan_free(plan);
    spattn_plan_free(NULL);
    ck_assert_int_eq(spattn_plan_create(&s.a.shape, one, 1, NULL, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_plan_isa(NULL), SPATTN_ISA_AUTO);
    small_free(&s);
}
END_TEST

START_TEST(softmax_errors)
{
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(4, 6, &m), SPATTN_OK);
    float x[4 * 8];
    for (int i = 0; i < 32; i++)
        x[i] = (float)i;
    tu_buf y = tu_buf_new(4 * 8);
    spattn_options bad = {(spattn_isa)9, 0};
    struct {
        const float *x;
        float *y;
        size_t rows, cols, ld;
        const spattn_mask *m;
        float scale;
        const spattn_options *opt;
        spattn_status want;
    } cases[] = {
        {NULL, y.p, 4, 6, 8, m, 1, NULL, SPATTN_E_NULL},
        {x, NULL, 4, 6, 8, m, 1, NULL, SPATTN_E_NULL},
        {x, y.p, 4, 6, 8, NULL, 1, NULL, SPATTN_E_NULL},
        {x, y.p, 0, 6, 8, m, 1, NULL, SPATTN_E_SHAPE},
        {x, y.p, 4, 0, 8, m, 1, NULL, SPATTN_E_SHAPE},
        {x, y.p, 4, 6, 5, m, 1, NULL, SPATTN_E_SHAPE},
        {x, y.p, 4, 6, SIZE_MAX / 2, m, 1, NULL, SPATTN_E_SHAPE},
        {x, y.p, 3, 6, 8, m, 1, NULL, SPATTN_E_MASK},
        {x, y.p, 4, 5, 8, m, 1, NULL, SPATTN_E_MASK},
        {x, y.p, 4, 6, 8, m, NAN, NULL, SPATTN_E_ARG},
        {x, y.p, 4, 6, 8, m, -1, NULL, SPATTN_E_ARG},
        {x, x + 1, 4, 6, 8, m, 1, NULL, SPATTN_E_ARG},
        {x, y.p, 4, 6, 8, m, 1, &bad, SPATTN_E_ARG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        float before[32];
        memcpy(before, x, sizeof before);
        spattn_status st =
            spattn_softmax_masked(cases[i].x, cases[i].y, cases[i].rows, cases[i].cols, cases[i].ld,
                                  cases[i].m, cases[i].scale, cases[i].opt);
        ck_assert_msg(st == cases[i].want, "case %zu: %d, want %d", i, st, cases[i].want);
        ck_assert_msg(tu_buf_untouched(&y), "case %zu wrote y", i);
        ck_assert_msg(memcmp(before, x, sizeof before) == 0, "case %zu wrote x", i);
    }
    tu_buf_free(&y);
    spattn_mask_free(m);
}
END_TEST

Suite *suite_api(void);
Suite *suite_api(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("basics");
    tcase_add_test(tc, status_strings);
    tcase_add_test(tc, version_format);
    tcase_add_test(tc, isa_queries);
    tcase_add_test(tc, isas_compiled);
    tcase_add_test(tc, cpu_features);
    tcase_add_test(tc, layouts);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, forward_errors);
    tcase_add_test(tc, softmax_errors);
    suite_add_tcase(s, tc);
    return s;
}

Suite *suite_env(void);
Suite *suite_env(void)
{
    Suite *s = suite_create("env");
    TCase *tc = tcase_create("isa_env");
    tcase_add_test(tc, isa_env_override);
    suite_add_tcase(s, tc);
    return s;
}

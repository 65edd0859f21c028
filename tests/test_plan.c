/* What plans decide: the work split (balanced by allowed pairs, not rows) and the path per
   query tile. Results of both are covered by test_attn.c; this checks the decisions. */
#include <stdlib.h>

#include "plan_impl.h"
#include "test_util.h"

/* The chunks of a plan: none more than 1.5x the mean plus one unit's worth (a unit cannot be
   split), so no thread can be handed most of the work. */
static void check_balance(const spattn_shape *sh, const spattn_mask *m, int threads)
{
    spattn_options opt = {SPATTN_ISA_SCALAR, threads};
    const spattn_mask *ml[1] = {m};
    spattn_plan *p;
    ck_assert_int_eq(spattn_plan_create(sh, m ? ml : NULL, m ? 1 : 0, &opt, &p), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_threads(p), threads);
    size_t n = spattn__plan_chunks(p, NULL);
    ck_assert_uint_ge(n, threads > 1 ? (size_t)threads : 1);
    uint64_t *c = malloc(n * sizeof *c), total = 0, max = 0;
    spattn__plan_chunks(p, c);
    for (size_t i = 0; i < n; i++) {
        total += c[i];
        if (c[i] > max)
            max = c[i];
    }
    /* The largest unit: a full row of key tiles of one query tile. */
    uint64_t unit = (uint64_t)((sh->len_k + 63) / 64) * 64 * 16 + 16 * 16;
    ck_assert_msg((double)max <= 1.5 * (double)total / (double)n + (double)unit,
                  "chunk of cost %llu, mean %.0f over %zu chunks", (unsigned long long)max,
                  (double)total / (double)n, n);
    /* Two threads taking chunks in turn: neither ends with more than 60% of the work. */
    if (threads == 2) {
        uint64_t t[2] = {0, 0};
        for (size_t i = 0; i < n; i++)
            t[t[0] <= t[1] ? 0 : 1] += c[i];
        ck_assert_msg((double)(t[0] > t[1] ? t[0] : t[1]) <= 0.6 * (double)total,
                      "split %llu / %llu", (unsigned long long)t[0], (unsigned long long)t[1]);
    }
    free(c);
    spattn_plan_free(p);
}

START_TEST(causal_split_is_balanced)
{
    spattn_shape sh = {1, 1, 1, 4096, 4096, 64, 64};
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(4096, 4096, &m), SPATTN_OK);
    check_balance(&sh, m, 2);
    check_balance(&sh, m, 7);
    spattn_mask_free(m);
    spattn_shape sh2 = {3, 4, 2, 1000, 3000, 32, 32};
    ck_assert_int_eq(spattn_mask_causal(1000, 3000, &m), SPATTN_OK);
    check_balance(&sh2, m, 2);
    spattn_mask_free(m);
    check_balance(&sh2, NULL, 2);
}
END_TEST

START_TEST(single_thread_one_chunk)
{
    spattn_shape sh = {2, 2, 2, 300, 300, 16, 16};
    spattn_options opt = {SPATTN_ISA_SCALAR, 1};
    spattn_plan *p;
    ck_assert_int_eq(spattn_plan_create(&sh, NULL, 0, &opt, &p), SPATTN_OK);
    ck_assert_uint_eq(spattn__plan_chunks(p, NULL), 1);
    spattn_plan_free(p);
    /* 0 threads means all cores: at least one. */
    spattn_options all = {SPATTN_ISA_SCALAR, 0};
    ck_assert_int_eq(spattn_plan_create(&sh, NULL, 0, &all, &p), SPATTN_OK);
    ck_assert_int_ge(spattn_plan_threads(p), 1);
    spattn_plan_free(p);
}
END_TEST

/* A handful of scattered keys per row goes down the gather path on every ISA; dense rows do
   not; forcing a path overrides. */
START_TEST(gather_decision)
{
    spattn_isa isa = tu_isa(_i);
    size_t lq = 256, lk = 4096;
    int64_t *rp = malloc((lq + 1) * sizeof *rp);
    int32_t *ci = malloc(lq * 4 * sizeof *ci);
    rp[0] = 0;
    for (size_t i = 0; i < lq; i++) {
        for (int t = 0; t < 4; t++) /* 4 keys, 1000 apart: four key tiles per row */
            ci[i * 4 + (size_t)t] = (int32_t)((i * 13 + (size_t)t * 1000) % lk);
        /* keep columns increasing within the row */
        for (int a = 1; a < 4; a++)
            for (int b = a; b > 0 && ci[i * 4 + (size_t)b] < ci[i * 4 + (size_t)b - 1]; b--) {
                int32_t x = ci[i * 4 + (size_t)b];
                ci[i * 4 + (size_t)b] = ci[i * 4 + (size_t)b - 1];
                ci[i * 4 + (size_t)b - 1] = x;
            }
        rp[i + 1] = rp[i] + 4;
    }
    spattn_mask *few;
    ck_assert_int_eq(spattn_mask_from_csr(lq, lk, rp, ci, &few), SPATTN_OK);
    spattn_shape sh = {1, 2, 1, lq, lk, 64, 64};
    spattn_options opt = {isa, 1};
    const spattn_mask *ml[1] = {few};
    spattn_plan *p;
    ck_assert_int_eq(spattn_plan_create(&sh, ml, 1, &opt, &p), SPATTN_OK);
    ck_assert_uint_eq(spattn__plan_gather_tiles(p), 2 * lq / 16);
    spattn_plan_free(p);
    ck_assert_int_eq(spattn__plan_create_path(&sh, ml, 1, &opt, SPATTN_PATH_TILES, &p),
                     SPATTN_OK);
    ck_assert_uint_eq(spattn__plan_gather_tiles(p), 0);
    spattn_plan_free(p);
    ck_assert_int_eq(spattn_plan_create(&sh, NULL, 0, &opt, &p), SPATTN_OK);
    ck_assert_uint_eq(spattn__plan_gather_tiles(p), 0);
    spattn_plan_free(p);
    spattn_mask_free(few);
    free(rp);
    free(ci);
}
END_TEST

Suite *suite_plan(void);
Suite *suite_plan(void)
{
    Suite *s = suite_create("plan");
    TCase *tc = tcase_create("decisions");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, causal_split_is_balanced);
    tcase_add_test(tc, single_thread_one_chunk);
    tcase_add_loop_test(tc, gather_decision, 0, tu_n_isas());
    suite_add_tcase(s, tc);
    return s;
}

/*
 * Query tiles on both paths (attn_mixed) through the plan: the plan's per-tile rule at its
 * crossover, mixed query tiles against the float64 reference (strided and dilated patterns,
 * dense tiles beside sparse ones, rows with no allowed key, NaN in every K/V row no row
 * allows, score modifiers), and 1, 2 and 3 threads bitwise the same; strided rows with
 * and without the gather path's residue blocks.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mask/mask_impl.h"
#include "plan/keyrows.h"
#include "plan/test_hooks.h"
#include "test_problem.h"

/* Runs p on `isa` with `threads`; returns the plan's mixed query tiles. */
static size_t run(tproblem *p, spattn_isa isa, int threads)
{
    spattn_options opt = {isa, threads};
    spattn_plan *plan = NULL;
    const spattn_mask *ms[1] = {p->mask};
    ck_assert_int_eq(spattn__plan_create_path(&p->a.shape, ms, 1, &opt, SPATTN_PATH_AUTO, &plan),
                     SPATTN_OK);
    const size_t n = spattn__plan_mixed_tiles(plan, NULL);
    ck_assert_int_eq(spattn_plan_execute(plan, &p->a), SPATTN_OK);
    spattn_plan_free(plan);
    return n;
}

static void against_reference(const tproblem *p, const char *what)
{
    tproblem_check(p, what, TU_TOL);
}

/* Whether `isa`'s kernel table has the mixed kernel and its plan lists tiles for it. */
static int isa_runs_mixed(spattn_isa isa)
{
    const spattn_kernel_table *kt = NULL;
    for (size_t i = 0; i < tu_n_kernels(); i++) {
        const spattn_kernel_table *x = tu_kernel_table(i, "mixed");
        if (x != NULL && x->isa == isa)
            kt = x;
    }
    return kt != NULL && kt->attn_mixed != NULL && kt->mixed_pairs_per_col > 0;
}

/* Query tiles with dense tiles beside sparse ones: per 64-row block a band of up to 4 dense
   key tiles ending on the diagonal (every key, but for one row of the block that allows
   nothing at all), and the two key tiles below the band sparse: `per_col` allowed rows in
   each of a few columns, a diagonal (row r, key r + offset), or nothing. The band keeps the
   query tiles off the gather path, so their sparse tiles are listed (attn_mixed). */
static spattn_mask *mixed_mask(tu_rng *r, size_t lq, size_t lk, size_t per_col)
{
    uint8_t *d = calloc(lq * lk, 1);
    ck_assert_ptr_nonnull(d);
    const size_t empty = tu_range(r, 0, 63);
    for (size_t i = 0; i < lq; i++) {
        if (i % 64 == empty)
            continue;
        const size_t kb = (i / 64) * 64, lo = kb >= 192 ? kb - 192 : 0;
        for (size_t j = lo; j < kb + 64 && j < lk; j++)
            d[i * lk + j] = 1;
    }
    for (size_t qt = 0; qt * 16 < lq; qt++) {
        const size_t band = qt * 16 / 64;
        for (size_t kt = band >= 5 ? band - 5 : 0; kt + 3 < band && kt * 64 < lk; kt++) {
            const size_t kind = tu_range(r, 0, 2);
            if (kind == 0) { /* per_col rows in each of 1-8 columns */
                const size_t ncol = tu_range(r, 1, 8);
                for (size_t c = 0; c < ncol; c++) {
                    const size_t j = kt * 64 + tu_range(r, 0, 63);
                    const size_t r0 = tu_range(r, 0, 15);
                    for (size_t x = 0; x < per_col; x++) {
                        const size_t i = qt * 16 + (r0 + x) % 16;
                        if (i < lq && j < lk && i % 64 != empty)
                            d[i * lk + j] = 1;
                    }
                }
            } else if (kind == 1) { /* a diagonal */
                const size_t off = tu_range(r, 0, 63);
                for (size_t x = 0; x < 16; x++) {
                    const size_t i = qt * 16 + x, j = kt * 64 + (x + off) % 64;
                    if (i < lq && j < lk && i % 64 != empty)
                        d[i * lk + j] = 1;
                }
            }
        }
    }
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
    free(d);
    return m;
}

static spattn_mask *pattern_mask(tu_rng *r, int kind, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    switch (kind) {
    case 0:
        ck_assert_int_eq(spattn_mask_strided(lq, lk, tu_range(r, 16, 96), &m), SPATTN_OK);
        break;
    case 1:
        ck_assert_int_eq(
            spattn_mask_dilated(lq, lk, tu_range(r, 8, 40), 0, tu_range(r, 20, 70), &m), SPATTN_OK);
        break;
    default:
        m = mixed_mask(r, lq, lk, tu_range(r, 1, 3));
        break;
    }
    return m;
}

static const size_t dims[][2] = {{64, 64}, {128, 128}, {17, 40}, {32, 8}};

/* Mixed query tiles against the reference, and 1, 2, 3 threads bitwise the same. */
START_TEST(mixed_against_reference)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {777 + (uint64_t)isa};
    size_t mixed_seen = 0;
    for (int c = 0; c < tu_cases(24); c++) {
        const size_t lq = tu_range(&r, 130, 520), lk = tu_uniform(&r) < 0.5 ? lq : lq + 37;
        const size_t *dm = dims[c % 4];
        tproblem p;
        tproblem_make(&p, &r, pattern_mask(&r, c % 3, lq, lk), tu_range(&r, 1, 2), dm[0], dm[1]);
        char what[128];
        snprintf(what, sizeof what, "%s case %d (pattern %d, Lq %zu Lk %zu dims %zu/%zu)",
                 spattn_isa_name(isa), c, c % 3, lq, lk, dm[0], dm[1]);
        const size_t nmixed = run(&p, isa, 1);
        mixed_seen += nmixed;
        against_reference(&p, what);
        tproblem_bits one;
        tproblem_keep(&p, &one);
        for (int t = 2; t <= 3; t++) {
            tproblem_clear(&p);
            ck_assert_uint_eq(run(&p, isa, t), nmixed);
            if (!tproblem_same(&p, &one))
                ck_abort_msg("%s: %d threads differ from 1", what, t);
        }
        tproblem_bits_free(&one);
        tproblem_free(&p);
    }
    /* The ISAs with the mixed kernel must have run it (else this test tests nothing new). */
    if (isa_runs_mixed(isa))
        ck_assert_uint_gt(mixed_seen, 0);
    else
        ck_assert_uint_eq(mixed_seen, 0);
}
END_TEST

/* Mixed query tiles of bf16 Q, K and V (float O) against the reference on the same bf16
   values, within the contract's bf16 tolerance, and 1 and 2 threads bitwise the same: a
   query tile's tiles must add to the O rows its gathered keys filled first. */
START_TEST(mixed_bf16_against_reference)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {4242 + (uint64_t)isa};
    size_t mixed_seen = 0;
    for (int c = 0; c < tu_cases(12); c++) {
        const size_t lq = tu_range(&r, 130, 400), lk = tu_uniform(&r) < 0.5 ? lq : lq + 37;
        const size_t *dm = dims[c % 2]; /* 64/64 and 128/128: the AMX P V's dim_v */
        tproblem p;
        tproblem_make(&p, &r, pattern_mask(&r, c % 3, lq, lk), tu_range(&r, 1, 2), dm[0], dm[1]);
        tproblem_to_bf16(&p);
        char what[128];
        snprintf(what, sizeof what, "%s bf16 case %d (pattern %d, Lq %zu Lk %zu dims %zu/%zu)",
                 spattn_isa_name(isa), c, c % 3, lq, lk, dm[0], dm[1]);
        mixed_seen += run(&p, isa, 1);
        tproblem_check(&p, what, 1e-2);
        const size_t no = p.a.shape.heads_q * lq * dm[1];
        float *o1 = malloc(no * sizeof(float));
        ck_assert_ptr_nonnull(o1);
        memcpy(o1, p.o, no * sizeof(float));
        memset(p.o, 0, no * sizeof(float));
        run(&p, isa, 2);
        if (memcmp(o1, p.o, no * sizeof(float)) != 0)
            ck_abort_msg("%s: 2 threads differ from 1", what);
        free(o1);
        tproblem_free(&p);
    }
    if (isa_runs_mixed(isa))
        ck_assert_uint_gt(mixed_seen, 0);
}
END_TEST

/* The per-tile rule at its crossover: a tile is listed when its pairs are fewer than
   per_col x its used columns. One 64-row block: two FULL key tiles, and three key tiles whose
   16 rows allow exactly k pairs in each of 4 columns (4k pairs, 4 columns); with per_col = k
   such a tile stays on the tile path, with per_col = k + 0.5 it is listed. */
START_TEST(crossover_rule)
{
    const spattn_isa isa = tu_isa(_i);
    const size_t lq = 64, lk = 64 * 5;
    for (size_t k = 1; k <= 16; k *= 2) {
        uint8_t *d = calloc(lq * lk, 1);
        ck_assert_ptr_nonnull(d);
        for (size_t i = 0; i < lq; i++) {
            for (size_t j = 192; j < 320; j++) /* two FULL tiles: no gather path for the rows */
                d[i * lk + j] = 1;
            for (size_t kt = 0; kt < 3; kt++)
                for (size_t c = 0; c < 4; c++)
                    if (i % 16 < k)
                        d[i * lk + kt * 64 + 10 * c + 3] = 1;
        }
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
        free(d);
        for (int above = 0; above <= 1; above++) {
            spattn__set_mixed_pairs_per_col((double)k + (above ? 0.5 : 0.0));
            spattn_options opt = {isa, 1};
            spattn_plan *plan;
            const spattn_shape s = {1, 1, 1, lq, lk, 16, 16};
            const spattn_mask *ms[1] = {m};
            ck_assert_int_eq(spattn__plan_create_path(&s, ms, 1, &opt, SPATTN_PATH_AUTO, &plan),
                             SPATTN_OK);
            size_t listed = 0;
            const size_t mixed = spattn__plan_mixed_tiles(plan, &listed);
            const spattn_kernel_table *kt = NULL;
            for (size_t i = 0; i < tu_n_kernels(); i++) {
                const spattn_kernel_table *x = tu_kernel_table(i, "mixed");
                if (x != NULL && x->isa == isa)
                    kt = x;
            }
            if (kt == NULL || kt->attn_mixed == NULL || !above) {
                ck_assert_uint_eq(mixed, 0);
                ck_assert_uint_eq(listed, 0);
            } else {
                ck_assert_uint_eq(mixed, 4);
                ck_assert_uint_eq(listed, 4 * 3);
            }
            spattn_plan_free(plan);
        }
        spattn_mask_free(m);
    }
    spattn__set_mixed_pairs_per_col(-1.0);
}
END_TEST

/* Every PARTIAL tile listed (per_col huge): only rows of dense tiles stay on the tile path;
   strided masks with rows past the edges, still bitwise the same for any thread count. */
START_TEST(everything_listed)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {4242 + (uint64_t)isa};
    spattn__set_mixed_pairs_per_col(1e9);
    for (int c = 0; c < tu_cases(8); c++) {
        const size_t lq = tu_range(&r, 17, 300), lk = tu_range(&r, lq, lq + 100);
        tproblem p;
        tproblem_make(&p, &r, pattern_mask(&r, c % 3, lq, lk), 1, 64, 64);
        char what[96];
        snprintf(what, sizeof what, "%s listed case %d (Lq %zu Lk %zu)", spattn_isa_name(isa), c,
                 lq, lk);
        run(&p, isa, 1);
        against_reference(&p, what);
        tproblem_free(&p);
    }
    spattn__set_mixed_pairs_per_col(-1.0);
}
END_TEST

/* Strided rows on the gather path with and without their residue blocks (the second plan
   capped to none, spattn__set_prog_max): both against the reference, the capped plan with no
   progression left. */
START_TEST(residue_blocks_capped)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {5150 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(4); c++) {
        const size_t lq = tu_range(&r, 200, 320), lk = lq + tu_range(&r, 0, 40);
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_strided(lq, lk, tu_range(&r, 8, 12), &m), SPATTN_OK);
        tproblem p;
        tproblem_make(&p, &r, m, 2, 64, 40);
        for (int capped = 0; capped < 2; capped++) {
            spattn__set_prog_max(capped ? 1 : 0);
            spattn_options opt = {isa, 2};
            spattn_plan *plan = NULL;
            const spattn_mask *ms[1] = {p.mask};
            ck_assert_int_eq(
                spattn__plan_create_path(&p.a.shape, ms, 1, &opt, SPATTN_PATH_GATHER, &plan),
                SPATTN_OK);
            spattn__set_prog_max(0);
            const size_t rows = spattn__plan_prog_rows(plan);
            ck_assert_msg(capped ? rows == 0 : rows > 0, "%zu rows with residue blocks", rows);
            ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
            spattn_plan_free(plan);
            char what[96];
            snprintf(what, sizeof what, "%s strided case %d, blocks %s", spattn_isa_name(isa), c,
                     capped ? "capped" : "on");
            against_reference(&p, what);
        }
        tproblem_free(&p);
    }
}
END_TEST

/* Strided masks whose calls hold more rows than one batch of the residue kernels
   (SPATTN_PROG_BATCH): a residue's rows in several batches, its blocks grown from batch to
   batch. Against the reference, and bitwise the same for 1 and 2 threads (the thread split
   cuts the rows elsewhere, so batches and groups hold other rows). */
START_TEST(residue_blocks_over_batches)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {5190 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(2); c++) {
        const size_t lq = SPATTN_PROG_BATCH + tu_range(&r, 90, 200), lk = lq + tu_range(&r, 0, 9);
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_strided(lq, lk, tu_range(&r, 8, 13), &m), SPATTN_OK);
        /* dims with and without a tail past whole vectors */
        const size_t dv = tu_range(&r, 0, 1) ? 80 : 40;
        tproblem p;
        tproblem_make(&p, &r, m, 1, tu_range(&r, 0, 1) ? 64 : 23, dv);
        float *o1 = malloc(lq * dv * sizeof(float));
        ck_assert_ptr_nonnull(o1);
        for (int nt = 1; nt <= 2; nt++) {
            spattn_options opt = {isa, nt};
            spattn_plan *plan = NULL;
            const spattn_mask *ms[1] = {p.mask};
            ck_assert_int_eq(
                spattn__plan_create_path(&p.a.shape, ms, 1, &opt, SPATTN_PATH_GATHER, &plan),
                SPATTN_OK);
            ck_assert_uint_gt(spattn__plan_prog_rows(plan), SPATTN_PROG_BATCH);
            ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
            spattn_plan_free(plan);
            if (nt == 1)
                memcpy(o1, p.o, lq * dv * sizeof(float));
            else
                ck_assert_msg(memcmp(o1, p.o, lq * dv * sizeof(float)) == 0,
                              "%s: 1 and 2 threads differ", spattn_isa_name(isa));
        }
        char what[96];
        snprintf(what, sizeof what, "%s strided case %d over batches", spattn_isa_name(isa), c);
        against_reference(&p, what);
        free(o1);
        tproblem_free(&p);
    }
}
END_TEST

Suite *suite_mixed(void);
Suite *suite_mixed(void)
{
    Suite *s = suite_create("mixed");
    TCase *tc = tcase_create("mixed");
    tcase_set_timeout(tc, 600);
    const int n = tu_n_isas();
    tcase_add_loop_test(tc, mixed_against_reference, 0, n);
    tcase_add_loop_test(tc, mixed_bf16_against_reference, 0, n);
    tcase_add_loop_test(tc, crossover_rule, 0, n);
    tcase_add_loop_test(tc, everything_listed, 0, n);
    tcase_add_loop_test(tc, residue_blocks_capped, 0, n);
    tcase_add_loop_test(tc, residue_blocks_over_batches, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

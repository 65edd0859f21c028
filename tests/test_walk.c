/*
 * The tile path's walk units (src/kernels/tile_walk.h): runs of PARTIAL key tiles folded as
 * one step, PARTIAL tiles whose keys every row of the query tile allows run unmasked, and two
 * query tiles whose units are the same keys sharing one QK. Against the float64 reference on
 * every ISA, with tile pairs on and off and with 1, 2 and 3 threads, all bitwise the same.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/test_hooks.h"
#include "test_problem.h"

/* `c` distinct columns of 0 .. w - 1 into cols. */
static void pick_columns(tu_rng *r, size_t w, size_t c, size_t *cols)
{
    size_t all[64];
    for (size_t j = 0; j < w; j++)
        all[j] = j;
    for (size_t j = 0; j < c; j++) {
        const size_t x = tu_range(r, j, w - 1), t = all[j];
        all[j] = all[x];
        all[x] = t;
        cols[j] = all[j];
    }
}

/* Per pair of query tiles (rows 32p .. 32p + 31) and key tile, one kind for both tiles: no key;
   c columns that every row of each tile allows (c the same for both, the columns the same or
   not, so that the two walks' units match in tiles and counts but not always in keys); the
   whole key tile; or c columns that each row allows with probability 1/2. Runs of the first
   kinds give units of several tiles, the counts cross a unit's 64 keys, and FULL tiles end
   runs. Now and then a row allows nothing, which masks its query tile's tiles. */
static spattn_mask *walk_mask(tu_rng *r, size_t lq, size_t lk)
{
    uint8_t *d = calloc(lq * lk, 1);
    ck_assert_ptr_nonnull(d);
    const size_t empty = tu_uniform(r) < 0.3 ? tu_range(r, 0, lq - 1) : lq;
    for (size_t p = 0; p * 32 < lq; p++)
        for (size_t kt = 0; kt * 64 < lk; kt++) {
            const size_t w = lk - kt * 64 < 64 ? lk - kt * 64 : 64;
            const double kind = tu_uniform(r);
            const size_t c = tu_range(r, 1, w < 24 ? w : 24);
            const int same = tu_uniform(r) < 0.4;
            size_t cols[64];
            for (size_t t = 0; t < 2; t++) {
                if (t == 0 || !same)
                    pick_columns(r, w, c, cols);
                for (size_t i = 32 * p + 16 * t; i < 32 * p + 16 * t + 16 && i < lq; i++) {
                    if (i == empty || kind < 0.3)
                        continue;
                    uint8_t *row = d + i * lk + kt * 64;
                    if (kind < 0.7) {
                        for (size_t x = 0; x < c; x++)
                            row[cols[x]] = 1;
                    } else if (kind < 0.8) {
                        memset(row, 1, w);
                    } else {
                        for (size_t x = 0; x < c; x++)
                            row[cols[x]] = tu_uniform(r) < 0.5;
                    }
                }
            }
        }
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
    free(d);
    return m;
}

/* Runs p on the tile path of `isa` with `threads`, tile pairs on or off. */
static void run_tiles(tproblem *p, spattn_isa isa, int threads, int pairs)
{
    spattn_options opt = {isa, threads};
    spattn_plan *plan = NULL;
    const spattn_mask *ms[1] = {p->mask};
    spattn__set_tile_pairs(pairs);
    ck_assert_int_eq(spattn__plan_create_path(&p->a.shape, ms, 1, &opt, SPATTN_PATH_TILES, &plan),
                     SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(plan, &p->a), SPATTN_OK);
    spattn_plan_free(plan);
    spattn__set_tile_pairs(1);
}

static const size_t dims[][2] = {{64, 64}, {128, 128}, {17, 40}, {32, 8}};

/* Case c of a walk mask on `isa`: against the reference (float32 Q, K, V, or bf16 within the
   contract's bf16 tolerance of the reference on the same values), then 1, 2 and 3 threads
   with tile pairs on and off, each bitwise the first run. */
static void walk_case(spattn_isa isa, tu_rng *r, int c, int bf16)
{
    const size_t lq = tu_range(r, 40, 300), lk = tu_range(r, 70, 700);
    const size_t *dm = dims[c % (bf16 ? 2 : 4)];
    tproblem p;
    tproblem_make(&p, r, walk_mask(r, lq, lk), tu_range(r, 1, 2), dm[0], dm[1]);
    if (bf16)
        tproblem_to_bf16(&p);
    char what[128];
    snprintf(what, sizeof what, "%s%s case %d (Lq %zu Lk %zu dims %zu/%zu)", spattn_isa_name(isa),
             bf16 ? " bf16" : "", c, lq, lk, dm[0], dm[1]);
    run_tiles(&p, isa, 1, 1);
    tproblem_check(&p, what, bf16 ? 1e-2 : TU_TOL);
    tproblem_bits one;
    tproblem_keep(&p, &one);
    for (int t = 1; t <= 3; t++) {
        tproblem_clear(&p);
        run_tiles(&p, isa, t, t != 1);
        if (!tproblem_same(&p, &one))
            ck_abort_msg("%s: %d threads, pairs %s, differ from 1 thread with pairs", what, t,
                         t != 1 ? "on" : "off");
    }
    tproblem_bits_free(&one);
    tproblem_free(&p);
}

START_TEST(walk_units_against_reference)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {9090 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(24); c++)
        walk_case(isa, &r, c, 0);
}
END_TEST

/* The same with bf16 Q, K and V: the 16-bit QK and P V kernels (bf16 dot products, the AMX
   tiles) take a unit's keys as a list too. */
START_TEST(walk_units_bf16)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {6060 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(8); c++)
        walk_case(isa, &r, c, 1);
}
END_TEST

Suite *suite_walk(void);
Suite *suite_walk(void)
{
    Suite *s = suite_create("walk");
    TCase *tc = tcase_create("walk");
    tcase_set_timeout(tc, 600);
    const int n = tu_n_isas();
    tcase_add_loop_test(tc, walk_units_against_reference, 0, n);
    tcase_add_loop_test(tc, walk_units_bf16, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

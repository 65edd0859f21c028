/* What plans decide: the work split (balanced by allowed pairs, not rows) and the path per
   query tile. Results of both are covered by test_attn.c; this checks the decisions. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels/dispatch.h"
#include "plan/bit_count.h"
#include "plan/keyrows.h"
#include "plan/test_hooks.h"
#include "test_problem.h"
#include "test_util.h"

/* Makespan of threads taking chunks c[0..n) in order, each the next one as soon as it is
   free, thread 0 running at `slow` times the speed of the others. */
static double makespan(const uint64_t *c, size_t n, int threads, double slow)
{
    double t[16] = {0};
    ck_assert_int_le(threads, 16);
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (int j = 1; j < threads; j++)
            if (t[j] < t[k])
                k = j;
        t[k] += (double)c[i] / (k == 0 ? slow : 1.0);
    }
    double m = 0;
    for (int j = 0; j < threads; j++)
        m = t[j] > m ? t[j] : m;
    return m;
}

/* The chunks of a plan, taken dynamically: threads at the same speed, or one of them at 3/4
   or 1/2 speed (a neighbour on its vCPU), all finish within 3% of the ideal plus one unit's
   time (a unit cannot be split). Eight equal chunks per thread, the split before, miss this
   by up to 6% with two threads. */
static void check_balance(const spattn_shape *sh, const spattn_mask *m, int threads)
{
    spattn_options opt = {SPATTN_ISA_SCALAR, threads};
    const spattn_mask *ml[1] = {m};
    spattn_plan *p;
    ck_assert_int_eq(spattn_plan_create(sh, m ? ml : NULL, m ? 1 : 0, &opt, &p), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_threads(p), threads);
    size_t n = spattn__plan_chunks(p, NULL);
    ck_assert_uint_ge(n, threads > 1 ? (size_t)threads : 1);
    uint64_t *c = malloc(n * sizeof *c), total = 0;
    spattn__plan_chunks(p, c);
    for (size_t i = 0; i < n; i++)
        total += c[i];
    /* The largest unit: a full row of key tiles of one query tile. */
    const double unit = (double)((sh->len_k + 63) / 64) * 64 * 16 + 16 * 16;
    static const double slow[] = {1.0, 0.75, 0.5};
    for (size_t k = 0; k < sizeof slow / sizeof slow[0]; k++) {
        const double ideal = (double)total / ((double)threads - 1.0 + slow[k]);
        const double got = makespan(c, n, threads, slow[k]);
        ck_assert_msg(got <= 1.03 * ideal + unit / slow[k],
                      "%d threads, one at %.2f speed: %zu chunks end at %.0f, ideal %.0f", threads,
                      slow[k], n, got, ideal);
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
    ck_assert_int_eq(spattn__plan_create_path(&sh, ml, 1, &opt, SPATTN_PATH_TILES, &p), SPATTN_OK);
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

/* Row i of an n x n mask: 8 keys in each 128-key block before its own, the summary columns
   of a fixed pattern (stride 128, 8 summary keys; spread 0) or, spread, 8 of each block's 128
   chosen by i % 16, so that a query tile's 16 rows take all 128 with the same pair count. */
static spattn_mask *earlier_blocks_mask(size_t n, int spread)
{
    int64_t *rp = malloc((n + 1) * sizeof *rp);
    int32_t *ci = malloc(n / 128 * 8 * n * sizeof *ci);
    rp[0] = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = (size_t)rp[i];
        for (size_t c = 0; c < i / 128; c++)
            for (size_t t = 0; t < 8; t++)
                ci[k++] = (int32_t)(128 * c + (spread ? (i % 16) * 8 : 120) + t);
        rp[i + 1] = (int64_t)k;
    }
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_csr(n, n, rp, ci, &m), SPATTN_OK);
    free(rp);
    free(ci);
    return m;
}

/* The tile path computes only the columns some row of a PARTIAL tile allows (tile_keys), so
   a tile of a few columns that every row takes is dense work for it and stays on it; the same
   pairs spread over every column of the tiles go to the gather path. */
START_TEST(used_columns_decide)
{
    spattn_isa isa = tu_isa(_i);
    const size_t n = 1024;
    spattn_shape sh = {1, 2, 1, n, n, 64, 64};
    spattn_options opt = {isa, 1};
    for (int spread = 0; spread < 2; spread++) {
        spattn_mask *m = earlier_blocks_mask(n, spread);
        const spattn_mask *ml[1] = {m};
        spattn_plan *p;
        ck_assert_int_eq(spattn_plan_create(&sh, ml, 1, &opt, &p), SPATTN_OK);
        /* 7 blocks of 8 query tiles in each of 2 heads have keys */
        ck_assert_uint_eq(spattn__plan_gather_tiles(p), spread ? 2 * 7 * 8 : 0);
        spattn_plan_free(p);
        spattn_mask_free(m);
    }
}
END_TEST

/* The query tiles of an n-row causal window of w keys that go down the gather path by the
   rule of docs/kernels.md, counted from the window itself: fewer allowed pairs, less
   `shared` times those whose key the row above (in the same query tile) also allows, than
   `below` times 16 x the keys some row of the tile allows (no tile of such a window is
   FULL). */
static size_t window_gather_tiles(size_t n, size_t w, double below, double shared)
{
    size_t count = 0, near = 0, near_gathered = 0;
    double near_weight = 0, near_bound = 0;
    for (size_t i0 = 0; i0 < n; i0 += 16) {
        const size_t lo = i0 + 1 > w ? i0 + 1 - w : 0, hi = i0 + 15; /* keys lo .. hi */
        double pairs = 0, both = 0;
        for (size_t i = i0; i < i0 + 16; i++) {
            const size_t first = i + 1 > w ? i + 1 - w : 0;
            pairs += (double)(i + 1 - first);
            if (i > i0) /* row i - 1 allows first(i - 1) .. i - 1 */
                both += (double)(i - first);
        }
        const double weight = pairs - shared * both, bound = below * 16.0 * (double)(hi - lo + 1);
        count += weight < bound;
        /* query tiles within 5 % of the bound take one path, the one of their sums */
        if (fabs(weight - bound) <= 0.05 * bound) {
            near++;
            near_gathered += weight < bound;
            near_weight += weight;
            near_bound += bound;
        }
    }
    if (near_gathered != 0 && near_gathered != near)
        count = count - near_gathered + (near_weight < near_bound ? near : 0);
    return count;
}

/* A narrow causal window: its consecutive rows share all keys but one, and the gather passes
   find those K and V rows in L1. The plan counts such a pair gather_shared less than others;
   at the widths here that sends windows down the gather path which the fill alone keeps on
   the tile path, on every ISA with gather_shared > 0 (the x86 ones). The mixed path is off
   (its own rule would take some of these query tiles, test_mixed.c covers it). */
START_TEST(shared_keys_decide)
{
    spattn_isa isa = tu_isa(_i);
    const spattn_kernel_table *kt = spattn__kernels_for(isa);
    ck_assert_ptr_nonnull(kt);
    const size_t n = 1024;
    spattn_shape sh = {1, 2, 1, n, n, 64, 64};
    spattn_options opt = {isa, 1};
    int differs = 0;
    spattn__set_mixed_pairs_per_col(0.0);
    for (size_t w = 8; w <= 40; w += 4) {
        spattn_mask *m; /* row i: keys i - w + 1 .. i */
        ck_assert_int_eq(spattn_mask_window(n, n, w - 1, 0, &m), SPATTN_OK);
        const spattn_mask *ml[1] = {m};
        spattn_plan *p;
        ck_assert_int_eq(spattn_plan_create(&sh, ml, 1, &opt, &p), SPATTN_OK);
        const size_t want = 2 * window_gather_tiles(n, w, kt->gather_below, kt->gather_shared);
        ck_assert_msg(spattn__plan_gather_tiles(p) == want,
                      "%s, window %zu: %zu gather tiles, not %zu", spattn_isa_name(isa), w,
                      spattn__plan_gather_tiles(p), want);
        differs |= want != 2 * window_gather_tiles(n, w, kt->gather_below, 0.0);
        spattn_plan_free(p);
        spattn_mask_free(m);
    }
    spattn__set_mixed_pairs_per_col(-1.0);
    ck_assert_int_eq(differs, kt->gather_shared > 0);
}
END_TEST

/* Query tiles a plan of one head of the n x n mask of bytes d (freed here) sends down the
   gather path, with the mixed path off (its own rule would take some query tiles). */
static size_t dense_gather_tiles(spattn_isa isa, size_t n, uint8_t *d)
{
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_dense(n, n, d, n, &m), SPATTN_OK);
    free(d);
    spattn_shape sh = {1, 1, 1, n, n, 64, 64};
    spattn_options opt = {isa, 1};
    const spattn_mask *ml[1] = {m};
    spattn_plan *p;
    spattn__set_mixed_pairs_per_col(0.0);
    ck_assert_int_eq(spattn_plan_create(&sh, ml, 1, &opt, &p), SPATTN_OK);
    spattn__set_mixed_pairs_per_col(-1.0);
    const size_t g = spattn__plan_gather_tiles(p);
    spattn_plan_free(p);
    spattn_mask_free(m);
    return g;
}

/* Rows of many keys get no credit for keys shared with the row above: between the two rows
   the gather passes read all of a row's keys, and a row of 512 of them has left L1. Half of
   every tile's pairs allowed at random (a quarter of them shared with the row above) take the
   path the fill alone gives: gather where gather_below exceeds the fill by a margin, tiles
   where it falls short by one (with the credit, 0.5 - 0.4 x 0.25 = 0.4 would have sent the
   AVX-512 tables' 0.45 down the gather path). */
START_TEST(long_rows_no_shared_credit)
{
    spattn_isa isa = tu_isa(_i);
    const spattn_kernel_table *kt = spattn__kernels_for(isa);
    ck_assert_ptr_nonnull(kt);
    const size_t n = 1024;
    if (kt->gather_below > 0.47 && kt->gather_below < 0.53)
        return; /* the fill's spread between query tiles decides there */
    tu_rng rng = {91};
    uint8_t *d = malloc(n * n);
    ck_assert_ptr_nonnull(d);
    for (size_t x = 0; x < n * n; x++)
        d[x] = tu_next(&rng) % 2 == 0;
    const size_t want = kt->gather_below > 0.5 ? n / 16 : 0, g = dense_gather_tiles(isa, n, d);
    ck_assert_msg(g == want, "%s: %zu gather tiles, not %zu", spattn_isa_name(isa), g, want);
}
END_TEST

/* Random keys at the crossover's fill: every query tile's fill is within a fraction of a
   percent of gather_below, so each would fall either side of it by chance. Those take one
   path together; the query tiles of the lower half, at half that fill, stay gathered. */
START_TEST(one_path_at_crossover)
{
    spattn_isa isa = tu_isa(_i);
    const spattn_kernel_table *kt = spattn__kernels_for(isa);
    ck_assert_ptr_nonnull(kt);
    const size_t n = 1024, half = n / 2 / 16;
    tu_rng rng = {0xc055 + (uint64_t)_i};
    uint8_t *d = malloc(n * n);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            d[i * n + j] = tu_uniform(&rng) < (i < n / 2 ? 1.0 : 0.5) * kt->gather_below;
    const size_t g = dense_gather_tiles(isa, n, d);
    ck_assert_msg(g == half || g == 2 * half, "%s: %zu gather tiles, not %zu or %zu",
                  spattn_isa_name(isa), g, half, 2 * half);
}
END_TEST

/* The gather path's key lists are the mask's rows: every query tile listed, masks whose rows
   hold no key, one key, scattered keys (most row words of a tile empty, the case the listing
   stores speculatively for), dense runs and FULL tiles, and a ragged last query tile and key
   tile; compared with spattn_mask_to_csr. */
START_TEST(key_lists_are_rows)
{
    tu_rng rng = {0x5eed0 + (uint64_t)_i};
    static const double fill[] = {0.0, 0.002, 0.02, 0.3, 0.97, 1.0};
    const size_t lq = 16 * (size_t)(_i + 1) + (size_t)_i % 7, lk = 64 * (size_t)(_i + 2) - 5;
    /* Both builds of the counting pass (bit_count.h): POPCNT where the CPU has it, plain. */
    spattn__set_plan_popcnt(_i % 2 == 0);
    for (size_t f = 0; f < sizeof fill / sizeof fill[0]; f++) {
        uint8_t *d = malloc(lq * lk);
        ck_assert_ptr_nonnull(d);
        for (size_t i = 0; i < lq; i++)
            for (size_t j = 0; j < lk; j++) /* some rows empty, some whole */
                d[i * lk + j] = i % 5 == 3 ? 0 : i % 7 == 2 ? 1 : tu_uniform(&rng) < fill[f];
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
        free(d);
        int64_t *rp = malloc((lq + 1) * sizeof *rp);
        int32_t *ci = malloc((lq * lk + 1) * sizeof *ci);
        uint8_t *all = malloc(m->nqt);
        ck_assert(rp != NULL && ci != NULL && all != NULL);
        ck_assert_int_eq(spattn_mask_to_csr(m, rp, ci), SPATTN_OK);
        memset(all, SPATTN_QT_GATHER, m->nqt);
        spattn_keyrows kr;
        ck_assert_int_eq(spattn__keyrows_build(m, all, NULL, &kr), SPATTN_OK);
        size_t longest = 0;
        for (size_t i = 0; i < lq; i++) {
            size_t n;
            const uint32_t *k = spattn__keyrows_row(&kr, i, &n);
            ck_assert_uint_eq(n, (size_t)(rp[i + 1] - rp[i]));
            for (size_t c = 0; c < n; c++)
                ck_assert_uint_eq(k[c], (uint32_t)ci[rp[i] + (int64_t)c]);
            longest = n > longest ? n : longest;
        }
        ck_assert_uint_eq(kr.longest, longest);
        spattn__keyrows_free(&kr);
        free(all);
        free(rp);
        free(ci);
        spattn_mask_free(m);
    }
    spattn__set_plan_popcnt(1);
}
END_TEST

/* The plan's passes that count mask bits (path choice, key list offsets) run in a POPCNT build
   where the CPU has the instruction and a plain one otherwise; both plan the same for random
   masks of every fill: the same paths, listed tiles, chunk costs and output bits. */
START_TEST(popcnt_builds_plan_the_same)
{
    spattn_isa isa = tu_isa(_i);
    static const double fill[] = {0.003, 0.02, 0.1, 0.4};
    tu_rng rng = {0xb175 + (uint64_t)_i};
    ck_assert_int_eq(spattn__plan_popcnt(),
                     PLAN_POPCNT_CLONE && (spattn__cpu()->bits & SPATTN_CPU_POPCNT) != 0);
    for (size_t f = 0; f < sizeof fill / sizeof fill[0]; f++) {
        const size_t n = tu_range(&rng, 300, 520);
        uint8_t *d = malloc(n * n);
        ck_assert_ptr_nonnull(d);
        for (size_t i = 0; i < n * n; i++)
            d[i] = tu_uniform(&rng) < fill[f];
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_from_dense(n, n, d, n, &m), SPATTN_OK);
        free(d);
        tproblem pr;
        tproblem_make(&pr, &rng, m, 2, 24, 24);
        const spattn_mask *ml[1] = {pr.mask};
        spattn_options opt = {isa, 2};
        spattn_plan *p[2];
        tproblem_bits bits;
        for (int hw = 0; hw < 2; hw++) {
            spattn__set_plan_popcnt(hw);
            ck_assert_int_eq(spattn__plan_popcnt(),
                             hw && PLAN_POPCNT_CLONE && (spattn__cpu()->bits & SPATTN_CPU_POPCNT));
            ck_assert_int_eq(spattn_plan_create(&pr.a.shape, ml, 1, &opt, &p[hw]), SPATTN_OK);
            tproblem_clear(&pr);
            ck_assert_int_eq(spattn_plan_execute(p[hw], &pr.a), SPATTN_OK);
            if (hw == 0)
                tproblem_keep(&pr, &bits);
        }
        spattn__set_plan_popcnt(1);
        ck_assert_msg(tproblem_same(&pr, &bits), "%s fill %g: outputs differ", spattn_isa_name(isa),
                      fill[f]);
        size_t listed[2];
        ck_assert_uint_eq(spattn__plan_gather_tiles(p[0]), spattn__plan_gather_tiles(p[1]));
        ck_assert_uint_eq(spattn__plan_mixed_tiles(p[0], &listed[0]),
                          spattn__plan_mixed_tiles(p[1], &listed[1]));
        ck_assert_uint_eq(listed[0], listed[1]);
        const size_t nc = spattn__plan_chunks(p[0], NULL);
        ck_assert_uint_eq(nc, spattn__plan_chunks(p[1], NULL));
        uint64_t *c0 = malloc(nc * sizeof *c0), *c1 = malloc(nc * sizeof *c1);
        ck_assert(c0 != NULL && c1 != NULL);
        spattn__plan_chunks(p[0], c0);
        spattn__plan_chunks(p[1], c1);
        ck_assert_mem_eq(c0, c1, nc * sizeof *c0);
        free(c0);
        free(c1);
        for (int hw = 0; hw < 2; hw++)
            spattn_plan_free(p[hw]);
        tproblem_bits_free(&bits);
        tproblem_free(&pr);
    }
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
    tcase_add_loop_test(tc, used_columns_decide, 0, tu_n_isas());
    tcase_add_loop_test(tc, shared_keys_decide, 0, tu_n_isas());
    tcase_add_loop_test(tc, long_rows_no_shared_credit, 0, tu_n_isas());
    tcase_add_loop_test(tc, one_path_at_crossover, 0, tu_n_isas());
    tcase_add_loop_test(tc, key_lists_are_rows, 0, 6);
    tcase_add_loop_test(tc, popcnt_builds_plan_the_same, 0, tu_n_isas());
    suite_add_tcase(s, tc);
    return s;
}

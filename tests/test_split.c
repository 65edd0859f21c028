/*
 * Split-KV inside plans: decode and short-prefill shapes whose units cannot fill threads, on
 * every ISA, against the float64 reference (MQA, GQA, MHA; no mask, causal KV cache, window,
 * random masks, fully masked rows; sinks, ALiBi with pos_offset, softcap), bitwise the same for
 * 1, 2, 3 and 8 threads; the segments the plan reports (spattn_plan_kv_segments); and one split
 * plan executed from several threads at once.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

typedef struct sproblem {
    spattn_shape sh;
    float *q, *k, *v;
    float slopes[64], sinks[64];
    spattn_mask *m; /* NULL: every pair allowed */
    /* when n_heads_masks > 0, one mask per query head instead of m */
    spattn_mask *head_masks[8];
    size_t n_head_masks;
    int alibi, sink;
    float softcap;
    ptrdiff_t pos_offset;
} sproblem;

static float *randn(tu_rng *r, size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t x = 0; x < n; x++)
        p[x] = tu_normal(r);
    return p;
}

static void problem_init(sproblem *p, tu_rng *r, spattn_shape sh)
{
    memset(p, 0, sizeof *p);
    p->sh = sh;
    p->q = randn(r, sh.batch * sh.heads_q * sh.len_q * sh.dim_qk);
    p->k = randn(r, sh.batch * sh.heads_kv * sh.len_k * sh.dim_qk);
    p->v = randn(r, sh.batch * sh.heads_kv * sh.len_k * sh.dim_v);
    ck_assert_int_eq(spattn_alibi_slopes(sh.heads_q, p->slopes), SPATTN_OK);
    for (size_t h = 0; h < sh.heads_q; h++)
        p->sinks[h] = h % 3 == 2 ? -INFINITY : (float)tu_normal(r) + 1.0f;
}

static void problem_free(sproblem *p)
{
    free(p->q);
    free(p->k);
    free(p->v);
    spattn_mask_free(p->m);
    for (size_t h = 0; h < p->n_head_masks; h++)
        spattn_mask_free(p->head_masks[h]);
}

/* The masks argument of p's calls: returns n_masks and fills ms. */
static size_t masks_of(const sproblem *p, const spattn_mask **ms)
{
    for (size_t h = 0; h < p->n_head_masks; h++)
        ms[h] = p->head_masks[h];
    if (p->n_head_masks > 0)
        return p->n_head_masks;
    ms[0] = p->m;
    return p->m ? 1 : 0;
}

static spattn_args args_of(const sproblem *p, float *o, float *lse)
{
    const spattn_shape *s = &p->sh;
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = *s;
    a.q = p->q;
    a.q_layout = spattn_layout_bhtd(s->heads_q, s->len_q, s->dim_qk);
    a.k = p->k;
    a.k_layout = spattn_layout_bhtd(s->heads_kv, s->len_k, s->dim_qk);
    a.v = p->v;
    a.v_layout = spattn_layout_bhtd(s->heads_kv, s->len_k, s->dim_v);
    a.o = o;
    a.o_layout = spattn_layout_bhtd(s->heads_q, s->len_q, s->dim_v);
    a.lse = lse;
    a.softcap = p->softcap;
    a.alibi_slopes = p->alibi ? p->slopes : NULL;
    a.sinks = p->sink ? p->sinks : NULL;
    a.pos_offset = p->pos_offset;
    return a;
}

/* Plans the problem with `threads` threads on isa, checks its segments (at least `min_segs`
   for head 0, bounds increasing from 0 to len_k) and runs it into o, lse. */
static void run_plan(const sproblem *p, spattn_isa isa, int threads, size_t min_segs, float *o,
                     float *lse, size_t *bounds, size_t *nseg)
{
    spattn_options opt = {isa, threads};
    const spattn_mask *ms[8];
    const size_t nm = masks_of(p, ms);
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&p->sh, nm ? ms : NULL, nm, &opt, &plan), SPATTN_OK);
    *nseg = spattn_plan_kv_segments(plan, 0, 0, bounds, 65);
    ck_assert_uint_ge(*nseg, min_segs);
    ck_assert_uint_eq(bounds[0], 0);
    ck_assert_uint_eq(bounds[*nseg], p->sh.len_k);
    for (size_t s = 0; s < *nseg; s++)
        ck_assert_uint_lt(bounds[s], bounds[s + 1]);
    spattn_args a = args_of(p, o, lse);
    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
    spattn_plan_free(plan);
}

/* Every ISA: within tolerance of the reference, and the same bits and the same segments for
   1, 2, 3 and 8 threads. */
static void check_problem(const sproblem *p, size_t min_segs, const char *what)
{
    const spattn_shape *s = &p->sh;
    const size_t rows = s->batch * s->heads_q * s->len_q, no = rows * s->dim_v;
    float *ref = malloc(no * sizeof(float)), *ref_lse = malloc(rows * sizeof(float));
    float *o1 = malloc(no * sizeof(float)), *l1 = malloc(rows * sizeof(float));
    float *on = malloc(no * sizeof(float)), *ln = malloc(rows * sizeof(float));
    spattn_args a = args_of(p, ref, ref_lse);
    const spattn_mask *ms[8];
    const size_t nm = masks_of(p, ms);
    ck_assert_int_eq(spattn_reference_forward(&a, nm ? ms : NULL, nm), SPATTN_OK);
    static const int threads[] = {2, 3, 8};
    for (int t = 0; t < tu_n_isas(); t++) {
        const spattn_isa isa = tu_isa(t);
        size_t b1[66], bn[66], n1, nn;
        run_plan(p, isa, 1, min_segs, o1, l1, b1, &n1);
        for (size_t x = 0; x < rows; x++) {
            ck_assert_msg(tu_close(l1[x], ref_lse[x], TU_TOL), "%s %s: lse %zu %.9g ref %.9g", what,
                          spattn_isa_name(isa), x, l1[x], ref_lse[x]);
            for (size_t d = 0; d < s->dim_v; d++)
                TU_CHECK_MSG(tu_close(o1[x * s->dim_v + d], ref[x * s->dim_v + d], TU_TOL),
                             "%s %s: o row %zu dim %zu %.9g ref %.9g", what, spattn_isa_name(isa),
                             x, d, o1[x * s->dim_v + d], ref[x * s->dim_v + d]);
        }
        for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
            memset(on, 0xff, no * sizeof(float));
            run_plan(p, isa, threads[k], min_segs, on, ln, bn, &nn);
            ck_assert_uint_eq(nn, n1);
            ck_assert(memcmp(bn, b1, (n1 + 1) * sizeof *b1) == 0);
            ck_assert_msg(memcmp(on, o1, no * sizeof(float)) == 0 &&
                              memcmp(ln, l1, rows * sizeof(float)) == 0,
                          "%s %s: %d threads differ from 1", what, spattn_isa_name(isa),
                          threads[k]);
        }
    }
    free(ref);
    free(ref_lse);
    free(o1);
    free(l1);
    free(on);
    free(ln);
}

/* Decode (len_q 1) on a long cache: MQA, GQA and MHA, each with no mask, the causal KV-cache
   mask, a window and a random mask, then with sinks, ALiBi and pos_offset, softcap. */
START_TEST(decode_matches_reference)
{
    static const size_t heads[][2] = {{8, 1}, {8, 2}, {4, 4}};
    tu_rng r = {0x5b1170u + (uint64_t)_i};
    const size_t hq = heads[_i % 3][0], hkv = heads[_i % 3][1];
    const size_t lk = 4096 + tu_range(&r, 0, 300);
    sproblem p;
    problem_init(&p, &r, (spattn_shape){1, hq, hkv, 1, lk, 64, 48});
    /* all four kinds at the default scale; sanitizer and valgrind runs take the first ones */
    const int kinds = tu_cases(4) < 4 ? tu_cases(4) : 4;
    for (int kind = 0; kind < kinds; kind++) {
        spattn_mask_free(p.m);
        p.m = NULL;
        if (kind == 1)
            ck_assert_int_eq(spattn_mask_causal(1, lk, &p.m), SPATTN_OK);
        else if (kind == 2)
            ck_assert_int_eq(spattn_mask_window(1, lk, 3000, 0, &p.m), SPATTN_OK);
        else if (kind == 3)
            p.m = tu_random_mask(&r, 1, lk);
        for (int mods = 0; mods < 3; mods++) {
            p.sink = mods >= 1;
            p.alibi = mods == 2;
            p.pos_offset = mods == 2 ? -(ptrdiff_t)tu_range(&r, 0, 500) : 0;
            p.softcap = mods == 2 ? 20.0f : 0.0f;
            char what[64];
            snprintf(what, sizeof what, "decode %zu/%zu kind %d mods %d", hq, hkv, kind, mods);
            /* every pair or a causal cache: plenty of keys, so the plan must split */
            check_problem(&p, kind <= 1 ? 2 : 1, what);
        }
    }
    problem_free(&p);
}
END_TEST

/* Short prefill with one or two heads over a long causal cache, batch 2, with sinks and ALiBi:
   several query tiles, tile pairs, and query tiles that see few segments. */
START_TEST(short_prefill_matches_reference)
{
    tu_rng r = {0x5b1171u};
    const size_t lq = 37, lk = 5000;
    sproblem p;
    problem_init(&p, &r, (spattn_shape){2, 2, 1, lq, lk, 32, 40});
    ck_assert_int_eq(spattn_mask_causal(lq, lk, &p.m), SPATTN_OK);
    check_problem(&p, 2, "prefill causal");
    p.sink = 1;
    p.alibi = 1;
    p.pos_offset = 123;
    check_problem(&p, 2, "prefill causal sinks alibi");
    spattn_mask_free(p.m);
    /* a window that leaves the first rows' keys in the last segment only */
    ck_assert_int_eq(spattn_mask_window(lq, lk, 700, 0, &p.m), SPATTN_OK);
    check_problem(&p, 1, "prefill window sinks alibi");
    problem_free(&p);
}
END_TEST

/* Rows with no allowed key in a split plan: O = 0 and lse = -inf, or the sink. */
START_TEST(fully_masked_rows)
{
    tu_rng r = {0x5b1172u};
    const size_t lq = 20, lk = 4200;
    uint8_t *d = calloc(lq * lk, 1);
    for (size_t i = 0; i < lq; i++)
        if (i % 3 != 0)
            for (size_t j = 0; j < lk; j++)
                d[i * lk + j] = (uint8_t)((j * 7 + i) % 5 != 0);
    sproblem p;
    problem_init(&p, &r, (spattn_shape){1, 3, 1, lq, lk, 16, 16});
    ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &p.m), SPATTN_OK);
    for (int sink = 0; sink < 2; sink++) {
        p.sink = sink;
        check_problem(&p, 2, sink ? "masked rows, sinks" : "masked rows");
        float *o = malloc(3 * lq * 16 * sizeof(float)), lse[3 * 20];
        size_t b[66], n;
        run_plan(&p, SPATTN_ISA_AUTO, 2, 2, o, lse, b, &n);
        for (size_t h = 0; h < 3; h++)
            for (size_t i = 0; i < lq; i += 3) {
                const float want = sink ? p.sinks[h] : -INFINITY;
                ck_assert(lse[h * lq + i] == want);
                for (size_t x = 0; x < 16; x++)
                    ck_assert(o[(h * lq + i) * 16 + x] == 0.0f);
            }
        free(o);
    }
    free(d);
    problem_free(&p);
}
END_TEST

/* A mask per query head, GQA decode (no packing then): a long causal cache and a long window
   split into different segments, a short window and an empty mask not at all, so merged and
   direct heads run side by side. */
START_TEST(per_head_masks)
{
    tu_rng r = {0x5b1174u};
    const size_t lk = 6000;
    sproblem p;
    problem_init(&p, &r, (spattn_shape){1, 4, 2, 1, lk, 32, 32});
    ck_assert_int_eq(spattn_mask_causal(1, lk, &p.head_masks[0]), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_window(1, lk, 2500, 0, &p.head_masks[1]), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_window(1, lk, 100, 0, &p.head_masks[2]), SPATTN_OK);
    uint8_t *none = calloc(lk, 1);
    ck_assert_int_eq(spattn_mask_from_dense(1, lk, none, lk, &p.head_masks[3]), SPATTN_OK);
    free(none);
    p.n_head_masks = 4;
    const spattn_mask *ms[4];
    masks_of(&p, ms);
    spattn_options opt = {SPATTN_ISA_AUTO, 2};
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&p.sh, ms, 4, &opt, &plan), SPATTN_OK);
    size_t b0[66], b1[66];
    const size_t n0 = spattn_plan_kv_segments(plan, 0, 0, b0, 66);
    const size_t n1 = spattn_plan_kv_segments(plan, 0, 1, b1, 66);
    ck_assert_uint_ge(n0, 2);
    ck_assert_uint_ge(n1, 2);
    /* the window's segments hold its keys only: its first bound past 0 lies beyond the
       keys the window does not see */
    ck_assert_uint_gt(b1[1], lk - 2501);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 2, NULL, 0), 1);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 3, NULL, 0), 1);
    spattn_plan_free(plan);
    for (int mods = 0; mods < 2; mods++) {
        p.sink = p.alibi = mods;
        check_problem(&p, 2, mods ? "per-head masks, sinks, ALiBi" : "per-head masks");
    }
    problem_free(&p);
}
END_TEST

/* What spattn_plan_kv_segments reports: no split where units are many or keys few, the same
   segments whatever the thread count, bounds on key tiles, and nothing written on a short
   buffer or bad arguments. */
START_TEST(segments_reported)
{
    spattn_plan *plan;
    spattn_options one = {SPATTN_ISA_SCALAR, 1}, many = {SPATTN_ISA_SCALAR, 8};
    size_t b[66], b8[66];
    /* MQA decode, len_k 131072: split, same for 1 and 8 threads */
    spattn_shape mqa = {1, 8, 1, 1, 131072, 128, 128};
    ck_assert_int_eq(spattn_plan_create(&mqa, NULL, 0, &one, &plan), SPATTN_OK);
    size_t n = spattn_plan_kv_segments(plan, 0, 0, b, 66);
    ck_assert_uint_ge(n, 8);
    for (size_t h = 1; h < 8; h++)
        ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, h, NULL, 0), n);
    for (size_t s = 1; s < n; s++)
        ck_assert_uint_eq(b[s] % 64, 0);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 1, 0, NULL, 0), 0);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 8, NULL, 0), 0);
    size_t small[4] = {7, 7, 7, 7};
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 0, small, 4), n);
    ck_assert_uint_eq(small[0], 7);
    spattn_plan_free(plan);
    ck_assert_int_eq(spattn_plan_create(&mqa, NULL, 0, &many, &plan), SPATTN_OK);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 0, b8, 66), n);
    ck_assert(memcmp(b, b8, (n + 1) * sizeof *b) == 0);
    spattn_plan_free(plan);
    ck_assert_uint_eq(spattn_plan_kv_segments(NULL, 0, 0, b, 66), 0);

    /* A causal mask's segments hold equal work: the last ones are as wide as the first. */
    spattn_shape pre = {1, 1, 1, 64, 65536, 64, 64};
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(64, 65536, &m), SPATTN_OK);
    const spattn_mask *ms[1] = {m};
    ck_assert_int_eq(spattn_plan_create(&pre, ms, 1, &one, &plan), SPATTN_OK);
    ck_assert_uint_ge(spattn_plan_kv_segments(plan, 0, 0, b, 66), 2);
    spattn_plan_free(plan);
    spattn_mask_free(m);

    /* Prefill with many units, and decode on a short cache: not split. */
    spattn_shape wide = {4, 8, 8, 512, 4096, 64, 64};
    ck_assert_int_eq(spattn_plan_create(&wide, NULL, 0, &one, &plan), SPATTN_OK);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 3, 7, b, 66), 1);
    ck_assert_uint_eq(b[0], 0);
    ck_assert_uint_eq(b[1], 4096);
    spattn_plan_free(plan);
    spattn_shape short_cache = {1, 8, 1, 1, 1000, 64, 64};
    ck_assert_int_eq(spattn_plan_create(&short_cache, NULL, 0, &one, &plan), SPATTN_OK);
    ck_assert_uint_eq(spattn_plan_kv_segments(plan, 0, 0, NULL, 0), 1);
    spattn_plan_free(plan);
}
END_TEST

/* Split plans with 16-bit K/V and O: K and V read in their own type at each segment's first
   key, segments merged in float and O rounded once: bitwise the F32 call on the widened values,
   rounded to nearest even, for 1 and 3 threads, with sinks and ALiBi. */
START_TEST(typed_segments)
{
    static const spattn_dtype kvts[] = {SPATTN_DTYPE_BF16, SPATTN_DTYPE_F16};
    static const spattn_dtype ots[] = {SPATTN_DTYPE_F32, SPATTN_DTYPE_BF16, SPATTN_DTYPE_F16};
    tu_rng r = {0x5e9d7e};
    sproblem p;
    problem_init(&p, &r, (spattn_shape){1, 4, 1, 1, 5000, 40, 24});
    p.alibi = p.sink = 1;
    p.pos_offset = 7;
    ck_assert_int_eq(spattn_mask_window(1, 5000, 4000, 0, &p.m), SPATTN_OK);
    const size_t nk = 5000 * 40, nv = 5000 * 24, no = 4 * 24;
    uint16_t *k16 = malloc(nk * 2), *v16 = malloc(nv * 2), *o16 = malloc(no * 2);
    float *kw = malloc(nk * 4), *vw = malloc(nv * 4), *o32 = malloc(no * 4), *ot = malloc(no * 4);
    float l32[4], lt[4];
    ck_assert(k16 && v16 && o16 && kw && vw && o32 && ot);
    for (size_t x = 0; x < 2; x++) {
        const spattn_dtype kvt = kvts[x];
        if (kvt == SPATTN_DTYPE_BF16) {
            spattn_f32_to_bf16(p.k, k16, nk);
            spattn_f32_to_bf16(p.v, v16, nv);
            spattn_bf16_to_f32(k16, kw, nk);
            spattn_bf16_to_f32(v16, vw, nv);
        } else {
            spattn_f32_to_f16(p.k, k16, nk);
            spattn_f32_to_f16(p.v, v16, nv);
            spattn_f16_to_f32(k16, kw, nk);
            spattn_f16_to_f32(v16, vw, nv);
        }
        for (int t = 0; t < tu_n_isas(); t++)
            for (size_t y = 0; y < 3; y++)
                for (int threads = 1; threads <= 3; threads += 2) {
                    spattn_options opt = {tu_isa(t), threads};
                    const spattn_mask *ms[1] = {p.m};
                    spattn_plan *plan;
                    ck_assert_int_eq(spattn_plan_create(&p.sh, ms, 1, &opt, &plan), SPATTN_OK);
                    ck_assert_uint_ge(spattn_plan_kv_segments(plan, 0, 0, NULL, 0), 2);
                    spattn_args a = args_of(&p, o32, l32);
                    a.k = kw;
                    a.v = vw;
                    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
                    void *out = ots[y] == SPATTN_DTYPE_F32 ? (void *)ot : (void *)o16;
                    a = args_of(&p, NULL, lt);
                    a.o = out;
                    a.k = k16;
                    a.v = v16;
                    a.kv_dtype = kvt;
                    a.o_dtype = ots[y];
                    ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
                    spattn_plan_free(plan);
                    ck_assert(memcmp(lt, l32, sizeof lt) == 0);
                    if (ots[y] == SPATTN_DTYPE_F32) {
                        ck_assert(memcmp(ot, o32, no * 4) == 0);
                        continue;
                    }
                    uint16_t want[4 * 24];
                    if (ots[y] == SPATTN_DTYPE_BF16)
                        spattn_f32_to_bf16(o32, want, no);
                    else
                        spattn_f32_to_f16(o32, want, no);
                    ck_assert_msg(memcmp(o16, want, no * 2) == 0,
                                  "%s kv %d o %d threads %d: O is not the F32 result rounded",
                                  spattn_isa_name(tu_isa(t)), (int)kvt, (int)ots[y], threads);
                }
    }
    free(k16);
    free(v16);
    free(o16);
    free(kw);
    free(vw);
    free(o32);
    free(ot);
    problem_free(&p);
}
END_TEST

/* One split plan executed by four threads at once, each with its own inputs: each result is
   the bits a lone execute gives (the plan's scratch serves one execute, the others bring
   their own). */
START_TEST(split_plan_shared_by_threads)
{
    tu_rng r = {0x5b1173u};
    enum { N = 4 };
    sproblem p[N];
    const spattn_shape sh = {1, 8, 1, 1, 8192, 64, 64};
    for (int t = 0; t < N; t++)
        problem_init(&p[t], &r, sh);
    spattn_options opt = {SPATTN_ISA_AUTO, 2};
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&sh, NULL, 0, &opt, &plan), SPATTN_OK);
    ck_assert_uint_ge(spattn_plan_kv_segments(plan, 0, 0, NULL, 0), 2);
    float want[N][8 * 64], got[N][8 * 64], wl[N][8], gl[N][8];
    for (int t = 0; t < N; t++) {
        spattn_args a = args_of(&p[t], want[t], wl[t]);
        ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
    }
    int st[N];
#pragma omp parallel for num_threads(N)
    for (int t = 0; t < N; t++) {
        spattn_args a = args_of(&p[t], got[t], gl[t]);
        st[t] = spattn_plan_execute(plan, &a);
    }
    for (int t = 0; t < N; t++) {
        ck_assert_int_eq(st[t], SPATTN_OK);
        ck_assert(memcmp(got[t], want[t], sizeof want[t]) == 0);
        ck_assert(memcmp(gl[t], wl[t], sizeof wl[t]) == 0);
        problem_free(&p[t]);
    }
    spattn_plan_free(plan);
}
END_TEST

Suite *suite_split(void);
Suite *suite_split(void)
{
    Suite *s = suite_create("split");
    TCase *tc = tcase_create("split");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, decode_matches_reference, 0, 3);
    tcase_add_test(tc, short_prefill_matches_reference);
    tcase_add_test(tc, fully_masked_rows);
    tcase_add_test(tc, per_head_masks);
    tcase_add_test(tc, segments_reported);
    tcase_add_test(tc, split_plan_shared_by_threads);
    tcase_add_test(tc, typed_segments);
    suite_add_tcase(s, tc);
    return s;
}

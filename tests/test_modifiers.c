/*
 * Score modifiers (ALiBi slopes, attention sinks, pos_offset) on every available ISA, on both
 * forced kernel paths and through the plan's own choice, against the float64 reference: with
 * softcap, GQA, odd sizes, rows and whole query tiles with no allowed key, -inf sinks for some
 * heads, packed decode, spattn_probs, thread counts, and a gpt-oss-shaped layer. (Bad
 * modifier arguments: test_hostile.c; the kernel tables called directly: test_kernels.c.)
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/test_hooks.h"
#include "test_util.h"

#define MAX_HEADS 64
#define MAX_MASKS 64

typedef struct mproblem {
    spattn_args a;
    tu_buf q, k, v, o, lse;
    float slopes[MAX_HEADS], sinks[MAX_HEADS];
    spattn_mask *masks[MAX_MASKS];
    uint8_t *dense[MAX_MASKS]; /* each mask as len_q x len_k bytes */
    size_t n_masks;
} mproblem;

/* [batch][head][token][dim] with every token row padded by `pad` floats. */
static spattn_layout padded(size_t heads, size_t len, size_t dim, size_t pad, size_t *elems,
                            size_t batch)
{
    spattn_layout l;
    l.token = (ptrdiff_t)(dim + pad);
    l.head = l.token * (ptrdiff_t)len;
    l.batch = l.head * (ptrdiff_t)heads;
    *elems = (size_t)l.batch * batch;
    return l;
}

/* Values N(0, 1) inside the view, NaN in the padding (never to be read). */
static void fill(tu_rng *r, tu_buf *b, size_t dim, size_t pad)
{
    for (size_t i = 0; i < b->n; i++)
        b->p[i] = i % (dim + pad) < dim ? tu_normal(r) : NAN;
}

static const uint8_t *dense_for(const mproblem *p, size_t b, size_t h)
{
    const spattn_shape *s = &p->a.shape;
    if (p->n_masks == 0)
        return NULL;
    if (p->n_masks == 1)
        return p->dense[0];
    return p->dense[p->n_masks == s->heads_q ? h : b * s->heads_q + h];
}

static int row_empty(const mproblem *p, size_t b, size_t h, size_t i)
{
    const uint8_t *d = dense_for(p, b, h);
    if (d == NULL)
        return 0;
    for (size_t j = 0; j < p->a.shape.len_k; j++)
        if (d[i * p->a.shape.len_k + j])
            return 0;
    return 1;
}

/* Buffers and data of shape s with n_masks random masks (or `given` when not NULL: one mask,
   shared), K and V rows that no mask allows set to NaN; no modifiers yet. */
static void mp_init(mproblem *p, tu_rng *r, spattn_shape s, size_t n_masks, spattn_mask *given)
{
    memset(p, 0, sizeof *p);
    ck_assert(s.heads_q <= MAX_HEADS && n_masks <= MAX_MASKS);
    p->a.shape = s;
    const size_t pad = tu_range(r, 0, 3);
    size_t nq, nk, nv, no;
    p->a.q_layout = padded(s.heads_q, s.len_q, s.dim_qk, pad, &nq, s.batch);
    p->a.k_layout = padded(s.heads_kv, s.len_k, s.dim_qk, pad, &nk, s.batch);
    p->a.v_layout = padded(s.heads_kv, s.len_k, s.dim_v, pad, &nv, s.batch);
    p->a.o_layout = padded(s.heads_q, s.len_q, s.dim_v, pad, &no, s.batch);
    p->q = tu_buf_new(nq);
    p->k = tu_buf_new(nk);
    p->v = tu_buf_new(nv);
    p->o = tu_buf_new(no);
    p->lse = tu_buf_new(s.batch * s.heads_q * s.len_q);
    fill(r, &p->q, s.dim_qk, pad);
    fill(r, &p->k, s.dim_qk, pad);
    fill(r, &p->v, s.dim_v, pad);
    p->a.q = p->q.p;
    p->a.k = p->k.p;
    p->a.v = p->v.p;
    p->a.o = p->o.p;
    p->a.lse = p->lse.p;
    p->n_masks = given ? 1 : n_masks;
    for (size_t m = 0; m < p->n_masks; m++) {
        p->masks[m] = given ? given : tu_random_mask(r, s.len_q, s.len_k);
        p->dense[m] = malloc(s.len_q * s.len_k);
        ck_assert_ptr_nonnull(p->dense[m]);
        ck_assert_int_eq(spattn_mask_to_dense(p->masks[m], p->dense[m], s.len_k), SPATTN_OK);
    }
    if (p->n_masks == 0)
        return;
    for (size_t j = 0; j < s.len_k; j++) {
        int used = 0;
        for (size_t m = 0; m < p->n_masks && !used; m++)
            for (size_t i = 0; i < s.len_q && !used; i++)
                used = p->dense[m][i * s.len_k + j];
        if (used)
            continue;
        for (size_t b = 0; b < s.batch; b++)
            for (size_t h = 0; h < s.heads_kv; h++) {
                float *kr = p->k.p + b * (size_t)p->a.k_layout.batch +
                            h * (size_t)p->a.k_layout.head + j * (size_t)p->a.k_layout.token;
                float *vr = p->v.p + b * (size_t)p->a.v_layout.batch +
                            h * (size_t)p->a.v_layout.head + j * (size_t)p->a.v_layout.token;
                for (size_t d = 0; d < s.dim_qk; d++)
                    kr[d] = NAN;
                for (size_t d = 0; d < s.dim_v; d++)
                    vr[d] = NAN;
            }
    }
}

static void mp_free(mproblem *p)
{
    tu_buf_free(&p->q);
    tu_buf_free(&p->k);
    tu_buf_free(&p->v);
    tu_buf_free(&p->o);
    tu_buf_free(&p->lse);
    for (size_t m = 0; m < p->n_masks; m++) {
        spattn_mask_free(p->masks[m]);
        free(p->dense[m]);
    }
}

static const spattn_mask *const *mask_list(const mproblem *p)
{
    return p->n_masks ? (const spattn_mask *const *)p->masks : NULL;
}

/* Random slopes (ALiBi-like powers of two, some 0 or negative, small enough that
   slope * |i' - j| stays within ~40), sinks (some -inf, some dominating the row), pos_offset
   (positive, negative, often 0), softcap and scale; slopes, sinks or both. */
static void random_mods(mproblem *p, tu_rng *r)
{
    const spattn_shape *s = &p->a.shape;
    static const ptrdiff_t offs[] = {0, 0, 0, 1, -1, 7, -13, 64, -100, 1000, -1000};
    p->a.pos_offset = offs[tu_range(r, 0, sizeof offs / sizeof offs[0] - 1)];
    const double span = (double)(s->len_q + s->len_k) + fabs((double)p->a.pos_offset);
    const double fit = span > 160.0 ? 160.0 / span : 1.0;
    for (size_t h = 0; h < s->heads_q; h++) {
        double u = tu_uniform(r);
        double slope = 0.25 * fit * exp2(-(double)tu_range(r, 0, 8));
        p->slopes[h] = (float)(u < 0.05 ? 0.0 : u < 0.15 ? -0.2 * slope : slope);
        u = tu_uniform(r);
        p->sinks[h] = u < 0.25   ? -INFINITY
                      : u < 0.35 ? (float)(8.0 + 4.0 * tu_uniform(r))
                                 : 2.0f * tu_normal(r);
    }
    const int which = (int)tu_range(r, 0, 3); /* 0: slopes, 1: sinks, 2 and 3: both */
    p->a.alibi_slopes = which != 1 ? p->slopes : NULL;
    p->a.sinks = which != 0 ? p->sinks : NULL;
    p->a.softcap = tu_uniform(r) < 0.3 ? (float)(5.0 + 20.0 * tu_uniform(r)) : 0.0f;
    p->a.scale = tu_uniform(r) < 0.5 ? 0.0f : (float)(0.05 + 0.4 * tu_uniform(r));
}

/* Odd sizes, GQA, every mask arrangement, then random modifiers. */
static void random_problem(mproblem *p, tu_rng *r, size_t max_len, size_t max_dim)
{
    spattn_shape s;
    s.batch = tu_range(r, 1, 2);
    s.heads_kv = tu_range(r, 1, 3);
    s.heads_q = s.heads_kv * tu_range(r, 1, 4);
    s.len_q = tu_uniform(r) < 0.3 ? tu_range(r, 1, 20) : tu_range(r, 1, max_len);
    s.len_k = tu_uniform(r) < 0.3 ? tu_range(r, 1, 20) : tu_range(r, 1, max_len);
    s.dim_qk = tu_uniform(r) < 0.3 ? 64 : tu_range(r, 1, max_dim);
    s.dim_v = tu_uniform(r) < 0.5 ? s.dim_qk : tu_range(r, 1, max_dim);
    const int kind = (int)tu_range(r, 0, 3);
    const size_t n = kind == 0 ? 0 : kind == 1 ? 1 : kind == 2 ? s.heads_q : s.batch * s.heads_q;
    mp_init(p, r, s, n, NULL);
    random_mods(p, r);
}

/* The reference into fresh buffers shaped like p's outputs. */
static void reference(const mproblem *p, tu_buf *o, tu_buf *lse)
{
    *o = tu_buf_new(p->o.n);
    *lse = tu_buf_new(p->lse.n);
    spattn_args ra = p->a;
    ra.o = o->p;
    ra.lse = p->a.lse ? lse->p : NULL;
    ck_assert_int_eq(spattn_reference_forward(&ra, mask_list(p), p->n_masks), SPATTN_OK);
}

static void describe(char *buf, size_t n, const mproblem *p, const char *what)
{
    const spattn_shape *s = &p->a.shape;
    snprintf(buf, n,
             "%s (B%zu Hq%zu Hkv%zu Lq%zu Lk%zu Dqk%zu Dv%zu masks %zu slopes %s sinks %s "
             "pos_offset %td softcap %g scale %g)",
             what, s->batch, s->heads_q, s->heads_kv, s->len_q, s->len_k, s->dim_qk, s->dim_v,
             p->n_masks, p->a.alibi_slopes ? "yes" : "no", p->a.sinks ? "yes" : "no",
             p->a.pos_offset, (double)p->a.softcap, (double)p->a.scale);
}

/* O and lse close to the reference; exact zeros where the reference has them (rows with no
   allowed key), lse exactly the sink (or -inf) for such rows, padding untouched. */
static void compare(const mproblem *p, const tu_buf *ro, const tu_buf *rlse, const char *label)
{
    const spattn_shape *s = &p->a.shape;
    char what[320];
    describe(what, sizeof what, p, label);
    if (!tu_buf_guards_ok(&p->o))
        ck_abort_msg("%s: wrote outside o", what);
    for (size_t i = 0; i < p->o.n; i++) {
        const float got = p->o.p[i], want = ro->p[i];
        if (tu_is_canary(want)) {
            if (!tu_is_canary(got))
                ck_abort_msg("%s: padding o[%zu] written", what, i);
        } else if (want == 0.0f ? got != 0.0f : !tu_close(got, want, TU_TOL)) {
            ck_abort_msg("%s: o[%zu] = %.9g, reference %.9g", what, i, got, want);
        }
    }
    if (p->a.lse == NULL) {
        if (!tu_buf_untouched(&p->lse))
            ck_abort_msg("%s: lse written though NULL", what);
        return;
    }
    for (size_t b = 0; b < s->batch; b++)
        for (size_t h = 0; h < s->heads_q; h++)
            for (size_t i = 0; i < s->len_q; i++) {
                const size_t at = (b * s->heads_q + h) * s->len_q + i;
                const float got = p->lse.p[at], want = rlse->p[at];
                if (!tu_close(got, want, TU_TOL))
                    ck_abort_msg("%s: lse[%zu] = %.9g, reference %.9g", what, at, got, want);
                const float sink = p->a.sinks ? p->a.sinks[h] : -INFINITY;
                if (row_empty(p, b, h, i) && !(got == sink && want == sink))
                    ck_abort_msg("%s: lse[%zu] = %.9g (reference %.9g) of a row with no key, "
                                 "sink %.9g",
                                 what, at, got, want, sink);
            }
}

/* A plan of p on `path` with `threads`, executed into fresh outputs. */
static void run(mproblem *p, spattn_isa isa, spattn_path path, int threads, int *packed)
{
    spattn_options opt = {isa, threads};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(
        spattn__plan_create_path(&p->a.shape, mask_list(p), p->n_masks, &opt, path, &plan),
        SPATTN_OK);
    ck_assert_int_eq(spattn_plan_isa(plan), isa);
    if (packed)
        *packed = spattn__plan_packed(plan);
    tu_buf_reset(&p->o);
    tu_buf_reset(&p->lse);
    ck_assert_int_eq(spattn_plan_execute(plan, &p->a), SPATTN_OK);
    spattn_plan_free(plan);
}

static const char *path_name(spattn_path path)
{
    return path == SPATTN_PATH_TILES ? "tiles" : path == SPATTN_PATH_GATHER ? "gather" : "auto";
}

/* ---- against the reference ------------------------------------------------------------- */

/* Random problems with slopes, sinks, offsets, softcap and GQA together, on the forced tile
   and gather paths and the plan's own choice (1 or 2 threads). */
START_TEST(sweep)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {1701 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(40); c++) {
        mproblem p;
        random_problem(&p, &r, c % 4 == 3 ? 150 : 48, 80);
        p.a.lse = tu_uniform(&r) < 0.8 ? p.lse.p : NULL;
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        for (int path = SPATTN_PATH_AUTO; path <= SPATTN_PATH_GATHER; path++) {
            const int threads = path == SPATTN_PATH_AUTO ? (int)tu_range(&r, 1, 2) : 1;
            run(&p, isa, (spattn_path)path, threads, NULL);
            char label[96];
            snprintf(label, sizeof label, "case %d, %s, path %s, %d threads", c,
                     spattn_isa_name(isa), path_name((spattn_path)path), threads);
            compare(&p, &ro, &rlse, label);
        }
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        mp_free(&p);
    }
}
END_TEST

/* Rows with no allowed key beside rows with one (every third row allows one key, every other
   K/V row NaN), a whole empty query tile (rows 16..31: execute writes it without a kernel),
   and sinks 0.5, -inf, FLT_MAX and -FLT_MAX by head: O exactly 0 and lse exactly the sink for
   the empty rows, the reference elsewhere; ALiBi on and off. */
START_TEST(rows_without_keys)
{
    const spattn_isa isa = tu_isa(_i);
    const spattn_shape s = {1, 4, 2, 40, 150, 24, 24};
    uint8_t *d = calloc(s.len_q * s.len_k, 1);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < s.len_q; i += 3)
        if (i / 16 != 1)
            d[i * s.len_k + (i * 7) % s.len_k] = 1;
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_dense(s.len_q, s.len_k, d, s.len_k, &m), SPATTN_OK);
    free(d);
    tu_rng r = {31 + (uint64_t)isa};
    mproblem p;
    mp_init(&p, &r, s, 1, m);
    const float sinks[4] = {0.5f, -INFINITY, FLT_MAX, -FLT_MAX};
    const float slopes[4] = {0.5f, 0.125f, 0.0f, 0.03125f};
    memcpy(p.sinks, sinks, sizeof sinks);
    memcpy(p.slopes, slopes, sizeof slopes);
    p.a.sinks = p.sinks;
    for (int alibi = 0; alibi < 2; alibi++) {
        p.a.alibi_slopes = alibi ? p.slopes : NULL;
        p.a.pos_offset = alibi ? -5 : 0;
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        for (int path = SPATTN_PATH_AUTO; path <= SPATTN_PATH_GATHER; path++)
            for (int threads = 1; threads <= 2; threads++) {
                run(&p, isa, (spattn_path)path, threads, NULL);
                char label[96];
                snprintf(label, sizeof label, "%s, path %s, %d threads, alibi %d",
                         spattn_isa_name(isa), path_name((spattn_path)path), threads, alibi);
                compare(&p, &ro, &rlse, label);
            }
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
    }
    mp_free(&p);
}
END_TEST

/* Decode with GQA (len_q = 1, one mask or none): the plan packs a KV group's query heads as
   the rows of one tile, so each row has its own head's slope and sink. Groups up to 20 (two
   tiles), some sinks -inf, and masks that allow no key (the packed tile empty: execute writes
   every head's sink). */
START_TEST(packed_decode)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {4711 + (uint64_t)isa};
    static const size_t groups[] = {2, 5, 8, 16, 20};
    for (int c = 0; c < tu_cases(15); c++) {
        spattn_shape s;
        s.batch = tu_range(&r, 1, 2);
        s.heads_kv = tu_range(&r, 1, 2);
        s.heads_q = s.heads_kv * groups[c % 5];
        s.len_q = 1;
        s.len_k = tu_range(&r, 1, 400);
        s.dim_qk = tu_uniform(&r) < 0.5 ? 64 : tu_range(&r, 1, 100);
        s.dim_v = tu_uniform(&r) < 0.5 ? s.dim_qk : tu_range(&r, 1, 100);
        spattn_mask *m = NULL;
        if (c % 4 == 1) {
            uint8_t *none = calloc(s.len_k, 1);
            ck_assert_int_eq(spattn_mask_from_dense(1, s.len_k, none, s.len_k, &m), SPATTN_OK);
            free(none);
        } else if (c % 4 != 0) {
            m = tu_random_mask(&r, 1, s.len_k);
        }
        mproblem p;
        mp_init(&p, &r, s, 0, m);
        random_mods(&p, &r);
        if (c % 2 == 0) { /* every head modified differently, both kinds */
            p.a.alibi_slopes = p.slopes;
            p.a.sinks = p.sinks;
        }
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        for (int path = SPATTN_PATH_AUTO; path <= SPATTN_PATH_GATHER; path++) {
            int packed;
            run(&p, isa, (spattn_path)path, 1 + c % 2, &packed);
            ck_assert_msg(packed, "decode with one mask not packed");
            char label[96];
            snprintf(label, sizeof label, "decode case %d, %s, path %s", c, spattn_isa_name(isa),
                     path_name((spattn_path)path));
            compare(&p, &ro, &rlse, label);
        }
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        mp_free(&p);
    }
}
END_TEST

/* 1, 2 and 3 threads, and tile pairs off: bitwise the same o and lse, on each path. */
START_TEST(same_bits_any_threads)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {999 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(9); c++) {
        mproblem p;
        random_problem(&p, &r, 200, 64);
        if (c % 3 != 2) {
            p.a.alibi_slopes = p.slopes;
            p.a.sinks = p.sinks;
        }
        const spattn_path path = (spattn_path)(c % 3);
        float *o1 = malloc(p.o.n * sizeof(float)), *l1 = malloc(p.lse.n * sizeof(float));
        ck_assert(o1 != NULL && l1 != NULL);
        for (int k = 0; k < 4; k++) {
            spattn__set_tile_pairs(k != 3);
            run(&p, isa, path, k == 3 ? 1 : k + 1, NULL);
            spattn__set_tile_pairs(1);
            if (k == 0) {
                memcpy(o1, p.o.p, p.o.n * sizeof(float));
                memcpy(l1, p.lse.p, p.lse.n * sizeof(float));
                continue;
            }
            char what[320];
            describe(what, sizeof what, &p, path_name(path));
            if (memcmp(o1, p.o.p, p.o.n * sizeof(float)) != 0 ||
                memcmp(l1, p.lse.p, p.lse.n * sizeof(float)) != 0)
                ck_abort_msg("%s: run %d (threads %d, pairs %s) differs from 1 thread", what, k,
                             k == 3 ? 1 : k + 1, k == 3 ? "off" : "on");
        }
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        compare(&p, &ro, &rlse, "threads");
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        free(o1);
        free(l1);
        mp_free(&p);
    }
}
END_TEST

/* The far ends of what validation accepts with ALiBi: |i' - j| up to exactly 2^24 (as a key
   shard deep into a long sequence has), both signs, with a slope small enough that the term
   stays of unit size. */
START_TEST(alibi_far_positions)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {24 + (uint64_t)isa};
    const spattn_shape s = {1, 2, 1, 19, 70, 16, 16};
    mproblem p;
    mp_init(&p, &r, s, 0, NULL);
    p.slopes[0] = 1e-6f;
    p.slopes[1] = 2e-6f;
    p.sinks[0] = 3.0f;
    p.sinks[1] = -INFINITY;
    p.a.alibi_slopes = p.slopes;
    p.a.sinks = p.sinks;
    const ptrdiff_t lim = (ptrdiff_t)1 << 24;
    const ptrdiff_t offs[2] = {lim - (ptrdiff_t)(s.len_k - 1), (ptrdiff_t)s.len_q - 1 - lim};
    for (int e = 0; e < 2; e++) {
        p.a.pos_offset = offs[e];
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        for (int path = SPATTN_PATH_TILES; path <= SPATTN_PATH_GATHER; path++) {
            run(&p, isa, (spattn_path)path, 1, NULL);
            compare(&p, &ro, &rlse, path_name((spattn_path)path));
        }
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
    }
    mp_free(&p);
}
END_TEST

/* gpt-oss-shaped: sliding window of 128 (causal) with a learned sink per head, 64 query
   heads on 8 KV heads, dim 64; len 300 keeps the float64 reference fast. spattn_forward with
   the plan's own path choice and 2 threads, every ISA against one reference. */
START_TEST(gpt_oss_layer)
{
    const spattn_shape s = {1, 64, 8, 300, 300, 64, 64};
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_window(s.len_q, s.len_k, 127, 0, &m), SPATTN_OK);
    tu_rng r = {120};
    mproblem p;
    mp_init(&p, &r, s, 0, m);
    for (size_t h = 0; h < s.heads_q; h++)
        p.sinks[h] = 1.5f * tu_normal(&r);
    p.a.sinks = p.sinks;
    tu_buf ro, rlse;
    reference(&p, &ro, &rlse);
    for (int i = 0; i < tu_n_isas(); i++) {
        spattn_options opt = {tu_isa(i), 2};
        tu_buf_reset(&p.o);
        tu_buf_reset(&p.lse);
        ck_assert_int_eq(spattn_forward(&p.a, mask_list(&p), 1, &opt), SPATTN_OK);
        compare(&p, &ro, &rlse, spattn_isa_name(opt.isa));
    }
    tu_buf_free(&ro);
    tu_buf_free(&rlse);
    mp_free(&p);
}
END_TEST

/* ---- spattn_probs ------------------------------------------------------------------------ */

/* spattn_probs with modifiers against probabilities formed here in float64 from the contract's
   formulas (ALiBi in the score, the sink in the row's max and sum): each value, each row's sum
   (1 less the sink's share), and the column sums. */
START_TEST(probs_with_modifiers)
{
    const spattn_isa isa = tu_isa(_i);
    tu_rng r = {8080 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(12); c++) {
        mproblem p;
        random_problem(&p, &r, 70, 40);
        p.a.alibi_slopes = c % 3 != 1 ? p.slopes : NULL;
        p.a.sinks = c % 3 != 0 ? p.sinks : NULL;
        const spattn_shape *s = &p.a.shape;
        spattn_options opt = {isa, (int)tu_range(&r, 1, 2)};
        spattn_plan *plan;
        ck_assert_int_eq(spattn__plan_create_path(s, mask_list(&p), p.n_masks, &opt,
                                                  (spattn_path)(c % 3), &plan),
                         SPATTN_OK);
        const uint64_t np = spattn_plan_probs_len(plan);
        tu_buf pr = tu_buf_new((size_t)np), cs = tu_buf_new(s->batch * s->heads_q * s->len_k);
        ck_assert_int_eq(spattn_probs(plan, &p.a, pr.p, cs.p), SPATTN_OK);
        ck_assert(tu_buf_guards_ok(&pr) && tu_buf_guards_ok(&cs));
        char what[320];
        describe(what, sizeof what, &p, "probs");
        const double scale = p.a.scale != 0.0f ? (double)p.a.scale : 1.0 / sqrt((double)s->dim_qk);
        double *sc = malloc(s->len_k * sizeof(double)), *col = malloc(s->len_k * sizeof(double));
        uint8_t *d = malloc(s->len_q * s->len_k);
        ck_assert(sc != NULL && col != NULL && d != NULL);
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_q; h++) {
                ck_assert_int_eq(spattn_mask_to_dense(spattn_plan_mask(plan, b, h), d, s->len_k),
                                 SPATTN_OK);
                const float *out = pr.p + spattn_plan_probs_offset(plan, b, h);
                const size_t hk = h / (s->heads_q / s->heads_kv);
                const double sink = p.a.sinks ? (double)p.a.sinks[h] : -INFINITY;
                for (size_t j = 0; j < s->len_k; j++)
                    col[j] = 0.0;
                for (size_t i = 0; i < s->len_q; i++) {
                    const float *qi = p.q.p + b * (size_t)p.a.q_layout.batch +
                                      h * (size_t)p.a.q_layout.head +
                                      i * (size_t)p.a.q_layout.token;
                    const ptrdiff_t ip =
                        (ptrdiff_t)i + (ptrdiff_t)s->len_k - (ptrdiff_t)s->len_q + p.a.pos_offset;
                    double m = sink;
                    size_t n = 0;
                    for (size_t j = 0; j < s->len_k; j++) {
                        if (!d[i * s->len_k + j])
                            continue;
                        const float *kj = p.k.p + b * (size_t)p.a.k_layout.batch +
                                          hk * (size_t)p.a.k_layout.head +
                                          j * (size_t)p.a.k_layout.token;
                        double dot = 0.0;
                        for (size_t t = 0; t < s->dim_qk; t++)
                            dot += (double)qi[t] * (double)kj[t];
                        double x = scale * dot;
                        if (p.a.softcap != 0.0f)
                            x = p.a.softcap * tanh(x / p.a.softcap);
                        if (p.a.alibi_slopes)
                            x -= p.a.alibi_slopes[h] * fabs((double)(ip - (ptrdiff_t)j));
                        sc[j] = x;
                        m = x > m ? x : m;
                        n++;
                    }
                    if (n == 0)
                        continue;
                    double l = sink == -INFINITY ? 0.0 : exp(sink - m);
                    for (size_t j = 0; j < s->len_k; j++)
                        if (d[i * s->len_k + j])
                            l += exp(sc[j] - m);
                    const double lse = m + log(l);
                    double sum = 0.0;
                    for (size_t j = 0; j < s->len_k; j++) {
                        if (!d[i * s->len_k + j])
                            continue;
                        const double want = exp(sc[j] - lse);
                        if (!tu_close(*out, (float)want, TU_TOL))
                            ck_abort_msg("%s: p[b%zu h%zu i%zu j%zu] = %.9g, want %.9g", what, b, h,
                                         i, j, *out, want);
                        sum += *out++;
                        col[j] += want;
                    }
                    const double share = sink == -INFINITY ? 0.0 : exp(sink - lse);
                    if (!(fabs(sum - (1.0 - share)) <= 1e-5 * (double)(n + 1)))
                        ck_abort_msg("%s: row b%zu h%zu i%zu sums to %.9g, want 1 - %.9g", what, b,
                                     h, i, sum, share);
                }
                const float *cg = cs.p + (b * s->heads_q + h) * s->len_k;
                for (size_t j = 0; j < s->len_k; j++)
                    if (!tu_close(cg[j], (float)col[j], TU_TOL))
                        ck_abort_msg("%s: col_sums[b%zu h%zu j%zu] = %.9g, want %.9g", what, b, h,
                                     j, cg[j], col[j]);
            }
        free(sc);
        free(col);
        free(d);
        tu_buf_free(&pr);
        tu_buf_free(&cs);
        spattn_plan_free(plan);
        mp_free(&p);
    }
}
END_TEST

Suite *suite_modifiers(void);
Suite *suite_modifiers(void)
{
    Suite *s = suite_create("modifiers");
    const int n = tu_n_isas();
    TCase *tc = tcase_create("forward");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, sweep, 0, n);
    tcase_add_loop_test(tc, rows_without_keys, 0, n);
    tcase_add_loop_test(tc, packed_decode, 0, n);
    tcase_add_loop_test(tc, same_bits_any_threads, 0, n);
    tcase_add_loop_test(tc, alibi_far_positions, 0, n);
    tcase_add_test(tc, gpt_oss_layer);
    suite_add_tcase(s, tc);

    tc = tcase_create("probs");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, probs_with_modifiers, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

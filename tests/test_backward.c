/*
 * spattn_plan_backward on every ISA this host runs, against spattn_reference_backward within
 * the contract's 1e-4 * (1 + |ref|): random shapes and mask kinds (with rows and whole query
 * tiles that see nothing and keys no row sees, whose K and V rows hold NaN), MHA/GQA/MQA,
 * padded layouts (NaN in the padding), softcap, ALiBi and sinks; bitwise equality across 1, 2
 * and 3 threads; NaN kept to the pairs that read it; and concurrent calls sharing one plan
 * (its first backward builds the key-tile lists); query tiles cut into several bands of kept
 * dS. Bad arguments: test_backward_hostile.c.
 */
#define _POSIX_C_SOURCE 200809L /* pthread barriers */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/backward_hooks.h"
#include "test_util.h"

#define BW_TOL 1e-4
#define MAX_HEADS 12
#define MAX_MASKS 24

typedef struct bproblem {
    spattn_args a;
    spattn_grads g;
    tu_buf q, k, v, o, lse, d_o, dq, dk, dv, dsinks;
    float slopes[MAX_HEADS], sinks[MAX_HEADS];
    float *ref_dq, *ref_dk, *ref_dv, ref_dsinks[MAX_HEADS];
    spattn_mask *masks[MAX_MASKS];
    size_t n_masks;
} bproblem;

static spattn_layout padded(size_t batch, size_t heads, size_t len, size_t dim, size_t pad,
                            size_t *elems)
{
    spattn_layout l;
    l.token = (ptrdiff_t)(dim + pad);
    l.head = l.token * (ptrdiff_t)len;
    l.batch = l.head * (ptrdiff_t)heads;
    *elems = (size_t)l.batch * batch;
    return l;
}

static void fill(tu_rng *r, tu_buf *b, size_t dim, size_t pad)
{
    for (size_t i = 0; i < b->n; i++)
        b->p[i] = i % (dim + pad) < dim ? tu_normal(r) : NAN;
}

static const spattn_mask *const *mlist(const bproblem *p)
{
    return p->n_masks ? (const spattn_mask *const *)p->masks : NULL;
}

/* K and V rows that no mask allows become NaN: no gradient may see them. */
static void poison_unseen_keys(bproblem *p)
{
    const spattn_shape *s = &p->a.shape;
    uint8_t *d = malloc(s->len_q * s->len_k);
    ck_assert_ptr_nonnull(d);
    for (size_t j = 0; j < s->len_k; j++) {
        int used = p->n_masks == 0;
        for (size_t m = 0; m < p->n_masks && !used; m++) {
            ck_assert_int_eq(spattn_mask_to_dense(p->masks[m], d, s->len_k), SPATTN_OK);
            for (size_t i = 0; i < s->len_q && !used; i++)
                used = d[i * s->len_k + j];
        }
        if (used)
            continue;
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_kv; h++) {
                float *kr = p->k.p + b * (size_t)p->a.k_layout.batch +
                            h * (size_t)p->a.k_layout.head + j * (size_t)p->a.k_layout.token;
                float *vr = p->v.p + b * (size_t)p->a.v_layout.batch +
                            h * (size_t)p->a.v_layout.head + j * (size_t)p->a.v_layout.token;
                for (size_t x = 0; x < s->dim_qk; x++)
                    kr[x] = NAN;
                for (size_t x = 0; x < s->dim_v; x++)
                    vr[x] = NAN;
            }
    }
    free(d);
}

/* A random problem of shape s (mods: bit 0 softcap, bit 1 ALiBi, bit 2 sinks), its forward
   by the reference, and the reference gradients. */
static void bp_make(bproblem *p, tu_rng *r, spattn_shape s, size_t n_masks, int mods)
{
    memset(p, 0, sizeof *p);
    ck_assert(s.heads_q <= MAX_HEADS && n_masks <= MAX_MASKS);
    p->a.shape = s;
    const size_t pad = tu_range(r, 0, 3);
    size_t nq, nk, nv, no;
    p->a.q_layout = padded(s.batch, s.heads_q, s.len_q, s.dim_qk, pad, &nq);
    p->a.k_layout = padded(s.batch, s.heads_kv, s.len_k, s.dim_qk, pad, &nk);
    p->a.v_layout = padded(s.batch, s.heads_kv, s.len_k, s.dim_v, pad, &nv);
    p->a.o_layout = padded(s.batch, s.heads_q, s.len_q, s.dim_v, pad, &no);
    p->q = tu_buf_new(nq);
    p->k = tu_buf_new(nk);
    p->v = tu_buf_new(nv);
    p->o = tu_buf_new(no);
    p->d_o = tu_buf_new(no);
    p->dq = tu_buf_new(nq);
    p->dk = tu_buf_new(nk);
    p->dv = tu_buf_new(nv);
    p->lse = tu_buf_new(s.batch * s.heads_q * s.len_q);
    p->dsinks = tu_buf_new(s.heads_q);
    fill(r, &p->q, s.dim_qk, pad);
    fill(r, &p->k, s.dim_qk, pad);
    fill(r, &p->v, s.dim_v, pad);
    fill(r, &p->d_o, s.dim_v, pad);
    p->a.q = p->q.p;
    p->a.k = p->k.p;
    p->a.v = p->v.p;
    p->a.o = p->o.p;
    p->a.lse = p->lse.p;
    p->a.scale = tu_range(r, 0, 1) ? 0.0f : (float)(0.05 + 0.3 * tu_uniform(r));
    p->a.softcap = (mods & 1) ? (float)(1.0 + 10.0 * tu_uniform(r)) : 0.0f;
    for (size_t h = 0; h < s.heads_q; h++) {
        p->slopes[h] = (float)(0.2 * tu_uniform(r));
        p->sinks[h] = h % 4 == 3 ? -INFINITY : tu_normal(r);
    }
    if (mods & 2) {
        p->a.alibi_slopes = p->slopes;
        p->a.pos_offset = (ptrdiff_t)tu_range(r, 0, 6) - 3;
    }
    if (mods & 4)
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
    p->n_masks = n_masks;
    for (size_t m = 0; m < n_masks; m++)
        p->masks[m] = tu_random_mask(r, s.len_q, s.len_k);
    poison_unseen_keys(p);

    ck_assert_int_eq(spattn_reference_forward(&p->a, mlist(p), p->n_masks), SPATTN_OK);
    ck_assert_int_eq(spattn_reference_backward(&p->a, mlist(p), p->n_masks, &p->g), SPATTN_OK);
    p->ref_dq = malloc(nq * sizeof(float));
    p->ref_dk = malloc(nk * sizeof(float));
    p->ref_dv = malloc(nv * sizeof(float));
    ck_assert(p->ref_dq && p->ref_dk && p->ref_dv);
    memcpy(p->ref_dq, p->dq.p, nq * sizeof(float));
    memcpy(p->ref_dk, p->dk.p, nk * sizeof(float));
    memcpy(p->ref_dv, p->dv.p, nv * sizeof(float));
    memcpy(p->ref_dsinks, p->dsinks.p, s.heads_q * sizeof(float));
}

static void bp_free(bproblem *p)
{
    tu_buf *bufs[] = {&p->q,   &p->k,  &p->v,  &p->o,  &p->lse,
                      &p->d_o, &p->dq, &p->dk, &p->dv, &p->dsinks};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        tu_buf_free(bufs[i]);
    free(p->ref_dq);
    free(p->ref_dk);
    free(p->ref_dv);
    for (size_t m = 0; m < p->n_masks; m++)
        spattn_mask_free(p->masks[m]);
}

static void clear_grads(bproblem *p)
{
    tu_buf_reset(&p->dq);
    tu_buf_reset(&p->dk);
    tu_buf_reset(&p->dv);
    tu_buf_reset(&p->dsinks);
}

/* Every element of a gradient view against the reference; the padding between rows (and the
   guards) must still hold the canary. Returns the worst error relative to 1 + |ref|. */
static double compare_view(const tu_buf *got, const float *ref, size_t dim, size_t pad,
                           const char *what, const char *isa)
{
    double worst = 0.0;
    ck_assert_msg(tu_buf_guards_ok(got), "%s %s: guard overwritten", isa, what);
    for (size_t i = 0; i < got->n; i++) {
        const float x = got->p[i];
        if (i % (dim + pad) >= dim) {
            TU_CHECK_MSG(tu_is_canary(x), "%s %s: padding %zu written", isa, what, i);
            continue;
        }
        TU_CHECK_MSG(tu_close(x, ref[i], BW_TOL), "%s %s[%zu]: %.8g, reference %.8g", isa, what, i,
                     (double)x, (double)ref[i]);
        const double e = fabs((double)x - (double)ref[i]) / (1.0 + fabs((double)ref[i]));
        worst = e > worst ? e : worst;
    }
    return worst;
}

/* Recompute the reference (forward, then gradients) after a test changed the problem's
   masks or inputs, and keep its gradients as the ones to compare with. */
static void redo_reference(bproblem *p)
{
    ck_assert_int_eq(spattn_reference_forward(&p->a, mlist(p), p->n_masks), SPATTN_OK);
    clear_grads(p);
    ck_assert_int_eq(spattn_reference_backward(&p->a, mlist(p), p->n_masks, &p->g), SPATTN_OK);
    memcpy(p->ref_dq, p->dq.p, p->dq.n * sizeof(float));
    memcpy(p->ref_dk, p->dk.p, p->dk.n * sizeof(float));
    memcpy(p->ref_dv, p->dv.p, p->dv.n * sizeof(float));
    memcpy(p->ref_dsinks, p->dsinks.p, p->a.shape.heads_q * sizeof(float));
}

static double compare_all(const bproblem *p, const char *isa)
{
    const spattn_shape *s = &p->a.shape;
    const size_t pad = (size_t)p->a.q_layout.token - s->dim_qk;
    double w = compare_view(&p->dq, p->ref_dq, s->dim_qk, pad, "dq", isa);
    double e = compare_view(&p->dk, p->ref_dk, s->dim_qk, pad, "dk", isa);
    w = e > w ? e : w;
    e = compare_view(&p->dv, p->ref_dv, s->dim_v, pad, "dv", isa);
    w = e > w ? e : w;
    if (p->a.sinks == NULL) {
        ck_assert_msg(tu_buf_untouched(&p->dsinks), "%s: d_sinks written without sinks", isa);
        return w;
    }
    for (size_t h = 0; h < s->heads_q; h++) {
        ck_assert_msg(tu_close(p->dsinks.p[h], p->ref_dsinks[h], BW_TOL),
                      "%s dsinks[%zu]: %.8g, reference %.8g", isa, h, (double)p->dsinks.p[h],
                      (double)p->ref_dsinks[h]);
        e = fabs((double)p->dsinks.p[h] - p->ref_dsinks[h]) / (1.0 + fabs(p->ref_dsinks[h]));
        w = e > w ? e : w;
    }
    return w;
}

/* The forward through the plan (o and lse as a user has them), then its backward. */
static void run_plan(bproblem *p, spattn_isa isa, int threads)
{
    spattn_options opt = {isa, threads};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn_plan_create(&p->a.shape, mlist(p), p->n_masks, &opt, &plan), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(plan, &p->a), SPATTN_OK);
    clear_grads(p);
    ck_assert_int_eq(spattn_plan_backward(plan, &p->a, &p->g), SPATTN_OK);
    spattn_plan_free(plan);
}

static spattn_shape random_shape(tu_rng *r, int c)
{
    spattn_shape s;
    s.batch = tu_range(r, 1, 2);
    s.heads_kv = tu_range(r, 1, 3);
    s.heads_q = s.heads_kv * tu_range(r, 1, c % 5 == 4 ? 4 : 2);
    if (c % 7 == 6) { /* MQA */
        s.heads_kv = 1;
        s.heads_q = tu_range(r, 2, 6);
    }
    s.len_q = tu_range(r, 1, c % 3 == 0 ? 20 : 90);
    s.len_k = tu_range(r, 1, c % 3 == 1 ? 30 : 200);
    s.dim_qk = tu_range(r, 1, c % 4 == 0 ? 80 : 40);
    s.dim_v = c % 2 ? s.dim_qk : tu_range(r, 1, 70);
    return s;
}

static size_t random_n_masks(tu_rng *r, const spattn_shape *s)
{
    switch (tu_range(r, 0, 3)) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
        return s->heads_q;
    default:
        return s->batch * s->heads_q <= MAX_MASKS ? s->batch * s->heads_q : 1;
    }
}

START_TEST(every_isa_matches_reference)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "backward");
    if (kt == NULL)
        return;
    tu_rng r = {0x5eedba0cull + 977u * (uint64_t)_i};
    double worst = 0.0;
    const int n = tu_cases(40);
    for (int c = 0; c < n; c++) {
        const spattn_shape s = random_shape(&r, c);
        bproblem p;
        bp_make(&p, &r, s, random_n_masks(&r, &s), c % 8);
        run_plan(&p, kt->isa, 1);
        const double w = compare_all(&p, kt->name);
        worst = w > worst ? w : worst;
        bp_free(&p);
    }
    printf("backward %s: worst error %.3g of 1 + |ref| (tolerance %g)\n", kt->name, worst, BW_TOL);
}
END_TEST

/* A mask of the named kind for a len_q x len_k problem. */
static spattn_mask *kind_mask(tu_rng *r, int kind, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    uint8_t *d = calloc(lq * lk, 1);
    ck_assert_ptr_nonnull(d);
    switch (kind) {
    case 0:
        ck_assert_int_eq(spattn_mask_causal(lq, lk, &m), SPATTN_OK);
        break;
    case 1:
        ck_assert_int_eq(spattn_mask_window(lq, lk, 20, 5, &m), SPATTN_OK);
        break;
    case 2: { /* 64 x 64 blocks, some on */
        const size_t nbq = (lq + 63) / 64, nbk = (lk + 63) / 64;
        uint8_t *lay = malloc(nbq * nbk);
        ck_assert_ptr_nonnull(lay);
        for (size_t i = 0; i < nbq * nbk; i++)
            lay[i] = tu_uniform(r) < 0.4;
        ck_assert_int_eq(spattn_mask_from_blocks(lq, lk, 64, 64, lay, &m), SPATTN_OK);
        free(lay);
        break;
    }
    case 3: { /* a few keys per row through CSR, some rows and columns empty */
        for (size_t i = 0; i < lq; i++)
            for (size_t t = 0; t < 4 && i % 5 != 2; t++) /* odd keys only */
                d[i * lk + 2 * tu_range(r, 0, lk / 2 - 1) + 1] = 1;
        int64_t *rp = malloc((lq + 1) * sizeof *rp);
        int32_t *ci = malloc(lq * lk * sizeof *ci + 1);
        ck_assert(rp && ci);
        tu_dense_to_csr(d, lq, lk, rp, ci);
        ck_assert_int_eq(spattn_mask_from_csr(lq, lk, rp, ci, &m), SPATTN_OK);
        free(rp);
        free(ci);
        break;
    }
    default: /* dense random with the first query tile empty, and even keys and the second
                key tile never seen */
        for (size_t i = 16; i < lq; i++)
            for (size_t j = 1; j < lk; j += 2)
                d[i * lk + j] = j / 64 != 1 && tu_uniform(r) < 0.6;
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
        break;
    }
    free(d);
    return m;
}

/* Each mask kind on each ISA, with every modifier, and 2 and 3 threads bitwise equal to 1;
   the last run is kind 4 again without sinks (whose gradient alone reads empty query tiles'
   packs). */
START_TEST(mask_kinds_and_threads)
{
    tu_rng r = {0x7a11ed00ull + (uint64_t)_i};
    const int kind = _i < 5 ? _i : 4;
    /* smaller under sanitizers and emulation (SPATTN_TEST_SCALE below 1) */
    const int small = tu_cases(10) < 10;
    spattn_shape s = {2, 4, 2, small ? 40 : 150, small ? 140 : 200, 40, 24};
    bproblem p;
    memset(&p, 0, sizeof p);
    bp_make(&p, &r, s, 0, _i < 5 ? 7 : 3);
    /* Swap in the kind's mask (bp_make took none) and redo the reference. */
    spattn_mask *m = kind_mask(&r, kind, s.len_q, s.len_k);
    p.masks[0] = m;
    p.n_masks = 1;
    fill(&r, &p.k, s.dim_qk, (size_t)p.a.k_layout.token - s.dim_qk);
    fill(&r, &p.v, s.dim_v, (size_t)p.a.v_layout.token - s.dim_v);
    poison_unseen_keys(&p);
    redo_reference(&p);
    for (size_t i = 0; i < tu_n_kernels(); i++) {
        const spattn_kernel_table *kt = tu_kernel_table(i, "backward");
        if (kt == NULL)
            continue;
        float *one[3] = {NULL, NULL, NULL};
        for (int threads = 1; threads <= 3; threads++) {
            run_plan(&p, kt->isa, threads);
            compare_all(&p, kt->name);
            const tu_buf *got[3] = {&p.dq, &p.dk, &p.dv};
            for (int t = 0; t < 3; t++) {
                if (threads == 1) {
                    one[t] = malloc(got[t]->n * sizeof(float));
                    ck_assert_ptr_nonnull(one[t]);
                    memcpy(one[t], got[t]->p, got[t]->n * sizeof(float));
                } else {
                    ck_assert_msg(memcmp(one[t], got[t]->p, got[t]->n * sizeof(float)) == 0,
                                  "%s: %d threads differ from 1 (gradient %d)", kt->name, threads,
                                  t);
                }
            }
        }
        for (int t = 0; t < 3; t++)
            free(one[t]);
    }
    bp_free(&p);
}
END_TEST

/* NaN in the K row of a key that only later rows see (causal), and in the V row of another:
   the rows before them, and the keys they do not reach, keep finite gradients equal to the
   reference's (which gives NaN exactly where a gradient depends on them). */
START_TEST(nan_stays_with_its_pairs)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "backward");
    if (kt == NULL)
        return;
    tu_rng r = {0x0a0a5eedull};
    const spattn_shape s = {1, 2, 1, 70, 70, 20, 12};
    bproblem p;
    bp_make(&p, &r, s, 0, 0);
    ck_assert_int_eq(spattn_mask_causal(s.len_q, s.len_k, &p.masks[0]), SPATTN_OK);
    p.n_masks = 1;
    p.k.p[40 * (size_t)p.a.k_layout.token] = NAN;
    p.v.p[50 * (size_t)p.a.v_layout.token + 3] = NAN;
    redo_reference(&p);
    /* The reference itself: rows before 40 finite, row 45 NaN. */
    ck_assert(isfinite(p.ref_dq[39 * (size_t)p.a.q_layout.token]));
    ck_assert(isnan(p.ref_dq[45 * (size_t)p.a.q_layout.token]));
    run_plan(&p, kt->isa, 1);
    compare_all(&p, kt->name);
    bp_free(&p);
}
END_TEST

/* Query tiles cut into bands of a few kept dS tiles (one query tile per band at the least),
   or keeping none (a cap of 1 float: every query tile keeps more than four times that, and
   the dQ pass recomputes dS), on every ISA, 1 and 2 threads: gradients within the
   tolerance, 2 threads bitwise 1; with one query head per KV head the sums keep their order
   whatever the cut, so every cut gives the bits of keeping nothing. */
START_TEST(bands_of_kept_ds)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "backward");
    if (kt == NULL)
        return;
    tu_rng r = {0xba4d5eedull};
    const spattn_shape shapes[2] = {{2, 3, 3, 90, 200, 24, 20}, {1, 4, 2, 70, 150, 33, 16}};
    const size_t caps[3] = {1, 20000, 0};
    for (int sh = 0; sh < 2; sh++) {
        bproblem p;
        bp_make(&p, &r, shapes[sh], sh == 0 ? shapes[0].heads_q : 1, 7);
        float *finest[3] = {NULL, NULL, NULL}; /* cap 1's gradients: nothing kept */
        for (int c = 0; c < 3; c++) {
            spattn__bwd_set_band_floats(caps[c]);
            float *first[3] = {NULL, NULL, NULL};
            for (int threads = 1; threads <= 2; threads++) {
                run_plan(&p, kt->isa, threads);
                compare_all(&p, kt->name);
                const tu_buf *got[3] = {&p.dq, &p.dk, &p.dv};
                for (int t = 0; t < 3; t++) {
                    if (threads == 1) {
                        first[t] = malloc(got[t]->n * sizeof(float));
                        ck_assert_ptr_nonnull(first[t]);
                        memcpy(first[t], got[t]->p, got[t]->n * sizeof(float));
                    } else {
                        ck_assert_msg(memcmp(first[t], got[t]->p, got[t]->n * sizeof(float)) == 0,
                                      "%s: cap %zu, 2 threads differ from 1 (gradient %d)",
                                      kt->name, caps[c], t);
                    }
                }
            }
            const tu_buf *got[3] = {&p.dq, &p.dk, &p.dv};
            for (int t = 0; t < 3; t++) {
                if (sh == 0 && c == 0) {
                    finest[t] = first[t];
                    continue;
                }
                if (sh == 0)
                    ck_assert_msg(memcmp(finest[t], got[t]->p, got[t]->n * sizeof(float)) == 0,
                                  "%s: cap %zu differs from keeping none (gradient %d)", kt->name,
                                  caps[c], t);
                free(first[t]);
            }
        }
        spattn__bwd_set_band_floats(0);
        for (int t = 0; t < 3; t++)
            free(finest[t]);
        bp_free(&p);
    }
}
END_TEST

/* Scattered keys (pair-path tiles, whose pairs are evaluated in batches of 16 that span tiles
   and query tiles) in the same key columns as FULL and PARTIAL column-path tiles, with
   softcap and ALiBi, on every ISA: gradients within the tolerance, 2 and 3 threads bitwise 1,
   and keeping no dS (the dQ pass recomputes the pairs in its own batches) bitwise the kept
   one. */
START_TEST(pair_batches_beside_column_tiles)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "backward");
    if (kt == NULL)
        return;
    tu_rng r = {0x9a125eedull};
    const spattn_shape s = {1, 2, 1, 150, 200, 36, 20};
    bproblem p;
    bp_make(&p, &r, s, 0, 3);
    uint8_t *d = calloc(s.len_q * s.len_k, 1);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < s.len_q; i++) {
        for (int t = 0; t < 3; t++) /* a few scattered keys per row: pair tiles */
            d[i * s.len_k + tu_range(&r, 0, s.len_k - 1)] = 1;
        if (i / 16 == 2) /* query tile 2: FULL over keys 64 .. 127 */
            memset(d + i * s.len_k + 64, 1, 64);
        if (i / 16 == 5) /* query tile 5: a PARTIAL band on the column path */
            memset(d + i * s.len_k + 40 + (i % 16), 1, 60);
    }
    ck_assert_int_eq(spattn_mask_from_dense(s.len_q, s.len_k, d, s.len_k, &p.masks[0]), SPATTN_OK);
    free(d);
    p.n_masks = 1;
    poison_unseen_keys(&p);
    redo_reference(&p);
    float *one[3] = {NULL, NULL, NULL};
    const tu_buf *got[3] = {&p.dq, &p.dk, &p.dv};
    for (int run = 0; run < 4; run++) { /* 1, 2, 3 threads; then 1 thread keeping nothing */
        spattn__bwd_set_band_floats(run == 3 ? 1 : 0);
        run_plan(&p, kt->isa, run == 3 ? 1 : run + 1);
        compare_all(&p, kt->name);
        for (int t = 0; t < 3; t++) {
            if (run == 0) {
                one[t] = malloc(got[t]->n * sizeof(float));
                ck_assert_ptr_nonnull(one[t]);
                memcpy(one[t], got[t]->p, got[t]->n * sizeof(float));
            } else {
                ck_assert_msg(memcmp(one[t], got[t]->p, got[t]->n * sizeof(float)) == 0,
                              "%s: run %d differs from 1 thread (gradient %d)", kt->name, run, t);
            }
        }
    }
    spattn__bwd_set_band_floats(0);
    for (int t = 0; t < 3; t++)
        free(one[t]);
    bp_free(&p);
}
END_TEST

/* A plan keeps the backward's buffers from one call to the next (and grows them when a call
   needs more): calls on one plan with other inputs, other modifiers and other cuts into
   bands give the bits of a fresh plan, on every ISA. */
START_TEST(kept_buffers_between_calls)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "backward");
    if (kt == NULL)
        return;
    tu_rng r = {0x6e9b0f5dull};
    const spattn_shape s = {2, 4, 2, 90, 170, 24, 20};
    bproblem p;
    bp_make(&p, &r, s, s.heads_q, 7);
    spattn_options opt = {kt->isa, 2};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn_plan_create(&s, mlist(&p), p.n_masks, &opt, &plan), SPATTN_OK);
    float *fresh[3] = {NULL, NULL, NULL};
    const tu_buf *got[3] = {&p.dq, &p.dk, &p.dv};
    const size_t caps[4] = {1, 0, 20000, 0}; /* keep nothing, then grow */
    for (int call = 0; call < 4; call++) {
        if (call == 1) { /* new inputs, no modifiers: nothing of the first call may remain */
            fill(&r, &p.q, s.dim_qk, (size_t)p.a.q_layout.token - s.dim_qk);
            fill(&r, &p.k, s.dim_qk, (size_t)p.a.k_layout.token - s.dim_qk);
            fill(&r, &p.v, s.dim_v, (size_t)p.a.v_layout.token - s.dim_v);
            fill(&r, &p.d_o, s.dim_v, (size_t)p.a.o_layout.token - s.dim_v);
            p.a.softcap = 0.0f;
            p.a.alibi_slopes = NULL;
            p.a.pos_offset = 0;
            p.a.sinks = NULL;
            poison_unseen_keys(&p);
            redo_reference(&p);
        }
        spattn__bwd_set_band_floats(caps[call]);
        run_plan(&p, kt->isa, 2); /* a fresh plan's bits */
        for (int t = 0; t < 3; t++) {
            free(fresh[t]);
            fresh[t] = malloc(got[t]->n * sizeof(float));
            ck_assert_ptr_nonnull(fresh[t]);
            memcpy(fresh[t], got[t]->p, got[t]->n * sizeof(float));
        }
        ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
        clear_grads(&p);
        ck_assert_int_eq(spattn_plan_backward(plan, &p.a, &p.g), SPATTN_OK);
        compare_all(&p, kt->name);
        for (int t = 0; t < 3; t++)
            ck_assert_msg(memcmp(fresh[t], got[t]->p, got[t]->n * sizeof(float)) == 0,
                          "%s: call %d on a kept plan differs from a fresh plan (gradient %d)",
                          kt->name, call, t);
    }
    spattn__bwd_set_band_floats(0);
    for (int t = 0; t < 3; t++)
        free(fresh[t]);
    spattn_plan_free(plan);
    bp_free(&p);
}
END_TEST

/* Several threads making the first backward calls of one plan at once (each builds the key
   tile lists; one publishes) and more after: every result bitwise the single-threaded one. */
typedef struct bw_worker {
    pthread_t tid;
    pthread_barrier_t *bar;
    const spattn_plan *plan;
    spattn_args a;
    spattn_grads g;
    float *dq, *dk, *dv, ds[MAX_HEADS];
    spattn_status st[3];
} bw_worker;

static void *bw_run(void *arg)
{
    bw_worker *w = arg;
    w->g.d_q = w->dq;
    w->g.d_k = w->dk;
    w->g.d_v = w->dv;
    w->g.d_sinks = w->ds;
    pthread_barrier_wait(w->bar);
    for (int i = 0; i < 3; i++)
        w->st[i] = spattn_plan_backward(w->plan, &w->a, &w->g);
    return NULL;
}

START_TEST(concurrent_calls)
{
    tu_rng r = {0xc0c0a11eull};
    const spattn_shape s = {1, 4, 2, 70, 130, 24, 16};
    bproblem p;
    bp_make(&p, &r, s, 4, 7);
    spattn_options opt = {SPATTN_ISA_AUTO, 1};
    spattn_plan *plan = NULL;
    ck_assert_int_eq(spattn_plan_create(&s, mlist(&p), p.n_masks, &opt, &plan), SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
    enum { NW = 4 };
    bw_worker w[NW];
    pthread_barrier_t bar;
    ck_assert_int_eq(pthread_barrier_init(&bar, NULL, NW), 0);
    for (int i = 0; i < NW; i++) {
        w[i].bar = &bar;
        w[i].plan = plan;
        w[i].a = p.a;
        w[i].g = p.g;
        w[i].dq = malloc(p.dq.n * sizeof(float));
        w[i].dk = malloc(p.dk.n * sizeof(float));
        w[i].dv = malloc(p.dv.n * sizeof(float));
        ck_assert(w[i].dq && w[i].dk && w[i].dv);
        memcpy(w[i].dq, p.dq.p, p.dq.n * sizeof(float)); /* the padding's canaries */
        memcpy(w[i].dk, p.dk.p, p.dk.n * sizeof(float));
        memcpy(w[i].dv, p.dv.p, p.dv.n * sizeof(float));
        ck_assert_int_eq(pthread_create(&w[i].tid, NULL, bw_run, &w[i]), 0);
    }
    for (int i = 0; i < NW; i++)
        ck_assert_int_eq(pthread_join(w[i].tid, NULL), 0);
    pthread_barrier_destroy(&bar);
    /* The single-threaded call after them, on the same plan, is the reference bits. */
    clear_grads(&p);
    ck_assert_int_eq(spattn_plan_backward(plan, &p.a, &p.g), SPATTN_OK);
    compare_all(&p, "concurrent");
    for (int i = 0; i < NW; i++) {
        for (int c = 0; c < 3; c++)
            ck_assert_int_eq(w[i].st[c], SPATTN_OK);
        for (size_t x = 0; x < p.dq.n; x++)
            TU_CHECK(memcmp(&w[i].dq[x], &p.dq.p[x], sizeof(float)) == 0);
        ck_assert(memcmp(w[i].dk, p.dk.p, p.dk.n * sizeof(float)) == 0);
        ck_assert(memcmp(w[i].dv, p.dv.p, p.dv.n * sizeof(float)) == 0);
        ck_assert(memcmp(w[i].ds, p.dsinks.p, s.heads_q * sizeof(float)) == 0);
        free(w[i].dq);
        free(w[i].dk);
        free(w[i].dv);
    }
    spattn_plan_free(plan);
    bp_free(&p);
}
END_TEST

Suite *suite_backward(void);
Suite *suite_backward(void)
{
    Suite *s = suite_create("backward");
    TCase *tc = tcase_create("isas");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, every_isa_matches_reference, 0, (int)tu_n_kernels());
    tcase_add_loop_test(tc, mask_kinds_and_threads, 0, 6);
    tcase_add_loop_test(tc, nan_stays_with_its_pairs, 0, (int)tu_n_kernels());
    tcase_add_loop_test(tc, pair_batches_beside_column_tiles, 0, (int)tu_n_kernels());
    tcase_add_loop_test(tc, bands_of_kept_ds, 0, (int)tu_n_kernels());
    tcase_add_loop_test(tc, kept_buffers_between_calls, 0, (int)tu_n_kernels());
    tcase_add_test(tc, concurrent_calls);
    suite_add_tcase(s, tc);
    return s;
}

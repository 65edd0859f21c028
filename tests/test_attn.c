/* Attention kernels of every available ISA against the float64 reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mask/mask_impl.h"
#include "plan/test_hooks.h"
#include "test_util.h"

/* ---- random problems ------------------------------------------------------------------- */

typedef struct problem {
    spattn_args a;
    tu_buf q, k, v, o, lse;
    spattn_mask *masks[64];
    size_t n_masks;
} problem;

enum { LAYOUT_BHTD, LAYOUT_BTHD, LAYOUT_PADDED, N_LAYOUTS };

/* A layout of the given kind; *elems gets the buffer length it needs. */
static spattn_layout make_layout(int kind, size_t batch, size_t heads, size_t len, size_t dim,
                                 size_t pad, size_t *elems)
{
    spattn_layout l;
    if (kind == LAYOUT_BHTD) {
        l = spattn_layout_bhtd(heads, len, dim);
    } else if (kind == LAYOUT_BTHD) {
        l = spattn_layout_bthd(heads, len, dim);
    } else {
        /* Every axis padded: rows, heads and batches each leave a gap the kernel must skip. */
        l.token = (ptrdiff_t)(dim + pad);
        l.head = (ptrdiff_t)(len * (dim + pad) + pad);
        l.batch = (ptrdiff_t)(heads * (size_t)l.head + 3 * pad);
    }
    *elems = (batch - 1) * (size_t)l.batch + (heads - 1) * (size_t)l.head +
             (len - 1) * (size_t)l.token + dim;
    return l;
}

/* Input buffers start as NaN everywhere and get values only inside the view, so a kernel
   that reads padding into a result shows NaN. */
static void fill_view(tu_rng *r, float *p, spattn_layout l, size_t batch, size_t heads, size_t len,
                      size_t dim, float amp)
{
    for (size_t b = 0; b < batch; b++)
        for (size_t h = 0; h < heads; h++)
            for (size_t t = 0; t < len; t++)
                for (size_t d = 0; d < dim; d++)
                    p[(ptrdiff_t)b * l.batch + (ptrdiff_t)h * l.head + (ptrdiff_t)t * l.token +
                      (ptrdiff_t)d] = amp * tu_normal(r);
}

static void fill_nan(tu_buf *b)
{
    for (size_t i = 0; i < b->n; i++)
        b->p[i] = NAN;
}

/* Keys no mask of the problem ever allows: their K and V rows become NaN. */
static void poison_unused_keys(problem *p)
{
    const spattn_shape *s = &p->a.shape;
    if (p->n_masks == 0)
        return;
    uint8_t *used = calloc(s->len_k, 1), *dense = malloc(s->len_q * s->len_k);
    for (size_t m = 0; m < p->n_masks; m++) {
        ck_assert_int_eq(spattn_mask_to_dense(p->masks[m], dense, s->len_k), SPATTN_OK);
        for (size_t i = 0; i < s->len_q; i++)
            for (size_t j = 0; j < s->len_k; j++)
                used[j] |= dense[i * s->len_k + j];
    }
    for (size_t j = 0; j < s->len_k; j++) {
        if (used[j])
            continue;
        for (size_t b = 0; b < s->batch; b++)
            for (size_t h = 0; h < s->heads_kv; h++) {
                float *kr = p->k.p + (ptrdiff_t)b * p->a.k_layout.batch +
                            (ptrdiff_t)h * p->a.k_layout.head + (ptrdiff_t)j * p->a.k_layout.token;
                float *vr = p->v.p + (ptrdiff_t)b * p->a.v_layout.batch +
                            (ptrdiff_t)h * p->a.v_layout.head + (ptrdiff_t)j * p->a.v_layout.token;
                for (size_t d = 0; d < s->dim_qk; d++)
                    kr[d] = NAN;
                for (size_t d = 0; d < s->dim_v; d++)
                    vr[d] = (d & 1) ? INFINITY : NAN;
            }
    }
    free(used);
    free(dense);
}

/* NaN or +-Inf in one element of a few K or V rows, whatever the masks say: rows that allow
   such a key must come out as the reference says (NaN or Inf), every other row finite. This is
   what catches a kernel that multiplies a masked key's V by p = 0 (0 * NaN = NaN). */
static void poison_some_keys(problem *p, tu_rng *r)
{
    const spattn_shape *s = &p->a.shape;
    static const float bad[] = {NAN, INFINITY, -INFINITY};
    int n = (int)tu_range(r, 1, 3);
    for (int t = 0; t < n; t++) {
        size_t b = tu_range(r, 0, s->batch - 1), h = tu_range(r, 0, s->heads_kv - 1);
        size_t j = tu_range(r, 0, s->len_k - 1);
        float x = bad[tu_range(r, 0, 2)];
        if (tu_uniform(r) < 0.5) {
            p->k.p[(ptrdiff_t)b * p->a.k_layout.batch + (ptrdiff_t)h * p->a.k_layout.head +
                   (ptrdiff_t)j * p->a.k_layout.token + (ptrdiff_t)tu_range(r, 0, s->dim_qk - 1)] =
                x;
        } else {
            p->v.p[(ptrdiff_t)b * p->a.v_layout.batch + (ptrdiff_t)h * p->a.v_layout.head +
                   (ptrdiff_t)j * p->a.v_layout.token + (ptrdiff_t)tu_range(r, 0, s->dim_v - 1)] =
                x;
        }
    }
}

typedef struct problem_opts {
    size_t max_len, max_dim;
    float amp;
    size_t dim_qk, dim_v; /* 0: random */
    size_t keys_per_row;  /* 0: random masks; else masks of exactly this many random keys per
                             row (fewer only where len_k is smaller) */
} problem_opts;

/* Every row allows exactly min(k, lk) keys, chosen at random. */
static spattn_mask *mask_keys_per_row(tu_rng *r, size_t lq, size_t lk, size_t k)
{
    if (k > lk)
        k = lk;
    uint8_t *d = calloc(lq * lk, 1);
    ck_assert(d != NULL);
    for (size_t i = 0; i < lq; i++)
        for (size_t n = 0; n < k;) {
            size_t j = tu_range(r, 0, lk - 1);
            if (!d[i * lk + j]) {
                d[i * lk + j] = 1;
                n++;
            }
        }
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
    free(d);
    return m;
}

/* Layouts, buffers (NaN outside the views), data, scale, softcap and lse of a problem whose
   shape is set; no masks yet. */
static void problem_fill(problem *p, tu_rng *r, float amp)
{
    const spattn_shape *s = &p->a.shape;
    size_t pad = tu_range(r, 1, 7), nq, nk, nv, no;
    int lay = (int)tu_range(r, 0, N_LAYOUTS - 1);
    p->a.q_layout = make_layout(lay, s->batch, s->heads_q, s->len_q, s->dim_qk, pad, &nq);
    p->a.k_layout = make_layout(lay, s->batch, s->heads_kv, s->len_k, s->dim_qk, pad, &nk);
    p->a.v_layout = make_layout((int)tu_range(r, 0, N_LAYOUTS - 1), s->batch, s->heads_kv, s->len_k,
                                s->dim_v, pad, &nv);
    p->a.o_layout = make_layout((int)tu_range(r, 0, N_LAYOUTS - 1), s->batch, s->heads_q, s->len_q,
                                s->dim_v, pad, &no);
    p->q = tu_buf_new(nq);
    p->k = tu_buf_new(nk);
    p->v = tu_buf_new(nv);
    p->o = tu_buf_new(no);
    p->lse = tu_buf_new(s->batch * s->heads_q * s->len_q);
    fill_nan(&p->q);
    fill_nan(&p->k);
    fill_nan(&p->v);
    fill_view(r, p->q.p, p->a.q_layout, s->batch, s->heads_q, s->len_q, s->dim_qk, amp);
    fill_view(r, p->k.p, p->a.k_layout, s->batch, s->heads_kv, s->len_k, s->dim_qk, 1.0f);
    fill_view(r, p->v.p, p->a.v_layout, s->batch, s->heads_kv, s->len_k, s->dim_v, 1.0f);
    p->a.q = p->q.p;
    p->a.k = p->k.p;
    p->a.v = p->v.p;
    p->a.o = p->o.p;
    p->a.lse = tu_uniform(r) < 0.7 ? p->lse.p : NULL;
    p->a.scale = tu_uniform(r) < 0.6 ? 0.0f : (float)(0.05 + 0.5 * tu_uniform(r));
    p->a.softcap = tu_uniform(r) < 0.7 ? 0.0f : (float)(2.0 + 30.0 * tu_uniform(r));
}

static void problem_random(problem *p, tu_rng *r, problem_opts po)
{
    memset(p, 0, sizeof *p);
    spattn_shape *s = &p->a.shape;
    s->batch = tu_range(r, 1, 2);
    s->heads_kv = tu_range(r, 1, 3);
    s->heads_q = s->heads_kv * tu_range(r, 1, 3);
    /* Small lengths are where the edge cases live; keep some large ones. */
    s->len_q = tu_uniform(r) < 0.3 ? tu_range(r, 1, 20) : tu_range(r, 1, po.max_len);
    s->len_k = tu_uniform(r) < 0.3 ? tu_range(r, 1, 20) : tu_range(r, 1, po.max_len);
    s->dim_qk = tu_uniform(r) < 0.5 ? tu_range(r, 1, po.max_dim) : 16 * tu_range(r, 1, 4);
    s->dim_v = tu_uniform(r) < 0.5 ? s->dim_qk : tu_range(r, 1, po.max_dim);
    if (po.dim_qk != 0) {
        s->dim_qk = po.dim_qk;
        s->dim_v = po.dim_v;
    }

    problem_fill(p, r, po.amp);

    int mode = (int)tu_range(r, 0, 3);
    size_t n = mode == 0 ? 0 : mode == 1 ? 1 : mode == 2 ? s->heads_q : s->batch * s->heads_q;
    if (po.keys_per_row != 0 && n == 0)
        n = 1;
    p->n_masks = n;
    for (size_t i = 0; i < n; i++)
        p->masks[i] = po.keys_per_row != 0
                          ? mask_keys_per_row(r, s->len_q, s->len_k, po.keys_per_row)
                          : tu_random_mask(r, s->len_q, s->len_k);
    poison_unused_keys(p);
    if (tu_uniform(r) < 0.3)
        poison_some_keys(p, r);
}

static void problem_free(problem *p)
{
    tu_buf_free(&p->q);
    tu_buf_free(&p->k);
    tu_buf_free(&p->v);
    tu_buf_free(&p->o);
    tu_buf_free(&p->lse);
    for (size_t i = 0; i < p->n_masks; i++)
        spattn_mask_free(p->masks[i]);
}

static const spattn_mask *const *mask_list(const problem *p)
{
    return p->n_masks ? (const spattn_mask *const *)p->masks : NULL;
}

/* Runs the reference into fresh buffers shaped like p's outputs. */
static void reference(const problem *p, tu_buf *o, tu_buf *lse)
{
    *o = tu_buf_new(p->o.n);
    *lse = tu_buf_new(p->lse.n);
    spattn_args ra = p->a;
    ra.o = o->p;
    ra.lse = p->a.lse ? lse->p : NULL;
    ck_assert_int_eq(spattn_reference_forward(&ra, mask_list(p), p->n_masks), SPATTN_OK);
}

/* Every output element inside the view close to the reference, everything outside untouched. */
static void compare(const problem *p, const tu_buf *ro, const tu_buf *rlse, const char *what)
{
    const spattn_shape *s = &p->a.shape;
    spattn_layout l = p->a.o_layout;
    if (!(tu_buf_guards_ok(&p->o)))
        ck_abort_msg("%s: write outside the output buffer", what);
    for (size_t i = 0; i < p->o.n; i++) {
        float got = p->o.p[i], want = ro->p[i];
        uint32_t bits;
        memcpy(&bits, &want, sizeof bits);
        if (bits == TU_CANARY_BITS) { /* padding the reference did not write */
            uint32_t gb;
            memcpy(&gb, &got, sizeof gb);
            if (!(gb == TU_CANARY_BITS))
                ck_abort_msg("%s: padding at %zu written", what, i);
            continue;
        }
        if (!(tu_close(got, want, TU_TOL)))
            ck_abort_msg("%s: o[%zu] = %.9g, reference %.9g (B%zu Hq%zu Hkv%zu Lq%zu Lk%zu Dqk%zu "
                         "Dv%zu strides %td/%td/%td masks %zu scale %g softcap %g)",
                         what, i, got, want, s->batch, s->heads_q, s->heads_kv, s->len_q, s->len_k,
                         s->dim_qk, s->dim_v, l.batch, l.head, l.token, p->n_masks,
                         (double)p->a.scale, (double)p->a.softcap);
    }
    if (p->a.lse) {
        for (size_t i = 0; i < p->lse.n; i++)
            if (!(tu_close(p->lse.p[i], rlse->p[i], TU_TOL)))
                ck_abort_msg("%s: lse[%zu] = %.9g, reference %.9g", what, i, p->lse.p[i],
                             rlse->p[i]);
    } else {
        if (!(tu_buf_untouched(&p->lse)))
            ck_abort_msg("%s: lse written though NULL", what);
    }
}

/* ---- the sweep ---------------------------------------------------------------------------- */

static void run_isa_sweep(spattn_isa isa, int ncases, uint64_t seed, problem_opts po)
{
    tu_rng r = {seed * 1000003u + (uint64_t)isa};
    for (int c = 0; c < ncases; c++) {
        problem p;
        problem_random(&p, &r, po);
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        spattn_path path = (spattn_path)tu_range(&r, 0, 2);
        int threads = (int)tu_range(&r, 1, 2);
        spattn_options opt = {isa, threads};
        spattn_plan *plan = NULL;
        ck_assert_int_eq(
            spattn__plan_create_path(&p.a.shape, mask_list(&p), p.n_masks, &opt, path, &plan),
            SPATTN_OK);
        ck_assert_int_eq(spattn_plan_isa(plan), isa);
        ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
        char what[96];
        snprintf(what, sizeof what, "case %d isa %s path %d threads %d", c, spattn_isa_name(isa),
                 (int)path, threads);
        compare(&p, &ro, &rlse, what);
        spattn_plan_free(plan);
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        problem_free(&p);
    }
}

START_TEST(sweep_small)
{
    problem_opts po = {40, 20, 1.0f, 0, 0, 0};
    run_isa_sweep(tu_isa(_i), tu_cases(300), 1, po);
}
END_TEST

START_TEST(sweep_large)
{
    problem_opts po = {300, 160, 1.0f, 0, 0, 0};
    run_isa_sweep(tu_isa(_i), tu_cases(60), 2, po);
}
END_TEST

/* Problem p on forced path `path` of the plan, from a fresh output, against the reference. */
static void check_path(spattn_isa isa, problem *p, spattn_path path, const char *label)
{
    tu_buf ro, rlse;
    reference(p, &ro, &rlse);
    spattn_options opt = {isa, 1};
    spattn_plan *plan;
    tu_buf_reset(&p->o);
    tu_buf_reset(&p->lse);
    ck_assert_int_eq(
        spattn__plan_create_path(&p->a.shape, mask_list(p), p->n_masks, &opt, path, &plan),
        SPATTN_OK);
    ck_assert_int_eq(spattn_plan_execute(plan, &p->a), SPATTN_OK);
    char what[96];
    snprintf(what, sizeof what, "%s path, %s", path == SPATTN_PATH_TILES ? "tiles" : "gather",
             label);
    compare(p, &ro, &rlse, what);
    spattn_plan_free(plan);
    tu_buf_free(&ro);
    tu_buf_free(&rlse);
}

/* One random problem from po on both forced paths. */
static void both_paths(spattn_isa isa, tu_rng *r, problem_opts po, const char *label)
{
    problem p;
    problem_random(&p, r, po);
    check_path(isa, &p, SPATTN_PATH_TILES, label);
    check_path(isa, &p, SPATTN_PATH_GATHER, label);
    problem_free(&p);
}

/* Both paths of the plan, forced, on the same problems. */
START_TEST(paths_agree_with_reference)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {77 + (uint64_t)isa};
    problem_opts po = {150, 70, 1.0f, 0, 0, 0};
    for (int c = 0; c < tu_cases(12); c++)
        both_paths(isa, &r, po, "random problem");
}
END_TEST

/* The gather path by row length: the passes score rows 16 keys at a time (one block for
   1 to 16 keys, then several, the last one partial; rows of at most 4 keys, of 1 or 2, and
   vectors at most half filled, skip dot products; rows of at most 8 take the exp of half a
   column on AVX2 and NEON), and head dims 64 and 128 have their own unrolled code. Counts around
   those edges, against the reference, on both forced paths. (Rows past the passes' 16384-key limit:
   gather_long_run.) */
START_TEST(gather_row_lengths)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {4242 + (uint64_t)isa};
    static const size_t counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 50};
    static const size_t dims[][2] = {{64, 64}, {128, 128}, {64, 128}, {128, 64},
                                     {1, 1},   {17, 33},   {48, 80}};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
        for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
            problem_opts po = {120, 8, 1.0f, dims[d][0], dims[d][1], counts[k]};
            char label[48];
            snprintf(label, sizeof label, "%zu keys per row", counts[k]);
            both_paths(isa, &r, po, label);
        }
}
END_TEST

/* Row i of gather_long_run's mask (its keys into cols, increasing; returns how many): every
   1000th row long (16383 to 16400 keys of 16400: a thousand blocks of 16, the last partial or
   not), the others 1 to short_max random keys, or (a quarter of them) none. */
static size_t long_run_row(tu_rng *r, size_t i, size_t len_k, size_t short_max, int32_t *cols)
{
    static const size_t longs[] = {16383, 16384, 16385, 16400};
    size_t n = 0;
    if (i % 1000 == 999) {
        /* all keys but a few: mark the left-out ones with -1 */
        for (size_t j = 0; j < len_k; j++)
            cols[j] = (int32_t)j;
        for (size_t out = len_k - longs[(i / 1000) % 4]; out > 0;) {
            size_t j = tu_range(r, 0, len_k - 1);
            out -= cols[j] >= 0;
            cols[j] = -1;
        }
        for (size_t j = 0; j < len_k; j++)
            if (cols[j] >= 0)
                cols[n++] = cols[j];
        return n;
    }
    size_t want = tu_uniform(r) < 0.25 ? 0 : tu_range(r, 1, short_max);
    while (n < want) {
        int32_t j = (int32_t)tu_range(r, 0, len_k - 1), at = (int32_t)n;
        for (size_t t = 0; t < n; t++)
            at = cols[t] == j ? -1 : at;
        if (at < 0)
            continue;
        while (at > 0 && cols[at - 1] > j) { /* insertion keeps the row sorted */
            cols[at] = cols[at - 1];
            at--;
        }
        cols[at] = j;
        n++;
    }
    return n;
}

/* A run of gather tiles longer than the x86 kernels take in one batch: one head of 8192 + 37
   rows on the gather path. With rows of at most 16 keys the batch ends at 8192 rows; with up
   to 40 it ends where the scores fill their scratch. */
START_TEST(gather_long_run)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {515 + (uint64_t)isa};
    for (size_t short_max = 16; short_max <= 40; short_max += 24) {
        problem p;
        memset(&p, 0, sizeof p);
        spattn_shape *s = &p.a.shape;
        *s = (spattn_shape){1, 1, 1, 8192 + 37, 16400, 24, 20};
        problem_fill(&p, &r, 1.0f);
        int64_t *rp = malloc((s->len_q + 1) * sizeof *rp);
        int32_t *ci = malloc((s->len_q * short_max + 9 * s->len_k) * sizeof *ci);
        ck_assert(rp != NULL && ci != NULL);
        rp[0] = 0;
        for (size_t i = 0; i < s->len_q; i++)
            rp[i + 1] = rp[i] + (int64_t)long_run_row(&r, i, s->len_k, short_max, ci + rp[i]);
        ck_assert_int_eq(spattn_mask_from_csr(s->len_q, s->len_k, rp, ci, &p.masks[0]), SPATTN_OK);
        free(rp);
        free(ci);
        p.n_masks = 1;
        poison_unused_keys(&p);
        char label[64];
        snprintf(label, sizeof label, "8229 rows of up to %zu keys", short_max);
        check_path(isa, &p, SPATTN_PATH_GATHER, label);
        problem_free(&p);
    }
}
END_TEST

/* Three rows (0, 1200 and 5 keys of 1500): the x86 passes' score scratch for a call of 3 rows
   is 16 floats a row, so the 1200-key row fits only because the plan sizes it by the longest
   listed row. */
START_TEST(gather_row_longer_than_batch)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {616 + (uint64_t)isa};
    problem p;
    memset(&p, 0, sizeof p);
    spattn_shape *s = &p.a.shape;
    *s = (spattn_shape){1, 1, 1, 3, 1500, 40, 24};
    problem_fill(&p, &r, 1.0f);
    static const size_t counts[3] = {0, 1200, 5};
    int64_t rp[4] = {0};
    int32_t *ci = malloc(1205 * sizeof *ci);
    ck_assert(ci != NULL);
    for (size_t i = 0; i < 3; i++) {
        for (size_t c = 0; c < counts[i]; c++) /* every (1500 / n)-th key, increasing */
            ci[rp[i] + (int64_t)c] = (int32_t)(c * (s->len_k / counts[i]));
        rp[i + 1] = rp[i] + (int64_t)counts[i];
    }
    ck_assert_int_eq(spattn_mask_from_csr(s->len_q, s->len_k, rp, ci, &p.masks[0]), SPATTN_OK);
    free(ci);
    p.n_masks = 1;
    poison_unused_keys(&p);
    check_path(isa, &p, SPATTN_PATH_GATHER, "rows of 0, 1200 and 5 keys");
    problem_free(&p);
}
END_TEST

/* The first run's outputs are kept in o1/l1; every later run must give the same bits. */
static void same_bits(const problem *p, float *o1, float *l1, int first, const char *what)
{
    if (first) {
        memcpy(o1, p->o.p, p->o.n * sizeof(float));
        memcpy(l1, p->lse.p, p->lse.n * sizeof(float));
        return;
    }
    if (memcmp(o1, p->o.p, p->o.n * sizeof(float)) != 0)
        ck_abort_msg("o differs: %s", what);
    if (memcmp(l1, p->lse.p, p->lse.n * sizeof(float)) != 0)
        ck_abort_msg("lse differs: %s", what);
}

/* Same inputs, 1, 2 and 3 threads, and (where the ISA runs two query tiles per call, AVX-512)
   with the pairing off: bitwise the same output. A third of the problems force the tile path,
   so that pairs run on masks the plan would gather, and a third the gather path, so that the
   thread split cuts runs of gather tiles (one kernel call each) in different places. */
START_TEST(same_bits_any_threads_or_pairing)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {99 + (uint64_t)isa};
    problem_opts po = {200, 80, 1.0f, 0, 0, 0};
    static const struct {
        int threads, pairs;
    } runs[] = {{1, 1}, {2, 1}, {3, 1}, {1, 0}};
    for (int c = 0; c < tu_cases(20); c++) {
        problem p;
        problem_random(&p, &r, po);
        float *o1 = malloc(p.o.n * sizeof(float)), *l1 = malloc(p.lse.n * sizeof(float));
        ck_assert(o1 != NULL && l1 != NULL);
        static const spattn_path paths[] = {SPATTN_PATH_AUTO, SPATTN_PATH_TILES,
                                            SPATTN_PATH_GATHER};
        spattn_path path = paths[c % 3];
        for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
            spattn_options opt = {isa, runs[k].threads};
            spattn_plan *plan;
            ck_assert_int_eq(
                spattn__plan_create_path(&p.a.shape, mask_list(&p), p.n_masks, &opt, path, &plan),
                SPATTN_OK);
            spattn__set_tile_pairs(runs[k].pairs);
            ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
            spattn__set_tile_pairs(1);
            spattn_plan_free(plan);
            char what[96];
            snprintf(what, sizeof what, "case %d, %d threads, pairs %s (Lq %zu Dqk %zu)", c,
                     runs[k].threads, runs[k].pairs ? "on" : "off", p.a.shape.len_q,
                     p.a.shape.dim_qk);
            same_bits(&p, o1, l1, k == 0, what);
        }
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        compare(&p, &ro, &rlse, "threads and pairs");
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        free(o1);
        free(l1);
        problem_free(&p);
    }
}
END_TEST

/* One plan, executed on fresh inputs several times; the masks freed by the caller first (the
   plan holds its own references). */
START_TEST(plan_reuse)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {5 + (uint64_t)isa};
    problem_opts po = {120, 48, 1.0f, 0, 0, 0};
    problem p;
    problem_random(&p, &r, po);
    spattn_options opt = {isa, 2};
    spattn_plan *plan;
    ck_assert_int_eq(spattn_plan_create(&p.a.shape, mask_list(&p), p.n_masks, &opt, &plan),
                     SPATTN_OK);
    /* Free the masks now; the reference needs them, so keep dense copies by rebuilding. */
    size_t lq = p.a.shape.len_q, lk = p.a.shape.len_k;
    spattn_mask *copies[64];
    for (size_t i = 0; i < p.n_masks; i++) {
        uint8_t *d = malloc(lq * lk);
        ck_assert_int_eq(spattn_mask_to_dense(p.masks[i], d, lk), SPATTN_OK);
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &copies[i]), SPATTN_OK);
        free(d);
        spattn_mask_free(p.masks[i]);
        p.masks[i] = copies[i];
    }
    for (int rep = 0; rep < 3; rep++) {
        fill_view(&r, p.q.p, p.a.q_layout, p.a.shape.batch, p.a.shape.heads_q, lq, p.a.shape.dim_qk,
                  1.0f);
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
        compare(&p, &ro, &rlse, "plan reuse");
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
    }
    spattn_plan_free(plan);
    problem_free(&p);
}
END_TEST

/* Scores of magnitude ~1e4: nothing overflows, lse matches, each output lies within the range
   of the allowed V rows (a convex combination). */
START_TEST(large_scores)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {31 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(10); c++) {
        problem p;
        problem_opts po = {100, 32, 0.0f, 0, 0, 0};
        problem_random(&p, &r, po);
        p.a.softcap = 0.0f;
        p.a.scale = 1.0f;
        const spattn_shape *s = &p.a.shape;
        fill_view(&r, p.q.p, p.a.q_layout, s->batch, s->heads_q, s->len_q, s->dim_qk,
                  (float)(1e4 / sqrt((double)s->dim_qk)) / 3.0f);
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        spattn_options opt = {isa, 1};
        ck_assert_int_eq(spattn_forward(&p.a, mask_list(&p), p.n_masks, &opt), SPATTN_OK);
        for (size_t i = 0; i < p.o.n; i++) {
            if (isfinite(ro.p[i]))
                if (!(isfinite(p.o.p[i])))
                    ck_abort_msg("o[%zu] = %g where the reference is %g", i, p.o.p[i], ro.p[i]);
            /* V is ~N(0,1): a weighted mean of it stays within a few units. */
            if (isfinite(ro.p[i]))
                if (!(fabsf(p.o.p[i]) < 8.0f))
                    ck_abort_msg("o[%zu] = %g out of range", i, p.o.p[i]);
        }
        /* Float dot products of terms ~1e4 carry absolute errors ~1e4 * 2^-24 * sqrt(dim):
           lse can be no closer than that. */
        double tol = 1e4 * 6e-8 * (4.0 + sqrt((double)s->dim_qk));
        if (p.a.lse)
            for (size_t i = 0; i < p.lse.n; i++)
                if (!(!isfinite(rlse.p[i]) ? tu_close(p.lse.p[i], rlse.p[i], 0.0)
                                           : fabs(p.lse.p[i] - rlse.p[i]) <= tol))
                    ck_abort_msg("lse[%zu] = %.9g vs %.9g", i, p.lse.p[i], rlse.p[i]);
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        problem_free(&p);
    }
}
END_TEST

/* Rows with no allowed key: O exactly 0 and lse -inf, even with NaN everywhere in K and V. */
START_TEST(fully_masked_rows)
{
    spattn_isa isa = tu_isa(_i);
    size_t lq = 37, lk = 130, d = 24;
    uint8_t *dense = calloc(lq * lk, 1);
    for (size_t i = 0; i < lq; i += 3) /* every third row allowed one key */
        dense[i * lk + (i * 7) % lk] = 1;
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_from_dense(lq, lk, dense, lk, &m), SPATTN_OK);
    float *q = malloc(lq * d * sizeof(float)), *k = malloc(lk * d * sizeof(float));
    float *v = malloc(lk * d * sizeof(float)), *o = malloc(lq * d * sizeof(float));
    float lse[37];
    for (size_t i = 0; i < lq * d; i++)
        q[i] = 0.5f;
    for (size_t i = 0; i < lk * d; i++)
        k[i] = v[i] = NAN;
    for (size_t i = 0; i < lq; i += 3)
        for (size_t t = 0; t < d; t++) {
            k[((i * 7) % lk) * d + t] = 1.0f;
            v[((i * 7) % lk) * d + t] = (float)i;
        }
    spattn_args a = {{1, 1, 1, lq, lk, d, d},
                     q,
                     spattn_layout_bhtd(1, lq, d),
                     k,
                     spattn_layout_bhtd(1, lk, d),
                     v,
                     spattn_layout_bhtd(1, lk, d),
                     o,
                     spattn_layout_bhtd(1, lq, d),
                     lse,
                     0.0f,
                     0.0f,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    for (int path = SPATTN_PATH_TILES; path <= SPATTN_PATH_GATHER; path++) {
        spattn_options opt = {isa, 1};
        spattn_plan *plan;
        const spattn_mask *ml[1] = {m};
        for (size_t i = 0; i < lq * d; i++) /* nothing left over from the other path */
            o[i] = NAN;
        for (size_t i = 0; i < lq; i++)
            lse[i] = NAN;
        ck_assert_int_eq(spattn__plan_create_path(&a.shape, ml, 1, &opt, (spattn_path)path, &plan),
                         SPATTN_OK);
        ck_assert_int_eq(spattn_plan_execute(plan, &a), SPATTN_OK);
        for (size_t i = 0; i < lq; i++) {
            for (size_t t = 0; t < d; t++) {
                float want = i % 3 == 0 ? (float)i : 0.0f;
                ck_assert_msg(o[i * d + t] == want, "row %zu: o = %g, want %g", i, o[i * d + t],
                              want);
            }
            if (i % 3 != 0)
                ck_assert(isinf(lse[i]) && lse[i] < 0);
            else
                ck_assert(tu_close(lse[i], 0.5f * (float)d / sqrtf((float)d), TU_TOL));
        }
        spattn_plan_free(plan);
    }
    spattn_mask_free(m);
    free(dense);
    free(q);
    free(k);
    free(v);
    free(o);
}
END_TEST

/* A decode row's mask: one in five allows no key at all, so that whole query tiles (a
   packed group of heads, or one head) are empty. */
static spattn_mask *decode_mask(tu_rng *r, size_t len_k)
{
    if (tu_uniform(r) >= 0.2)
        return tu_random_mask(r, 1, len_k);
    uint8_t *none = calloc(len_k, 1);
    spattn_mask *m = NULL;
    ck_assert_ptr_nonnull(none);
    ck_assert_int_eq(spattn_mask_from_dense(1, len_k, none, len_k, &m), SPATTN_OK);
    free(none);
    return m;
}

/* Decode with GQA (len_q == 1): plans run a KV head's query heads as one tile when the heads of
   a group share a mask. Every mask arrangement, both paths, layouts, lse, 1 and 2 threads. */
START_TEST(decode_gqa)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {555 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(30); c++) {
        /* Decode: one query row, groups of 2..20 heads. */
        problem p;
        memset(&p, 0, sizeof p);
        spattn_shape *s = &p.a.shape;
        s->batch = tu_range(&r, 1, 2);
        s->heads_kv = tu_range(&r, 1, 3);
        s->heads_q = s->heads_kv * tu_range(&r, 2, 20);
        s->len_q = 1;
        s->len_k = tu_range(&r, 1, 700);
        s->dim_qk = tu_range(&r, 1, 130);
        s->dim_v = tu_uniform(&r) < 0.5 ? s->dim_qk : tu_range(&r, 1, 130);
        size_t nq, nk, nv, no, pad = tu_range(&r, 1, 5);
        int lay = (int)tu_range(&r, 0, N_LAYOUTS - 1);
        p.a.q_layout = make_layout(lay, s->batch, s->heads_q, 1, s->dim_qk, pad, &nq);
        p.a.k_layout = make_layout(lay, s->batch, s->heads_kv, s->len_k, s->dim_qk, pad, &nk);
        p.a.v_layout = make_layout(lay, s->batch, s->heads_kv, s->len_k, s->dim_v, pad, &nv);
        p.a.o_layout = make_layout((int)tu_range(&r, 0, N_LAYOUTS - 1), s->batch, s->heads_q, 1,
                                   s->dim_v, pad, &no);
        p.q = tu_buf_new(nq);
        p.k = tu_buf_new(nk);
        p.v = tu_buf_new(nv);
        p.o = tu_buf_new(no);
        p.lse = tu_buf_new(s->batch * s->heads_q);
        fill_nan(&p.q);
        fill_nan(&p.k);
        fill_nan(&p.v);
        fill_view(&r, p.q.p, p.a.q_layout, s->batch, s->heads_q, 1, s->dim_qk, 1.0f);
        fill_view(&r, p.k.p, p.a.k_layout, s->batch, s->heads_kv, s->len_k, s->dim_qk, 1.0f);
        fill_view(&r, p.v.p, p.a.v_layout, s->batch, s->heads_kv, s->len_k, s->dim_v, 1.0f);
        p.a.q = p.q.p;
        p.a.k = p.k.p;
        p.a.v = p.v.p;
        p.a.o = p.o.p;
        p.a.lse = tu_uniform(&r) < 0.7 ? p.lse.p : NULL;
        p.a.softcap = tu_uniform(&r) < 0.8 ? 0.0f : 20.0f;
        /* 0, 1, per head (shared within each group, or not) or per (batch, head). */
        int mode = (int)tu_range(&r, 0, 4);
        size_t group = s->heads_q / s->heads_kv;
        if (mode == 1) {
            p.n_masks = 1;
            p.masks[0] = decode_mask(&r, s->len_k);
        } else if (mode >= 2) {
            p.n_masks = mode == 4 ? s->batch * s->heads_q : s->heads_q;
            if (p.n_masks > 64)
                p.n_masks = s->heads_q; /* the problem's mask array holds 64 */
            for (size_t i = 0; i < p.n_masks; i++) {
                if (mode != 3 && i % group != 0) { /* share the group leader's mask */
                    spattn_mask *lead = p.masks[i - i % group];
                    uint8_t *d = malloc(s->len_k);
                    spattn_mask_to_dense(lead, d, s->len_k);
                    ck_assert_int_eq(spattn_mask_from_dense(1, s->len_k, d, s->len_k, &p.masks[i]),
                                     SPATTN_OK);
                    free(d);
                    /* A copy is another mask object: only identical pointers pack. Share
                       the leader itself half of the time. */
                    if (tu_uniform(&r) < 0.5) {
                        spattn_mask_free(p.masks[i]);
                        p.masks[i] = lead;
                        spattn__mask_retain(lead);
                    }
                } else {
                    p.masks[i] = decode_mask(&r, s->len_k);
                }
            }
        }
        poison_unused_keys(&p);
        tu_buf ro, rlse;
        reference(&p, &ro, &rlse);
        float *first = malloc(p.o.n * sizeof(float));
        spattn_path path = (spattn_path)tu_range(&r, 0, 2);
        for (int t = 1; t <= 2; t++) {
            spattn_options opt = {isa, t};
            spattn_plan *plan;
            ck_assert_int_eq(
                spattn__plan_create_path(s, mask_list(&p), p.n_masks, &opt, path, &plan),
                SPATTN_OK);
            if (p.n_masks <= 1)
                ck_assert_msg(spattn__plan_packed(plan), "decode with one mask not packed");
            ck_assert_int_eq(spattn_plan_execute(plan, &p.a), SPATTN_OK);
            compare(&p, &ro, &rlse, "decode");
            if (t == 1)
                memcpy(first, p.o.p, p.o.n * sizeof(float));
            else
                ck_assert_msg(memcmp(first, p.o.p, p.o.n * sizeof(float)) == 0,
                              "decode: 1 and 2 threads differ");
            spattn_plan_free(plan);
        }
        free(first);
        tu_buf_free(&ro);
        tu_buf_free(&rlse);
        problem_free(&p);
    }
}
END_TEST

/* ---- the reference against hand-computed values ------------------------------------------- */

START_TEST(reference_by_hand)
{
    /* s = [0, ln 3] -> p = [1/4, 3/4]; V = [4, 8] -> O = 7; lse = ln 4. */
    float q[1] = {1.0f}, k[2] = {0.0f, (float)log(3.0)}, v[2] = {4.0f, 8.0f}, o[1], lse[1];
    spattn_args a = {{1, 1, 1, 1, 2, 1, 1},
                     q,
                     {2, 2, 1},
                     k,
                     {2, 2, 1},
                     v,
                     {2, 2, 1},
                     o,
                     {1, 1, 1},
                     lse,
                     1.0f,
                     0.0f,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    ck_assert_int_eq(spattn_reference_forward(&a, NULL, 0), SPATTN_OK);
    ck_assert(fabsf(o[0] - 7.0f) < 1e-6f);
    ck_assert(fabsf(lse[0] - (float)log(4.0)) < 1e-6f);

    /* Softcap 1 with s = ln 3: s' = tanh(ln 3) = 0.8, so p1 / p0 = e^0.8. */
    a.softcap = 1.0f;
    ck_assert_int_eq(spattn_reference_forward(&a, NULL, 0), SPATTN_OK);
    double e = exp(0.8), want = (4.0 + 8.0 * e) / (1.0 + e);
    ck_assert(fabs(o[0] - want) < 1e-5);
    ck_assert(fabs(lse[0] - (0.0 + log(1.0 + e))) < 1e-5);

    /* Causal 2x2, default scale 1/sqrt(2): row 0 sees key 0 only. */
    float q2[4] = {1, 0, 0, 1}, k2[4] = {1, 0, 0, 1}, v2[4] = {1, 2, 3, 4}, o2[4], l2[2];
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(2, 2, &m), SPATTN_OK);
    spattn_args b = {{1, 1, 1, 2, 2, 2, 2},
                     q2,
                     spattn_layout_bhtd(1, 2, 2),
                     k2,
                     spattn_layout_bhtd(1, 2, 2),
                     v2,
                     spattn_layout_bhtd(1, 2, 2),
                     o2,
                     spattn_layout_bhtd(1, 2, 2),
                     l2,
                     0.0f,
                     0.0f,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    const spattn_mask *ml[1] = {m};
    ck_assert_int_eq(spattn_reference_forward(&b, ml, 1), SPATTN_OK);
    ck_assert(o2[0] == 1.0f && o2[1] == 2.0f);
    ck_assert(fabsf(l2[0] - (float)(1.0 / sqrt(2.0))) < 1e-6f);
    /* Row 1: s = [0, 1/sqrt 2]. */
    double w = exp(1.0 / sqrt(2.0));
    ck_assert(fabs(o2[2] - (1.0 + 3.0 * w) / (1.0 + w)) < 1e-6);
    ck_assert(fabs(o2[3] - (2.0 + 4.0 * w) / (1.0 + w)) < 1e-6);
    spattn_mask_free(m);
}
END_TEST

/* GQA: with one key per KV head, query head h must return exactly V of KV head h / group. */
START_TEST(gqa_head_mapping)
{
    spattn_isa isa = tu_isa(_i);
    const size_t hq = 6, hkv = 2, d = 5;
    float q[6 * 5], k[2 * 5], v[2 * 5], o[6 * 5];
    for (size_t i = 0; i < 30; i++)
        q[i] = 0.1f * (float)i;
    for (size_t i = 0; i < 10; i++) {
        k[i] = 1.0f;
        v[i] = (float)(i / 5 + 1);
    }
    spattn_args a = {{1, hq, hkv, 1, 1, d, d},
                     q,
                     spattn_layout_bhtd(hq, 1, d),
                     k,
                     spattn_layout_bhtd(hkv, 1, d),
                     v,
                     spattn_layout_bhtd(hkv, 1, d),
                     o,
                     spattn_layout_bhtd(hq, 1, d),
                     NULL,
                     0.0f,
                     0.0f,
                     NULL,
                     NULL,
                     0,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32,
                     SPATTN_DTYPE_F32};
    spattn_options opt = {isa, 1};
    ck_assert_int_eq(spattn_forward(&a, NULL, 0, &opt), SPATTN_OK);
    for (size_t h = 0; h < hq; h++)
        for (size_t t = 0; t < d; t++)
            ck_assert_msg(o[h * d + t] == (float)(h / 3 + 1), "head %zu: %g", h, o[h * d + t]);
}
END_TEST

/* ---- masked softmax ------------------------------------------------------------------------ */

START_TEST(softmax_vs_reference)
{
    spattn_isa isa = tu_isa(_i);
    tu_rng r = {4242 + (uint64_t)isa};
    for (int c = 0; c < tu_cases(40); c++) {
        size_t rows = tu_range(&r, 1, 150), cols = tu_range(&r, 1, 200);
        size_t ld = cols + tu_range(&r, 0, 5);
        spattn_mask *m = tu_random_mask(&r, rows, cols);
        size_t n = (rows - 1) * ld + cols;
        tu_buf x = tu_buf_new(n), y = tu_buf_new(n), ry = tu_buf_new(n);
        /* Inputs of 90-100: a kernel that forgets to subtract the max overflows. */
        int big = tu_uniform(&r) < 0.3;
        for (size_t i = 0; i < n; i++)
            x.p[i] = big ? (float)(90.0 + 10.0 * tu_uniform(&r)) : 3.0f * tu_normal(&r);
        float scale = tu_uniform(&r) < 0.5 ? 0.0f : (float)(0.1 + tu_uniform(&r));
        ck_assert_int_eq(spattn_reference_softmax_masked(x.p, ry.p, rows, cols, ld, m, scale),
                         SPATTN_OK);
        int inplace = tu_uniform(&r) < 0.3;
        spattn_options opt = {isa, (int)tu_range(&r, 1, 2)};
        if (inplace) {
            memcpy(y.p, x.p, n * sizeof(float));
            ck_assert_int_eq(spattn_softmax_masked(y.p, y.p, rows, cols, ld, m, scale, &opt),
                             SPATTN_OK);
        } else {
            ck_assert_int_eq(spattn_softmax_masked(x.p, y.p, rows, cols, ld, m, scale, &opt),
                             SPATTN_OK);
        }
        ck_assert(tu_buf_guards_ok(&y));
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < ld && i * ld + j < n; j++) {
                size_t at = i * ld + j;
                if (j >= cols) { /* the gap between rows is not ours to write */
                    if (!inplace)
                        if (!(tu_is_canary(y.p[at])))
                            ck_abort_msg("softmax wrote the gap at %zu", at);
                    continue;
                }
                if (!(tu_close(y.p[at], ry.p[at], TU_TOL)))
                    ck_abort_msg("softmax [%zu,%zu] = %.9g vs %.9g (%zux%zu ld %zu)", i, j, y.p[at],
                                 ry.p[at], rows, cols, ld);
            }
        tu_buf_free(&x);
        tu_buf_free(&y);
        tu_buf_free(&ry);
        spattn_mask_free(m);
    }
}
END_TEST

Suite *suite_attn(void);
Suite *suite_attn(void)
{
    Suite *s = suite_create("attn");
    int n = tu_n_isas();
    TCase *tc = tcase_create("reference");
    tcase_add_test(tc, reference_by_hand);
    suite_add_tcase(s, tc);

    tc = tcase_create("kernels");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, sweep_small, 0, n);
    tcase_add_loop_test(tc, sweep_large, 0, n);
    tcase_add_loop_test(tc, paths_agree_with_reference, 0, n);
    tcase_add_loop_test(tc, gather_row_lengths, 0, n);
    tcase_add_loop_test(tc, gather_long_run, 0, n);
    tcase_add_loop_test(tc, gather_row_longer_than_batch, 0, n);
    tcase_add_loop_test(tc, same_bits_any_threads_or_pairing, 0, n);
    tcase_add_loop_test(tc, plan_reuse, 0, n);
    tcase_add_loop_test(tc, large_scores, 0, n);
    tcase_add_loop_test(tc, fully_masked_rows, 0, n);
    tcase_add_loop_test(tc, gqa_head_mapping, 0, n);
    tcase_add_loop_test(tc, decode_gqa, 0, n);
    suite_add_tcase(s, tc);

    tc = tcase_create("softmax");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, softmax_vs_reference, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

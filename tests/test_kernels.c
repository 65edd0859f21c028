/*
 * Every kernel table of kernels.inc called directly over a fixed grid, so that each branch of
 * a kernel is reached on purpose: every row count 1..16 of a query tile (the last tile of a
 * head, or a single decode tile), head dims 1..17 and around 32, 64 and 128 for both dim_qk
 * and dim_v, key counts on and off multiples of 64, FULL, PARTIAL and empty key tiles, empty
 * rows and whole empty query tiles, softcap and lse on and off, stream_kv on and off, and the
 * score modifiers: none, an ALiBi slope (with pos_offset), a sink (some -inf), or both.
 *
 * Case c of the grid has a = c % 16 (the rows of the head's last tile are a + 1) and
 * b = c / 16; its dim pair is (17 b + a) % 52, so that the first cases already cover every
 * row count and the cases taken under SPATTN_TEST_SCALE < 1 spread over the dims; the other
 * switches come from b (and a), so that every row count meets each of them both ways.
 *
 * Each case checks, per ISA, against the float64 reference and the contract of kernel.h:
 *  - attn_tiles on every query tile: O and lse close to the reference, O = 0 and
 *    lse = -inf (or exactly the sink) for rows with no allowed key, the padding between O
 *    rows left alone;
 *  - attn_tiles2 (where offered) on each even tile that has a successor: each row bitwise
 *    what attn_tiles gave it;
 *  - attn_gather over all tiles of the head in one call against the reference, and one call
 *    per tile bitwise the same;
 *  - attn_mixed (where offered) likewise, with half and then all PARTIAL tiles listed;
 *  - softmax_tile on every query tile against the reference masked softmax;
 * with NaN in every K/V row no row allows, in the padding of Q, K and V rows, and (in some
 * cases) in one K or V row that only some rows allow: rows that do not allow it stay finite.
 *
 * Element types: each case also has a (q, kv, o) type triple (all 27 in turn); its inputs are
 * rounded to those types, and attn_tiles, attn_tiles2 and attn_gather on typed copies of them
 * must give bit for bit the F32 call's lse and its O rounded to nearest even into o's type
 * (the kernels widen Q, K and V exactly and round O once, when it is stored), leaving the
 * padding after each typed O row alone.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "plan/keyrows.h"
#include "mask/mask_impl.h"
#include "test_util.h"

/* ---- the grid -------------------------------------------------------------------------- */

static const size_t dims[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,  12,  13,
                              14, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129};
#define N_DIMS (sizeof dims / sizeof dims[0])
/* Key counts: below, at and past one and two 64-key tiles. */
static const size_t key_counts[] = {1, 7, 63, 64, 65, 100, 127, 128, 129, 200};
#define N_KEYS (sizeof key_counts / sizeof key_counts[0])
/* Dim pairs: every value of dims as (d, d), where the x86 kernels have their 64/128 code, and
   as (d, dims[(d + 11) % N]) so that each value also meets a different other dim. */
#define N_DIM_PAIRS (2 * N_DIMS)
#define N_CASES (SPATTN_TQ * N_DIM_PAIRS)

typedef struct kcase {
    size_t len_q, len_k, dim_qk, dim_v;
    size_t pad; /* floats of NaN after each Q, K, V row and of canary after each O row */
    float scale, softcap;
    int lse; /* whether the kernels get an lse array */
    int stream_kv;
    int poison;    /* 0: none; 1: one K row some rows allow gets a NaN; 2: the same in V */
    int full_pair; /* key tile 0 FULL for every query tile, and no rows emptied in tiles 0, 1:
                      the pair path's shared-FULL code (qk_tile2 on x86) is reached */
    int mods;      /* bit 0: ALiBi slope `slope` at pos_offset; bit 1: sink `sink` */
    float slope, sink;
    ptrdiff_t pos_offset;
    spattn_dtype qt, kvt, ot; /* the typed run's element types */
} kcase;

static kcase grid_case(size_t c)
{
    const size_t a = c % SPATTN_TQ, b = c / SPATTN_TQ;
    const size_t pair = (17 * b + a) % N_DIM_PAIRS, d = pair % N_DIMS;
    kcase k;
    k.dim_qk = dims[d];
    k.dim_v = pair < N_DIMS ? dims[d] : dims[(d + 11) % N_DIMS];
    /* 1, 2 or 3 query tiles, the last with a + 1 rows: a decode tile, a pair, a pair and
       one more. */
    k.len_q = (b % 3) * SPATTN_TQ + a + 1;
    k.lse = (b / 3) % 2;
    k.softcap = (b / 6) % 2 ? 4.0f + (float)(b % 5) : 0.0f;
    k.stream_kv = (b / 12) % 2;
    k.len_k = key_counts[(a + b) % N_KEYS];
    k.pad = (a + b) % 4;
    k.scale = (b / 2) % 2 ? 0.3f : (float)(1.0 / sqrt((double)k.dim_qk));
    k.poison = (int)((a + 2 * b) % 3);
    k.full_pair = b % 2 == 0;
    /* Slopes of either sign with slope * |i' - j| up to ~60; sinks below, around and far above
       the scores, or -inf (no sink). */
    static const float sinks[] = {-INFINITY, 0.5f, -2.0f, 3.0f, 12.0f};
    k.mods = (int)((a + b / 3) % 4);
    k.slope = b % 4 == 3 ? -0.02f : 0.05f * (float)(1 + (a + b) % 4);
    k.sink = sinks[(a + 2 * b) % 5];
    k.pos_offset = ((ptrdiff_t)((a * 5 + b) % 7) - 3) * 19;
    const size_t tri = (c * 7 + b) % 27;
    k.qt = (spattn_dtype)(tri / 9);
    k.kvt = (spattn_dtype)(tri / 3 % 3);
    k.ot = (spattn_dtype)(tri % 3);
    return k;
}

/* The mask of a case: each (query tile, key tile) FULL, dense PARTIAL, sparse PARTIAL,
   causal-like PARTIAL or empty (most key tiles the same for every query tile, so that tile
   pairs share FULL tiles), then some query tiles with rows emptied and some emptied as a
   whole; dense[i * len_k + j] gets it too. */
static spattn_mask *grid_mask(tu_rng *r, const kcase *k, uint8_t *dense)
{
    const size_t nqt = (k->len_q + SPATTN_TQ - 1) / SPATTN_TQ;
    const size_t nkt = (k->len_k + SPATTN_TK - 1) / SPATTN_TK;
    for (size_t kt = 0; kt < nkt; kt++) {
        const int shared = (int)tu_range(r, 0, 5);
        for (size_t qt = 0; qt < nqt; qt++) {
            /* full x2, dense, sparse, causal-like, empty */
            int kind = tu_uniform(r) < 0.7 ? shared : (int)tu_range(r, 0, 5);
            if (k->full_pair && kt == 0)
                kind = 0;
            const double dens = kind == 2 ? 0.6 : 0.08;
            for (size_t i = qt * SPATTN_TQ; i < k->len_q && i < (qt + 1) * SPATTN_TQ; i++)
                for (size_t j = kt * SPATTN_TK; j < k->len_k && j < (kt + 1) * SPATTN_TK; j++)
                    dense[i * k->len_k + j] = kind < 2 ||
                                              (kind == 4 && (j % SPATTN_TK) / 4 <= i % SPATTN_TQ) ||
                                              ((kind == 2 || kind == 3) && tu_uniform(r) < dens);
        }
    }
    for (size_t qt = k->full_pair ? 2 : 0; qt < nqt; qt++) {
        const double u = tu_uniform(r), p_empty = u < 0.6 ? 0.0 : u < 0.85 ? 0.3 : 1.0;
        for (size_t i = qt * SPATTN_TQ; i < k->len_q && i < (qt + 1) * SPATTN_TQ; i++)
            if (p_empty > 0.0 && tu_uniform(r) < p_empty)
                memset(dense + i * k->len_k, 0, k->len_k);
    }
    spattn_mask *m = NULL;
    ck_assert_int_eq(spattn_mask_from_dense(k->len_q, k->len_k, dense, k->len_k, &m), SPATTN_OK);
    return m;
}

/* What the grid reached, counted over a whole run (see kernels_on_grid). */
typedef struct kreach {
    int full, partial, empty_tiles, empty_rows, full_pairs, pair_with_empty, gather_runs;
} kreach;

static void count_reach(const spattn_mask *m, const uint8_t *dense, kreach *n)
{
    for (size_t qt = 0; qt < m->nqt; qt++) {
        n->empty_tiles += spattn__qt_empty(m, qt);
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            n->full += m->tiles[t].part == SPATTN_FULL;
            n->partial += m->tiles[t].part != SPATTN_FULL;
        }
        if (qt % 2 == 0 && qt + 1 < m->nqt) {
            n->pair_with_empty += spattn__qt_empty(m, qt) || spattn__qt_empty(m, qt + 1);
            for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
                for (size_t u = m->qt_ptr[qt + 1]; u < m->qt_ptr[qt + 2]; u++)
                    n->full_pairs += m->tiles[t].kt == m->tiles[u].kt &&
                                     m->tiles[t].part == SPATTN_FULL &&
                                     m->tiles[u].part == SPATTN_FULL;
        }
    }
    for (size_t i = 0; i < m->len_q; i++) {
        int any = 0;
        for (size_t j = 0; j < m->len_k; j++)
            any |= dense[i * m->len_k + j];
        n->empty_rows += !any;
    }
    n->gather_runs += m->nqt > 1;
}

/* ---- one case's data --------------------------------------------------------------------- */

typedef struct kdata {
    kcase k;
    spattn_mask *mask;
    uint8_t *dense;
    float *q, *kk, *v; /* rows of dim + pad floats, the pad NaN */
    tu_buf ro, rlse;   /* the reference */
    tu_buf x, rsm;     /* softmax input and its reference (rows len_k + pad apart) */
} kdata;

static float *rows_with_nan_pad(tu_rng *r, size_t n, size_t dim, size_t pad)
{
    float *p = malloc((n * (dim + pad) + 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n; i++)
        for (size_t t = 0; t < dim + pad; t++)
            p[i * (dim + pad) + t] = t < dim ? tu_normal(r) : NAN;
    return p;
}

/* NaN in K and V rows no row allows, and for poison 1/2 in one K/V element of a key that some
   rows allow and others (non-empty ones, where there are any) do not. */
static void poison_keys(tu_rng *r, kdata *d)
{
    const kcase *k = &d->k;
    size_t partial = SIZE_MAX;
    for (size_t j = 0; j < k->len_k; j++) {
        size_t users = 0;
        for (size_t i = 0; i < k->len_q; i++)
            users += d->dense[i * k->len_k + j];
        if (users == 0) {
            for (size_t t = 0; t < k->dim_qk; t++)
                d->kk[j * (k->dim_qk + k->pad) + t] = NAN;
            for (size_t t = 0; t < k->dim_v; t++)
                d->v[j * (k->dim_v + k->pad) + t] = (t & 1) ? INFINITY : NAN;
        } else if (users < k->len_q && (partial == SIZE_MAX || tu_uniform(r) < 0.3)) {
            partial = j;
        }
    }
    if (partial == SIZE_MAX || k->poison == 0)
        return;
    if (k->poison == 1)
        d->kk[partial * (k->dim_qk + k->pad) + tu_range(r, 0, k->dim_qk - 1)] = NAN;
    else
        d->v[partial * (k->dim_v + k->pad) + tu_range(r, 0, k->dim_v - 1)] = NAN;
}

/* x rounded through type t in place. */
static void round_to(float *x, size_t n, spattn_dtype t)
{
    uint16_t h;
    for (size_t i = 0; i < n && t != SPATTN_DTYPE_F32; i++) {
        if (t == SPATTN_DTYPE_BF16) {
            spattn_f32_to_bf16(&x[i], &h, 1);
            spattn_bf16_to_f32(&h, &x[i], 1);
        } else {
            spattn_f32_to_f16(&x[i], &h, 1);
            spattn_f16_to_f32(&h, &x[i], 1);
        }
    }
}

static void kdata_make(kdata *d, size_t c)
{
    memset(d, 0, sizeof *d);
    d->k = grid_case(c);
    const kcase *k = &d->k;
    tu_rng r = {0x5eed0000u + c};
    d->dense = calloc(k->len_q * k->len_k, 1);
    ck_assert_ptr_nonnull(d->dense);
    d->mask = grid_mask(&r, k, d->dense);
    d->q = rows_with_nan_pad(&r, k->len_q, k->dim_qk, k->pad);
    d->kk = rows_with_nan_pad(&r, k->len_k, k->dim_qk, k->pad);
    d->v = rows_with_nan_pad(&r, k->len_k, k->dim_v, k->pad);
    poison_keys(&r, d);
    /* The values of the typed run's types (NaN stays NaN), so that the F32 run computes on
       exactly what the typed one reads. */
    round_to(d->q, k->len_q * (k->dim_qk + k->pad), k->qt);
    round_to(d->kk, k->len_k * (k->dim_qk + k->pad), k->kvt);
    round_to(d->v, k->len_k * (k->dim_v + k->pad), k->kvt);

    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = (spattn_shape){1, 1, 1, k->len_q, k->len_k, k->dim_qk, k->dim_v};
    a.q = d->q;
    a.k = d->kk;
    a.v = d->v;
    a.q_layout = (spattn_layout){0, 0, (ptrdiff_t)(k->dim_qk + k->pad)};
    a.k_layout = (spattn_layout){0, 0, (ptrdiff_t)(k->dim_qk + k->pad)};
    a.v_layout = (spattn_layout){0, 0, (ptrdiff_t)(k->dim_v + k->pad)};
    a.o_layout = (spattn_layout){0, 0, (ptrdiff_t)(k->dim_v + k->pad)};
    d->ro = tu_buf_new(k->len_q * (k->dim_v + k->pad));
    d->rlse = tu_buf_new(k->len_q);
    a.o = d->ro.p;
    a.lse = d->rlse.p;
    a.scale = k->scale;
    a.softcap = k->softcap;
    a.alibi_slopes = k->mods & 1 ? &k->slope : NULL;
    a.sinks = k->mods & 2 ? &k->sink : NULL;
    a.pos_offset = k->pos_offset;
    const spattn_mask *ml[1] = {d->mask};
    ck_assert_int_eq(spattn_reference_forward(&a, ml, 1), SPATTN_OK);

    /* Softmax input: scores around 0, some rows around 90 (a kernel that does not subtract
       the row max overflows), NaN where the mask allows nothing (never to be read). */
    const size_t ld = k->len_k + k->pad;
    d->x = tu_buf_new(k->len_q * ld);
    d->rsm = tu_buf_new(k->len_q * ld);
    for (size_t i = 0; i < k->len_q; i++) {
        const float base = i % 4 == 3 ? 90.0f : 0.0f;
        for (size_t j = 0; j < k->len_k; j++)
            d->x.p[i * ld + j] = d->dense[i * k->len_k + j] ? base + 3.0f * tu_normal(&r) : NAN;
    }
    ck_assert_int_eq(spattn_reference_softmax_masked(d->x.p, d->rsm.p, k->len_q, k->len_k, ld,
                                                     d->mask, k->scale),
                     SPATTN_OK);
}

static void kdata_free(kdata *d)
{
    spattn_mask_free(d->mask);
    free(d->dense);
    free(d->q);
    free(d->kk);
    free(d->v);
    tu_buf_free(&d->ro);
    tu_buf_free(&d->rlse);
    tu_buf_free(&d->x);
    tu_buf_free(&d->rsm);
}

/* ---- running and checking ------------------------------------------------------------------ */

static spattn_head_job make_job(const kdata *d, tu_buf *o, tu_buf *lse)
{
    const kcase *k = &d->k;
    spattn_head_job job;
    job.q = d->q;
    job.k = d->kk;
    job.v = d->v;
    job.o = o->p;
    job.lse = k->lse ? lse->p : NULL;
    job.q_ts = job.k_ts = (ptrdiff_t)(k->dim_qk + k->pad);
    job.v_ts = job.o_ts = (ptrdiff_t)(k->dim_v + k->pad);
    job.dim_qk = k->dim_qk;
    job.dim_v = k->dim_v;
    job.scale = k->scale;
    job.softcap = k->softcap;
    job.stream_kv = k->stream_kv;
    job.slopes = k->mods & 1 ? &k->slope : NULL;
    job.sinks = k->mods & 2 ? &k->sink : NULL;
    job.mod_step = 0;
    job.pos0 = (ptrdiff_t)k->len_k - (ptrdiff_t)k->len_q + k->pos_offset;
    job.pos_step = 1;
    job.q_dtype = job.kv_dtype = job.o_dtype = SPATTN_DTYPE_F32;
    return job;
}

/* Scratch of `floats` floats, 64-byte aligned, and no more (rounded up to 64 bytes), so that
   the sanitizers see a kernel that uses more. */
static float *scratch_new(size_t floats)
{
    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    float *s = aligned_alloc(64, bytes ? bytes : 64);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void describe(char *buf, size_t n, const char *isa, const char *what, size_t c,
                     const kcase *k)
{
    snprintf(buf, n,
             "%s %s, case %zu: len_q %zu len_k %zu dim_qk %zu dim_v %zu pad %zu scale %g "
             "softcap %g lse %d stream_kv %d poison %d slope %g sink %g pos_offset %td",
             isa, what, c, k->len_q, k->len_k, k->dim_qk, k->dim_v, k->pad, (double)k->scale,
             (double)k->softcap, k->lse, k->stream_kv, k->poison,
             k->mods & 1 ? (double)k->slope : 0.0, k->mods & 2 ? (double)k->sink : -INFINITY,
             k->pos_offset);
}

/* Rows [i0, i1) of o/lse against the reference; the rest of the buffers untouched. */
static void check_rows(const kdata *d, const tu_buf *o, const tu_buf *lse, size_t i0, size_t i1,
                       const char *what)
{
    const kcase *k = &d->k;
    const size_t ts = k->dim_v + k->pad;
    const float sink = k->mods & 2 ? k->sink : -INFINITY; /* a row's lse without keys */
    if (!tu_buf_guards_ok(o))
        ck_abort_msg("%s: wrote outside O", what);
    for (size_t i = 0; i < k->len_q; i++) {
        int mine = i >= i0 && i < i1;
        int empty = 1;
        for (size_t j = 0; j < k->len_k; j++)
            empty &= !d->dense[i * k->len_k + j];
        for (size_t t = 0; t < ts; t++) {
            float got = o->p[i * ts + t];
            if (!mine || t >= k->dim_v) {
                if (!tu_is_canary(got))
                    ck_abort_msg("%s: O[%zu][%zu] written (not this call's)", what, i, t);
                continue;
            }
            float want = d->ro.p[i * ts + t];
            if (empty ? got != 0.0f : !tu_close(got, want, TU_TOL))
                ck_abort_msg("%s: O[%zu][%zu] = %.9g, reference %.9g%s", what, i, t, got, want,
                             empty ? " (row allows no key)" : "");
        }
        if (!k->lse)
            continue;
        float got = lse->p[i];
        if (!mine) {
            if (!tu_is_canary(got))
                ck_abort_msg("%s: lse[%zu] written (not this call's)", what, i);
        } else if (empty ? got != sink : !tu_close(got, d->rlse.p[i], TU_TOL)) {
            ck_abort_msg("%s: lse[%zu] = %.9g, reference %.9g", what, i, got, d->rlse.p[i]);
        }
    }
    if (!k->lse && !tu_buf_untouched(lse))
        ck_abort_msg("%s: lse written though NULL", what);
}

/* Rows [i0, i1) of o/lse bitwise equal to those of o2/lse2. */
static void same_bits(const kdata *d, const tu_buf *o, const tu_buf *lse, const tu_buf *o2,
                      const tu_buf *lse2, size_t i0, size_t i1, const char *what)
{
    const size_t ts = d->k.dim_v + d->k.pad;
    for (size_t i = i0; i < i1; i++) {
        if (memcmp(o->p + i * ts, o2->p + i * ts, d->k.dim_v * sizeof(float)) != 0)
            ck_abort_msg("%s: O row %zu differs", what, i);
        if (d->k.lse && memcmp(lse->p + i, lse2->p + i, sizeof(float)) != 0)
            ck_abort_msg("%s: lse[%zu] differs (%.9g vs %.9g)", what, i, lse->p[i], lse2->p[i]);
    }
}

/* attn_tiles per tile, then attn_tiles2 on each even tile with a successor. */
static void check_tiles(const spattn_kernel_table *kt, const kdata *d, size_t c)
{
    const kcase *k = &d->k;
    const spattn_mask *m = d->mask;
    char what[256], label[48];
    tu_buf o = tu_buf_new(k->len_q * (k->dim_v + k->pad)), lse = tu_buf_new(k->len_q);
    tu_buf o2 = tu_buf_new(o.n), lse2 = tu_buf_new(lse.n);
    float *scratch = scratch_new(kt->scratch_floats(k->dim_qk, k->dim_v, 0, 0));
    spattn_head_job job = make_job(d, &o, &lse);
    for (size_t qt = 0; qt < m->nqt; qt++) {
        tu_buf_reset(&o);
        tu_buf_reset(&lse);
        kt->attn_tiles(&job, m, qt, scratch);
        snprintf(label, sizeof label, "attn_tiles qt %zu", qt);
        describe(what, sizeof what, kt->name, label, c, k);
        const size_t i0 = qt * SPATTN_TQ;
        check_rows(d, &o, &lse, i0, i0 + spattn__qt_rows(m, qt), what);
        if (kt->attn_tiles2 == NULL || qt % 2 != 0 || qt + 1 >= m->nqt)
            continue;
        /* The pair: rows of qt and qt + 1 from one call, each bitwise attn_tiles's. */
        tu_buf_reset(&o2);
        tu_buf_reset(&lse2);
        spattn_head_job job2 = make_job(d, &o2, &lse2);
        kt->attn_tiles2(&job2, m, qt, scratch);
        const size_t i1 = i0 + SPATTN_TQ + spattn__qt_rows(m, qt + 1);
        snprintf(label, sizeof label, "attn_tiles2 qt %zu", qt);
        describe(what, sizeof what, kt->name, label, c, k);
        check_rows(d, &o2, &lse2, i0, i1, what);
        same_bits(d, &o2, &lse2, &o, &lse, i0, i0 + SPATTN_TQ, what);
        tu_buf_reset(&o);
        tu_buf_reset(&lse);
        kt->attn_tiles(&job, m, qt + 1, scratch);
        same_bits(d, &o2, &lse2, &o, &lse, i0 + SPATTN_TQ, i1, what);
    }
    free(scratch);
    tu_buf_free(&o);
    tu_buf_free(&lse);
    tu_buf_free(&o2);
    tu_buf_free(&lse2);
}

/* attn_gather over every tile of the head in one call, then one call per tile. */
static void check_gather(const spattn_kernel_table *kt, const kdata *d, size_t c)
{
    const kcase *k = &d->k;
    const spattn_mask *m = d->mask;
    char what[256];
    uint8_t *all = malloc(m->nqt);
    ck_assert_ptr_nonnull(all);
    memset(all, 1, m->nqt);
    spattn_keyrows kr;
    ck_assert_int_eq(spattn__keyrows_build(m, all, NULL, &kr), SPATTN_OK);
    free(all);
    tu_buf o = tu_buf_new(k->len_q * (k->dim_v + k->pad)), lse = tu_buf_new(k->len_q);
    tu_buf o1 = tu_buf_new(o.n), lse1 = tu_buf_new(lse.n);
    float *scratch = scratch_new(kt->scratch_floats(k->dim_qk, k->dim_v, k->len_q, kr.longest));
    spattn_head_job job = make_job(d, &o, &lse);
    kt->attn_gather(&job, &kr, 0, m->nqt, scratch);
    describe(what, sizeof what, kt->name, "attn_gather, all tiles in one call", c, k);
    check_rows(d, &o, &lse, 0, k->len_q, what);
    spattn_head_job job1 = make_job(d, &o1, &lse1);
    for (size_t qt = 0; qt < m->nqt; qt++)
        kt->attn_gather(&job1, &kr, qt, 1, scratch);
    describe(what, sizeof what, kt->name, "attn_gather, one call per tile", c, k);
    same_bits(d, &o1, &lse1, &o, &lse, 0, k->len_q, what);
    free(scratch);
    spattn__keyrows_free(&kr);
    tu_buf_free(&o);
    tu_buf_free(&lse);
    tu_buf_free(&o1);
    tu_buf_free(&lse1);
}

/* softmax_tile on every query tile, out of place and (odd cases) in place. */
static void check_softmax(const spattn_kernel_table *kt, const kdata *d, size_t c)
{
    const kcase *k = &d->k;
    const size_t ld = k->len_k + k->pad;
    char what[256];
    tu_buf y = tu_buf_new(d->x.n);
    const int in_place = c % 2;
    if (in_place)
        memcpy(y.p, d->x.p, y.n * sizeof(float));
    for (size_t qt = 0; qt < d->mask->nqt; qt++)
        kt->softmax_tile(in_place ? y.p : d->x.p, y.p, ld, d->mask, qt, k->scale);
    describe(what, sizeof what, kt->name, in_place ? "softmax_tile in place" : "softmax_tile", c,
             k);
    if (!tu_buf_guards_ok(&y))
        ck_abort_msg("%s: wrote outside y", what);
    for (size_t i = 0; i < k->len_q; i++)
        for (size_t j = 0; j < ld && i * ld + j < y.n; j++) {
            float got = y.p[i * ld + j];
            if (j >= k->len_k) { /* the gap between rows is not the kernel's */
                if (!in_place && !tu_is_canary(got))
                    ck_abort_msg("%s: y[%zu][%zu] (past len_k) written", what, i, j);
                continue;
            }
            if (!tu_close(got, d->rsm.p[i * ld + j], TU_TOL))
                ck_abort_msg("%s: y[%zu][%zu] = %.9g, reference %.9g", what, i, j, got,
                             d->rsm.p[i * ld + j]);
        }
    tu_buf_free(&y);
}

/* ---- element types ---------------------------------------------------------------------- */

static size_t esize(spattn_dtype t)
{
    return t == SPATTN_DTYPE_F32 ? 4 : 2;
}

/* n floats as a new buffer of type t (+ 64 bytes, so that a buffer is never empty). */
static void *typed_copy(const float *x, size_t n, spattn_dtype t)
{
    unsigned char *p = malloc(n * esize(t) + 64);
    ck_assert_ptr_nonnull(p);
    if (t == SPATTN_DTYPE_F32)
        memcpy(p, x, n * sizeof(float));
    else if (t == SPATTN_DTYPE_BF16)
        spattn_f32_to_bf16(x, (uint16_t *)(void *)p, n);
    else
        spattn_f32_to_f16(x, (uint16_t *)(void *)p, n);
    return p;
}

#define O_CANARY 0xa5

/* The typed job of a case: typed Q, K, V and an O of canary bytes. */
static spattn_head_job typed_job(const kdata *d, void *q, void *k, void *v, void *o, float *lse)
{
    tu_buf dummy = {0};
    spattn_head_job job = make_job(d, &dummy, &dummy);
    job.q = q;
    job.k = k;
    job.v = v;
    job.o = o;
    job.lse = d->k.lse ? lse : NULL;
    job.q_dtype = d->k.qt;
    job.kv_dtype = d->k.kvt;
    job.o_dtype = d->k.ot;
    return job;
}

/* Rows [i0, i1) of the typed O and lse against the F32 run's (o32, l32), bitwise, or within
   tol * (1 + |F32 value|) when tol > 0; every other byte of o untouched. */
static void typed_rows(const kdata *d, const unsigned char *o, const float *lse, const tu_buf *o32,
                       const tu_buf *l32, size_t i0, size_t i1, double tol, const char *what)
{
    const kcase *k = &d->k;
    const size_t ts = k->dim_v + k->pad, es = esize(k->ot);
    for (size_t i = 0; i < k->len_q; i++)
        for (size_t t = 0; t < ts; t++) {
            const unsigned char *got = o + (i * ts + t) * es;
            if (i < i0 || i >= i1 || t >= k->dim_v) {
                for (size_t b = 0; b < es; b++)
                    if (got[b] != O_CANARY)
                        ck_abort_msg("%s: typed O[%zu][%zu] written (not this call's)", what, i, t);
                continue;
            }
            unsigned char want[4];
            const float x = o32->p[i * ts + t];
            if (k->ot == SPATTN_DTYPE_F32)
                memcpy(want, &x, 4);
            else if (k->ot == SPATTN_DTYPE_BF16)
                spattn_f32_to_bf16(&x, (uint16_t *)(void *)want, 1);
            else
                spattn_f32_to_f16(&x, (uint16_t *)(void *)want, 1);
            /* A NaN may come out with another payload; it must stay NaN. */
            uint16_t gh;
            float gw = x;
            memcpy(&gh, got, sizeof gh);
            if (k->ot == SPATTN_DTYPE_BF16)
                spattn_bf16_to_f32(&gh, &gw, 1);
            else if (k->ot == SPATTN_DTYPE_F16)
                spattn_f16_to_f32(&gh, &gw, 1);
            else
                memcpy(&gw, got, sizeof gw);
            if (tol > 0 && !isnan(x)) {
                if (!tu_close(gw, x, tol))
                    ck_abort_msg("%s: typed O[%zu][%zu] = %.9g, F32 %.9g", what, i, t, (double)gw,
                                 (double)x);
                continue;
            }
            if (isnan(x) ? !isnan(gw) : memcmp(got, want, es) != 0)
                ck_abort_msg("%s: typed O[%zu][%zu] is not the F32 value %.9g rounded", what, i, t,
                             (double)x);
        }
    for (size_t i = i0; i < i1 && k->lse; i++)
        if (tol > 0 ? !tu_close(lse[i], l32->p[i], tol)
                    : memcmp(&lse[i], &l32->p[i], sizeof(float)) != 0)
            ck_abort_msg("%s: typed lse[%zu] = %.9g, F32 %.9g", what, i, (double)lse[i],
                         (double)l32->p[i]);
}

/* attn_tiles per tile, attn_tiles2 per pair and attn_gather over all tiles on typed copies,
   each against the same call in F32. */
static void check_typed(const spattn_kernel_table *kt, const kdata *d, size_t c)
{
    const kcase *k = &d->k;
    const spattn_mask *m = d->mask;
    char what[300], label[64];
    const size_t nq = k->len_q * (k->dim_qk + k->pad), nk = k->len_k * (k->dim_qk + k->pad),
                 nv = k->len_k * (k->dim_v + k->pad), no = k->len_q * (k->dim_v + k->pad);
    void *q = typed_copy(d->q, nq, k->qt), *kk = typed_copy(d->kk, nk, k->kvt),
         *v = typed_copy(d->v, nv, k->kvt);
    unsigned char *o = malloc(no * esize(k->ot) + 1);
    float *lse = malloc((k->len_q + 1) * sizeof(float));
    ck_assert(o != NULL && lse != NULL);
    tu_buf o32 = tu_buf_new(no), l32 = tu_buf_new(k->len_q);
    spattn_keyrows kr;
    uint8_t *all = malloc(m->nqt);
    ck_assert_ptr_nonnull(all);
    memset(all, 1, m->nqt);
    ck_assert_int_eq(spattn__keyrows_build(m, all, NULL, &kr), SPATTN_OK);
    free(all);
    float *scratch = scratch_new(kt->scratch_floats(k->dim_qk, k->dim_v, k->len_q, kr.longest));
    spattn_head_job job = typed_job(d, q, kk, v, o, lse);
    spattn_head_job j32 = make_job(d, &o32, &l32);
    /* AVX512-BF16 takes bf16 Q.K and P.V as pair dot products, NEON BF16 Q.K, AMX bf16 and
       f16 as tile products, and the gather path of all three bf16 Q.K as pair dot products:
       the contract's tolerance for the input types (api.md, element types) on top of the
       output's rounding, instead of the F32 bits. */
    double tol = 0;
    if (tu_isa_half_dots(kt->isa, k->qt, k->kvt, k->dim_qk))
        tol = (k->qt == SPATTN_DTYPE_BF16 ? 1e-2 : 2e-3) + (k->ot == SPATTN_DTYPE_BF16  ? 0x1p-8
                                                            : k->ot == SPATTN_DTYPE_F16 ? 0x1p-11
                                                                                        : 0.0);
    for (int call = 0; call < 3; call++) {
        const size_t nqt = call == 2 ? 1 : m->nqt;
        for (size_t qt = 0; qt < nqt; qt++) {
            if (call == 1 && (kt->attn_tiles2 == NULL || qt % 2 != 0 || qt + 1 >= m->nqt))
                continue;
            memset(o, O_CANARY, no * esize(k->ot));
            tu_buf_reset(&o32);
            tu_buf_reset(&l32);
            size_t i0 = qt * SPATTN_TQ, i1 = i0 + spattn__qt_rows(m, qt);
            if (call == 0) {
                kt->attn_tiles(&job, m, qt, scratch);
                kt->attn_tiles(&j32, m, qt, scratch);
            } else if (call == 1) {
                kt->attn_tiles2(&job, m, qt, scratch);
                kt->attn_tiles2(&j32, m, qt, scratch);
                i1 = i0 + SPATTN_TQ + spattn__qt_rows(m, qt + 1);
            } else {
                kt->attn_gather(&job, &kr, 0, m->nqt, scratch);
                kt->attn_gather(&j32, &kr, 0, m->nqt, scratch);
                i0 = 0;
                i1 = k->len_q;
            }
            snprintf(label, sizeof label, "%s qt %zu, types q %d kv %d o %d",
                     call == 0   ? "typed attn_tiles"
                     : call == 1 ? "typed attn_tiles2"
                                 : "typed attn_gather",
                     qt, (int)k->qt, (int)k->kvt, (int)k->ot);
            describe(what, sizeof what, kt->name, label, c, k);
            typed_rows(d, o, lse, &o32, &l32, i0, i1, tol, what);
        }
    }
    free(scratch);
    spattn__keyrows_free(&kr);
    tu_buf_free(&o32);
    tu_buf_free(&l32);
    free(q);
    free(kk);
    free(v);
    free(o);
    free(lse);
}

/* attn_mixed (where offered) with every other PARTIAL tile flagged, then with every one: over
   all tiles of the head in one call against the reference, and one call per tile bitwise the
   same. Any set of flagged tiles is valid input (the plan's rule only picks the cheap ones). */
static void check_mixed(const spattn_kernel_table *kt, const kdata *d, size_t c)
{
    if (kt->attn_mixed == NULL)
        return;
    const kcase *k = &d->k;
    const spattn_mask *m = d->mask;
    for (int every = 1; every <= 2; every++) {
        char what[256];
        uint8_t *all = malloc(m->nqt), *tg = calloc(m->ntiles + 1, 1);
        ck_assert(all != NULL && tg != NULL);
        memset(all, SPATTN_QT_MIXED, m->nqt);
        for (size_t t = 0; t < m->ntiles; t++)
            tg[t] = m->tiles[t].part != SPATTN_FULL && (every == 1 || t % 2 == 0);
        spattn_keyrows kr;
        ck_assert_int_eq(spattn__keyrows_build(m, all, tg, &kr), SPATTN_OK);
        free(all);
        tu_buf o = tu_buf_new(k->len_q * (k->dim_v + k->pad)), lse = tu_buf_new(k->len_q);
        tu_buf o1 = tu_buf_new(o.n), lse1 = tu_buf_new(lse.n);
        float *scratch = scratch_new(kt->scratch_floats(k->dim_qk, k->dim_v, k->len_q, kr.longest));
        spattn_head_job job = make_job(d, &o, &lse);
        kt->attn_mixed(&job, m, &kr, 0, m->nqt, scratch);
        describe(what, sizeof what, kt->name,
                 every == 1 ? "attn_mixed, all PARTIAL tiles listed" : "attn_mixed, half listed", c,
                 k);
        check_rows(d, &o, &lse, 0, k->len_q, what);
        spattn_head_job job1 = make_job(d, &o1, &lse1);
        for (size_t qt = m->nqt; qt-- > 0;)
            kt->attn_mixed(&job1, m, &kr, qt, 1, scratch);
        same_bits(d, &o1, &lse1, &o, &lse, 0, k->len_q, what);
        free(scratch);
        spattn__keyrows_free(&kr);
        tu_buf_free(&o);
        tu_buf_free(&lse);
        tu_buf_free(&o1);
        tu_buf_free(&lse1);
    }
}

/* ---- the tests --------------------------------------------------------------------------- */

/* Each kernels.inc entry over the grid (its first tu_cases(N_CASES) cases). */
START_TEST(kernels_on_grid)
{
    const spattn_kernel_table *kt = tu_kernel_table((size_t)_i, "kernels");
    if (kt == NULL)
        return;
    const size_t n = (size_t)tu_cases((int)N_CASES);
    kreach reach = {0};
    for (size_t c = 0; c < n && c < N_CASES; c++) {
        kdata d;
        kdata_make(&d, c);
        count_reach(d.mask, d.dense, &reach);
        check_tiles(kt, &d, c);
        check_gather(kt, &d, c);
        check_mixed(kt, &d, c);
        check_softmax(kt, &d, c);
        check_typed(kt, &d, c);
        kdata_free(&d);
    }
    /* The whole grid reaches each kind of tile and row many times (about a third of what it
       reaches today is required, so that a change to grid_mask that loses one fails here). */
    if (n >= N_CASES) {
        ck_assert_int_ge(reach.full, 240);
        ck_assert_int_ge(reach.partial, 480);
        ck_assert_int_ge(reach.empty_tiles, 120);
        ck_assert_int_ge(reach.empty_rows, 2000);
        ck_assert_int_ge(reach.full_pairs, 34);
        ck_assert_int_ge(reach.pair_with_empty, 60);
        ck_assert_int_ge(reach.gather_runs, 180);
    }
}
END_TEST

/* The grid itself: every row count, every dim for dim_qk and for dim_v, every key count, and
   each switch both ways, within the first N_CASES cases (a change to grid_case that loses
   one fails here rather than quietly testing less). */
START_TEST(grid_covers)
{
    int rows[SPATTN_TQ + 1] = {0}, dqk[N_DIMS] = {0}, dv[N_DIMS] = {0}, keys[N_KEYS] = {0};
    int tiles[4] = {0}, flags[5][2] = {{0}}, poison[3] = {0}, pair16[N_DIMS] = {0};
    int mods[4][SPATTN_TQ] = {{0}}, mods_dims[4][N_DIMS] = {{0}};
    for (size_t c = 0; c < N_CASES; c++) {
        kcase k = grid_case(c);
        rows[(k.len_q - 1) % SPATTN_TQ + 1] = 1;
        tiles[(k.len_q + SPATTN_TQ - 1) / SPATTN_TQ] = 1;
        for (size_t i = 0; i < N_DIMS; i++) {
            dqk[i] |= k.dim_qk == dims[i];
            dv[i] |= k.dim_v == dims[i];
        }
        for (size_t i = 0; i < N_KEYS; i++)
            keys[i] |= k.len_k == key_counts[i];
        flags[0][k.lse] = flags[1][k.softcap != 0.0f] = flags[2][k.stream_kv] = 1;
        flags[3][k.pad != 0] = flags[4][k.full_pair] = 1;
        /* A FULL key tile shared by a pair of 16-row tiles (no ISA computes 16 rows by the
           few-rows code), for each dim_qk. */
        for (size_t i = 0; i < N_DIMS; i++)
            pair16[i] |= k.full_pair && k.len_q > 2 * SPATTN_TQ && k.dim_qk == dims[i];
        poison[k.poison] = 1;
        mods[k.mods][(k.len_q - 1) % SPATTN_TQ] = 1;
        for (size_t i = 0; i < N_DIMS; i++)
            mods_dims[k.mods][i] |= k.dim_qk == dims[i];
    }
    /* Each modifier setting meets every row count of a tile, and half the dims at least. */
    for (int x = 0; x < 4; x++) {
        int nd = 0;
        for (size_t r = 0; r < SPATTN_TQ; r++)
            ck_assert_msg(mods[x][r], "modifiers %d never with %zu rows", x, r + 1);
        for (size_t i = 0; i < N_DIMS; i++)
            nd += mods_dims[x][i];
        ck_assert_msg(nd >= (int)N_DIMS / 2, "modifiers %d with only %d dims", x, nd);
    }
    for (size_t r = 1; r <= SPATTN_TQ; r++)
        ck_assert_msg(rows[r], "no case has %zu rows in its last tile", r);
    for (size_t i = 0; i < N_DIMS; i++)
        ck_assert_msg(dqk[i] && dv[i], "dim %zu missing for dim_qk or dim_v", dims[i]);
    for (size_t i = 0; i < N_KEYS; i++)
        ck_assert_msg(keys[i], "len_k %zu missing", key_counts[i]);
    ck_assert(tiles[1] && tiles[2] && tiles[3]);
    for (size_t i = 0; i < N_DIMS; i++)
        ck_assert_msg(pair16[i], "dim_qk %zu has no FULL tile pair of 16-row tiles", dims[i]);
    for (int f = 0; f < 5; f++)
        ck_assert_msg(flags[f][0] && flags[f][1], "switch %d only one way", f);
    ck_assert(poison[0] && poison[1] && poison[2]);
}
END_TEST

Suite *suite_kernels(void);
Suite *suite_kernels(void)
{
    Suite *s = suite_create("kernels");
    TCase *tc = tcase_create("grid");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, grid_covers);
    tcase_add_loop_test(tc, kernels_on_grid, 0, (int)tu_n_kernels());
    suite_add_tcase(s, tc);
    return s;
}

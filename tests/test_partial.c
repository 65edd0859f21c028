/*
 * Partial results: spattn_mask_slice against a truth table cut from spattn_mask_to_dense,
 * spattn_merge against a float64 formula and across every kernel table's merge_rows, and the
 * contract's key-shard recipe (slice, forward per shard, merge) against the unsharded call.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "kernels/dispatch.h"
#include "mask_check.h"
#include "test_util.h"

/* ---- slices ----------------------------------------------------------------------------- */

static int allow_hash(size_t i, size_t j, void *ctx)
{
    uint64_t x = (i * 0x9E3779B97F4A7C15ull) ^ (j * 0xC2B2AE3D27D4EB4Full) ^ *(uint64_t *)ctx;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return (x >> 60) < 5;
}

/* Every builder: tu_random_mask's kinds and the ones it does not make. */
static spattn_mask *any_mask(tu_rng *r, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    spattn_status st = SPATTN_OK;
    switch (tu_range(r, 0, 13)) {
    case 0:
        st = spattn_mask_streaming(lq, lk, tu_range(r, 0, 70), tu_range(r, 0, 150), &m);
        break;
    case 1:
        st = spattn_mask_dilated(lq, lk, tu_range(r, 0, 20), tu_range(r, 0, 20), tu_range(r, 1, 5),
                                 &m);
        break;
    case 2: {
        size_t stride = tu_range(r, 1, 70);
        st = spattn_mask_fixed(lq, lk, stride, tu_range(r, 1, stride), &m);
        break;
    }
    case 3: {
        size_t g[3] = {tu_range(r, 0, lk - 1), tu_range(r, 0, lk - 1), tu_range(r, 0, lk - 1)};
        st = spattn_mask_longformer(lq, lk, tu_range(r, 0, 30), tu_range(r, 0, 30), g, 3, &m);
        break;
    }
    case 4: {
        /* two documents splitting both lengths */
        size_t ql[2] = {tu_range(r, 0, lq), 0}, kl[2] = {tu_range(r, 0, lk), 0};
        ql[1] = lq - ql[0];
        kl[1] = lk - kl[0];
        st = spattn_mask_documents_kv(ql, kl, 2, (int)tu_range(r, 0, 1), &m);
        break;
    }
    case 5: {
        uint64_t seed = tu_next(r);
        st = spattn_mask_from_fn(lq, lk, allow_hash, &seed, &m);
        break;
    }
    default:
        return tu_random_mask(r, lq, lk);
    }
    ck_assert_int_eq(st, SPATTN_OK);
    return m;
}

static const size_t edge_lens[] = {1, 2, 15, 16, 17, 63, 64, 65, 127, 128, 129, 200, 300};
#define N_EDGE (sizeof edge_lens / sizeof edge_lens[0])

static size_t rand_len(tu_rng *r)
{
    return tu_next(r) & 1 ? edge_lens[tu_next(r) % N_EDGE] : tu_range(r, 1, 300);
}

/* A rectangle [*a, *b) of [0, n): the whole range, one element, aligned or unaligned ends. */
static void rand_range(tu_rng *r, size_t n, size_t align, size_t *a, size_t *b)
{
    switch (tu_range(r, 0, 5)) {
    case 0:
        *a = 0;
        *b = n;
        return;
    case 1:
        *a = tu_range(r, 0, n - 1);
        *b = *a + 1;
        return;
    case 2: /* start on a tile boundary */
        *a = (tu_range(r, 0, n - 1) / align) * align;
        break;
    default:
        *a = tu_range(r, 0, n - 1);
        break;
    }
    *b = tu_range(r, *a + 1, n);
}

static void check_slice(const spattn_mask *m, const uint8_t *dense, size_t lk, size_t q0, size_t q1,
                        size_t k0, size_t k1, const char *kind)
{
    size_t sq = q1 - q0, sk = k1 - k0;
    uint8_t *want = malloc(sq * sk);
    for (size_t i = 0; i < sq; i++)
        memcpy(want + i * sk, dense + (q0 + i) * lk + k0, sk);
    spattn_mask *s = (spattn_mask *)&want; /* not NULL: the call must set it */
    ck_assert_int_eq(spattn_mask_slice(m, q0, q1, k0, k1, &s), SPATTN_OK);
    char desc[160];
    snprintf(desc, sizeof desc, "%s slice [%zu,%zu)x[%zu,%zu)", kind, q0, q1, k0, k1);
    tm_check_mask(s, sq, sk, want, desc);
    spattn_mask_free(s);
    free(want);
}

START_TEST(slice_random)
{
    tu_rng r = {0x51ce0000u + (uint64_t)_i};
    int n = tu_cases(40);
    for (int c = 0; c < n; c++) {
        size_t lq = rand_len(&r), lk = rand_len(&r);
        spattn_mask *m = any_mask(&r, lq, lk);
        uint8_t *dense = malloc(lq * lk);
        ck_assert_int_eq(spattn_mask_to_dense(m, dense, lk), SPATTN_OK);
        for (int k = 0; k < 6; k++) {
            size_t q0, q1, k0, k1;
            rand_range(&r, lq, 16, &q0, &q1);
            rand_range(&r, lk, 64, &k0, &k1);
            check_slice(m, dense, lk, q0, q1, k0, k1, "random");
        }
        /* the whole mask, and every single pair of one row */
        check_slice(m, dense, lk, 0, lq, 0, lk, "whole");
        size_t i = tu_range(&r, 0, lq - 1);
        for (size_t j = 0; j < lk; j += 1 + lk / 40)
            check_slice(m, dense, lk, i, i + 1, j, j + 1, "one pair");
        spattn_mask_free(m);
        free(dense);
    }
}
END_TEST

/* Every shift of q0 and k0 across a tile, on a dense random mask and on an all-allowed one
   (whose FULL tiles must stay FULL where a slice tile is covered: tm_check_mask checks it). */
START_TEST(slice_every_shift)
{
    tu_rng r = {0x5b1f7};
    const size_t lq = 70, lk = 300;
    uint8_t *d = malloc(lq * lk);
    for (int kind = 0; kind < 2; kind++) {
        for (size_t x = 0; x < lq * lk; x++)
            d[x] = kind == 0 ? 1 : tu_uniform(&r) < 0.5;
        spattn_mask *m;
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, d, lk, &m), SPATTN_OK);
        for (size_t q0 = 0; q0 < 17; q0++)
            for (size_t k0 = 0; k0 < 65; k0 += 1 + (q0 % 3))
                check_slice(m, d, lk, q0, lq - (q0 % 5), k0, lk - k0 / 2,
                            kind == 0 ? "full" : "dense random");
        spattn_mask_free(m);
    }
    free(d);
}
END_TEST

/* Offsets far from 0 in a long banded mask: only the slice's tiles are visited. */
START_TEST(slice_long_window)
{
    const size_t L = (size_t)1 << 20, left = 100;
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_window(L, L, left, 0, &m), SPATTN_OK);
    const size_t q0 = 500003, q1 = q0 + 45, k0 = q0 - 131, k1 = q0 + 70;
    spattn_mask *s;
    ck_assert_int_eq(spattn_mask_slice(m, q0, q1, k0, k1, &s), SPATTN_OK);
    size_t sq = q1 - q0, sk = k1 - k0;
    uint8_t *want = malloc(sq * sk);
    for (size_t i = 0; i < sq; i++)
        for (size_t j = 0; j < sk; j++) {
            size_t gi = q0 + i, gj = k0 + j;
            want[i * sk + j] = gj <= gi && gi - gj <= left;
        }
    tm_check_mask(s, sq, sk, want, "long window");
    free(want);
    spattn_mask_free(s);
    spattn_mask_free(m);
}
END_TEST

START_TEST(slice_errors)
{
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(40, 100, &m), SPATTN_OK);
    spattn_mask *out = m;
    ck_assert_int_eq(spattn_mask_slice(m, 0, 1, 0, 1, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_slice(NULL, 0, 1, 0, 1, &out), SPATTN_E_NULL);
    ck_assert_ptr_null(out);
    static const size_t bad[][4] = {
        {0, 0, 0, 1},        {5, 5, 0, 1},     {6, 5, 0, 1},        {0, 41, 0, 1},
        {40, 41, 0, 1},      {0, 1, 0, 0},     {0, 1, 7, 7},        {0, 1, 8, 7},
        {0, 1, 0, 101},      {0, 1, 100, 101}, {0, SIZE_MAX, 0, 1}, {0, 1, 0, SIZE_MAX},
        {SIZE_MAX, 1, 0, 1},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        out = m;
        ck_assert_int_eq(spattn_mask_slice(m, bad[c][0], bad[c][1], bad[c][2], bad[c][3], &out),
                         SPATTN_E_SHAPE);
        ck_assert_ptr_null(out);
    }
    /* the corners that are allowed */
    ck_assert_int_eq(spattn_mask_slice(m, 39, 40, 99, 100, &out), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(out), 1);
    spattn_mask_free(out);
    ck_assert_int_eq(spattn_mask_slice(m, 0, 1, 61, 100, &out), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(out), 0); /* row 0 sees keys 0..60 */
    spattn_mask_free(out);
    spattn_mask_free(m);
}
END_TEST

/* Each allocation of a slice failing in turn: SPATTN_E_NOMEM with *out NULL (the sanitizer job
   checks nothing leaks), until the slice succeeds and is right. */
START_TEST(slice_alloc_failures)
{
    spattn_mask *m, *want;
    ck_assert_int_eq(spattn_mask_window(300, 300, 70, 3, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_slice(m, 5, 250, 33, 290, &want), SPATTN_OK);
    uint8_t *dw = malloc(245 * 257), *dg = malloc(245 * 257);
    ck_assert_int_eq(spattn_mask_to_dense(want, dw, 257), SPATTN_OK);
    long n = 1;
    for (;; n++) {
        ck_assert_int_lt(n, 10000);
        spattn__test_fail_alloc_at(n);
        spattn_mask *s = m;
        spattn_status st = spattn_mask_slice(m, 5, 250, 33, 290, &s);
        spattn__test_fail_alloc_at(0);
        if (st == SPATTN_OK) {
            ck_assert_int_eq(spattn_mask_to_dense(s, dg, 257), SPATTN_OK);
            ck_assert_mem_eq(dw, dg, 245 * 257);
            spattn_mask_free(s);
            break;
        }
        ck_assert_int_eq(st, SPATTN_E_NOMEM);
        ck_assert_ptr_null(s);
    }
    ck_assert_int_gt(n, 1);
    free(dw);
    free(dg);
    spattn_mask_free(want);
    spattn_mask_free(m);
}
END_TEST

/* ---- merge ------------------------------------------------------------------------------ */

typedef struct parts {
    size_t n, rows, dim;
    float **o, **lse;
} parts;

/* Random parts: lse spread over [-30, 30], some -inf entries (their o rows NaN, which merge
   must not read) and some rows -inf in every part. */
static parts parts_new(tu_rng *r, size_t n, size_t rows, size_t dim)
{
    parts p = {n, rows, dim, malloc(n * sizeof(float *)), malloc(n * sizeof(float *))};
    uint8_t *dead = malloc(rows);
    for (size_t i = 0; i < rows; i++)
        dead[i] = tu_uniform(r) < 0.15;
    for (size_t s = 0; s < n; s++) {
        p.o[s] = malloc(rows * dim * sizeof(float));
        p.lse[s] = malloc(rows * sizeof(float));
        for (size_t i = 0; i < rows; i++) {
            int neg = dead[i] || tu_uniform(r) < 0.2;
            p.lse[s][i] = neg ? -INFINITY : (float)(60.0 * tu_uniform(r) - 30.0);
            for (size_t d = 0; d < dim; d++)
                p.o[s][i * dim + d] = neg ? NAN : tu_normal(r);
        }
    }
    free(dead);
    return p;
}

static void parts_free(parts *p)
{
    for (size_t s = 0; s < p->n; s++) {
        free(p->o[s]);
        free(p->lse[s]);
    }
    free(p->o);
    free(p->lse);
}

/* The contract's formula in float64. */
static void merge_ref(const parts *p, double *o, double *lse)
{
    for (size_t i = 0; i < p->rows; i++) {
        double sum = 0.0;
        for (size_t s = 0; s < p->n; s++)
            if (p->lse[s][i] != -INFINITY)
                sum += exp((double)p->lse[s][i]);
        lse[i] = sum > 0.0 ? log(sum) : -INFINITY;
        for (size_t d = 0; d < p->dim; d++) {
            double acc = 0.0;
            for (size_t s = 0; s < p->n; s++)
                if (p->lse[s][i] != -INFINITY)
                    acc += exp((double)p->lse[s][i] - lse[i]) * p->o[s][i * p->dim + d];
            o[i * p->dim + d] = acc;
        }
    }
}

#define CPARTS(p) ((const float *const *)(p).o), ((const float *const *)(p).lse)

static size_t rand_dim(tu_rng *r)
{
    static const size_t dims[] = {1, 3, 7, 8, 15, 16, 17, 31, 64, 65, 128, 129};
    return dims[tu_next(r) % (sizeof dims / sizeof dims[0])];
}

START_TEST(merge_formula)
{
    tu_rng r = {0x3e76e};
    int n = tu_cases(60);
    for (int c = 0; c < n; c++) {
        size_t np = tu_range(&r, 1, 19), rows = tu_range(&r, 1, 20), dim = rand_dim(&r);
        parts p = parts_new(&r, np, rows, dim);
        float *o = malloc(rows * dim * sizeof(float)), *lse = malloc(rows * sizeof(float));
        double *ro = malloc(rows * dim * sizeof(double)), *rl = malloc(rows * sizeof(double));
        ck_assert_int_eq(spattn_merge(np, rows, dim, CPARTS(p), o, lse), SPATTN_OK);
        merge_ref(&p, ro, rl);
        for (size_t i = 0; i < rows; i++) {
            if (rl[i] == -INFINITY) {
                ck_assert(lse[i] == -INFINITY);
                for (size_t d = 0; d < dim; d++)
                    ck_assert_msg(o[i * dim + d] == 0.0f && !signbit(o[i * dim + d]),
                                  "row %zu of no keys: o[%zu] = %g", i, d, o[i * dim + d]);
                continue;
            }
            ck_assert_msg(tu_close(lse[i], (float)rl[i], 1e-6), "lse[%zu] %.9g want %.9g", i,
                          lse[i], rl[i]);
            for (size_t d = 0; d < dim; d++)
                ck_assert_msg(fabs(o[i * dim + d] - ro[i * dim + d]) <= 1e-5,
                              "parts %zu row %zu dim %zu: %.9g want %.9g", np, i, d, o[i * dim + d],
                              ro[i * dim + d]);
        }
        free(o);
        free(lse);
        free(ro);
        free(rl);
        parts_free(&p);
    }
}
END_TEST

/* Every kernel table's merge_rows gives the scalar tier's bits (the weights are computed alike
   and each lane is one fma chain), out of place and in place into part 0; spattn_merge too. */
START_TEST(merge_isas_bitwise)
{
    tu_rng r = {0x3e76e + 1};
    const spattn_kernel_table *sc = spattn__kernels_for(SPATTN_ISA_SCALAR);
    ck_assert_ptr_nonnull(sc);
    int n = tu_cases(40);
    for (int c = 0; c < n; c++) {
        size_t np = tu_range(&r, 1, 19), rows = tu_range(&r, 1, 9), dim = rand_dim(&r);
        parts p = parts_new(&r, np, rows, dim);
        size_t no = rows * dim;
        float *want = malloc(no * sizeof(float)), *wl = malloc(rows * sizeof(float));
        float *got = malloc(no * sizeof(float)), *gl = malloc(rows * sizeof(float));
        float *o0 = malloc(no * sizeof(float)), *l0 = malloc(rows * sizeof(float));
        sc->merge_rows(np, rows, dim, CPARTS(p), want, wl);
        for (size_t k = 0; k < tu_n_kernels() + 1; k++) {
            const char *name = k < tu_n_kernels() ? tu_kernel_name(k) : "spattn_merge";
            const spattn_kernel_table *kt = NULL;
            if (k < tu_n_kernels() && !(kt = tu_kernel_table(k, "partial")))
                continue;
            for (int in_place = 0; in_place < 2; in_place++) {
                float *oo = got, *ll = gl;
                memcpy(o0, p.o[0], no * sizeof(float));
                memcpy(l0, p.lse[0], rows * sizeof(float));
                if (in_place) {
                    oo = p.o[0];
                    ll = p.lse[0];
                }
                if (kt)
                    kt->merge_rows(np, rows, dim, CPARTS(p), oo, ll);
                else
                    ck_assert_int_eq(spattn_merge(np, rows, dim, CPARTS(p), oo, ll), SPATTN_OK);
                ck_assert_msg(memcmp(oo, want, no * sizeof(float)) == 0, "%s o (in place %d)", name,
                              in_place);
                ck_assert_msg(memcmp(ll, wl, rows * sizeof(float)) == 0, "%s lse (in place %d)",
                              name, in_place);
                memcpy(p.o[0], o0, no * sizeof(float));
                memcpy(p.lse[0], l0, rows * sizeof(float));
            }
        }
        free(want);
        free(wl);
        free(got);
        free(gl);
        free(o0);
        free(l0);
        parts_free(&p);
    }
}
END_TEST

/* Hand cases: one part is a copy; equal lse halves; a part of -inf adds nothing bit for bit;
   huge lse values do not overflow; a NaN lse makes its row NaN. */
START_TEST(merge_by_hand)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, nanrow[4] = {NAN, NAN, NAN, NAN};
    float la[2] = {0.5f, 1e30f}, lb[2] = {0.5f, 1e30f}, lneg[2] = {-INFINITY, -INFINITY};
    float o[4], lse[2];
    const float *op[3] = {a, b, nanrow}, *lp[3] = {la, lb, lneg};
    ck_assert_int_eq(spattn_merge(1, 2, 2, op, lp, o, lse), SPATTN_OK);
    ck_assert(memcmp(o, a, sizeof o) == 0 && lse[0] == 0.5f && lse[1] == 1e30f);
    ck_assert_int_eq(spattn_merge(2, 2, 2, op, lp, o, lse), SPATTN_OK);
    ck_assert(o[0] == 3.0f && o[1] == 4.0f && o[2] == 5.0f && o[3] == 6.0f);
    ck_assert(tu_close(lse[0], 0.5f + 0.69314718f, 1e-7));
    ck_assert(lse[1] == 1e30f);
    float o3[4], lse3[2];
    ck_assert_int_eq(spattn_merge(3, 2, 2, op, lp, o3, lse3), SPATTN_OK);
    ck_assert(memcmp(o3, o, sizeof o) == 0 && memcmp(lse3, lse, sizeof lse) == 0);
    float lnan[2] = {NAN, 0.0f};
    lp[1] = lnan;
    ck_assert_int_eq(spattn_merge(2, 2, 2, op, lp, o, lse), SPATTN_OK);
    ck_assert(isnan(lse[0]) && isnan(o[0]) && isnan(o[1]));
    ck_assert(lse[1] == 1e30f && o[2] == 3.0f);
}
END_TEST

START_TEST(merge_errors)
{
    enum { R = 3, D = 5, N = R * D };
    float *in = calloc(4 * N + 4 * R, sizeof(float)); /* o parts, then lse parts */
    const float *op[2] = {in, in + N}, *lp[2] = {in + 4 * N, in + 4 * N + R};
    tu_buf o = tu_buf_new(N), lse = tu_buf_new(R);
#define EXPECT_MERGE(st, call)                                                                     \
    do {                                                                                           \
        tu_buf_reset(&o);                                                                          \
        tu_buf_reset(&lse);                                                                        \
        ck_assert_int_eq(call, st);                                                                \
        ck_assert(tu_buf_untouched(&o) && tu_buf_untouched(&lse));                                 \
    } while (0)
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, NULL, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, op, NULL, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, op, lp, NULL, lse.p));
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, op, lp, o.p, NULL));
    EXPECT_MERGE(SPATTN_E_SHAPE, spattn_merge(0, R, D, op, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_SHAPE, spattn_merge(2, 0, D, op, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_SHAPE, spattn_merge(2, R, 0, op, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_SHAPE, spattn_merge(2, SIZE_MAX / 2, 4, op, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_SHAPE,
                 spattn_merge(2, (size_t)1 << 40, (size_t)1 << 30, op, lp, o.p, lse.p));
    const float *op_null[2] = {in, NULL}, *lp_null[2] = {NULL, in + 4 * N};
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, op_null, lp, o.p, lse.p));
    EXPECT_MERGE(SPATTN_E_NULL, spattn_merge(2, R, D, op, lp_null, o.p, lse.p));
    /* outputs overlapping each other or an input other than part 0 itself */
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, o.p, o.p + N - 1));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, (float *)op[1], lse.p));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, (float *)op[1] + N - 1, lse.p));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, (float *)op[0] + 1, lse.p));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, o.p, (float *)lp[1]));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, o.p, (float *)lp[0] + 1));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, o.p, (float *)op[0] + 2));
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op, lp, (float *)lp[1] - N + 1, lse.p));
    const float *op_same[2] = {in, in};
    EXPECT_MERGE(SPATTN_E_ARG, spattn_merge(2, R, D, op_same, lp, (float *)in, lse.p));
#undef EXPECT
    /* inputs may share memory; outputs may be part 0 exactly */
    ck_assert_int_eq(spattn_merge(2, R, D, op_same, lp, o.p, lse.p), SPATTN_OK);
    ck_assert_int_eq(spattn_merge(2, R, D, op, lp, (float *)in, (float *)lp[0]), SPATTN_OK);
    ck_assert(tu_buf_guards_ok(&o) && tu_buf_guards_ok(&lse));
    tu_buf_free(&o);
    tu_buf_free(&lse);
    free(in);
}
END_TEST

/* ---- the key-shard recipe --------------------------------------------------------------- */

/* n - 1 distinct cut points in (0, len), sorted, with 0 and len around them: cuts[0..n]. */
static size_t rand_cuts(tu_rng *r, size_t len, size_t n, size_t *cuts)
{
    if (n > len)
        n = len;
    cuts[0] = 0;
    cuts[n] = len;
    for (size_t k = 1; k < n; k++) {
        size_t c;
        int dup;
        do {
            c = tu_range(r, 1, len - 1);
            dup = 0;
            for (size_t j = 1; j < k; j++)
                dup |= cuts[j] == c;
        } while (dup);
        size_t j = k;
        for (; j > 1 && cuts[j - 1] > c; j--)
            cuts[j] = cuts[j - 1];
        cuts[j] = c;
    }
    return n;
}

static float *randn(tu_rng *r, size_t n)
{
    float *p = malloc(n * sizeof(float));
    for (size_t x = 0; x < n; x++)
        p[x] = tu_normal(r);
    return p;
}

typedef struct problem {
    spattn_shape sh;
    float *q, *k, *v;
    spattn_mask *m;
    /* Score modifiers of the whole problem (NULL: none), which may itself stand at pos0. */
    const float *slopes, *sinks;
    ptrdiff_t pos0;
    float softcap;
} problem;

static spattn_args args_of(const problem *p, size_t q0, size_t q1, size_t k0, size_t k1, float *o,
                           float *lse)
{
    const spattn_shape *s = &p->sh;
    spattn_args a;
    memset(&a, 0, sizeof a);
    a.shape = *s;
    a.shape.len_q = q1 - q0;
    a.shape.len_k = k1 - k0;
    a.q = p->q + q0 * s->dim_qk;
    a.q_layout = spattn_layout_bhtd(s->heads_q, s->len_q, s->dim_qk);
    a.k = p->k + k0 * s->dim_qk;
    a.k_layout = spattn_layout_bhtd(s->heads_kv, s->len_k, s->dim_qk);
    a.v = p->v + k0 * s->dim_v;
    a.v_layout = spattn_layout_bhtd(s->heads_kv, s->len_k, s->dim_v);
    a.o = o;
    a.o_layout = spattn_layout_bhtd(s->heads_q, q1 - q0, s->dim_v);
    a.lse = lse;
    a.pos_offset = p->pos0 + (ptrdiff_t)(s->len_k - k1) - (ptrdiff_t)(s->len_q - q1);
    a.alibi_slopes = p->slopes;
    a.sinks = p->sinks;
    a.softcap = p->softcap;
    return a;
}

/* The query block [q0, q1) through key shards cuts[0..n]: forward per shard on the sliced mask
   (the sinks, if any, in shard sink_shard's call only), then merge; checks the result against
   the unsharded o_full / lse_full and the float64 reference, and that leaving out the shards
   whose slice allows nothing (but the sinks' shard) changes no bit. */
static void run_block(const problem *p, size_t q0, size_t q1, const size_t *cuts, size_t n,
                      size_t sink_shard, const spattn_options *opt, const float *o_full,
                      const float *lse_full, const float *o_ref, const float *lse_ref)
{
    const spattn_shape *s = &p->sh;
    size_t bh = s->batch * s->heads_q, ql = q1 - q0, rows = bh * ql, dv = s->dim_v;
    float **o = malloc(n * sizeof(float *)), **lse = malloc(n * sizeof(float *));
    const float **ko = malloc(n * sizeof(float *)), **kl = malloc(n * sizeof(float *));
    size_t kept = 0;
    for (size_t sh = 0; sh < n; sh++) {
        size_t k0 = cuts[sh], k1 = cuts[sh + 1];
        spattn_mask *sm;
        ck_assert_int_eq(spattn_mask_slice(p->m, q0, q1, k0, k1, &sm), SPATTN_OK);
        o[sh] = malloc(rows * dv * sizeof(float));
        lse[sh] = malloc(rows * sizeof(float));
        spattn_args a = args_of(p, q0, q1, k0, k1, o[sh], lse[sh]);
        if (sh != sink_shard)
            a.sinks = NULL;
        const spattn_mask *ms[1] = {sm};
        ck_assert_int_eq(spattn_forward(&a, ms, 1, opt), SPATTN_OK);
        if (spattn_mask_nnz(sm) > 0 || (p->sinks != NULL && sh == sink_shard)) {
            ko[kept] = o[sh];
            kl[kept++] = lse[sh];
        }
        spattn_mask_free(sm);
    }
    float *mo = malloc(rows * dv * sizeof(float)), *ml = malloc(rows * sizeof(float));
    ck_assert_int_eq(
        spattn_merge(n, rows, dv, (const float *const *)o, (const float *const *)lse, mo, ml),
        SPATTN_OK);
    for (size_t x = 0; x < bh; x++)
        for (size_t i = 0; i < ql; i++) {
            size_t fr = x * s->len_q + q0 + i, sr = x * ql + i;
            ck_assert_msg(tu_close(ml[sr], lse_full[fr], TU_TOL) &&
                              tu_close(ml[sr], lse_ref[fr], TU_TOL),
                          "lse row %zu: %.9g, unsharded %.9g, reference %.9g", fr, ml[sr],
                          lse_full[fr], lse_ref[fr]);
            for (size_t d = 0; d < dv; d++) {
                float g = mo[sr * dv + d], f = o_full[fr * dv + d], rf = o_ref[fr * dv + d];
                TU_CHECK_MSG(tu_close(g, f, TU_TOL) && tu_close(g, rf, TU_TOL),
                             "o row %zu dim %zu: %.9g, unsharded %.9g, reference %.9g", fr, d, g, f,
                             rf);
            }
        }
    if (kept > 0) {
        float *ko_out = malloc(rows * dv * sizeof(float)), *kl_out = malloc(rows * sizeof(float));
        ck_assert_int_eq(spattn_merge(kept, rows, dv, ko, kl, ko_out, kl_out), SPATTN_OK);
        ck_assert(memcmp(ko_out, mo, rows * dv * sizeof(float)) == 0);
        ck_assert(memcmp(kl_out, ml, rows * sizeof(float)) == 0);
        free(ko_out);
        free(kl_out);
    }
    for (size_t sh = 0; sh < n; sh++) {
        free(o[sh]);
        free(lse[sh]);
    }
    free(o);
    free(lse);
    free(ko);
    free(kl);
    free(mo);
    free(ml);
}

/* Random problems (GQA, causal / window / random masks, len_q above and below len_k) split
   into 1..3 query blocks and 1..5 key shards, on every ISA this host runs; in half of them
   with ALiBi (the problem itself at a random pos_offset, each shard's moved as the recipe
   says), sinks (some heads -inf) passed in one random shard's call, and softcap. */
START_TEST(shards_match_unsharded)
{
    tu_rng r = {0x54a2d000u + (uint64_t)_i};
    int n = tu_cases(4);
    for (int c = 0; c < n; c++) {
        problem p;
        size_t hkv = tu_range(&r, 1, 2);
        p.sh = (spattn_shape){tu_range(&r, 1, 2),  hkv * tu_range(&r, 1, 3), hkv,
                              tu_range(&r, 1, 90), tu_range(&r, 1, 260),     tu_range(&r, 1, 70),
                              tu_range(&r, 1, 70)};
        const spattn_shape *s = &p.sh;
        if (_i % 2 == 0 && s->len_k < s->len_q)
            p.sh.len_k = s->len_q + tu_range(&r, 0, 100);
        size_t lq = s->len_q, lk = s->len_k;
        switch (_i % 3) {
        case 0:
            ck_assert_int_eq(spattn_mask_causal(lq, lk, &p.m), SPATTN_OK);
            break;
        case 1:
            ck_assert_int_eq(
                spattn_mask_window(lq, lk, tu_range(&r, 0, 80), tu_range(&r, 0, 10), &p.m),
                SPATTN_OK);
            break;
        default:
            p.m = tu_random_mask(&r, lq, lk);
        }
        float slopes[6], sinks[6];
        p.slopes = p.sinks = NULL;
        p.pos0 = 0;
        p.softcap = 0.0f;
        if (_i >= 3) {
            p.softcap = 15.0f;
            ck_assert_int_eq(spattn_alibi_slopes(s->heads_q, slopes), SPATTN_OK);
            for (size_t h = 0; h < s->heads_q; h++)
                sinks[h] = h % 3 == 1 ? -INFINITY : tu_normal(&r);
            p.slopes = slopes;
            p.sinks = sinks;
            p.pos0 = (ptrdiff_t)tu_range(&r, 0, 300) - 150;
        }
        size_t bq = s->batch * s->heads_q, bk = s->batch * s->heads_kv;
        p.q = randn(&r, bq * lq * s->dim_qk);
        p.k = randn(&r, bk * lk * s->dim_qk);
        p.v = randn(&r, bk * lk * s->dim_v);
        float *of = malloc(bq * lq * s->dim_v * sizeof(float)), *lf = malloc(bq * lq * 4);
        float *orf = malloc(bq * lq * s->dim_v * sizeof(float)), *lrf = malloc(bq * lq * 4);
        spattn_args a = args_of(&p, 0, lq, 0, lk, orf, lrf);
        const spattn_mask *ms[1] = {p.m};
        ck_assert_int_eq(spattn_reference_forward(&a, ms, 1), SPATTN_OK);
        size_t qcuts[4], kcuts[6];
        size_t nqb = rand_cuts(&r, lq, tu_range(&r, 1, 3), qcuts);
        size_t nks = rand_cuts(&r, lk, tu_range(&r, 1, 5), kcuts);
        size_t sink_shard = tu_range(&r, 0, nks - 1);
        for (int t = 0; t < tu_n_isas(); t++) {
            spattn_options opt = {tu_isa(t), 0};
            a = args_of(&p, 0, lq, 0, lk, of, lf);
            ck_assert_int_eq(spattn_forward(&a, ms, 1, &opt), SPATTN_OK);
            for (size_t b = 0; b < nqb; b++)
                run_block(&p, qcuts[b], qcuts[b + 1], kcuts, nks, sink_shard, &opt, of, lf, orf,
                          lrf);
        }
        free(of);
        free(lf);
        free(orf);
        free(lrf);
        free(p.q);
        free(p.k);
        free(p.v);
        spattn_mask_free(p.m);
    }
}
END_TEST

/* A shard the query block does not see at all: spattn_forward on its all-empty slice gives
   O = 0 and lse = -inf, and merging it in changes nothing. */
START_TEST(empty_slice_forward)
{
    tu_rng r = {0xe3};
    problem p = {{1, 2, 1, 32, 200, 8, 8}, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0.0f};
    ck_assert_int_eq(spattn_mask_causal(32, 200, &p.m), SPATTN_OK);
    p.q = randn(&r, 2 * 32 * 8);
    p.k = randn(&r, 200 * 8);
    p.v = randn(&r, 200 * 8);
    spattn_mask *sm;
    /* rows 0..15 stand at positions 168..183: keys 190.. are beyond all of them */
    ck_assert_int_eq(spattn_mask_slice(p.m, 0, 16, 190, 200, &sm), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(sm), 0);
    const spattn_mask *ms[1] = {sm};
    for (int t = 0; t < tu_n_isas(); t++) {
        spattn_options opt = {tu_isa(t), 0};
        float o[2 * 16 * 8], lse[2 * 16];
        memset(o, 0x7f, sizeof o);
        spattn_args a = args_of(&p, 0, 16, 190, 200, o, lse);
        ck_assert_int_eq(spattn_forward(&a, ms, 1, &opt), SPATTN_OK);
        for (size_t x = 0; x < 2 * 16; x++) {
            ck_assert(lse[x] == -INFINITY);
            for (size_t d = 0; d < 8; d++)
                ck_assert(o[x * 8 + d] == 0.0f);
        }
        float o1[2 * 16 * 8], l1[2 * 16], mo[2 * 16 * 8], ml[2 * 16];
        spattn_mask *s1;
        ck_assert_int_eq(spattn_mask_slice(p.m, 0, 16, 0, 190, &s1), SPATTN_OK);
        const spattn_mask *ms1[1] = {s1};
        a = args_of(&p, 0, 16, 0, 190, o1, l1);
        ck_assert_int_eq(spattn_forward(&a, ms1, 1, &opt), SPATTN_OK);
        spattn_mask_free(s1);
        const float *op[2] = {o, o1}, *lp[2] = {lse, l1};
        ck_assert_int_eq(spattn_merge(2, 32, 8, op, lp, mo, ml), SPATTN_OK);
        ck_assert(memcmp(mo, o1, sizeof mo) == 0 && memcmp(ml, l1, sizeof ml) == 0);
    }
    spattn_mask_free(sm);
    spattn_mask_free(p.m);
    free(p.q);
    free(p.k);
    free(p.v);
}
END_TEST

Suite *suite_partial(void);
Suite *suite_partial(void)
{
    Suite *s = suite_create("partial");
    TCase *tc = tcase_create("slice");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, slice_random, 0, 4);
    tcase_add_test(tc, slice_every_shift);
    tcase_add_test(tc, slice_long_window);
    tcase_add_test(tc, slice_errors);
    tcase_add_test(tc, slice_alloc_failures);
    suite_add_tcase(s, tc);

    tc = tcase_create("merge");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, merge_formula);
    tcase_add_test(tc, merge_isas_bitwise);
    tcase_add_test(tc, merge_by_hand);
    tcase_add_test(tc, merge_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("shards");
    tcase_set_timeout(tc, 240);
    tcase_add_loop_test(tc, shards_match_unsharded, 0, 6);
    tcase_add_test(tc, empty_slice_forward);
    suite_add_tcase(s, tc);
    return s;
}

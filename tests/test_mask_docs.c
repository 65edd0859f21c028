/*
 * The streaming (sinks + window) and packed-document masks against truth tables computed pair
 * by pair from the sets written in spattn.h, their errors and allocation failures, shapes too
 * large for a truth table (counts by formula), and the ALiBi slopes against the paper's
 * recursive definition evaluated here in double.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mask_check.h"
#include "test_util.h"

#define MAX_DOCS 16

/* ---- truth ------------------------------------------------------------------------------ */

static uint8_t *streaming_truth(size_t lq, size_t lk, size_t n_sink, size_t window)
{
    uint8_t *t = calloc(lq * lk, 1);
    ck_assert_ptr_nonnull(t);
    for (size_t i = 0; i < lq; i++) {
        int64_t ip = (int64_t)i + (int64_t)lk - (int64_t)lq;
        for (size_t j = 0; j < lk; j++) {
            if ((int64_t)j > ip)
                continue;
            uint64_t back = (uint64_t)(ip - (int64_t)j); /* i' - j >= 0 */
            t[i * lk + j] = (uint8_t)(j < n_sink || back < window);
        }
    }
    return t;
}

/* Document d's local causal rule, pair by pair: each row and each key is first labelled with
   its document and its index inside it. */
static uint8_t *docs_truth(const size_t *ql, const size_t *kl, size_t n, int causal, size_t lq,
                           size_t lk)
{
    size_t *qd = malloc(lq * sizeof *qd), *qr = malloc(lq * sizeof *qr);
    size_t *kd = malloc(lk * sizeof *kd), *kr = malloc(lk * sizeof *kr);
    uint8_t *t = calloc(lq * lk, 1);
    ck_assert(qd && qr && kd && kr && t);
    size_t i = 0, j = 0;
    for (size_t d = 0; d < n; d++) {
        for (size_t r = 0; r < ql[d]; r++, i++) {
            qd[i] = d;
            qr[i] = r;
        }
        for (size_t r = 0; r < kl[d]; r++, j++) {
            kd[j] = d;
            kr[j] = r;
        }
    }
    ck_assert(i == lq && j == lk);
    for (i = 0; i < lq; i++)
        for (j = 0; j < lk; j++) {
            size_t d = qd[i];
            int on = kd[j] == d;
            if (on && causal)
                on = (int64_t)kr[j] <= (int64_t)qr[i] + (int64_t)kl[d] - (int64_t)ql[d];
            t[i * lk + j] = (uint8_t)on;
        }
    free(qd);
    free(qr);
    free(kd);
    free(kr);
    return t;
}

/* ---- streaming -------------------------------------------------------------------------- */

static void check_streaming(size_t lq, size_t lk, size_t ns, size_t w)
{
    char desc[160];
    snprintf(desc, sizeof desc, "streaming %zux%zu n_sink %zu window %zu", lq, lk, ns, w);
    spattn_mask *m = NOT_SET;
    spattn_status st = spattn_mask_streaming(lq, lk, ns, w, &m);
    REQUIRE(st == SPATTN_OK, "%s: %s", desc, spattn_status_string(st));
    uint8_t *t = streaming_truth(lq, lk, ns, w);
    tm_check_mask(m, lq, lk, t, desc);
    spattn_mask_free(m);
    free(t);
}

START_TEST(streaming_sweep)
{
    static const size_t lens[] = {1, 2, 3, 15, 16, 17, 63, 64, 65, 100, 129};
    const size_t nl = sizeof lens / sizeof lens[0];
    for (size_t a = 0; a < nl; a++)
        for (size_t b = 0; b < nl; b++) {
            size_t lq = lens[a], lk = lens[b];
            const size_t sinks[] = {0, 1, 3, 4, 17, 64, 65, lk - 1, lk, lk + 1, SIZE_MAX};
            const size_t wins[] = {0, 1, 2, 5, 16, 63, 64, 65, lk - 1, lk, SIZE_MAX};
            for (size_t s = 0; s < sizeof sinks / sizeof sinks[0]; s++)
                for (size_t w = 0; w < sizeof wins / sizeof wins[0]; w++)
                    check_streaming(lq, lk, sinks[s], wins[w]);
        }
}
END_TEST

START_TEST(streaming_random)
{
    tu_rng r = {0x5717ea};
    int n = tu_cases(300);
    for (int c = 0; c < n; c++) {
        size_t lq = tu_range(&r, 1, 300), lk = tu_range(&r, 1, 300);
        if (c % 3 == 0)
            lq = lk; /* the usual prefill */
        size_t ns = tu_next(&r) % 8 == 0 ? tu_range(&r, 0, 400) : tu_range(&r, 0, 8);
        size_t w = tu_range(&r, 0, 3) == 0 ? tu_range(&r, 0, 400) : tu_range(&r, 0, 130);
        check_streaming(lq, lk, ns, w);
    }
}
END_TEST

/* Hand-checked, so that the truth function is not the only witness. */
START_TEST(streaming_by_hand)
{
    spattn_mask *m;
    uint8_t d[36];
    /* 6x6, one sink, window 2 */
    ck_assert_int_eq(spattn_mask_streaming(6, 6, 1, 2, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 6), SPATTN_OK);
    static const uint8_t want[36] = {1, 0, 0, 0, 0, 0, /**/ 1, 1, 0, 0, 0, 0, /**/
                                     1, 1, 1, 0, 0, 0, /**/ 1, 0, 1, 1, 0, 0, /**/
                                     1, 0, 0, 1, 1, 0, /**/ 1, 0, 0, 0, 1, 1};
    ck_assert_mem_eq(d, want, 36);
    ck_assert_uint_eq(spattn_mask_nnz(m), 15);
    spattn_mask_free(m);
    /* one decode row against 10 keys, 2 sinks, window 3: keys 0, 1, 7, 8, 9 */
    ck_assert_int_eq(spattn_mask_streaming(1, 10, 2, 3, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 10), SPATTN_OK);
    static const uint8_t row[10] = {1, 1, 0, 0, 0, 0, 0, 1, 1, 1};
    ck_assert_mem_eq(d, row, 10);
    spattn_mask_free(m);
    /* window 0 and no sinks: nothing at all */
    ck_assert_int_eq(spattn_mask_streaming(5, 5, 0, 0, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 0);
    spattn_mask_free(m);
    /* 6 queries on 4 keys, window 1: rows 0, 1 stand before key 0 and see nothing */
    ck_assert_int_eq(spattn_mask_streaming(6, 4, 2, 1, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 4), SPATTN_OK);
    static const uint8_t late[24] = {0,      0, 0, 0, /**/ 0, 0, 0, 0, /**/ 1, 0, 0, 0,
                                     /**/ 1, 1, 0, 0, 1,      1, 1, 0, /**/ 1, 1, 0, 1};
    ck_assert_mem_eq(d, late, 24);
    spattn_mask_free(m);
}
END_TEST

/* ---- documents -------------------------------------------------------------------------- */

/* Lengths that straddle tile edges, zeros among them. */
static size_t rand_doc_len(tu_rng *r)
{
    static const size_t edges[] = {0, 1, 2, 15, 16, 17, 31, 33, 63, 64, 65, 100};
    if (tu_next(r) % 3 == 0)
        return edges[tu_next(r) % (sizeof edges / sizeof edges[0])];
    return tu_range(r, 0, 40);
}

static void check_docs(const size_t *ql, const size_t *kl, size_t n, int causal, int same)
{
    size_t lq = 0, lk = 0;
    char desc[256];
    int at = snprintf(desc, sizeof desc, "documents%s causal %d:", same ? "" : "_kv", causal);
    for (size_t d = 0; d < n; d++) {
        lq += ql[d];
        lk += kl[d];
        if (at < (int)sizeof desc - 16)
            at += same ? snprintf(desc + at, sizeof desc - (size_t)at, " %zu", ql[d])
                       : snprintf(desc + at, sizeof desc - (size_t)at, " %zu/%zu", ql[d], kl[d]);
    }
    spattn_mask *m = NOT_SET;
    spattn_status st = same ? spattn_mask_documents(ql, n, causal, &m)
                            : spattn_mask_documents_kv(ql, kl, n, causal, &m);
    REQUIRE(st == SPATTN_OK, "%s: %s", desc, spattn_status_string(st));
    uint8_t *t = docs_truth(ql, kl, n, causal, lq, lk);
    tm_check_mask(m, lq, lk, t, desc);
    spattn_mask_free(m);
    free(t);
}

START_TEST(documents_random)
{
    tu_rng r = {0xd0c5};
    int n = tu_cases(400);
    for (int c = 0; c < n; c++) {
        size_t nd = tu_range(&r, 1, c % 4 == 0 ? MAX_DOCS : 5), lens[MAX_DOCS], total = 0;
        for (size_t d = 0; d < nd; d++)
            total += lens[d] = rand_doc_len(&r);
        if (total == 0)
            lens[tu_range(&r, 0, nd - 1)] = tu_range(&r, 1, 70);
        int causal = c & 1 ? (int)(tu_next(&r) % 5) + 1 : 0; /* any nonzero value is causal */
        check_docs(lens, lens, nd, causal, 1);
        check_docs(lens, lens, nd, causal, 0); /* documents_kv with q == k: the same set */
    }
}
END_TEST

START_TEST(documents_kv_random)
{
    tu_rng r = {0xd0c6};
    int n = tu_cases(400);
    for (int c = 0; c < n; c++) {
        size_t nd = tu_range(&r, 1, c % 4 == 0 ? MAX_DOCS : 5), ql[MAX_DOCS], kl[MAX_DOCS];
        size_t sq = 0, sk = 0;
        for (size_t d = 0; d < nd; d++) {
            switch (c % 3) {
            case 0: /* decodes: one query per document against caches of any length */
                ql[d] = tu_next(&r) % 8 ? 1 : 0;
                kl[d] = rand_doc_len(&r) * (tu_next(&r) % 4 + 1);
                break;
            case 1: /* chunked prefill: a few queries at the end of longer caches */
                kl[d] = rand_doc_len(&r);
                ql[d] = tu_range(&r, 0, kl[d]);
                break;
            default: /* anything, also more queries than keys */
                ql[d] = rand_doc_len(&r);
                kl[d] = rand_doc_len(&r);
                break;
            }
            sq += ql[d];
            sk += kl[d];
        }
        if (sq == 0)
            ql[tu_range(&r, 0, nd - 1)] = tu_range(&r, 1, 40);
        if (sk == 0)
            kl[tu_range(&r, 0, nd - 1)] = tu_range(&r, 1, 40);
        check_docs(ql, kl, nd, c & 4 ? 1 : 0, 0);
    }
}
END_TEST

START_TEST(documents_by_hand)
{
    spattn_mask *m;
    uint8_t d[25];
    /* 2, 0, 3 causal: two blocks, the empty document in between changes nothing */
    static const size_t lens[3] = {2, 0, 3};
    ck_assert_int_eq(spattn_mask_documents(lens, 3, 1, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 5), SPATTN_OK);
    static const uint8_t causal[25] = {1,      0, 0, 0, 0, /**/ 1, 1, 0, 0, 0, /**/ 0, 0, 1, 0, 0,
                                       /**/ 0, 0, 1, 1, 0, /**/ 0, 0, 1, 1, 1};
    ck_assert_mem_eq(d, causal, 25);
    spattn_mask_free(m);
    ck_assert_int_eq(spattn_mask_documents(lens, 3, 0, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 4 + 9);
    spattn_mask_free(m);
    /* decodes: 1 query on 3 keys, then 2 queries on 2 keys */
    static const size_t q1[2] = {1, 2}, k1[2] = {3, 2};
    ck_assert_int_eq(spattn_mask_documents_kv(q1, k1, 2, 1, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 5), SPATTN_OK);
    static const uint8_t dec[15] = {1, 1, 1, 0, 0, /**/ 0, 0, 0, 1, 0, /**/ 0, 0, 0, 1, 1};
    ck_assert_mem_eq(d, dec, 15);
    spattn_mask_free(m);
    /* 3 queries on 1 key, causal: only the last row sees it */
    static const size_t q2[1] = {3}, k2[1] = {1};
    ck_assert_int_eq(spattn_mask_documents_kv(q2, k2, 1, 1, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 1), SPATTN_OK);
    static const uint8_t tall[3] = {0, 0, 1};
    ck_assert_mem_eq(d, tall, 3);
    spattn_mask_free(m);
    /* a document with queries and no keys: its rows see nothing, the others are unaffected */
    static const size_t q3[3] = {2, 2, 1}, k3[3] = {3, 0, 2};
    ck_assert_int_eq(spattn_mask_documents_kv(q3, k3, 3, 0, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 2 * 3 + 0 + 1 * 2);
    spattn_mask_free(m);
}
END_TEST

/* ---- large shapes: counts by formula, and only O(tiles) work ----------------------------- */

START_TEST(large_shapes)
{
    /* streaming, 4 sinks + window 1024 at 2^20: the rows past the window see 1028 keys */
    size_t n = (size_t)1 << 20;
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_streaming(n, n, 4, 1024, &m), SPATTN_OK);
    uint64_t want = 0;
    for (size_t ip = 0; ip < n; ip++) {
        size_t win = ip + 1 < 1024 ? ip + 1 : 1024, before = ip + 1 - win;
        want += win + (before < 4 ? before : 4);
    }
    ck_assert_uint_eq(spattn_mask_nnz(m), want);
    spattn_mask_free(m);

    /* 16 causal documents of uneven lengths summing to 16384 */
    tu_rng r = {4242};
    size_t lens[16], total = 0;
    for (size_t d = 0; d < 15; d++)
        total += lens[d] = tu_range(&r, 1, 1000);
    lens[15] = 16384 - total;
    want = 0;
    for (size_t d = 0; d < 16; d++)
        want += (uint64_t)lens[d] * (lens[d] + 1) / 2;
    ck_assert_int_eq(spattn_mask_documents(lens, 16, 1, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), want);
    spattn_mask_free(m);

    /* 256 decodes on caches totalling about 2^25 keys */
    size_t ql[256], kl[256];
    want = 0;
    for (size_t d = 0; d < 256; d++) {
        ql[d] = 1;
        kl[d] = tu_range(&r, 1, (size_t)1 << 18);
        want += kl[d];
    }
    ck_assert_int_eq(spattn_mask_documents_kv(ql, kl, 256, 1, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), want);
    ck_assert_uint_eq(spattn_mask_len_q(m), 256);
    spattn_mask_free(m);

    /* the largest length there is, as one decode row behind many empty documents */
    static size_t zq[1000], zk[1000];
    zq[999] = 1;
    zk[0] = SPATTN_MAX_LEN - 64;
    zk[999] = 64;
    ck_assert_int_eq(spattn_mask_documents_kv(zq, zk, 1000, 1, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 64);
    ck_assert_uint_eq(spattn_mask_len_k(m), SPATTN_MAX_LEN);
    spattn_mask_free(m);
}
END_TEST

/* ---- errors and allocation failures ------------------------------------------------------ */

START_TEST(errors)
{
    const size_t M = SPATTN_MAX_LEN;
    size_t ok[2] = {3, 4};
    ck_assert_int_eq(spattn_mask_streaming(4, 4, 1, 2, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_documents(ok, 2, 1, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_documents_kv(ok, ok, 2, 1, NULL), SPATTN_E_NULL);

    static const size_t badlen[][2] = {{0, 4}, {4, 0}, {M + 1, 4}, {4, M + 1}, {SIZE_MAX, 4}};
    for (size_t k = 0; k < sizeof badlen / sizeof badlen[0]; k++)
        EXPECT(spattn_mask_streaming(badlen[k][0], badlen[k][1], 1, 2, o), SPATTN_E_SHAPE);

    EXPECT(spattn_mask_documents(NULL, 2, 0, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_documents_kv(NULL, ok, 2, 0, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_documents_kv(ok, NULL, 2, 0, o), SPATTN_E_NULL);
    /* no documents: nothing to attend, a zero length (the arrays may then be NULL) */
    EXPECT(spattn_mask_documents(NULL, 0, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents(ok, 0, 1, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(NULL, NULL, 0, 0, o), SPATTN_E_SHAPE);
    size_t zeros[3] = {0, 0, 0};
    EXPECT(spattn_mask_documents(zeros, 3, 1, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(zeros, ok, 2, 1, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(ok, zeros, 2, 1, o), SPATTN_E_SHAPE);
    /* beyond SPATTN_MAX_LEN, and sums that wrap size_t */
    size_t big[3] = {M, 1, 0}, wrap[2] = {SIZE_MAX, 2},
           half[3] = {SIZE_MAX / 2 + 1, SIZE_MAX / 2 + 1, 1};
    EXPECT(spattn_mask_documents(big, 2, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents(wrap, 2, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents(half, 3, 1, o), SPATTN_E_SHAPE);
    size_t last[3] = {M - 1, 1, 1}; /* over only with the last one */
    EXPECT(spattn_mask_documents(last, 3, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(ok, wrap, 2, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(wrap, ok, 2, 0, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(half, half + 1, 2, 1, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_documents_kv(big, ok, 2, 1, o), SPATTN_E_SHAPE);
    /* exactly SPATTN_MAX_LEN is a length like any other (one query row keeps it cheap) */
    size_t one[2] = {0, 1}, maxk[2] = {M - 5, 5};
    spattn_mask *m = NOT_SET;
    ck_assert_int_eq(spattn_mask_documents_kv(one, maxk, 2, 0, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 5);
    spattn_mask_free(m);
}
END_TEST

static size_t fa_lens[6] = {40, 0, 70, 3, 65, 22}, fa_k[6] = {100, 5, 70, 0, 80, 200};

static spattn_status fa_build(int which, spattn_mask **o)
{
    switch (which) {
    case 0:
        return spattn_mask_streaming(70, 200, 4, 33, o);
    case 1:
        return spattn_mask_documents(fa_lens, 6, 1, o);
    case 2:
        return spattn_mask_documents(fa_lens, 6, 0, o);
    default:
        return spattn_mask_documents_kv(fa_lens, fa_k, 6, 1, o);
    }
}

START_TEST(alloc_failures)
{
    spattn_mask *want;
    ck_assert_int_eq(fa_build(_i, &want), SPATTN_OK);
    size_t lq = spattn_mask_len_q(want), lk = spattn_mask_len_k(want);
    uint8_t *dw = calloc(lq * lk, 1), *dg = calloc(lq * lk, 1);
    ck_assert_int_eq(spattn_mask_to_dense(want, dw, lk), SPATTN_OK);
    long n = 1;
    for (;; n++) {
        REQUIRE(n < 100000, "builder %d: no success", _i);
        spattn__test_fail_alloc_at(n);
        spattn_mask *m = NOT_SET;
        spattn_status st = fa_build(_i, &m);
        spattn__test_fail_alloc_at(0);
        if (st == SPATTN_OK) {
            ck_assert_int_eq(spattn_mask_to_dense(m, dg, lk), SPATTN_OK);
            ck_assert_mem_eq(dw, dg, lq * lk);
            spattn_mask_free(m);
            break;
        }
        REQUIRE(st == SPATTN_E_NOMEM, "builder %d: allocation %ld failed with %s", _i, n,
                spattn_status_string(st));
        REQUIRE(m == NULL, "builder %d: *out set after allocation %ld failed", _i, n);
    }
    REQUIRE(n > 1, "builder %d: no allocation at all?", _i);
    spattn_mask_free(want);
    free(dw);
    free(dg);
}
END_TEST

/* ---- ALiBi slopes ----------------------------------------------------------------------- */

/* The paper's definition, as its reference code computes it: for a power of two n the
   geometric sequence start^1 .. start^n with start = 2^(-8/n); otherwise the list of the
   power of two p below n, then every other entry of the list for 2p, from the first. */
static void ref_slopes(size_t n, double *out)
{
    size_t p = 1;
    while (p * 2 <= n)
        p *= 2;
    if (p == n) {
        double start = pow(2.0, -8.0 / (double)n), v = start;
        for (size_t k = 0; k < n; k++, v *= start)
            out[k] = v;
        return;
    }
    double *two = malloc(2 * p * sizeof *two);
    ck_assert_ptr_nonnull(two);
    ref_slopes(p, out);
    ref_slopes(2 * p, two);
    for (size_t x = 0; x < n - p; x++)
        out[p + x] = two[2 * x];
    free(two);
}

START_TEST(alibi_slopes)
{
    float s[4100 + 8];
    /* 8 heads: 1/2, 1/4, ..., 1/256 exactly */
    ck_assert_int_eq(spattn_alibi_slopes(8, s), SPATTN_OK);
    for (int k = 0; k < 8; k++)
        ck_assert(s[k] == 1.0f / (float)(2 << k));
    /* 12 heads: the 8-head list, then 2^-0.5, 2^-1.5, 2^-2.5, 2^-3.5 */
    ck_assert_int_eq(spattn_alibi_slopes(12, s), SPATTN_OK);
    for (int k = 0; k < 8; k++)
        ck_assert(s[k] == 1.0f / (float)(2 << k));
    const double r2 = 0.70710678118654752440;
    const double odd[4] = {r2, r2 / 2, r2 / 4, r2 / 8};
    for (int k = 0; k < 4; k++)
        ck_assert(fabs((double)s[8 + k] - odd[k]) <= odd[k] * 0x1p-23);
    /* 1, 2, 3 heads: 1/256; 1/16, 1/256; then 1/4 */
    ck_assert_int_eq(spattn_alibi_slopes(1, s), SPATTN_OK);
    ck_assert(s[0] == 1.0f / 256);
    ck_assert_int_eq(spattn_alibi_slopes(3, s), SPATTN_OK);
    ck_assert(s[0] == 1.0f / 16 && s[1] == 1.0f / 256 && s[2] == 1.0f / 4);

    /* every count up to 300 and a few large ones against the definition: within one float
       ulp, exact where the slope is a power of two, nothing written past `heads` */
    static double ref[4100];
    static const size_t large[] = {512, 1000, 1024, 4095, 4096, 4100};
    for (size_t c = 0; c < 300 + sizeof large / sizeof large[0]; c++) {
        size_t n = c < 300 ? c + 1 : large[c - 300];
        for (size_t k = 0; k < n + 8; k++)
            s[k] = -1.0f;
        ck_assert_int_eq(spattn_alibi_slopes(n, s), SPATTN_OK);
        ref_slopes(n, ref);
        size_t p = 1;
        while (p * 2 <= n)
            p *= 2;
        for (size_t k = 0; k < n; k++) {
            /* the exponent -num / den: k + 1 of p, or 2(k - p) + 1 of 2p */
            size_t num = 8 * (k < p ? k + 1 : 2 * (k - p) + 1), den = k < p ? p : 2 * p;
            double exact = ldexp(1.0, -(int)(num / den));
            if (num % den == 0)
                REQUIRE(s[k] == (float)exact && fabs(ref[k] - exact) <= exact * 1e-9,
                        "heads %zu slope %zu: %.9g, want 2^-%zu exactly", n, k, (double)s[k],
                        num / den);
            else
                REQUIRE(fabs((double)s[k] - ref[k]) <= ref[k] * 0x1p-23,
                        "heads %zu slope %zu: %.9g, want %.17g", n, k, (double)s[k], ref[k]);
        }
        for (size_t k = n; k < n + 8; k++)
            REQUIRE(s[k] == -1.0f, "heads %zu: wrote past the end", n);
    }

    /* errors: nothing written */
    s[0] = -1.0f;
    ck_assert_int_eq(spattn_alibi_slopes(0, s), SPATTN_E_SHAPE);
    ck_assert(s[0] == -1.0f);
    ck_assert_int_eq(spattn_alibi_slopes(4, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_alibi_slopes(0, NULL), SPATTN_E_NULL);
}
END_TEST

Suite *suite_mask_docs(void);
Suite *suite_mask_docs(void)
{
    Suite *s = suite_create("mask_docs");
    TCase *tc = tcase_create("streaming");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, streaming_sweep);
    tcase_add_test(tc, streaming_random);
    tcase_add_test(tc, streaming_by_hand);
    suite_add_tcase(s, tc);

    tc = tcase_create("documents");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, documents_random);
    tcase_add_test(tc, documents_kv_random);
    tcase_add_test(tc, documents_by_hand);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, large_shapes);
    tcase_add_test(tc, errors);
    tcase_add_loop_test(tc, alloc_failures, 0, 4);
    suite_add_tcase(s, tc);

    tc = tcase_create("alibi");
    tcase_add_test(tc, alibi_slopes);
    suite_add_tcase(s, tc);
    return s;
}

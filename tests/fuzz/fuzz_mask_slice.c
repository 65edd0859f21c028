/*
 * spattn_mask_slice on random rectangles of random masks (dense bytes at a random density,
 * causal, window, BigBird, blocks, and the union of two), each slice checked against the
 * rectangle cut from the source's truth table (shape, nnz, to_dense, to_csr); a slice of a
 * slice against the slice of the composed rectangle; rectangles outside the mask against
 * SPATTN_E_SHAPE with nothing written.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz_mask_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static spattn_mask *source(fz_in *in, size_t lq, size_t lk)
{
    spattn_mask *m = NULL;
    spattn_status st = SPATTN_OK;
    switch (fz_u8(in) % 6) {
    case 0: {
        uint8_t *d = malloc(lq * lk);
        size_t density = fz_u8(in);
        for (size_t t = 0; t < lq * lk; t++)
            d[t] = fz_u8(in) < density;
        st = spattn_mask_from_dense(lq, lk, d, lk, &m);
        free(d);
        break;
    }
    case 1:
        st = spattn_mask_causal(lq, lk, &m);
        break;
    case 2:
        st = spattn_mask_window(lq, lk, fz_range(in, 0, 300), fz_range(in, 0, 300), &m);
        break;
    case 3:
        st = spattn_mask_bigbird(lq, lk, fz_range(in, 1, 80), fz_range(in, 0, 2),
                                 fz_range(in, 0, 2), fz_range(in, 0, 3), fz_u64(in), &m);
        break;
    case 4: {
        size_t bq = fz_range(in, 1, 70), bk = fz_range(in, 1, 140);
        size_t nbq = (lq + bq - 1) / bq, nbk = (lk + bk - 1) / bk;
        uint8_t *layout = malloc(nbq * nbk);
        for (size_t t = 0; t < nbq * nbk; t++)
            layout[t] = fz_u8(in) & 1;
        st = spattn_mask_from_blocks(lq, lk, bq, bk, layout, &m);
        free(layout);
        break;
    }
    default: {
        spattn_mask *a = NULL, *b = NULL;
        FZ_CHECK(spattn_mask_causal(lq, lk, &a) == SPATTN_OK, "causal");
        FZ_CHECK(spattn_mask_window(lq, lk, 0, fz_range(in, 0, 200), &b) == SPATTN_OK, "window");
        st = spattn_mask_or(a, b, &m);
        spattn_mask_free(a);
        spattn_mask_free(b);
    }
    }
    FZ_CHECK(st == SPATTN_OK && m != NULL, "building the source: %s", spattn_status_string(st));
    return m;
}

/* The truth of rectangle [q0, q1) x [k0, k1) of a lq x lk truth table (row length lk). */
static uint8_t *cut(const uint8_t *truth, size_t lk, size_t q0, size_t q1, size_t k0, size_t k1)
{
    uint8_t *t = malloc((q1 - q0) * (k1 - k0) + 1);
    for (size_t i = q0; i < q1; i++)
        memcpy(t + (i - q0) * (k1 - k0), truth + i * lk + k0, k1 - k0);
    return t;
}

/* A rectangle bound: mostly inside [0, len], sometimes an edge of the 64-key or 16-row tiles,
   sometimes beyond. */
static size_t bound(fz_in *in, size_t len)
{
    uint8_t how = fz_u8(in);
    if (how < 220)
        return fz_range(in, 0, len);
    if (how < 245)
        return fz_range(in, 0, len / 64) * 64 + (how & 1) * fz_range(in, 0, 16);
    return fz_edge_size(in, len + 2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_in in = {data, size};
    size_t lq = fz_range(&in, 1, 70), lk = fz_range(&in, 1, 300);
    spattn_mask *m = source(&in, lq, lk);
    uint8_t *truth = malloc(lq * lk);
    FZ_CHECK(spattn_mask_to_dense(m, truth, lk) == SPATTN_OK, "to_dense of the source");

    const size_t rects = fz_range(&in, 1, 4);
    for (size_t r = 0; r < rects; r++) {
        size_t q0 = bound(&in, lq), q1 = bound(&in, lq), k0 = bound(&in, lk), k1 = bound(&in, lk);
        spattn_mask *s = (spattn_mask *)&s;
        spattn_status st = spattn_mask_slice(m, q0, q1, k0, k1, &s);
        if (!(q0 < q1 && q1 <= lq && k0 < k1 && k1 <= lk)) {
            FZ_CHECK(st == SPATTN_E_SHAPE && s == NULL, "[%zu,%zu)x[%zu,%zu) of %zux%zu: %s", q0,
                     q1, k0, k1, lq, lk, spattn_status_string(st));
            continue;
        }
        FZ_CHECK(st == SPATTN_OK && s != NULL, "[%zu,%zu)x[%zu,%zu) of %zux%zu: %s", q0, q1, k0, k1,
                 lq, lk, spattn_status_string(st));
        uint8_t *t = cut(truth, lk, q0, q1, k0, k1);
        fz_check_mask(s, q1 - q0, k1 - k0, t);

        /* A slice of the slice is the slice of the composed rectangle. */
        size_t a0 = fz_range(&in, 0, q1 - q0 - 1), b0 = fz_range(&in, 0, k1 - k0 - 1);
        size_t a1 = fz_range(&in, a0 + 1, q1 - q0), b1 = fz_range(&in, b0 + 1, k1 - k0);
        spattn_mask *ss = NULL;
        FZ_CHECK(spattn_mask_slice(s, a0, a1, b0, b1, &ss) == SPATTN_OK, "slice of a slice");
        uint8_t *tt = cut(t, k1 - k0, a0, a1, b0, b1);
        fz_check_mask(ss, a1 - a0, b1 - b0, tt);
        free(tt);
        free(t);
        spattn_mask_free(ss);
        spattn_mask_free(s);
    }
    spattn_mask *s = (spattn_mask *)&s;
    FZ_CHECK(spattn_mask_slice(NULL, 0, 1, 0, 1, &s) == SPATTN_E_NULL && s == NULL, "NULL mask");
    FZ_CHECK(spattn_mask_slice(m, 0, 1, 0, 1, NULL) == SPATTN_E_NULL, "NULL out");
    free(truth);
    spattn_mask_free(m);
    return 0;
}

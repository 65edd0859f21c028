/*
 * Masks: every constructor against a truth table computed pair by pair from the formulas in
 * spattn.h (written here, independently of src/), the canonical tile invariants of
 * mask_impl.h, dense / CSR round trips, and / or, reference counting, every error status, and
 * allocation failures at every allocation of every constructor.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mask/build.h"
#include "mask/mask_impl.h"
#include "mask_check.h"
#include "test_util.h"

/* Describes the case being checked, for failure messages. */
static char what[256];

/* ---- truth ------------------------------------------------------------------------------ */

enum {
    K_CAUSAL,
    K_WINDOW,
    K_STRIDED,
    K_FIXED,
    K_LONGFORMER,
    K_BIGBIRD,
    K_DILATED,
    K_BLOCKS,
    K_COUNT
};

typedef struct params {
    int kind;
    size_t a, b, c, d; /* per kind, in the order of the constructor's arguments */
    uint64_t seed;
    size_t global[8];
    size_t n_global;
    uint8_t *layout; /* K_BLOCKS */
} params;

static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* d = j - i'; whether |d| is within left (d <= 0) or right (d > 0), with no overflow. */
static int within(int64_t d, size_t left, size_t right)
{
    return d <= 0 ? (uint64_t)(-d) <= left : (uint64_t)d <= right;
}

static uint8_t *truth_of(const params *p, size_t lq, size_t lk)
{
    uint8_t *t = calloc(lq * lk, 1);
    ck_assert_ptr_nonnull(t);
    size_t nkb = 0;
    uint8_t *rnd = NULL; /* BigBird: rnd[qb * nkb + kb] for qb, kb in [0, nkb) */
    if (p->kind == K_BIGBIRD) {
        nkb = lk / p->a + (lk % p->a != 0);
        rnd = calloc(nkb * nkb, 1);
        uint64_t s = p->seed;
        size_t want = p->d < nkb ? p->d : nkb;
        for (size_t qb = 0; qb < nkb; qb++)
            for (size_t got = 0; got < want;) {
                size_t kb = (size_t)(sm64(&s) % nkb);
                if (!rnd[qb * nkb + kb]) {
                    rnd[qb * nkb + kb] = 1;
                    got++;
                }
            }
    }
    size_t nbk = p->kind == K_BLOCKS ? (lk - 1) / p->b + 1 : 0;
    for (size_t i = 0; i < lq; i++) {
        int64_t ip = (int64_t)i + (int64_t)lk - (int64_t)lq;
        for (size_t j = 0; j < lk; j++) {
            int64_t d = (int64_t)j - ip;
            int before = d <= 0; /* j <= i' */
            uint64_t back = (uint64_t)(-d);
            int on = 0;
            switch (p->kind) {
            case K_CAUSAL:
                on = before;
                break;
            case K_WINDOW:
                on = within(d, p->a, p->b);
                break;
            case K_STRIDED:
                on = before && (back < p->a || back % p->a == 0);
                break;
            case K_FIXED:
                on = before && (j / p->a == (size_t)ip / p->a || j % p->a >= p->a - p->b);
                break;
            case K_LONGFORMER:
                on = within(d, p->a, p->b);
                for (size_t g = 0; g < p->n_global; g++)
                    on |= p->global[g] == j || (ip >= 0 && p->global[g] == (size_t)ip);
                break;
            case K_BIGBIRD: {
                size_t kb = j / p->a;
                if (ip < 0) { /* no query block: only the global key blocks */
                    on = kb < p->c;
                    break;
                }
                size_t qb = (size_t)ip / p->a;
                size_t gap = qb > kb ? qb - kb : kb - qb;
                on = gap <= p->b || kb < p->c || qb < p->c || rnd[qb * nkb + kb];
                break;
            }
            case K_DILATED:
                on = d <= 0 ? back % p->c == 0 && back / p->c <= p->a
                            : (uint64_t)d % p->c == 0 && (uint64_t)d / p->c <= p->b;
                break;
            case K_BLOCKS:
                on = p->layout[(i / p->a) * nbk + j / p->b] != 0;
                break;
            }
            t[i * lk + j] = (uint8_t)on;
        }
    }
    free(rnd);
    return t;
}

static spattn_status build(const params *p, size_t lq, size_t lk, spattn_mask **m)
{
    switch (p->kind) {
    case K_CAUSAL:
        return spattn_mask_causal(lq, lk, m);
    case K_WINDOW:
        return spattn_mask_window(lq, lk, p->a, p->b, m);
    case K_STRIDED:
        return spattn_mask_strided(lq, lk, p->a, m);
    case K_FIXED:
        return spattn_mask_fixed(lq, lk, p->a, p->b, m);
    case K_LONGFORMER:
        return spattn_mask_longformer(lq, lk, p->a, p->b, p->n_global ? p->global : NULL,
                                      p->n_global, m);
    case K_BIGBIRD:
        return spattn_mask_bigbird(lq, lk, p->a, p->b, p->c, p->d, p->seed, m);
    case K_DILATED:
        return spattn_mask_dilated(lq, lk, p->a, p->b, p->c, m);
    default:
        return spattn_mask_from_blocks(lq, lk, p->a, p->b, p->layout, m);
    }
}

/* ---- checks ----------------------------------------------------------------------------- */

/* The tile view against the truth: exactly the non-empty tiles stored, in increasing kt, FULL
   exactly when every in-range pair is allowed, PARTIAL bits equal to the truth (zero outside
   the range), per-tile counts summing to nnz. */
static void check_tiles(const spattn_mask *m, size_t lq, size_t lk, const uint8_t *t)
{
    size_t nqt = (lq + 15) / 16, nkt = (lk + 63) / 64;
    REQUIRE(m->nqt == nqt && m->nkt == nkt, "%s: tile counts", what);
    REQUIRE(m->qt_ptr[0] == 0 && m->qt_ptr[nqt] == m->ntiles, "%s: qt_ptr ends", what);
    uint64_t total = 0;
    size_t parts = 0;
    for (size_t qt = 0; qt < nqt; qt++) {
        REQUIRE(m->qt_ptr[qt] <= m->qt_ptr[qt + 1], "%s: qt_ptr decreasing", what);
        size_t k = m->qt_ptr[qt], rows = lq - qt * 16 < 16 ? lq - qt * 16 : 16;
        uint64_t qsum = 0;
        for (size_t kt = 0; kt < nkt; kt++) {
            size_t cols = lk - kt * 64 < 64 ? lk - kt * 64 : 64;
            uint64_t want[16] = {0}, cnt = 0;
            for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < cols; c++)
                    if (t[(qt * 16 + r) * lk + kt * 64 + c]) {
                        want[r] |= (uint64_t)1 << c;
                        cnt++;
                    }
            int stored = k < m->qt_ptr[qt + 1] && m->tiles[k].kt == kt;
            if (!stored) {
                REQUIRE(cnt == 0, "%s: tile (%zu,%zu) with %llu pairs not stored", what, qt, kt,
                        (unsigned long long)cnt);
                continue;
            }
            const spattn_ktile *tile = &m->tiles[k++];
            if (tile->part == SPATTN_FULL) {
                REQUIRE(cnt == rows * cols, "%s: tile (%zu,%zu) FULL but %llu of %zu", what, qt, kt,
                        (unsigned long long)cnt, rows * cols);
            } else {
                REQUIRE(tile->part < m->npartial, "%s: part index", what);
                REQUIRE(cnt > 0 && cnt < rows * cols, "%s: tile (%zu,%zu) PARTIAL with %llu of %zu",
                        what, qt, kt, (unsigned long long)cnt, rows * cols);
                for (size_t r = 0; r < 16; r++)
                    REQUIRE(m->bits[(size_t)tile->part * 16 + r] == want[r],
                            "%s: bits of tile (%zu,%zu) row %zu", what, qt, kt, r);
                parts++;
            }
            for (size_t r = 0; r < 16; r++)
                REQUIRE(spattn__tile_row_bits(m, tile, qt, r) == want[r],
                        "%s: tile_row_bits (%zu,%zu) row %zu", what, qt, kt, r);
            qsum += cnt;
        }
        REQUIRE(k == m->qt_ptr[qt + 1],
                "%s: unsorted, repeated or out-of-range key "
                "tiles in query tile %zu",
                what, qt);
        REQUIRE(m->qt_nnz[qt] == qsum, "%s: qt_nnz[%zu]", what, qt);
        total += qsum;
    }
    REQUIRE(parts == m->npartial, "%s: npartial", what);
    REQUIRE(total == m->nnz, "%s: qt_nnz sum", what);
}

/* Everything observable about a mask against its truth table (len_q * len_k bytes). */
static void check_mask(const spattn_mask *m, size_t lq, size_t lk, const uint8_t *t)
{
    REQUIRE(m != NULL, "%s: no mask", what);
    ck_assert_uint_eq(spattn_mask_len_q(m), lq);
    ck_assert_uint_eq(spattn_mask_len_k(m), lk);
    uint64_t nnz = 0;
    for (size_t x = 0; x < lq * lk; x++)
        nnz += t[x] != 0;
    REQUIRE(spattn_mask_nnz(m) == nnz, "%s: nnz %llu, want %llu", what,
            (unsigned long long)spattn_mask_nnz(m), (unsigned long long)nnz);
    check_tiles(m, lq, lk, t);

    size_t ld = lk + 5;
    uint8_t *dense = malloc(lq * ld);
    memset(dense, 0xA5, lq * ld);
    ck_assert_int_eq(spattn_mask_to_dense(m, dense, ld), SPATTN_OK);
    for (size_t i = 0; i < lq; i++) {
        for (size_t j = 0; j < lk; j++)
            REQUIRE(dense[i * ld + j] == (t[i * lk + j] != 0), "%s: to_dense (%zu,%zu)", what, i,
                    j);
        for (size_t j = lk; j < ld; j++)
            REQUIRE(dense[i * ld + j] == 0xA5, "%s: to_dense wrote padding", what);
    }
    free(dense);

    int64_t *rp = malloc((lq + 1) * sizeof *rp);
    int32_t *ci = malloc((nnz + 1) * sizeof *ci);
    ck_assert_int_eq(spattn_mask_to_csr(m, rp, ci), SPATTN_OK);
    ck_assert(rp[0] == 0);
    int64_t k = 0;
    for (size_t i = 0; i < lq; i++) {
        for (size_t j = 0; j < lk; j++)
            if (t[i * lk + j]) {
                REQUIRE(k < rp[i + 1] && ci[k] == (int32_t)j, "%s: to_csr row %zu", what, i);
                k++;
            }
        REQUIRE(rp[i + 1] == k, "%s: to_csr row_ptr[%zu]", what, i + 1);
    }
    /* and back: CSR -> mask is the same mask */
    spattn_mask *back = NOT_SET;
    ck_assert_int_eq(spattn_mask_from_csr(lq, lk, rp, ci, &back), SPATTN_OK);
    char saved[sizeof what];
    memcpy(saved, what, sizeof what);
    snprintf(what, sizeof what, "%.200s (csr round trip)", saved);
    check_tiles(back, lq, lk, t);
    memcpy(what, saved, sizeof what);
    spattn_mask_free(back);
    free(rp);
    free(ci);
}

/* ---- random parameters ------------------------------------------------------------------ */

static const size_t edge_lens[] = {1, 2, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 300};

static size_t rand_len(tu_rng *r)
{
    if (tu_next(r) & 1)
        return edge_lens[tu_next(r) % (sizeof edge_lens / sizeof edge_lens[0])];
    return tu_range(r, 1, 300);
}

/* A size parameter: small, around the tile sizes, near the lengths, or huge. */
static size_t rand_size(tu_rng *r, size_t lo)
{
    static const size_t edges[] = {0, 1, 2, 3, 5, 16, 63, 64, 65, 100, 299, 300, 301};
    size_t v;
    switch (tu_next(r) % 6) {
    case 0:
        v = SIZE_MAX - tu_range(r, 0, 2);
        break;
    case 1:
        v = (size_t)1 << tu_range(r, 31, 62);
        break;
    case 2:
        v = edges[tu_next(r) % (sizeof edges / sizeof edges[0])];
        break;
    default:
        v = tu_range(r, 0, 40);
        break;
    }
    return v < lo ? lo : v;
}

static void rand_params(tu_rng *r, int kind, size_t lq, size_t lk, params *p)
{
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->a = rand_size(r, 0);
    p->b = rand_size(r, 0);
    p->c = rand_size(r, 0);
    p->d = rand_size(r, 0);
    p->seed = tu_next(r);
    switch (kind) {
    case K_STRIDED:
        p->a = rand_size(r, 1);
        break;
    case K_FIXED:
        p->a = rand_size(r, 1);
        p->b = tu_next(r) & 1 ? p->a : tu_range(r, 1, p->a < 70 ? p->a : 70);
        break;
    case K_LONGFORMER:
        p->n_global = tu_range(r, 0, 8);
        for (size_t g = 0; g < p->n_global; g++)
            p->global[g] = g && (tu_next(r) & 3) == 0 ? p->global[g - 1] /* duplicate */
                                                      : tu_range(r, 0, lk - 1);
        break;
    case K_BIGBIRD:
        p->a = tu_next(r) & 1 ? tu_range(r, 1, 70) : rand_size(r, 1);
        p->b = tu_range(r, 0, 3) == 0 ? rand_size(r, 0) : tu_range(r, 0, 3);
        p->c = tu_range(r, 0, 3) == 0 ? rand_size(r, 0) : tu_range(r, 0, 2);
        p->d = tu_range(r, 0, 3) == 0 ? rand_size(r, 0) : tu_range(r, 0, 4);
        break;
    case K_DILATED:
        p->c = tu_next(r) & 1 ? tu_range(r, 1, 70) : rand_size(r, 1);
        break;
    case K_BLOCKS: {
        p->a = tu_next(r) & 1 ? tu_range(r, 1, 80) : rand_size(r, 1);
        p->b = tu_next(r) & 1 ? tu_range(r, 1, 80) : rand_size(r, 1);
        size_t nbq = (lq - 1) / p->a + 1, nbk = (lk - 1) / p->b + 1;
        p->layout = malloc(nbq * nbk);
        uint64_t dens = tu_next(r) % 257;
        for (size_t x = 0; x < nbq * nbk; x++)
            p->layout[x] = (uint8_t)((tu_next(r) % 256) < dens ? 1 + tu_next(r) % 255 : 0);
        break;
    }
    default:
        break;
    }
    (void)lq;
}

static const char *kind_name[K_COUNT] = {"causal",     "window",  "strided", "fixed",
                                         "longformer", "bigbird", "dilated", "blocks"};

static void describe(const params *p, size_t lq, size_t lk)
{
    snprintf(what, sizeof what, "%s %zux%zu (%zu, %zu, %zu, %zu, seed %llu, %zu globals)",
             kind_name[p->kind], lq, lk, p->a, p->b, p->c, p->d, (unsigned long long)p->seed,
             p->n_global);
}

/* One random case of `kind`: build, check against the truth. */
static void one_case(tu_rng *r, int kind, size_t lq, size_t lk)
{
    params p;
    rand_params(r, kind, lq, lk, &p);
    describe(&p, lq, lk);
    spattn_mask *m = NOT_SET;
    spattn_status st = build(&p, lq, lk, &m);
    REQUIRE(st == SPATTN_OK, "%s: %s", what, spattn_status_string(st));
    uint8_t *t = truth_of(&p, lq, lk);
    check_mask(m, lq, lk, t);
    spattn_mask_free(m);
    free(t);
    free(p.layout);
}

START_TEST(patterns_random)
{
    int kind = _i;
    tu_rng r = {0x5eed0000u + (uint64_t)kind};
    int n = tu_cases(250);
    for (int c = 0; c < n; c++)
        one_case(&r, kind, rand_len(&r), rand_len(&r));
    /* the lengths the brief names, both ways round */
    static const size_t named[] = {1, 63, 64, 65, 300};
    for (size_t a = 0; a < 5; a++)
        for (size_t b = 0; b < 5; b++)
            one_case(&r, kind, named[a], named[b]);
}
END_TEST

/* Small hand-checked cases, so that the truth tables above are not the only witness. */
START_TEST(patterns_by_hand)
{
    spattn_mask *m;
    uint8_t d[4 * 6];
    /* causal 4x6: row i sees j <= i + 2 */
    ck_assert_int_eq(spattn_mask_causal(4, 6, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 6), SPATTN_OK);
    static const uint8_t causal[] = {1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0,
                                     1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1};
    ck_assert_mem_eq(d, causal, sizeof causal);
    ck_assert_uint_eq(spattn_mask_nnz(m), 18);
    spattn_mask_free(m);
    /* causal 6x4: the first two rows see nothing */
    ck_assert_int_eq(spattn_mask_causal(6, 4, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 1 + 2 + 3 + 4);
    spattn_mask_free(m);
    /* window 1x10, left 2 right 5: i' = 9 sees 7, 8, 9 */
    ck_assert_int_eq(spattn_mask_window(1, 10, 2, 5, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d, 10), SPATTN_OK);
    static const uint8_t win[] = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1};
    ck_assert_mem_eq(d, win, sizeof win);
    spattn_mask_free(m);
    /* strided 3, row 7 of 8x8: 7,6,5 (band) and 4, 1 (multiples of 3 back) */
    ck_assert_int_eq(spattn_mask_strided(8, 8, 3, &m), SPATTN_OK);
    uint8_t d8[64];
    ck_assert_int_eq(spattn_mask_to_dense(m, d8, 8), SPATTN_OK);
    static const uint8_t row7[] = {0, 1, 0, 0, 1, 1, 1, 1};
    ck_assert_mem_eq(d8 + 56, row7, 8);
    spattn_mask_free(m);
    /* fixed 4, summary 1, row 6 of 8x8: block 4..6 plus summary column 3 */
    ck_assert_int_eq(spattn_mask_fixed(8, 8, 4, 1, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d8, 8), SPATTN_OK);
    static const uint8_t frow6[] = {0, 0, 0, 1, 1, 1, 1, 0};
    ck_assert_mem_eq(d8 + 48, frow6, 8);
    spattn_mask_free(m);
    /* dilated 2 back, 1 forward, dilation 2, row 4 of 8x8: 0, 2, 4, 6 */
    ck_assert_int_eq(spattn_mask_dilated(8, 8, 2, 1, 2, &m), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(m, d8, 8), SPATTN_OK);
    static const uint8_t drow4[] = {1, 0, 1, 0, 1, 0, 1, 0};
    ck_assert_mem_eq(d8 + 32, drow4, 8);
    spattn_mask_free(m);
    /* Longformer 8x8, no band beyond the diagonal, global 5: column 5 and row 5 */
    size_t g = 5;
    ck_assert_int_eq(spattn_mask_longformer(8, 8, 0, 0, &g, 1, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 8 + 8 + 8 - 2);
    spattn_mask_free(m);
    /* BigBird: with window covering everything, all pairs */
    ck_assert_int_eq(spattn_mask_bigbird(8, 8, 2, 10, 0, 0, 1, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 64);
    spattn_mask_free(m);
}
END_TEST

/* BigBird's random blocks: deterministic, `random` distinct blocks per query block, and a
   decode-sized mask equals the last rows of the full one. */
START_TEST(bigbird_random_blocks)
{
    spattn_mask *a, *b, *last;
    ck_assert_int_eq(spattn_mask_bigbird(256, 256, 16, 0, 0, 3, 42, &a), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_bigbird(256, 256, 16, 0, 0, 3, 42, &b), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_bigbird(5, 256, 16, 0, 0, 3, 42, &last), SPATTN_OK);
    uint8_t *da = malloc(256 * 256), *db = malloc(256 * 256), *dl = malloc(5 * 256);
    ck_assert_int_eq(spattn_mask_to_dense(a, da, 256), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(b, db, 256), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(last, dl, 256), SPATTN_OK);
    ck_assert_mem_eq(da, db, 256 * 256);
    ck_assert_mem_eq(da + 251 * 256, dl, 5 * 256);
    for (size_t qb = 0; qb < 16; qb++) {
        size_t blocks = 0;
        for (size_t kb = 0; kb < 16; kb++)
            blocks += da[qb * 16 * 256 + kb * 16] != 0;
        /* own block (window 0) plus 3 distinct random ones, one of which may be its own */
        ck_assert(blocks == 3 || blocks == 4);
    }
    spattn_mask *c;
    ck_assert_int_eq(spattn_mask_bigbird(256, 256, 16, 0, 0, 3, 43, &c), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_to_dense(c, db, 256), SPATTN_OK);
    ck_assert(memcmp(da, db, 256 * 256) != 0); /* the seed matters */
    spattn_mask_free(a);
    spattn_mask_free(b);
    spattn_mask_free(c);
    spattn_mask_free(last);
    free(da);
    free(db);
    free(dl);
}
END_TEST

START_TEST(dense_random)
{
    tu_rng r = {77};
    int n = tu_cases(250);
    for (int c = 0; c < n; c++) {
        size_t lq = rand_len(&r), lk = rand_len(&r), ld = lk + tu_range(&r, 0, 3) * 7;
        uint8_t *a = malloc(lq * ld), *t = malloc(lq * lk);
        /* densities from empty to full, byte values that are nonzero in any single bit */
        uint64_t dens = (uint64_t)c % 5 == 0 ? 0 : (uint64_t)c % 5 == 1 ? 256 : tu_next(&r) % 257;
        for (size_t i = 0; i < lq; i++)
            for (size_t j = 0; j < ld; j++) {
                uint8_t v = (uint8_t)((tu_next(&r) % 256) < dens ? 1u << (tu_next(&r) % 8) : 0);
                a[i * ld + j] = v;
                if (j < lk)
                    t[i * lk + j] = v != 0;
            }
        snprintf(what, sizeof what, "dense %zux%zu ld %zu density %llu", lq, lk, ld,
                 (unsigned long long)dens);
        spattn_mask *m = NOT_SET;
        ck_assert_int_eq(spattn_mask_from_dense(lq, lk, a, ld, &m), SPATTN_OK);
        check_mask(m, lq, lk, t);
        spattn_mask_free(m);
        free(a);
        free(t);
    }
}
END_TEST

START_TEST(csr_random)
{
    tu_rng r = {78};
    int n = tu_cases(250);
    for (int c = 0; c < n; c++) {
        size_t lq = rand_len(&r), lk = rand_len(&r);
        uint8_t *t = calloc(lq * lk, 1);
        int64_t *rp = malloc((lq + 1) * sizeof *rp);
        int32_t *ci = malloc((lq * lk + 1) * sizeof *ci);
        uint64_t dens = tu_next(&r) % 64; /* mostly sparse, some rows empty */
        int64_t k = 0;
        rp[0] = 0;
        for (size_t i = 0; i < lq; i++) {
            for (size_t j = 0; j < lk; j++)
                if (tu_next(&r) % 256 < dens) {
                    ci[k++] = (int32_t)j;
                    t[i * lk + j] = 1;
                }
            rp[i + 1] = k;
        }
        snprintf(what, sizeof what, "csr %zux%zu nnz %lld", lq, lk, (long long)k);
        spattn_mask *m = NOT_SET;
        ck_assert_int_eq(spattn_mask_from_csr(lq, lk, rp, k ? ci : NULL, &m), SPATTN_OK);
        check_mask(m, lq, lk, t);
        spattn_mask_free(m);
        free(t);
        free(rp);
        free(ci);
    }
}
END_TEST

typedef struct fn_ctx {
    size_t lq, lk, next_i, next_j;
    long calls;
    int in_order;
    uint64_t salt;
} fn_ctx;

static int allow_hash(size_t i, size_t j, void *vctx)
{
    fn_ctx *c = vctx;
    if (i != c->next_i || j != c->next_j)
        c->in_order = 0;
    c->calls++;
    c->next_i = j + 1 == c->lk ? i + 1 : i;
    c->next_j = j + 1 == c->lk ? 0 : j + 1;
    uint64_t s = c->salt ^ (i * 1000003u + j);
    uint64_t h = sm64(&s);
    return (h % 4 == 0) ? (int)(h >> 40) | 1 : 0; /* any nonzero value allows */
}

START_TEST(from_fn_random)
{
    tu_rng r = {79};
    int n = tu_cases(100);
    for (int c = 0; c < n; c++) {
        size_t lq = rand_len(&r), lk = rand_len(&r);
        fn_ctx ctx = {lq, lk, 0, 0, 0, 1, tu_next(&r)};
        spattn_mask *m = NOT_SET;
        ck_assert_int_eq(spattn_mask_from_fn(lq, lk, allow_hash, &ctx, &m), SPATTN_OK);
        ck_assert_int_eq(ctx.in_order, 1);
        ck_assert_int_eq(ctx.calls, (long)(lq * lk));
        uint8_t *t = malloc(lq * lk);
        fn_ctx again = ctx;
        for (size_t i = 0; i < lq; i++)
            for (size_t j = 0; j < lk; j++) {
                again.next_i = i;
                again.next_j = j;
                t[i * lk + j] = allow_hash(i, j, &again) != 0;
            }
        snprintf(what, sizeof what, "from_fn %zux%zu", lq, lk);
        check_mask(m, lq, lk, t);
        spattn_mask_free(m);
        free(t);
    }
}
END_TEST

START_TEST(and_or_random)
{
    tu_rng r = {80};
    int n = tu_cases(200);
    for (int c = 0; c < n; c++) {
        size_t lq = rand_len(&r), lk = rand_len(&r);
        params pa, pb;
        rand_params(&r, (int)(tu_next(&r) % K_COUNT), lq, lk, &pa);
        rand_params(&r, (int)(tu_next(&r) % K_COUNT), lq, lk, &pb);
        spattn_mask *a, *b;
        ck_assert_int_eq(build(&pa, lq, lk, &a), SPATTN_OK);
        ck_assert_int_eq(build(&pb, lq, lk, &b), SPATTN_OK);
        uint8_t *ta = truth_of(&pa, lq, lk), *tb = truth_of(&pb, lq, lk);
        uint8_t *t = malloc(lq * lk);
        for (int op = 0; op < 2; op++) {
            for (size_t x = 0; x < lq * lk; x++)
                t[x] = op ? (ta[x] || tb[x]) : (ta[x] && tb[x]);
            snprintf(what, sizeof what, "%s of %s and %s, %zux%zu", op ? "or" : "and",
                     kind_name[pa.kind], kind_name[pb.kind], lq, lk);
            spattn_mask *m = NOT_SET;
            ck_assert_int_eq(op ? spattn_mask_or(a, b, &m) : spattn_mask_and(a, b, &m), SPATTN_OK);
            check_mask(m, lq, lk, t);
            spattn_mask_free(m);
            /* with itself: the same set */
            ck_assert_int_eq(op ? spattn_mask_or(a, a, &m) : spattn_mask_and(a, a, &m), SPATTN_OK);
            check_mask(m, lq, lk, ta);
            spattn_mask_free(m);
        }
        spattn_mask_free(a);
        spattn_mask_free(b);
        free(ta);
        free(tb);
        free(t);
        free(pa.layout);
        free(pb.layout);
    }
}
END_TEST

START_TEST(mask_all)
{
    static const size_t lens[] = {1, 15, 16, 17, 64, 65, 300};
    for (size_t a = 0; a < 7; a++)
        for (size_t b = 0; b < 7; b++) {
            size_t lq = lens[a], lk = lens[b];
            spattn_mask *m = NOT_SET;
            ck_assert_int_eq(spattn__mask_all(lq, lk, &m), SPATTN_OK);
            ck_assert_uint_eq(m->npartial, 0);
            uint8_t *t = malloc(lq * lk);
            memset(t, 1, lq * lk);
            snprintf(what, sizeof what, "mask_all %zux%zu", lq, lk);
            check_mask(m, lq, lk, t);
            spattn_mask_free(m);
            free(t);
        }
    spattn_mask *m = NOT_SET;
    ck_assert_int_eq(spattn__mask_all(0, 5, &m), SPATTN_E_SHAPE);
    ck_assert_ptr_null(m);
}
END_TEST

/* Shapes far beyond what a truth table can hold: structure and counts by formula, and a CSR of
   a few entries in a huge row costs O(nnz + tiles), not O(len_k). */
START_TEST(large_shapes)
{
    spattn_mask *m;
    size_t n = 8192 + 7;
    ck_assert_int_eq(spattn_mask_causal(n, n, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), (uint64_t)n * (n + 1) / 2);
    size_t nqt = (n + 15) / 16;
    for (size_t qt = 0; qt < nqt; qt++) {
        size_t last = qt * 16 + spattn__qt_rows(m, qt) - 1; /* the row that sees the most */
        ck_assert_uint_eq(m->qt_ptr[qt + 1] - m->qt_ptr[qt], last / 64 + 1);
    }
    ck_assert_uint_le(m->npartial, nqt); /* only the diagonal tiles are PARTIAL */
    spattn_mask_free(m);

    size_t big = (size_t)1 << 26;
    ck_assert_int_eq(spattn_mask_window(3, big, 100, 100, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 101 + 102 + 103);
    spattn_mask_free(m);

    int64_t rp[3] = {0, 2, 3};
    int32_t ci[3] = {5, (int32_t)(big - 1), (int32_t)(big / 2)};
    ck_assert_int_eq(spattn_mask_from_csr(2, big, rp, ci, &m), SPATTN_OK);
    ck_assert_uint_eq(m->ntiles, 3);
    ck_assert_uint_eq(spattn_mask_nnz(m), 3);
    int64_t rp2[3];
    int32_t ci2[3];
    ck_assert_int_eq(spattn_mask_to_csr(m, rp2, ci2), SPATTN_OK);
    ck_assert_mem_eq(rp, rp2, sizeof rp);
    ck_assert_mem_eq(ci, ci2, sizeof ci);
    spattn_mask_free(m);

    /* a huge block in the layout and huge parameters elsewhere */
    uint8_t one = 1;
    ck_assert_int_eq(spattn_mask_from_blocks(40, 1000, SIZE_MAX, SIZE_MAX, &one, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 40000);
    spattn_mask_free(m);
    ck_assert_int_eq(spattn_mask_strided(1, SPATTN_MAX_LEN / 64, 1000000, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 1000000 + (SPATTN_MAX_LEN / 64 - 1) / 1000000);
    spattn_mask_free(m);
}
END_TEST

/* ---- the builder itself ----------------------------------------------------------------- */

START_TEST(builder_order_and_limits)
{
    /* key tiles touched far apart and out of order (the sorting path), then close together
       out of order (the slot-scan path) */
    size_t lk = 64 * 5000;
    spattn__mb b;
    ck_assert_int_eq(spattn__mb_init(&b, 40, lk), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_begin(&b, 0), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 1, 4000, 3), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 2, 7, 1), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 4, 2500, ~(uint64_t)0), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_end(&b), SPATTN_OK);
    /* tile 1 skipped: empty */
    ck_assert_int_eq(spattn__mb_begin(&b, 2), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 1, 12, 1), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 1, 10, 1), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 1, 11, 0), SPATTN_OK); /* nothing: not stored */
    ck_assert_int_eq(spattn__mb_full(&b, 9), SPATTN_OK);
    ck_assert_int_eq(spattn__mb_or_word(&b, 0xff, 9, 1), SPATTN_OK); /* inside a FULL tile */
    spattn_mask *m = NOT_SET;
    ck_assert_int_eq(spattn__mb_finish(&b, &m), SPATTN_OK);
    ck_assert_uint_eq(m->ntiles, 6);
    static const uint32_t kts[] = {7, 2500, 4000, 9, 10, 12};
    for (size_t t = 0; t < 6; t++)
        ck_assert_uint_eq(m->tiles[t].kt, kts[t]);
    ck_assert_uint_eq(m->qt_ptr[1], 3);
    ck_assert_uint_eq(m->qt_ptr[2], 3);
    ck_assert_uint_eq(m->qt_ptr[3], 6);
    ck_assert_uint_eq(m->tiles[3].part, SPATTN_FULL); /* 8 rows x 64 keys */
    ck_assert_uint_eq(m->qt_nnz[2], 8 * 64 + 2);
    ck_assert_uint_eq(m->nnz, 2 + 1 + 64 + 8 * 64 + 2);
    spattn_mask_free(m);

    /* more PARTIAL tiles than an index can address -> NOMEM, everything freed */
    ck_assert_int_eq(spattn__mb_init(&b, 16, 64 * 10), SPATTN_OK);
    b.max_partial = 3;
    spattn__mb_begin(&b, 0);
    for (size_t kt = 0; kt < 10; kt++)
        spattn__mb_or_word(&b, 1, kt, 1);
    ck_assert_int_eq(spattn__mb_end(&b), SPATTN_E_NOMEM);
    m = NOT_SET;
    ck_assert_int_eq(spattn__mb_finish(&b, &m), SPATTN_E_NOMEM);
    ck_assert_ptr_null(m);

    /* tiles out of order are a caller bug, reported and sticky */
    ck_assert_int_eq(spattn__mb_init(&b, 64, 64), SPATTN_OK);
    spattn__mb_begin(&b, 2);
    ck_assert_int_eq(spattn__mb_begin(&b, 1), SPATTN_E_ARG);
    ck_assert_int_eq(spattn__mb_or_word(&b, 1, 0, 1), SPATTN_E_ARG);
    ck_assert_int_eq(spattn__mb_finish(&b, &m), SPATTN_E_ARG);
    ck_assert_ptr_null(m);
}
END_TEST

/* ---- lifetime --------------------------------------------------------------------------- */

static void *retain_release(void *arg)
{
    spattn_mask *m = arg;
    for (int k = 0; k < 20000; k++) {
        spattn__mask_retain(m);
        spattn_mask_free(m);
    }
    return NULL;
}

START_TEST(refcount)
{
    spattn_mask *m;
    ck_assert_int_eq(spattn_mask_causal(20, 20, &m), SPATTN_OK);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    spattn__mask_retain(m);
    spattn__mask_retain(m);
    ck_assert_uint_eq(atomic_load(&m->refs), 3);
    spattn_mask_free(m);
    spattn_mask_free(m);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    ck_assert_uint_eq(spattn_mask_nnz(m), 210); /* still alive */
    pthread_t th[4];
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(pthread_create(&th[k], NULL, retain_release, m), 0);
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    ck_assert_uint_eq(atomic_load(&m->refs), 1);
    spattn_mask_free(m); /* the last reference: freed (ASan reports a leak otherwise) */
    spattn_mask_free(NULL);
    ck_assert_uint_eq(spattn_mask_len_q(NULL), 0);
    ck_assert_uint_eq(spattn_mask_len_k(NULL), 0);
    ck_assert_uint_eq(spattn_mask_nnz(NULL), 0);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(errors)
{
    const size_t M = SPATTN_MAX_LEN;
    uint8_t bytes[64] = {1};
    int64_t rp_ok[3] = {0, 1, 1};
    int32_t ci_ok[1] = {0};
    size_t g_ok = 1, g_bad = 8;

    /* NULL out: E_NULL (nothing to clear) */
    ck_assert_int_eq(spattn_mask_causal(4, 4, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_window(4, 4, 1, 1, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_from_dense(4, 4, bytes, 4, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_from_csr(2, 4, rp_ok, ci_ok, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_from_blocks(4, 4, 2, 2, bytes, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_strided(4, 4, 2, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_fixed(4, 4, 2, 1, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_longformer(4, 4, 1, 1, &g_ok, 1, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_bigbird(4, 4, 2, 1, 1, 1, 0, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_dilated(4, 4, 1, 1, 2, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_from_fn(4, 4, allow_hash, NULL, NULL), SPATTN_E_NULL);

    /* NULL data */
    EXPECT(spattn_mask_from_dense(4, 4, NULL, 4, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_from_csr(2, 4, NULL, ci_ok, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_from_csr(2, 4, rp_ok, NULL, o), SPATTN_E_NULL); /* nnz 1 */
    EXPECT(spattn_mask_from_blocks(4, 4, 2, 2, NULL, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_longformer(4, 4, 1, 1, NULL, 1, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_from_fn(4, 4, NULL, NULL, o), SPATTN_E_NULL);

    /* lengths 0 and beyond SPATTN_MAX_LEN, each side, for every constructor */
    static const size_t badlen[][2] = {{0, 4},     {4, 0}, {M + 1, 4},
                                       {4, M + 1}, {0, 0}, {SIZE_MAX, 4}};
    for (size_t k = 0; k < sizeof badlen / sizeof badlen[0]; k++) {
        size_t q = badlen[k][0], kk = badlen[k][1];
        EXPECT(spattn_mask_causal(q, kk, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_window(q, kk, 1, 1, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_from_dense(q, kk, bytes, 4, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_from_csr(q, kk, rp_ok, ci_ok, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_from_blocks(q, kk, 1000, 1000, bytes, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_strided(q, kk, 2, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_fixed(q, kk, 2, 1, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_longformer(q, kk, 1, 1, NULL, 0, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_bigbird(q, kk, 2, 1, 1, 1, 0, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_dilated(q, kk, 1, 1, 2, o), SPATTN_E_SHAPE);
        EXPECT(spattn_mask_from_fn(q, kk, allow_hash, NULL, o), SPATTN_E_SHAPE);
    }
    EXPECT(spattn_mask_from_dense(4, 4, bytes, 3, o), SPATTN_E_SHAPE);            /* ld < len_k */
    EXPECT(spattn_mask_from_dense(3, 4, bytes, SIZE_MAX / 2, o), SPATTN_E_SHAPE); /* overflow */
    EXPECT(spattn_mask_from_blocks(4, 4, 0, 2, bytes, o), SPATTN_E_SHAPE);
    EXPECT(spattn_mask_from_blocks(4, 4, 2, 0, bytes, o), SPATTN_E_SHAPE);

    /* bad pattern parameters */
    EXPECT(spattn_mask_strided(4, 4, 0, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 2, 0, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 2, 3, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 0, 1, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_fixed(4, 4, 0, 0, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_longformer(4, 8, 1, 1, &g_bad, 1, o), SPATTN_E_ARG);
    size_t gs[3] = {0, 3, SIZE_MAX};
    EXPECT(spattn_mask_longformer(4, 8, 1, 1, gs, 3, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_bigbird(4, 4, 0, 1, 1, 1, 0, o), SPATTN_E_ARG);
    EXPECT(spattn_mask_dilated(4, 4, 1, 1, 0, o), SPATTN_E_ARG);

    /* malformed CSR */
    int32_t ci[4] = {0, 2, 2, 1};
    int64_t rp0[3] = {1, 1, 2};    /* row_ptr[0] != 0 */
    int64_t rpdec[3] = {0, 2, 1};  /* decreasing */
    int64_t rpneg[3] = {0, -1, 0}; /* negative */
    int64_t rplong[3] = {0, 5, 5}; /* more entries than keys in a row */
    int64_t rpdup[3] = {0, 1, 3};  /* row 1: 2, 2 not strictly increasing */
    int64_t rpdown[3] = {0, 2, 4}; /* row 1: 2, 1 decreasing */
    int64_t rphuge[3] = {0, INT64_MAX, INT64_MAX};
    EXPECT(spattn_mask_from_csr(2, 4, rp0, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rpdec, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rpneg, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rplong, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rpdup, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rpdown, ci, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rphuge, ci, o), SPATTN_E_MASK);
    int32_t cneg[1] = {-1}, cbig[1] = {4}, cmin[1] = {INT32_MIN};
    int64_t rp1[3] = {0, 1, 1};
    EXPECT(spattn_mask_from_csr(2, 4, rp1, cneg, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rp1, cbig, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_from_csr(2, 4, rp1, cmin, o), SPATTN_E_MASK);
    /* an empty CSR may leave col_idx NULL */
    int64_t rpz[3] = {0, 0, 0};
    spattn_mask *m = NOT_SET;
    ck_assert_int_eq(spattn_mask_from_csr(2, 4, rpz, NULL, &m), SPATTN_OK);
    ck_assert_uint_eq(spattn_mask_nnz(m), 0);
    ck_assert_uint_eq(m->ntiles, 0);

    /* and / or */
    spattn_mask *other;
    ck_assert_int_eq(spattn_mask_causal(2, 5, &other), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_and(m, m, NULL), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_or(m, m, NULL), SPATTN_E_NULL);
    EXPECT(spattn_mask_and(NULL, m, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_and(m, NULL, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_or(NULL, m, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_or(m, NULL, o), SPATTN_E_NULL);
    EXPECT(spattn_mask_and(m, other, o), SPATTN_E_MASK);
    EXPECT(spattn_mask_or(other, m, o), SPATTN_E_MASK);
    spattn_mask_free(other);
    ck_assert_int_eq(spattn_mask_causal(3, 4, &other), SPATTN_OK);
    EXPECT(spattn_mask_or(other, m, o), SPATTN_E_MASK);

    /* to_dense / to_csr: nothing written on failure */
    uint8_t canary[64];
    memset(canary, 0x5a, sizeof canary);
    ck_assert_int_eq(spattn_mask_to_dense(NULL, canary, 4), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_dense(other, NULL, 4), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_dense(other, canary, 3), SPATTN_E_SHAPE);
    ck_assert_int_eq(spattn_mask_to_dense(other, canary, SIZE_MAX / 2), SPATTN_E_SHAPE);
    for (size_t k = 0; k < sizeof canary; k++)
        ck_assert_uint_eq(canary[k], 0x5a);
    int64_t rpo[4] = {-7, -7, -7, -7};
    int32_t cio[16];
    ck_assert_int_eq(spattn_mask_to_csr(NULL, rpo, cio), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_csr(other, NULL, cio), SPATTN_E_NULL);
    ck_assert_int_eq(spattn_mask_to_csr(other, rpo, NULL), SPATTN_E_NULL);
    for (size_t k = 0; k < 4; k++)
        ck_assert_int_eq(rpo[k], -7);
    int64_t rpe[3];
    ck_assert_int_eq(spattn_mask_to_csr(m, rpe, NULL), SPATTN_OK); /* nnz 0: col_idx unused */
    ck_assert_int_eq(rpe[2], 0);
    spattn_mask_free(other);
    spattn_mask_free(m);
}
END_TEST

/* ---- allocation failures ---------------------------------------------------------------- */

typedef spattn_status (*ctor_fn)(spattn_mask **out, void *arg);

typedef struct fail_case {
    const char *name;
    ctor_fn fn;
} fail_case;

static spattn_mask *fa_a, *fa_b; /* inputs of and / or, made before injection starts */
static uint8_t fa_bytes[70 * 200];

static spattn_status c_causal(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_causal(70, 200, o);
}
static spattn_status c_window(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_window(200, 70, 5, 9, o);
}
static spattn_status c_dense(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_from_dense(70, 200, fa_bytes, 200, o);
}
static spattn_status c_csr(spattn_mask **o, void *x)
{
    (void)x;
    static int64_t rp[71];
    static int32_t ci[70 * 3];
    for (int i = 0; i < 70; i++) {
        rp[i] = 3 * i;
        ci[3 * i] = i;
        ci[3 * i + 1] = 2 * i + 1;
        ci[3 * i + 2] = 199;
    }
    rp[70] = 210;
    return spattn_mask_from_csr(70, 200, rp, ci, o);
}
static spattn_status c_blocks(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_from_blocks(70, 200, 7, 3, fa_bytes, o);
}
static spattn_status c_strided(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_strided(70, 200, 9, o);
}
static spattn_status c_strided_big(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_strided(70, 300, 80, o);
}
static spattn_status c_fixed(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_fixed(70, 200, 10, 2, o);
}
static spattn_status c_fixed_big(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_fixed(70, 300, 90, 3, o);
}
static spattn_status c_longformer(spattn_mask **o, void *x)
{
    (void)x;
    static const size_t g[4] = {190, 3, 150, 3};
    return spattn_mask_longformer(70, 200, 4, 4, g, 4, o);
}
static spattn_status c_bigbird(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_bigbird(70, 200, 8, 1, 1, 2, 9, o);
}
static spattn_status c_dilated(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_dilated(70, 200, 6, 3, 5, o);
}
static spattn_status c_fn(spattn_mask **o, void *x)
{
    (void)x;
    fn_ctx ctx = {70, 200, 0, 0, 0, 1, 5};
    return spattn_mask_from_fn(70, 200, allow_hash, &ctx, o);
}
static spattn_status c_and(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_and(fa_a, fa_b, o);
}
static spattn_status c_or(spattn_mask **o, void *x)
{
    (void)x;
    return spattn_mask_or(fa_a, fa_b, o);
}
static spattn_status c_all(spattn_mask **o, void *x)
{
    (void)x;
    return spattn__mask_all(70, 200, o);
}

static const fail_case fail_cases[] = {
    {"causal", c_causal},
    {"window", c_window},
    {"dense", c_dense},
    {"csr", c_csr},
    {"blocks", c_blocks},
    {"strided", c_strided},
    {"strided_big", c_strided_big},
    {"fixed", c_fixed},
    {"fixed_big", c_fixed_big},
    {"longformer", c_longformer},
    {"bigbird", c_bigbird},
    {"dilated", c_dilated},
    {"from_fn", c_fn},
    {"and", c_and},
    {"or", c_or},
    {"all", c_all},
};

START_TEST(alloc_failures)
{
    const fail_case *fc = &fail_cases[_i];
    for (size_t k = 0; k < sizeof fa_bytes; k++)
        fa_bytes[k] = (uint8_t)((k * 2654435761u) >> 29 & 1);
    ck_assert_int_eq(spattn_mask_causal(70, 200, &fa_a), SPATTN_OK);
    ck_assert_int_eq(spattn_mask_from_dense(70, 200, fa_bytes, 200, &fa_b), SPATTN_OK);

    spattn_mask *want;
    ck_assert_int_eq(fc->fn(&want, NULL), SPATTN_OK);
    uint8_t *dw = calloc(300 * 300, 1), *dg = calloc(300 * 300, 1);
    ck_assert_int_eq(spattn_mask_to_dense(want, dw, 300), SPATTN_OK);

    long n = 1;
    for (;; n++) {
        REQUIRE(n < 100000, "%s: no success", fc->name);
        spattn__test_fail_alloc_at(n);
        spattn_mask *m = NOT_SET;
        spattn_status st = fc->fn(&m, NULL);
        spattn__test_fail_alloc_at(0);
        if (st == SPATTN_OK) {
            /* a tolerated failure (shrinking) may end the loop: the mask must still be right */
            ck_assert_int_eq(spattn_mask_to_dense(m, dg, 300), SPATTN_OK);
            ck_assert_mem_eq(dw, dg, 300 * 300);
            ck_assert_uint_eq(spattn_mask_nnz(m), spattn_mask_nnz(want));
            spattn_mask_free(m);
            break;
        }
        REQUIRE(st == SPATTN_E_NOMEM, "%s: allocation %ld failed with %s", fc->name, n,
                spattn_status_string(st));
        REQUIRE(m == NULL, "%s: *out set after allocation %ld failed", fc->name, n);
    }
    REQUIRE(n > 1, "%s: no allocation at all?", fc->name);
    spattn_mask_free(want);
    spattn_mask_free(fa_a);
    spattn_mask_free(fa_b);
    free(dw);
    free(dg);
}
END_TEST

void tm_check_mask(const spattn_mask *m, size_t lq, size_t lk, const uint8_t *truth,
                   const char *desc)
{
    snprintf(what, sizeof what, "%s", desc);
    check_mask(m, lq, lk, truth);
}

Suite *suite_mask(void);
Suite *suite_mask(void)
{
    Suite *s = suite_create("mask");
    TCase *tc = tcase_create("patterns");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, patterns_random, 0, K_COUNT);
    tcase_add_test(tc, patterns_by_hand);
    tcase_add_test(tc, bigbird_random_blocks);
    tcase_add_test(tc, dense_random);
    tcase_add_test(tc, csr_random);
    tcase_add_test(tc, from_fn_random);
    tcase_add_test(tc, and_or_random);
    tcase_add_test(tc, mask_all);
    tcase_add_test(tc, large_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("internals");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, builder_order_and_limits);
    tcase_add_test(tc, refcount);
    tcase_add_test(tc, errors);
    tcase_add_loop_test(tc, alloc_failures, 0, (int)(sizeof fail_cases / sizeof fail_cases[0]));
    suite_add_tcase(s, tc);
    return s;
}

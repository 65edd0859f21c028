/*
 * Every mask constructor: from user data (dense, CSR, blocks, callback) and the published
 * patterns. Each validates all arguments first, then feeds the builder one query tile at a
 * time with the widest strokes it can (rectangles, whole-tile words), so that structured
 * patterns cost O(tiles) and sparse inputs O(nnz + tiles).
 *
 * Query row i stands at key position i' = i + len_k - len_q (signed: negative when
 * len_q > len_k). Offsets |i' - j| stay below 2^32, so size parameters are clamped to BIG
 * before any signed arithmetic; beyond that they all mean "unbounded".
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mask_build.h"

#define BIG ((int64_t)1 << 40)
#define TQ SPATTN_TQ
#define TK SPATTN_TK

static int64_t clampz(size_t v)
{
    return v > (size_t)BIG ? BIG : (int64_t)v;
}

static int bad_len(size_t n)
{
    return n == 0 || n > SPATTN_MAX_LEN;
}

/* i' of local row 0 of query tile qt. */
static int64_t pos0(const spattn__mb *b, size_t qt)
{
    return (int64_t)(qt * TQ) + (int64_t)b->len_k - (int64_t)b->len_q;
}

/* Bits [a, e) of a word, 0 <= a, e <= 64. */
static uint64_t bit_range(size_t a, size_t e)
{
    if (a >= e)
        return 0;
    uint64_t hi = e >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << e) - 1);
    return hi & ~(((uint64_t)1 << a) - 1);
}

/* Bits 0, d, 2d, ... of a word (1 <= d <= 64). */
static uint64_t every_dth(int64_t d)
{
    uint64_t w = 0;
    for (int64_t k = 0; k < 64; k += d)
        w |= (uint64_t)1 << k;
    return w;
}

/* The checks every constructor makes first, in this order: NULL pointers, then lengths. */
static spattn_status check_common(spattn_mask **out, int data_null, size_t len_q, size_t len_k)
{
    if (!out)
        return SPATTN_E_NULL;
    *out = NULL;
    if (data_null)
        return SPATTN_E_NULL;
    if (bad_len(len_q) || bad_len(len_k))
        return SPATTN_E_SHAPE;
    return SPATTN_OK;
}

/* ---- shared strokes ------------------------------------------------------------------- */

/* Keys j in [i' - L, i' + R] for every row of the open tile. */
static void add_band(spattn__mb *b, size_t qt, int64_t L, int64_t R)
{
    int64_t lo[TQ], hi[TQ], ip = pos0(b, qt);
    for (int r = 0; r < TQ; r++) {
        lo[r] = ip + r - L;
        hi[r] = ip + r + R + 1;
    }
    spattn__mb_add_row_ranges(b, lo, hi);
}

/* Keys a, a + d, ..., up to last (0 <= a, last < len_k) for the rows of `rows`: one word per
   key tile when d <= 64 (every tile then holds one of them), one bit per key otherwise. */
static void add_progression(spattn__mb *b, uint32_t rows, int64_t a, int64_t last, int64_t d)
{
    if (a > last)
        return;
    if (d == 1) {
        spattn__mb_add_range(b, rows, (size_t)a, (size_t)last + 1);
        return;
    }
    if (d <= 64) {
        uint64_t pat = every_dth(d);
        for (int64_t kt = a / TK; kt <= last / TK && !b->err; kt++) {
            int64_t c0 = kt * TK;
            int64_t first = a >= c0 ? a : c0 + ((a - c0) % d + d) % d;
            uint64_t w = (pat << (first - c0)) & bit_range(0, (size_t)(last - c0 + 1));
            spattn__mb_or_word(b, rows, (size_t)kt, w);
        }
        return;
    }
    for (int64_t j = a; !b->err; j += d) {
        spattn__mb_or_word(b, rows, (size_t)j / TK, (uint64_t)1 << (j % TK));
        if (last - j < d)
            break;
    }
}

/* ---- simple shapes ---------------------------------------------------------------------- */

static spattn_status build_band(size_t len_q, size_t len_k, size_t left, size_t right,
                                spattn_mask **out)
{
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    int64_t L = clampz(left), R = clampz(right);
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        add_band(&b, qt, L, R);
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

spattn_status spattn_mask_causal(size_t len_q, size_t len_k, spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    return s ? s : build_band(len_q, len_k, SIZE_MAX, 0, out);
}

spattn_status spattn_mask_window(size_t len_q, size_t len_k, size_t left, size_t right,
                                 spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    return s ? s : build_band(len_q, len_k, left, right, out);
}

/* ---- user data -------------------------------------------------------------------------- */

/* Nonzero bytes of p[0 .. n-1] (n <= 64) as bits. */
static uint64_t bytes_to_bits(const uint8_t *p, size_t n)
{
    uint64_t w = 0;
    size_t c = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7full, hi1 = 0x8080808080808080ull;
    for (; c + 8 <= n; c += 8) {
        uint64_t x;
        memcpy(&x, p + c, 8);
        uint64_t t = (((x & lo7) + lo7) | x) & hi1; /* high bit of each nonzero byte */
        /* gathers the 8 flags (bits 7, 15, ..., 63) into the top byte, byte k to bit 56 + k */
        w |= (((t >> 7) * 0x0102040810204080ull) >> 56) << c;
    }
#endif
    for (; c < n; c++)
        w |= (uint64_t)(p[c] != 0) << c;
    return w;
}

spattn_status spattn_mask_from_dense(size_t len_q, size_t len_k, const uint8_t *allowed,
                                     size_t ld, spattn_mask **out)
{
    spattn_status s = check_common(out, !allowed, len_q, len_k);
    if (s)
        return s;
    if (ld < len_k || (len_q - 1) > (SIZE_MAX - len_k) / ld)
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows; r++) {
            const uint8_t *row = allowed + (qt * TQ + r) * ld;
            for (size_t kt = 0; kt < b.nkt; kt++) {
                size_t c0 = kt * TK, n = len_k - c0 < TK ? len_k - c0 : TK;
                spattn__mb_or_word(&b, 1u << r, kt, bytes_to_bits(row + c0, n));
            }
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* Row by row, so that a row's columns are read only after its row_ptr pair proved sane. */
static spattn_status check_csr(size_t len_q, size_t len_k, const int64_t *row_ptr,
                               const int32_t *col_idx)
{
    if (row_ptr[0] != 0)
        return SPATTN_E_MASK;
    for (size_t i = 0; i < len_q; i++) {
        int64_t a = row_ptr[i], e = row_ptr[i + 1];
        /* strictly increasing columns in [0, len_k) fit at most len_k to a row */
        if (e < a || e - a > (int64_t)len_k)
            return SPATTN_E_MASK;
    }
    if (!col_idx && row_ptr[len_q] > 0)
        return SPATTN_E_NULL;
    for (size_t i = 0; i < len_q; i++) {
        for (int64_t t = row_ptr[i]; t < row_ptr[i + 1]; t++) {
            int32_t c = col_idx[t];
            if (c < 0 || (size_t)c >= len_k || (t > row_ptr[i] && c <= col_idx[t - 1]))
                return SPATTN_E_MASK;
        }
    }
    return SPATTN_OK;
}

spattn_status spattn_mask_from_csr(size_t len_q, size_t len_k, const int64_t *row_ptr,
                                   const int32_t *col_idx, spattn_mask **out)
{
    spattn_status s = check_common(out, !row_ptr, len_q, len_k);
    if (s || (s = check_csr(len_q, len_k, row_ptr, col_idx)))
        return s;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        size_t i0 = qt * TQ, rows = spattn__qt_rows(b.m, qt);
        if (row_ptr[i0] == row_ptr[i0 + rows])
            continue;
        spattn__mb_begin(&b, qt);
        for (size_t r = 0; r < rows; r++) {
            size_t kt = SIZE_MAX;
            uint64_t w = 0;
            for (int64_t t = row_ptr[i0 + r]; t < row_ptr[i0 + r + 1]; t++) {
                size_t c = (size_t)col_idx[t];
                if (c / TK != kt) {
                    if (w)
                        spattn__mb_or_word(&b, 1u << r, kt, w);
                    kt = c / TK;
                    w = 0;
                }
                w |= (uint64_t)1 << (c % TK);
            }
            if (w)
                spattn__mb_or_word(&b, 1u << r, kt, w);
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* One layout row of from_blocks as (key tile, word) pairs, computed once per layout row. */
typedef struct kt_word {
    size_t kt;
    uint64_t w;
} kt_word;

typedef struct layout_row {
    kt_word *p;
    size_t n, cap;
    size_t row; /* which layout row p holds, SIZE_MAX for none */
} layout_row;

static int layout_row_load(layout_row *lr, const uint8_t *layout, size_t row, size_t nbk,
                           size_t block_k, size_t len_k)
{
    lr->n = 0;
    lr->row = row;
    const uint8_t *cells = layout + row * nbk;
    for (size_t c = 0; c < nbk; c++) {
        if (!cells[c])
            continue;
        size_t j0 = c * block_k, j1 = c + 1 == nbk ? len_k : (c + 1) * block_k;
        for (size_t kt = j0 / TK; kt * TK < j1; kt++) {
            size_t c0 = kt * TK;
            uint64_t w = bit_range(j0 > c0 ? j0 - c0 : 0, j1 - c0 < TK ? j1 - c0 : TK);
            if (lr->n && lr->p[lr->n - 1].kt == kt) {
                lr->p[lr->n - 1].w |= w;
                continue;
            }
            if (lr->n == lr->cap) {
                size_t cap = lr->cap ? 2 * lr->cap : 64;
                kt_word *q = spattn__realloc(lr->p, cap * sizeof *q);
                if (!q)
                    return -1;
                lr->p = q;
                lr->cap = cap;
            }
            lr->p[lr->n].kt = kt;
            lr->p[lr->n].w = w;
            lr->n++;
        }
    }
    return 0;
}

spattn_status spattn_mask_from_blocks(size_t len_q, size_t len_k, size_t block_q,
                                      size_t block_k, const uint8_t *layout, spattn_mask **out)
{
    spattn_status s = check_common(out, !layout, len_q, len_k);
    if (s)
        return s;
    if (block_q == 0 || block_k == 0)
        return SPATTN_E_SHAPE;
    size_t nbq = (len_q - 1) / block_q + 1, nbk = (len_k - 1) / block_k + 1;
    if (nbq > SIZE_MAX / nbk)
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    layout_row lr = {NULL, 0, 0, SIZE_MAX};
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows && !b.err;) {
            /* the rows of this tile in one layout row share every word */
            size_t brow = (qt * TQ + r) / block_q;
            uint32_t group = 0;
            for (; r < rows && (qt * TQ + r) / block_q == brow; r++)
                group |= 1u << r;
            if (lr.row != brow && layout_row_load(&lr, layout, brow, nbk, block_k, len_k)) {
                spattn__mb_free(&b);
                spattn__free(lr.p);
                return SPATTN_E_NOMEM;
            }
            for (size_t k = 0; k < lr.n; k++)
                spattn__mb_or_word(&b, group, lr.p[k].kt, lr.p[k].w);
        }
        spattn__mb_end(&b);
    }
    spattn__free(lr.p);
    return spattn__mb_finish(&b, out);
}

spattn_status spattn_mask_from_fn(size_t len_q, size_t len_k, spattn_allow_fn allow, void *ctx,
                                  spattn_mask **out)
{
    spattn_status s = check_common(out, !allow, len_q, len_k);
    if (s)
        return s;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        size_t rows = spattn__qt_rows(b.m, qt);
        for (size_t r = 0; r < rows && !b.err; r++) {
            size_t i = qt * TQ + r;
            for (size_t kt = 0; kt < b.nkt && !b.err; kt++) {
                size_t c0 = kt * TK, n = len_k - c0 < TK ? len_k - c0 : TK;
                uint64_t w = 0;
                for (size_t c = 0; c < n; c++)
                    w |= (uint64_t)(allow(i, c0 + c, ctx) != 0) << c;
                spattn__mb_or_word(&b, 1u << r, kt, w);
            }
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* ---- Sparse Transformer ----------------------------------------------------------------- */

spattn_status spattn_mask_strided(size_t len_q, size_t len_k, size_t stride, spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    if (s)
        return s;
    if (stride == 0)
        return SPATTN_E_ARG;
    int64_t st = clampz(stride);
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        add_band(&b, qt, st - 1, 0); /* i' - j < stride */
        /* i' - j a multiple of stride, below the band: j = i' mod stride, ..., i' - stride */
        int64_t ip0 = pos0(&b, qt);
        for (int r = 0; r < TQ && !b.err; r++)
            if (ip0 + r >= st && ((spattn__mb_rows(&b) >> r) & 1u))
                add_progression(&b, 1u << r, (ip0 + r) % st, ip0 + r - st, st);
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* Bits c of a word (c < n) whose key c0 + c has (c0 + c) mod s >= res_lo; s <= 64. */
static uint64_t periodic_word(size_t c0, size_t n, size_t s, size_t res_lo)
{
    uint64_t w = 0;
    size_t res = c0 % s, at = 0;
    while (at < n) {
        if (res >= res_lo) {
            w |= bit_range(at, at + (s - res) < n ? at + (s - res) : n);
            at += s - res;
            res = 0;
        } else {
            at += res_lo - res;
            res = res_lo;
        }
    }
    return w;
}

/* Keys j < e with j mod s >= res_lo, for the rows of `rows`. */
static void add_residues(spattn__mb *b, uint32_t rows, size_t e, size_t s, size_t res_lo)
{
    if (res_lo == 0) {
        spattn__mb_add_range(b, rows, 0, e);
    } else if (s <= 64) {
        for (size_t kt = 0; kt * TK < e && !b->err; kt++) {
            size_t c0 = kt * TK, n = e - c0 < TK ? e - c0 : TK;
            spattn__mb_or_word(b, rows, kt, periodic_word(c0, n, s, res_lo));
        }
    } else {
        size_t run = s - res_lo; /* runs [k*s + res_lo, (k+1)*s) */
        for (size_t j = res_lo; j < e && !b->err; j += s) {
            spattn__mb_add_range(b, rows, j, e - j < run ? e : j + run);
            if (s >= e - j)
                break;
        }
    }
}

spattn_status spattn_mask_fixed(size_t len_q, size_t len_k, size_t stride, size_t summary,
                                spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    if (s)
        return s;
    if (summary == 0 || summary > stride)
        return SPATTN_E_ARG;
    size_t res_lo = stride - summary;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        int64_t ip0 = pos0(&b, qt);
        if (ip0 + (int64_t)spattn__qt_rows(b.m, qt) <= 0)
            continue; /* every row before key 0 */
        spattn__mb_begin(&b, qt);
        uint32_t rows = spattn__mb_rows(&b);
        int64_t lo[TQ], hi[TQ];
        uint32_t active = 0;
        for (int r = 0; r < TQ; r++) {
            int64_t ip = ip0 + r;
            lo[r] = hi[r] = 0;
            if (ip < 0 || !((rows >> r) & 1u))
                continue;
            active |= 1u << r;
            lo[r] = (int64_t)((size_t)ip / stride * stride); /* its stride-block */
            hi[r] = ip + 1;
        }
        spattn__mb_add_row_ranges(&b, lo, hi);
        /* summary keys: the same for every row up to the first active row's i', then the few
           beyond it row by row */
        int r0 = __builtin_ctz(active);
        int64_t ipmin = ip0 + r0;
        add_residues(&b, active, (size_t)ipmin + 1, stride, res_lo);
        for (int r = r0 + 1; r < TQ && !b.err; r++) {
            if (!((active >> r) & 1u))
                continue;
            for (int64_t j = ipmin + 1; j <= ip0 + r; j++)
                if ((size_t)j % stride >= res_lo)
                    spattn__mb_or_word(&b, 1u << r, (size_t)j / TK, (uint64_t)1 << (j % TK));
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* ---- Longformer ------------------------------------------------------------------------- */

static int cmp_size(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, c = *(const size_t *)pb;
    return (a > c) - (a < c);
}

spattn_status spattn_mask_longformer(size_t len_q, size_t len_k, size_t left, size_t right,
                                     const size_t *global, size_t n_global, spattn_mask **out)
{
    spattn_status s = check_common(out, !global && n_global, len_q, len_k);
    if (s)
        return s;
    for (size_t k = 0; k < n_global; k++)
        if (global[k] >= len_k)
            return SPATTN_E_ARG;

    /* sorted distinct positions g[0..ng), and the global columns as one word per key tile */
    size_t *g = NULL, ng = 0, nw = 0;
    kt_word *cols = NULL;
    if (n_global) {
        if (n_global > SIZE_MAX / sizeof *cols)
            return SPATTN_E_NOMEM;
        g = spattn__malloc(n_global * sizeof *g);
        cols = spattn__malloc(n_global * sizeof *cols);
        if (!g || !cols) {
            spattn__free(g);
            spattn__free(cols);
            return SPATTN_E_NOMEM;
        }
        memcpy(g, global, n_global * sizeof *g);
        qsort(g, n_global, sizeof *g, cmp_size);
        for (size_t k = 0; k < n_global; k++) {
            if (k && g[k] == g[ng - 1])
                continue;
            g[ng++] = g[k];
            if (nw && cols[nw - 1].kt == g[k] / TK) {
                cols[nw - 1].w |= (uint64_t)1 << (g[k] % TK);
            } else {
                cols[nw].kt = g[k] / TK;
                cols[nw++].w = (uint64_t)1 << (g[k] % TK);
            }
        }
    }

    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k)) {
        spattn__free(g);
        spattn__free(cols);
        return b.err;
    }
    int64_t L = clampz(left), R = clampz(right);
    int64_t shift = (int64_t)len_q - (int64_t)len_k; /* row of key position p: p + shift */
    size_t p = 0;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        add_band(&b, qt, L, R);
        for (size_t k = 0; k < nw; k++)
            spattn__mb_or_word(&b, SPATTN__ALL_ROWS, cols[k].kt, cols[k].w);
        int64_t row0 = (int64_t)(qt * TQ);
        while (p < ng && (int64_t)g[p] + shift < row0)
            p++;
        for (; p < ng && (int64_t)g[p] + shift < row0 + TQ; p++)
            spattn__mb_add_range(&b, 1u << ((int64_t)g[p] + shift - row0), 0, len_k);
        spattn__mb_end(&b);
    }
    spattn__free(g);
    spattn__free(cols);
    return spattn__mb_finish(&b, out);
}

/* ---- BigBird ---------------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The random key blocks of every query block 0 .. nkb-1 (the block of the last row is nkb-1):
   rnd[qb * random + k]. Drawing for every block from 0, whatever len_q, makes a decode step's
   mask the last rows of the full one. */
static spattn_status draw_random(size_t nkb, size_t random, uint64_t seed, uint32_t **out)
{
    *out = NULL;
    if (random > SIZE_MAX / sizeof(uint32_t) / nkb)
        return SPATTN_E_NOMEM;
    uint32_t *rnd = spattn__malloc(nkb * random * sizeof *rnd);
    uint32_t *stamp = spattn__calloc(nkb, sizeof *stamp); /* qb + 1 when drawn for qb */
    if (!rnd || !stamp) {
        spattn__free(rnd);
        spattn__free(stamp);
        return SPATTN_E_NOMEM;
    }
    for (size_t qb = 0; qb < nkb; qb++) {
        for (size_t got = 0; got < random;) {
            size_t kb = (size_t)(splitmix64(&seed) % nkb);
            if (stamp[kb] != (uint32_t)(qb + 1)) {
                stamp[kb] = (uint32_t)(qb + 1);
                rnd[qb * random + got++] = (uint32_t)kb;
            }
        }
    }
    spattn__free(stamp);
    *out = rnd;
    return SPATTN_OK;
}

spattn_status spattn_mask_bigbird(size_t len_q, size_t len_k, size_t block, size_t window,
                                  size_t global, size_t random, uint64_t seed,
                                  spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    if (s)
        return s;
    if (block == 0)
        return SPATTN_E_ARG;
    size_t nkb = (len_k - 1) / block + 1;
    uint32_t *rnd = NULL;
    if (random > 0 && random < nkb && (s = draw_random(nkb, random, seed, &rnd)))
        return s;
    size_t ng = global < nkb ? global : nkb;
    /* start of key block k (k <= nkb), clipped to len_k */
#define KB_START(k) ((k) >= nkb ? len_k : (k) * block)

    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k)) {
        spattn__free(rnd);
        return b.err;
    }
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        int64_t ip0 = pos0(&b, qt);
        uint32_t rows = spattn__mb_rows(&b);
        for (int r = 0; r < TQ && ((rows >> r) & 1u) && !b.err;) {
            /* rows with i' < 0 have no query block: they see only the global key blocks */
            int64_t ip = ip0 + r;
            size_t qb = ip < 0 ? SIZE_MAX : (size_t)ip / block;
            uint32_t group = 0;
            for (; r < TQ && ((rows >> r) & 1u); r++) {
                int64_t ipr = ip0 + r;
                if ((ipr < 0 ? SIZE_MAX : (size_t)ipr / block) != qb)
                    break;
                group |= 1u << r;
            }
            if (qb != SIZE_MAX && (qb < global || random >= nkb)) {
                spattn__mb_add_range(&b, group, 0, len_k);
                continue;
            }
            spattn__mb_add_range(&b, group, 0, KB_START(ng));
            if (qb == SIZE_MAX)
                continue;
            size_t wlo = qb > window ? qb - window : 0;
            size_t whi = nkb - 1 - qb > window ? qb + window : nkb - 1;
            spattn__mb_add_range(&b, group, KB_START(wlo), KB_START(whi + 1));
            for (size_t k = 0; rnd && k < random; k++) {
                size_t kb = rnd[qb * random + k];
                spattn__mb_add_range(&b, group, KB_START(kb), KB_START(kb + 1));
            }
        }
        spattn__mb_end(&b);
    }
#undef KB_START
    spattn__free(rnd);
    return spattn__mb_finish(&b, out);
}

/* ---- dilated window --------------------------------------------------------------------- */

spattn_status spattn_mask_dilated(size_t len_q, size_t len_k, size_t left, size_t right,
                                  size_t dilation, spattn_mask **out)
{
    spattn_status s = check_common(out, 0, len_q, len_k);
    if (s)
        return s;
    if (dilation == 0)
        return SPATTN_E_ARG;
    if (dilation == 1)
        return build_band(len_q, len_k, left, right, out);
    int64_t L = clampz(left), R = clampz(right), d = clampz(dilation);
    int64_t kmax = (int64_t)len_k - 1;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        int64_t ip0 = pos0(&b, qt);
        uint32_t rows = spattn__mb_rows(&b);
        for (int r = 0; r < TQ && ((rows >> r) & 1u) && !b.err; r++) {
            /* keys i' + t*d for t in [-tl, tr] within [0, len_k): one progression */
            int64_t ip = ip0 + r;
            int64_t tl = ip >= 0 ? (L < ip / d ? L : ip / d) : -1; /* -1: none left of i' */
            int64_t tmin = ip >= 0 ? 1 : (-ip + d - 1) / d;
            int64_t tmax = (kmax - ip) / d < R ? (kmax - ip) / d : R;
            int64_t a, last;
            if (tl >= 0) {
                a = ip - tl * d;
                last = tmin <= tmax ? ip + tmax * d : ip;
            } else if (tmin <= tmax) {
                a = ip + tmin * d;
                last = ip + tmax * d;
            } else {
                continue;
            }
            add_progression(&b, 1u << r, a, last, d);
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

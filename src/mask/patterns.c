/*
 * The published mask patterns (from.c builds masks from user data). Each validates all
 * arguments first, then feeds the builder one query tile at a time with the widest strokes it
 * can (rectangles, whole-tile words), so that structured patterns cost O(tiles).
 *
 * Query row i stands at key position i' = i + len_k - len_q (signed: negative when
 * len_q > len_k). Offsets |i' - j| stay below 2^32, so size parameters are clamped to BIG
 * before any signed arithmetic; beyond that they all mean "unbounded".
 */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "mask/build.h"

#define BIG ((int64_t)1 << 40)
#define TQ SPATTN_TQ
#define TK SPATTN_TK

static int64_t clampz(size_t v)
{
    return v > (size_t)BIG ? BIG : (int64_t)v;
}

/* i' of local row 0 of query tile qt. */
static int64_t pos0(const spattn__mb *b, size_t qt)
{
    return (int64_t)(qt * TQ) + (int64_t)b->len_k - (int64_t)b->len_q;
}

/* Bits 0, d, 2d, ... of a word (1 <= d <= 64). */
static uint64_t every_dth(int64_t d)
{
    uint64_t w = 0;
    for (int64_t k = 0; k < 64; k += d)
        w |= (uint64_t)1 << k;
    return w;
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
            uint64_t w = (pat << (first - c0)) & spattn__mb_bit_range(0, (size_t)(last - c0 + 1));
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
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
    return s ? s : build_band(len_q, len_k, SIZE_MAX, 0, out);
}

spattn_status spattn_mask_window(size_t len_q, size_t len_k, size_t left, size_t right,
                                 spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
    return s ? s : build_band(len_q, len_k, left, right, out);
}

/* ---- Sparse Transformer ----------------------------------------------------------------- */

spattn_status spattn_mask_strided(size_t len_q, size_t len_k, size_t stride, spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
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
            w |= spattn__mb_bit_range(at, at + (s - res) < n ? at + (s - res) : n);
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
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
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
    spattn_status s = spattn__mb_check_args(out, !global && n_global, len_q, len_k);
    if (s)
        return s;
    for (size_t k = 0; k < n_global; k++)
        if (global[k] >= len_k)
            return SPATTN_E_ARG;

    /* sorted distinct positions g[0..ng), and the global columns as one word per key tile */
    size_t *g = NULL, ng = 0, nw = 0;
    spattn__mb_kt_word *cols = NULL;
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
                                  size_t global, size_t random, uint64_t seed, spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
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
#define KB_START(k) ((k) >= nkb ? len_k : (k)*block)

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
    spattn_status s = spattn__mb_check_args(out, 0, len_q, len_k);
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

/* ---- everything ------------------------------------------------------------------------ */

spattn_status spattn__mask_all(size_t len_q, size_t len_k, spattn_mask **out)
{
    if (!out)
        return SPATTN_E_NULL;
    *out = NULL;
    if (len_q == 0 || len_k == 0 || len_q > SPATTN_MAX_LEN || len_k > SPATTN_MAX_LEN)
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, len_q, len_k))
        return b.err;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        spattn__mb_begin(&b, qt);
        for (size_t kt = 0; kt < b.nkt && !b.err; kt++)
            spattn__mb_full(&b, kt);
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

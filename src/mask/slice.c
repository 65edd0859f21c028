/*
 * spattn_mask_slice: a rectangle of a mask, built from the source's stored tiles.
 *
 * A slice's query tile takes its rows from at most two source query tiles (two when q0 is not
 * a multiple of TQ: the rows shift), and each of its key tiles takes its keys from at most two
 * source key tiles (two when k0 is not a multiple of TK: a source word splits, its high bits
 * going to one slice tile and its low bits to the tile before). Only source tiles inside the
 * rectangle are visited, found by a binary search in each source query tile's sorted list, so
 * the cost is O(rows + tiles of the slice), never O(area). The builder drops bits beyond the
 * slice's len_k and rows beyond its len_q, and turns a slice tile whose every in-range pair is
 * covered into a FULL tile, whichever source tiles covered it.
 */
#include "mask/build.h"

#define TQ SPATTN_TQ
#define TK SPATTN_TK

/* The first stored tile of source query tile qt with key tile >= kt. */
static size_t first_tile_from(const spattn_mask *m, size_t qt, size_t kt)
{
    size_t lo = m->qt_ptr[qt], hi = m->qt_ptr[qt + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (m->tiles[mid].kt < kt)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Source word `w` of key tile kt into the slice: with sh = k0 % TK, bits >= sh land in slice
   tile kt - k0 / TK, bits < sh in the tile before (absent for the first source tile). */
static void put_word(spattn__mb *b, uint32_t rows, size_t kt, size_t k0, uint64_t w)
{
    size_t sh = k0 % TK, base = k0 / TK;
    size_t u = kt - base;
    if (u < b->nkt)
        spattn__mb_or_word(b, rows, u, w >> sh);
    if (sh != 0 && u > 0 && u - 1 < b->nkt)
        spattn__mb_or_word(b, rows, u - 1, w << (TK - sh));
}

/* Source rows [r0, r1) of query tile sqt, which are slice rows r0 + delta .. of the current
   slice tile (delta may be negative), restricted to key tiles covering [k0, k1). */
static void add_rows(spattn__mb *b, const spattn_mask *m, size_t sqt, size_t r0, size_t r1,
                     ptrdiff_t delta, size_t k0, size_t k1)
{
    size_t kt_last = (k1 - 1) / TK;
    size_t end = m->qt_ptr[sqt + 1];
    uint32_t all = 0;
    for (size_t r = r0; r < r1; r++)
        all |= 1u << (size_t)((ptrdiff_t)r + delta);
    for (size_t t = first_tile_from(m, sqt, k0 / TK); t < end && !b->err; t++) {
        const spattn_ktile *kt = &m->tiles[t];
        if (kt->kt > kt_last)
            break;
        if (kt->part == SPATTN_FULL) {
            /* Every existing row of a FULL tile holds the same word. */
            put_word(b, all, kt->kt, k0, spattn__tile_row_bits(m, kt, sqt, r0));
            continue;
        }
        const uint64_t *w = m->bits + (size_t)kt->part * TQ;
        for (size_t r = r0; r < r1; r++)
            if (w[r])
                put_word(b, 1u << (size_t)((ptrdiff_t)r + delta), kt->kt, k0, w[r]);
    }
}

spattn_status spattn_mask_slice(const spattn_mask *m, size_t q0, size_t q1, size_t k0, size_t k1,
                                spattn_mask **out)
{
    spattn_status s = spattn__mb_check_args(out, !m, 1, 1);
    if (s)
        return s;
    if (!(q0 < q1 && q1 <= m->len_q && k0 < k1 && k1 <= m->len_k))
        return SPATTN_E_SHAPE;
    spattn__mb b;
    if (spattn__mb_init(&b, q1 - q0, k1 - k0))
        return b.err;
    size_t sh = q0 % TQ;
    for (size_t qt = 0; qt < b.nqt && !b.err; qt++) {
        /* Slice rows [qt*TQ, qt*TQ + TQ) are source rows from q0 + qt*TQ on. */
        size_t src = q0 + qt * TQ, sqt = src / TQ;
        size_t nrows = q1 - src < TQ ? q1 - src : TQ;
        int empty = spattn__qt_empty(m, sqt) &&
                    (sh == 0 || sqt + 1 >= m->nqt || spattn__qt_empty(m, sqt + 1));
        if (empty)
            continue;
        spattn__mb_begin(&b, qt);
        /* Source rows sh .. of tile sqt are slice rows 0 ..; rows 0 .. sh-1 of tile sqt + 1
           follow them. */
        size_t first = TQ - sh < nrows ? TQ - sh : nrows;
        add_rows(&b, m, sqt, sh, sh + first, -(ptrdiff_t)sh, k0, k1);
        if (first < nrows)
            add_rows(&b, m, sqt + 1, 0, nrows - first, (ptrdiff_t)first, k0, k1);
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

/* Reading a mask out (row keys, dense, CSR) and combining two (element-wise AND / OR). */
#include <string.h>

#include "mask/build.h"
#include "mask/mask_impl.h"

size_t spattn__mask_row_keys(const spattn_mask *m, size_t qt, size_t row, uint32_t *out)
{
    size_t n = 0;
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const uint32_t j0 = m->tiles[t].kt * (uint32_t)SPATTN_TK;
        for (uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, row); b != 0; b &= b - 1)
            out[n++] = j0 + (uint32_t)__builtin_ctzll(b);
    }
    return n;
}

spattn_status spattn_mask_to_dense(const spattn_mask *m, uint8_t *allowed, size_t ld)
{
    if (!m || !allowed)
        return SPATTN_E_NULL;
    if (ld < m->len_k || (m->len_q - 1) > (SIZE_MAX - m->len_k) / ld)
        return SPATTN_E_SHAPE;
    for (size_t i = 0; i < m->len_q; i++)
        memset(allowed + i * ld, 0, m->len_k);
    for (size_t qt = 0; qt < m->nqt; qt++) {
        size_t rows = spattn__qt_rows(m, qt);
        for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
            const spattn_ktile *kt = &m->tiles[t];
            size_t c0 = (size_t)kt->kt * SPATTN_TK;
            for (size_t r = 0; r < rows; r++) {
                uint8_t *row = allowed + (qt * SPATTN_TQ + r) * ld + c0;
                if (kt->part == SPATTN_FULL) {
                    memset(row, 1, spattn__kt_cols(m, kt->kt));
                    continue;
                }
                for (uint64_t w = m->bits[(size_t)kt->part * SPATTN_TQ + r]; w; w &= w - 1)
                    row[__builtin_ctzll(w)] = 1;
            }
        }
    }
    return SPATTN_OK;
}

spattn_status spattn_mask_to_csr(const spattn_mask *m, int64_t *row_ptr, int32_t *col_idx)
{
    if (!m || !row_ptr || (!col_idx && m->nnz))
        return SPATTN_E_NULL;
    int64_t pos = 0;
    for (size_t qt = 0; qt < m->nqt; qt++) {
        size_t rows = spattn__qt_rows(m, qt);
        for (size_t r = 0; r < rows; r++) {
            row_ptr[qt * SPATTN_TQ + r] = pos;
            for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
                const spattn_ktile *kt = &m->tiles[t];
                int32_t c0 = (int32_t)(kt->kt * SPATTN_TK);
                for (uint64_t w = spattn__tile_row_bits(m, kt, qt, r); w; w &= w - 1)
                    col_idx[pos++] = c0 + __builtin_ctzll(w);
            }
        }
    }
    row_ptr[m->len_q] = pos;
    return SPATTN_OK;
}

/* Adds one stored tile of `m` (query tile qt) to the tile being built. */
static void copy_tile(spattn__mb *b, const spattn_mask *m, const spattn_ktile *t)
{
    if (t->part == SPATTN_FULL) {
        spattn__mb_full(b, t->kt);
        return;
    }
    const uint64_t *w = m->bits + (size_t)t->part * SPATTN_TQ;
    for (uint32_t r = 0; r < SPATTN_TQ; r++)
        spattn__mb_or_word(b, 1u << r, t->kt, w[r]);
}

static void combine_tile(spattn__mb *b, const spattn_mask *x, const spattn_ktile *tx,
                         const spattn_mask *y, const spattn_ktile *ty, size_t qt, int is_or)
{
    int fx = tx->part == SPATTN_FULL, fy = ty->part == SPATTN_FULL;
    if (is_or ? (fx || fy) : (fx && fy)) {
        spattn__mb_full(b, tx->kt);
        return;
    }
    for (uint32_t r = 0; r < SPATTN_TQ; r++) {
        uint64_t wx = spattn__tile_row_bits(x, tx, qt, r);
        uint64_t wy = spattn__tile_row_bits(y, ty, qt, r);
        spattn__mb_or_word(b, 1u << r, tx->kt, is_or ? wx | wy : wx & wy);
    }
}

/* Both masks' key-tile lists are sorted: one merge per query tile, O(tiles) in all. */
static spattn_status combine(const spattn_mask *x, const spattn_mask *y, int is_or,
                             spattn_mask **out)
{
    if (!out)
        return SPATTN_E_NULL;
    *out = NULL;
    if (!x || !y)
        return SPATTN_E_NULL;
    if (x->len_q != y->len_q || x->len_k != y->len_k)
        return SPATTN_E_MASK;
    spattn__mb b;
    if (spattn__mb_init(&b, x->len_q, x->len_k))
        return b.err;
    for (size_t qt = 0; qt < x->nqt && !b.err; qt++) {
        size_t ix = x->qt_ptr[qt], ex = x->qt_ptr[qt + 1];
        size_t iy = y->qt_ptr[qt], ey = y->qt_ptr[qt + 1];
        if (is_or ? (ix == ex && iy == ey) : (ix == ex || iy == ey))
            continue;
        spattn__mb_begin(&b, qt);
        while ((ix < ex || iy < ey) && !b.err) {
            const spattn_ktile *tx = ix < ex ? &x->tiles[ix] : NULL;
            const spattn_ktile *ty = iy < ey ? &y->tiles[iy] : NULL;
            if (tx && (!ty || tx->kt < ty->kt)) {
                if (is_or)
                    copy_tile(&b, x, tx);
                ix++;
            } else if (ty && (!tx || ty->kt < tx->kt)) {
                if (is_or)
                    copy_tile(&b, y, ty);
                iy++;
            } else {
                combine_tile(&b, x, tx, y, ty, qt, is_or);
                ix++;
                iy++;
            }
        }
        spattn__mb_end(&b);
    }
    return spattn__mb_finish(&b, out);
}

spattn_status spattn_mask_and(const spattn_mask *a, const spattn_mask *b, spattn_mask **out)
{
    return combine(a, b, 0, out);
}

spattn_status spattn_mask_or(const spattn_mask *a, const spattn_mask *b, spattn_mask **out)
{
    return combine(a, b, 1, out);
}

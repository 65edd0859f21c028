#include "plan/keyrows.h"

#include <string.h>

#include "alloc.h"

/* Whether tile t's keys are listed for a query tile with flag g: all for a gathered query
   tile, those of flagged tiles for a mixed one. */
static int listed(const spattn_keyrows *kr, uint8_t g, size_t t)
{
    return g == SPATTN_QT_GATHER || (g == SPATTN_QT_MIXED && kr->tile_gather[t]);
}

/* Listed keys of row r of query tile qt. */
static size_t row_count(const spattn_mask *m, const spattn_keyrows *kr, uint8_t g, size_t qt,
                        size_t r)
{
    size_t n = 0;
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
        if (listed(kr, g, t))
            n += (size_t)__builtin_popcountll(spattn__tile_row_bits(m, &m->tiles[t], qt, r));
    return n;
}

/* The listed keys of row r of a mixed query tile, increasing, into out. */
static void row_keys_mixed(const spattn_mask *m, const spattn_keyrows *kr, size_t qt, size_t r,
                           uint32_t *out)
{
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        if (!kr->tile_gather[t])
            continue;
        const uint32_t j0 = m->tiles[t].kt * (uint32_t)SPATTN_TK;
        for (uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, r); b != 0; b &= b - 1)
            *out++ = j0 + (uint32_t)__builtin_ctzll(b);
    }
}

spattn_status spattn__keyrows_build(const spattn_mask *m, const uint8_t *gather,
                                    uint8_t *tile_gather, spattn_keyrows *kr)
{
    memset(kr, 0, sizeof *kr);
    kr->tile_gather = tile_gather;
    kr->len_q = m->len_q;
    kr->off = spattn__calloc(m->len_q + 1, sizeof *kr->off);
    if (kr->off == NULL) {
        spattn__keyrows_free(kr);
        return SPATTN_E_NOMEM;
    }
    size_t total = 0;
    for (size_t qt = 0; qt < m->nqt; qt++) {
        const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
        for (size_t r = 0; r < rows; r++) {
            const size_t n =
                gather[qt] != SPATTN_QT_TILES ? row_count(m, kr, gather[qt], qt, r) : 0;
            kr->longest = n > kr->longest ? n : kr->longest;
            total += n;
            kr->off[i0 + r + 1] = total;
        }
    }
    /* Never a zero-size request: an empty list is still a valid pointer. */
    if (total > SIZE_MAX / sizeof *kr->keys - 1 ||
        (kr->keys = spattn__malloc((total + 1) * sizeof *kr->keys)) == NULL) {
        spattn__keyrows_free(kr);
        return SPATTN_E_NOMEM;
    }
    for (size_t qt = 0; qt < m->nqt; qt++) {
        if (gather[qt] == SPATTN_QT_TILES)
            continue;
        const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
        for (size_t r = 0; r < rows; r++) {
            if (gather[qt] == SPATTN_QT_GATHER)
                spattn__mask_row_keys(m, qt, r, kr->keys + kr->off[i0 + r]);
            else
                row_keys_mixed(m, kr, qt, r, kr->keys + kr->off[i0 + r]);
        }
    }
    return SPATTN_OK;
}

void spattn__keyrows_free(spattn_keyrows *kr)
{
    if (kr == NULL)
        return;
    spattn__free(kr->off);
    spattn__free(kr->keys);
    spattn__free(kr->tile_gather);
    memset(kr, 0, sizeof *kr);
}

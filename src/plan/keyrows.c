#include "plan/keyrows.h"

#include <string.h>

#include "alloc.h"

/* Allowed keys of row r of query tile qt. */
static size_t row_count(const spattn_mask *m, size_t qt, size_t r)
{
    size_t n = 0;
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
        n += (size_t)__builtin_popcountll(spattn__tile_row_bits(m, &m->tiles[t], qt, r));
    return n;
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
            const size_t n = gather[qt] == SPATTN_QT_GATHER ? row_count(m, qt, r) : 0;
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
        if (gather[qt] != SPATTN_QT_GATHER)
            continue;
        const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
        for (size_t r = 0; r < rows; r++)
            spattn__mask_row_keys(m, qt, r, kr->keys + kr->off[i0 + r]);
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

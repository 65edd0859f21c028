#include "plan/keyrows.h"

#include <string.h>

#include "alloc.h"
#include "plan/bit_count.h"

/* Allowed keys of each row of query tile qt, into n[r]. Tile by tile, not row by row: each
   tile's entry and row words are read once for all its rows. */
PLAN_INLINE void qt_row_counts(const spattn_mask *m, size_t qt, size_t *n, const int hw)
{
    const size_t rows = spattn__qt_rows(m, qt);
    for (size_t r = 0; r < rows; r++)
        n[r] = 0;
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++)
        for (size_t r = 0; r < rows; r++)
            n[r] += plan_popcount(spattn__tile_row_bits(m, &m->tiles[t], qt, r), hw);
}

/* The row offsets of the lists (kr->off), kr->longest, and the keys in all, in the builds of
   bit_count.h. */
PLAN_INLINE size_t row_offsets(const spattn_mask *m, const uint8_t *gather, spattn_keyrows *kr,
                               const int hw)
{
    size_t total = 0;
    for (size_t qt = 0; qt < m->nqt; qt++) {
        const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
        size_t n[SPATTN_TQ] = {0};
        if (gather[qt] == SPATTN_QT_GATHER)
            qt_row_counts(m, qt, n, hw);
        for (size_t r = 0; r < rows; r++) {
            kr->longest = n[r] > kr->longest ? n[r] : kr->longest;
            total += n[r];
            kr->off[i0 + r + 1] = total;
        }
    }
    return total;
}

static size_t row_offsets_plain(const spattn_mask *m, const uint8_t *gather, spattn_keyrows *kr)
{
    return row_offsets(m, gather, kr, 0);
}

PLAN_POPCNT_TARGET static size_t row_offsets_popcnt(const spattn_mask *m, const uint8_t *gather,
                                                    spattn_keyrows *kr)
{
    return row_offsets(m, gather, kr, 1);
}

/* The keys of the rows of query tile qt, row i's from keys + off[i] on, the same way: tiles
   are in key order, so each row's keys come out increasing. The first key of each tile's row
   word is stored whether or not there is one (the row's next slot only moves if there is, and
   a row whose list is full stores into a spare), since a branch on that mispredicts about as
   often as it runs when keys are scattered. */
static void qt_row_keys(const spattn_mask *m, size_t qt, const size_t *off, uint32_t *keys)
{
    const size_t rows = spattn__qt_rows(m, qt), i0 = qt * SPATTN_TQ;
    uint32_t *at[SPATTN_TQ], spare;
    for (size_t r = 0; r < rows; r++)
        at[r] = keys + off[i0 + r];
    for (size_t t = m->qt_ptr[qt]; t < m->qt_ptr[qt + 1]; t++) {
        const uint32_t j0 = m->tiles[t].kt * (uint32_t)SPATTN_TK;
        for (size_t r = 0; r < rows; r++) {
            uint64_t b = spattn__tile_row_bits(m, &m->tiles[t], qt, r);
            uint32_t *p = at[r] < keys + off[i0 + r + 1] ? at[r] : &spare;
            *p = j0 + (uint32_t)__builtin_ctzll(b | (uint64_t)1 << 63);
            at[r] += b != 0;
            for (b &= b - 1; b != 0; b &= b - 1)
                *at[r]++ = j0 + (uint32_t)__builtin_ctzll(b);
        }
    }
}

/* Length of the progression keys[0], keys[0] + st, ... at the start of a row of n keys
   (keys[0] < st), or 0. */
static size_t prog_length(const uint32_t *keys, size_t n, size_t st)
{
    if (n < 2 || keys[0] >= st)
        return 0;
    size_t a = 1;
    while (a < n && keys[a] == keys[0] + a * st)
        a++;
    return a >= 2 ? a : 0;
}

/* Finds the progressions of the listed rows (keyrows.h), and keeps them only where the copy
   pays: where rows read each copied key at least PROG_REUSE times. The stride is that of the
   first row that starts with three keys in progression, at least PROG_MIN_STRIDE apart (closer
   keys share cache lines and sets anyway). */
#define PROG_MIN_STRIDE 8
#define PROG_REUSE 4
static spattn_status find_progressions(spattn_keyrows *kr)
{
    size_t st = 0;
    for (size_t i = 0; i < kr->len_q && st == 0; i++) {
        size_t n;
        const uint32_t *k = spattn__keyrows_row(kr, i, &n);
        if (n >= 3 && k[1] - k[0] >= PROG_MIN_STRIDE && k[0] < k[1] - k[0] &&
            k[2] - k[1] == k[1] - k[0])
            st = k[1] - k[0];
    }
    if (st == 0)
        return SPATTN_OK;
    size_t *need = spattn__calloc(st, sizeof *need);
    kr->prog = spattn__calloc(kr->len_q, sizeof *kr->prog);
    if (need == NULL || kr->prog == NULL) {
        spattn__free(need);
        return SPATTN_E_NOMEM;
    }
    size_t used = 0, copied = 0, longest = 0;
    for (size_t i = 0; i < kr->len_q; i++) {
        size_t n;
        const uint32_t *k = spattn__keyrows_row(kr, i, &n);
        const size_t a = prog_length(k, n, st);
        kr->prog[i] = (uint32_t)a;
        used += a;
        if (a != 0 && a > need[k[0]])
            need[k[0]] = a;
        longest = a > longest ? a : longest;
    }
    for (size_t c = 0; c < st; c++)
        copied += need[c];
    spattn__free(need);
    if (used < PROG_REUSE * copied || longest == 0) {
        spattn__free(kr->prog);
        kr->prog = NULL;
        return SPATTN_OK;
    }
    kr->prog_stride = st;
    kr->prog_len = longest;
    return SPATTN_OK;
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
    const size_t total = spattn__plan_popcnt() ? row_offsets_popcnt(m, gather, kr)
                                               : row_offsets_plain(m, gather, kr);
    /* Never a zero-size request: an empty list is still a valid pointer. */
    if (total > SIZE_MAX / sizeof *kr->keys - 1 ||
        (kr->keys = spattn__malloc((total + 1) * sizeof *kr->keys)) == NULL) {
        spattn__keyrows_free(kr);
        return SPATTN_E_NOMEM;
    }
    for (size_t qt = 0; qt < m->nqt; qt++) {
        if (gather[qt] != SPATTN_QT_GATHER)
            continue;
        qt_row_keys(m, qt, kr->off, kr->keys);
    }
    if (find_progressions(kr) != SPATTN_OK) {
        spattn__keyrows_free(kr);
        return SPATTN_E_NOMEM;
    }
    return SPATTN_OK;
}

void spattn__keyrows_mark_local(spattn_keyrows *kr, size_t dim_qk, size_t dim_v)
{
    const size_t half = spattn__stage_keys(dim_qk, dim_v) / 2;
    size_t rows = 0, near = 0;
    for (size_t i = 0; i < kr->len_q; i++) {
        size_t n;
        const uint32_t *k = spattn__keyrows_row(kr, i, &n);
        rows += n != 0;
        near += n != 0 && k[n - 1] - k[0] < half;
    }
    kr->local = 2 * near > rows;
}

void spattn__keyrows_drop_prog(spattn_keyrows *kr)
{
    spattn__free(kr->prog);
    kr->prog = NULL;
    kr->prog_stride = kr->prog_len = 0;
}

void spattn__keyrows_free(spattn_keyrows *kr)
{
    if (kr == NULL)
        return;
    spattn__free(kr->off);
    spattn__free(kr->keys);
    spattn__free(kr->tile_gather);
    spattn__free(kr->prog);
    memset(kr, 0, sizeof *kr);
}

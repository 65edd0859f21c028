/*
 * Incremental builder of the canonical mask (mask_impl.h), one query tile at a time.
 *
 * Usage: init; then for query tiles in increasing order: begin(qt), any number of adds,
 * end; then finish (or free on any path that abandons the build). Tiles never begun are
 * empty. Adds address rows by a bit mask of local rows (bit r = row qt*TQ + r) so that one
 * call can cover a whole rectangle; columns are absolute key indices.
 *
 * Cost: an add is O(key tiles it touches + rows in the row mask); end is O(touched tiles)
 * (plus a sort when they were touched out of order); memory is O(len_k / TK) for the slot
 * array plus what one query tile touches plus the result. Nothing is O(len_q * len_k).
 *
 * Errors are sticky: after the first failure every call returns it, and finish frees all.
 */
#ifndef SPATTN_MASK_BUILD_H
#define SPATTN_MASK_BUILD_H

#include <stddef.h>
#include <stdint.h>

#include "mask/mask_impl.h"

/* One key tile touched by the query tile being built. */
typedef struct spattn__mb_entry {
    uint32_t kt;
    uint32_t full; /* set by a rectangle covering the whole tile: words are then ignored */
    uint64_t w[SPATTN_TQ];
} spattn__mb_entry;

typedef struct spattn__mb {
    size_t len_q, len_k, nqt, nkt;
    spattn_status err;

    /* current query tile */
    size_t qt; /* SIZE_MAX before the first begin */
    int open;
    uint32_t rowmask; /* rows of the current tile that exist */
    uint32_t *slot;   /* nkt: 1 + index into ent, or 0 when untouched in this tile */
    spattn__mb_entry *ent;
    uint64_t *order; /* sort scratch, same capacity as ent */
    size_t nent, cap_ent;

    /* the result so far */
    spattn_mask *m;
    size_t cap_tiles, cap_partial;
    uint32_t max_partial; /* PARTIAL tiles an index can address; tests lower it */
} spattn__mb;

/* All rows of a tile. */
#define SPATTN__ALL_ROWS ((uint32_t)((1u << SPATTN_TQ) - 1u))

/* Shapes are validated by the caller (1..SPATTN_MAX_LEN). */
spattn_status spattn__mb_init(spattn__mb *b, size_t len_q, size_t len_k);
void spattn__mb_free(spattn__mb *b);

spattn_status spattn__mb_begin(spattn__mb *b, size_t qt);
/* Rows that exist in the current tile, as a row mask. */
static inline uint32_t spattn__mb_rows(const spattn__mb *b)
{
    return b->rowmask;
}

/* ORs `word` (bit c = key kt*TK + c) into the rows of `rows`; out-of-range bits are dropped. */
spattn_status spattn__mb_or_word(spattn__mb *b, uint32_t rows, size_t kt, uint64_t word);
/* ORs w[r] into row r of key tile kt for each row r of the current tile: a query tile's words
   of one key tile in one call, so that a caller reading dense rows tests for an empty tile
   once, not once per row word (which mispredicts when keys are scattered). */
spattn_status spattn__mb_or_words(spattn__mb *b, size_t kt, const uint64_t w[SPATTN_TQ]);
/* Allows every in-range pair of key tile kt for every row of the current tile. */
spattn_status spattn__mb_full(spattn__mb *b, size_t kt);
/* Allows keys [j0, j1) (clipped to len_k) for the rows of `rows`. */
spattn_status spattn__mb_add_range(spattn__mb *b, uint32_t rows, size_t j0, size_t j1);
/* Allows keys [lo[r], hi[r]) for each local row r of the tile (clipped to [0, len_k), empty
   when lo >= hi). Rows whose intervals overlap share one rectangle: for intervals sliding one
   key per row (causal, windows) the cost is O(tiles touched), not O(TQ * tiles). */
spattn_status spattn__mb_add_row_ranges(spattn__mb *b, const int64_t lo[SPATTN_TQ],
                                        const int64_t hi[SPATTN_TQ]);

spattn_status spattn__mb_end(spattn__mb *b);
/* Closes the build: *out gets the mask (refs = 1) on success; the builder is freed either way. */
spattn_status spattn__mb_finish(spattn__mb *b, spattn_mask **out);

/* ---- helpers for the constructors (from.c, patterns.c) ---- */

/* Key tile kt's bits of one row (bit c = key kt*TK + c). */
typedef struct spattn__mb_kt_word {
    size_t kt;
    uint64_t w;
} spattn__mb_kt_word;

static inline int spattn__mb_bad_len(size_t n)
{
    return n == 0 || n > SPATTN_MAX_LEN;
}

/* Bits [a, e) of a word, 0 <= a, e <= 64. */
static inline uint64_t spattn__mb_bit_range(size_t a, size_t e)
{
    if (a >= e)
        return 0;
    uint64_t hi = e >= 64 ? ~(uint64_t)0 : (((uint64_t)1 << e) - 1);
    return hi & ~(((uint64_t)1 << a) - 1);
}

/* The checks every constructor makes first, in this order: NULL pointers, then lengths. */
static inline spattn_status spattn__mb_check_args(spattn_mask **out, int data_null, size_t len_q,
                                                  size_t len_k)
{
    if (!out)
        return SPATTN_E_NULL;
    *out = NULL;
    if (data_null)
        return SPATTN_E_NULL;
    if (spattn__mb_bad_len(len_q) || spattn__mb_bad_len(len_k))
        return SPATTN_E_SHAPE;
    return SPATTN_OK;
}

#endif

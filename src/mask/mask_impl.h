/*
 * The canonical mask: rows of tiles, TQ query rows by TK = 64 keys.
 *
 * Query tile r covers rows [r*TQ, min(r*TQ+TQ, len_q)). Its non-empty key tiles are
 * tiles[qt_ptr[r] .. qt_ptr[r+1]) in increasing kt. A key tile is FULL (every in-range pair
 * allowed: no bits stored, no per-element test) or PARTIAL (bits[part*TQ + row] holds one
 * uint64_t per tile row; bit b allows key kt*64 + b). EMPTY tiles are not stored.
 *
 * Invariants every builder keeps and every kernel relies on:
 *  - a PARTIAL tile has at least one bit set and is not all in-range bits set;
 *  - bits of keys >= len_k and of rows >= len_q are 0;
 *  - a FULL tile at the right or bottom edge means "all in-range pairs".
 * The tile view is exact, so nnz, to_dense, to_csr, and, or all work from it.
 */
#ifndef SPATTN_MASK_IMPL_H
#define SPATTN_MASK_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "spattn.h"

#define SPATTN_TQ 16
#define SPATTN_TK 64
#define SPATTN_FULL UINT32_MAX

typedef struct spattn_ktile {
    uint32_t kt;   /* key tile index */
    uint32_t part; /* SPATTN_FULL, or the PARTIAL tile's index into bits (times TQ) */
} spattn_ktile;

struct spattn_mask {
    size_t len_q, len_k;
    size_t nqt, nkt; /* ceil(len_q / TQ), ceil(len_k / TK) */
    uint64_t nnz;
    size_t ntiles; /* stored (non-empty) tiles */
    size_t npartial;
    size_t *qt_ptr;      /* nqt + 1 */
    spattn_ktile *tiles; /* ntiles */
    uint64_t *bits;      /* npartial * TQ */
    uint64_t *qt_nnz;    /* nqt: allowed pairs per query tile */
    atomic_size_t refs;  /* the user's reference plus one per plan using it */
};

/* The set bits of x. The builtin where it is one instruction (x86 files built with AVX
   flags, which imply POPCNT; AArch64's CNT); in x86-64 code built for the baseline it is a
   call into libgcc, a large share of a sparse mask's plan time (docs/performance.md,
   Planning), so bit arithmetic there. */
static inline unsigned spattn__popcount64(uint64_t x)
{
#if defined(__POPCNT__) || !(defined(__x86_64__) || defined(__i386__))
    return (unsigned)__builtin_popcountll(x);
#else
    x -= (x >> 1) & 0x5555555555555555u;
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return (unsigned)((x * 0x0101010101010101u) >> 56);
#endif
}

/* Rows of query tile qt that exist (TQ except at the bottom edge). */
static inline size_t spattn__qt_rows(const spattn_mask *m, size_t qt)
{
    size_t r0 = qt * SPATTN_TQ;
    return m->len_q - r0 < SPATTN_TQ ? m->len_q - r0 : SPATTN_TQ;
}

/* Whether query tile qt of m (NULL: every pair allowed) has no allowed pair: execute and
   spattn_probs then skip the kernels. */
static inline int spattn__qt_empty(const spattn_mask *m, size_t qt)
{
    return m != NULL && m->qt_ptr[qt + 1] == m->qt_ptr[qt];
}

/* Keys of key tile kt that exist (TK except at the right edge). */
static inline size_t spattn__kt_cols(const spattn_mask *m, size_t kt)
{
    size_t c0 = kt * SPATTN_TK;
    return m->len_k - c0 < SPATTN_TK ? m->len_k - c0 : SPATTN_TK;
}

/* The row-bits of tile row `row` (0..TQ-1) of a stored tile: for FULL tiles the in-range bits. */
static inline uint64_t spattn__tile_row_bits(const spattn_mask *m, const spattn_ktile *t, size_t qt,
                                             size_t row)
{
    if (t->part != SPATTN_FULL)
        return m->bits[(size_t)t->part * SPATTN_TQ + row];
    if (qt * SPATTN_TQ + row >= m->len_q)
        return 0;
    size_t n = spattn__kt_cols(m, t->kt);
    return n == 64 ? ~(uint64_t)0 : (((uint64_t)1 << n) - 1);
}

/* The allowed keys of row `row` of query tile qt, increasing, into out (at most len_k);
   returns how many. */
size_t spattn__mask_row_keys(const spattn_mask *m, size_t qt, size_t row, uint32_t *out);

/* A mask with every pair allowed (used when the caller passes no mask). */
spattn_status spattn__mask_all(size_t len_q, size_t len_k, spattn_mask **out);

/* Plans hold masks alive: retain adds a reference, spattn_mask_free drops one. */
void spattn__mask_retain(const spattn_mask *m);
/* Frees a mask's arrays and the mask itself, whatever its count: for the last owner and for a
   builder abandoning a half-built mask. */
void spattn__mask_destroy(spattn_mask *m);

#endif

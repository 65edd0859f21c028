/*
 * Software prefetch of the next key tile's K and V rows (decode, where K and V stream from
 * DRAM).
 */
#ifndef SPATTN_KERNELS_KV_PREFETCH_H
#define SPATTN_KERNELS_KV_PREFETCH_H

#include "kernels/common.h"

/* The K and V rows of the next key tile the walk visits, asked for a few keys at a time
   while this tile computes, when the call streams K and V (job->stream_kv): the hardware
   prefetchers follow the stream, but software requests one tile ahead keep more lines in
   flight. They fill L2, not L1: a tile of K and V (64 keys of dim 128 in float32: 64 KiB)
   is larger than L1, so requests into L1 evicted the tile being computed. With several query tiles
   per head the tiles are in L2 and the requests only compete with the broadcasts for load slots, so
   they are off there (docs/kernels.md has both measurements). */
typedef struct tile_prefetch {
    const char *k, *v;    /* first key of the next tile */
    size_t n;             /* its keys */
    ptrdiff_t k_ts, v_ts; /* bytes */
    size_t k_bytes, v_bytes;
    /* 1: QK asks for the tile's K rows and P V (pv_rows_tile, pv_pairs_tile) for its V rows,
       each spread over its own work; 0: QK asks for both, P V for none. On Zen 4, asking for
       a key's K and V lines side by side, in either kernel, kept decode far below the plain
       read's rate, and one stream of requests at a time came close to it (docs/kernels.md). */
    int v_in_pv;
} tile_prefetch;

/* Which rows of a key prefetch_key asks for. */
enum { PF_K = 1, PF_V = 2, PF_KV = 3 };

SPATTN_ALWAYS_INLINE void prefetch_key(const tile_prefetch *pf, size_t c, int parts)
{
    const char *k = pf->k + (ptrdiff_t)c * pf->k_ts, *v = pf->v + (ptrdiff_t)c * pf->v_ts;
    if (parts & PF_K)
        for (size_t b = 0; b < pf->k_bytes; b += 64)
            vec_prefetch_l2(k + b);
    if (parts & PF_V)
        for (size_t b = 0; b < pf->v_bytes; b += 64)
            vec_prefetch_l2(v + b);
}

/* The `parts` rows of keys j .. j + count (those below n). */
SPATTN_ALWAYS_INLINE void prefetch_rows(const tile_prefetch *pf, size_t j, size_t count, int parts)
{
    for (size_t c = j; c < j + count && c < pf->n; c++)
        prefetch_key(pf, c, parts);
}

/* The rows a QK kernel asks for: K only where P V asks for the V rows. */
SPATTN_ALWAYS_INLINE int pf_qk_parts(const tile_prefetch *pf)
{
    return pf->v_in_pv ? PF_K : PF_KV;
}

SPATTN_ALWAYS_INLINE void prefetch_keys(const tile_prefetch *pf, size_t j, size_t count)
{
    prefetch_rows(pf, j, count, pf_qk_parts(pf));
}

/* The `parts` rows of the next tile's n keys spread evenly over `total` steps of work: each
   step adds n to acc and asks for one key per `total` in it. */
typedef struct pf_pace {
    const tile_prefetch *pf;
    int parts;
    size_t next, n, total, acc;
} pf_pace;

SPATTN_ALWAYS_INLINE void pf_pace_begin(pf_pace *p, const tile_prefetch *pf, int parts,
                                        size_t total)
{
    p->pf = pf;
    p->parts = parts;
    p->next = 0;
    p->n = pf->n;
    p->total = total > 0 ? total : 1;
    p->acc = 0;
}

SPATTN_ALWAYS_INLINE void pf_pace_step(pf_pace *p, size_t steps)
{
    p->acc += steps * p->n;
    while (p->acc >= p->total && p->next < p->n) {
        prefetch_key(p->pf, p->next++, p->parts);
        p->acc -= p->total;
    }
}

/* Whatever rounding left. */
SPATTN_ALWAYS_INLINE void pf_pace_end(pf_pace *p)
{
    prefetch_rows(p->pf, p->next, p->n - p->next, p->parts);
    p->next = p->n;
}

#endif

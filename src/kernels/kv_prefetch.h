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
    /* Keys [0, split) are asked for during QK, [split, n) during P V (pv_rows_tile): the
       requests a core keeps in flight are few, and asking for all of them during QK left
       DRAM idle while P V ran (docs/kernels.md). n where P V asks for none. */
    size_t split;
} tile_prefetch;

SPATTN_ALWAYS_INLINE void prefetch_key(const tile_prefetch *pf, size_t c)
{
    const char *k = pf->k + (ptrdiff_t)c * pf->k_ts, *v = pf->v + (ptrdiff_t)c * pf->v_ts;
    for (size_t b = 0; b < pf->k_bytes; b += 64)
        vec_prefetch_l2(k + b);
    for (size_t b = 0; b < pf->v_bytes; b += 64)
        vec_prefetch_l2(v + b);
}

SPATTN_ALWAYS_INLINE void prefetch_keys(const tile_prefetch *pf, size_t j, size_t count)
{
    for (size_t c = j; c < j + count && c < pf->n; c++)
        prefetch_key(pf, c);
}

/* Keys [next, end) of the next tile spread evenly over `total` steps of work: each step
   adds `count` (end - next at the start) to acc and asks for one key per `total` in it. */
typedef struct pf_pace {
    const tile_prefetch *pf;
    size_t next, end, count, total, acc;
} pf_pace;

SPATTN_ALWAYS_INLINE void pf_pace_begin(pf_pace *p, const tile_prefetch *pf, size_t lo, size_t hi,
                                        size_t total)
{
    p->pf = pf;
    p->next = lo;
    p->end = hi > pf->n ? pf->n : hi;
    p->count = p->end > lo ? p->end - lo : 0;
    p->total = total > 0 ? total : 1;
    p->acc = 0;
}

SPATTN_ALWAYS_INLINE void pf_pace_step(pf_pace *p, size_t steps)
{
    p->acc += steps * p->count;
    while (p->acc >= p->total && p->next < p->end) {
        prefetch_key(p->pf, p->next++);
        p->acc -= p->total;
    }
}

/* Whatever rounding left. */
SPATTN_ALWAYS_INLINE void pf_pace_end(pf_pace *p)
{
    while (p->next < p->end)
        prefetch_key(p->pf, p->next++);
}

#endif
